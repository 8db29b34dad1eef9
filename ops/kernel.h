// The op contract: every op is a Kernel created from a KernelSpec, with distinct phases
//   create  (validate attributes, pack constant inputs such as weights),
//   Reshape (output dtypes/shapes/layouts and workspace bytes, without touching data),
//   Run     (compute on host tensors).
// ops/ knows kernels and nothing about graphs: a kernel sees only its own inputs and attributes.
#ifndef YOLOPIPE_OPS_KERNEL_H_
#define YOLOPIPE_OPS_KERNEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/attributes.h"
#include "base/dtype.h"
#include "base/tensor.h"

namespace yolopipe::ops {

// Which implementation family a kernel belongs to. kReference kernels are naive, single-threaded,
// always built, and serve as the test oracle. kCpu kernels are the optimized ones (oneDNN); an op
// with no kCpu kernel runs its kReference kernel on CPU devices.
enum class Backend : int { kReference = 0, kCpu = 1, kCuda = 2 };

std::string BackendName(Backend backend);

// Type, logical shape and physical layout of one tensor. dtype kUndefined marks an absent
// optional input (an empty ONNX input name).
struct TensorDesc {
  DType dtype = DType::kUndefined;
  Shape shape;
  Layout layout = Layout::kPlain;

  bool present() const { return dtype != DType::kUndefined; }
  size_t bytes() const { return static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype); }
  bool operator==(const TensorDesc& o) const {
    return dtype == o.dtype && shape == o.shape && layout == o.layout;
  }
};

// What a kernel is created from.
struct KernelSpec {
  std::string node_name;  // used in every error message
  std::string op_type;    // ONNX op type ("Conv", "Resize", ...)
  Attributes attrs;
  // One entry per node input: the input's type, shape and the layout it will arrive in.
  std::vector<TensorDesc> inputs;
  // One entry per node input: defined() when that input is a constant known at create time
  // (weights, bias, Reshape's shape, Resize's scales, Slice's starts...). Kernels may read these
  // at create time and rely on the same values at Run.
  std::vector<Tensor> constant_inputs;
  int num_outputs = 1;
};

// Per-call context. Kernels must not keep pointers into it.
struct RunContext {
  int num_threads = 1;        // threads the kernel may use (optimized kernels only)
  void* workspace = nullptr;  // at least workspace_bytes() bytes, 64-byte aligned
};

class Kernel {
 public:
  virtual ~Kernel() = default;

  // Output descriptions for the given input descriptions (same order as KernelSpec::inputs).
  // Called again whenever the input shapes change (e.g. another batch size).
  virtual absl::StatusOr<std::vector<TensorDesc>> Reshape(
      absl::Span<const TensorDesc> inputs) = 0;

  // Scratch bytes Run needs for the shapes of the last Reshape.
  virtual size_t workspace_bytes() const { return 0; }

  // Computes outputs from inputs. `inputs` has one entry per node input (undefined Tensor for an
  // absent optional one); `outputs` are allocated by the caller with the descriptions Reshape
  // returned. Outputs never alias inputs.
  virtual absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                           absl::Span<Tensor> outputs) = 0;
};

// Formats "op 'Conv' (node 'model.0.conv'): <message>" as InvalidArgument.
absl::Status KernelError(const KernelSpec& spec, const std::string& message);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_KERNEL_H_
