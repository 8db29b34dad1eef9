// Shared plumbing for kernels: a base class that keeps the KernelSpec for error messages, a
// create-time validation helper, constant-input readers, axis and broadcasting arithmetic, and
// dtype dispatch. Used by ops/reference and ops/cpu; knows nothing about graphs.
#ifndef YOLOPIPE_OPS_REFERENCE_KERNEL_UTIL_H_
#define YOLOPIPE_OPS_REFERENCE_KERNEL_UTIL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/dtype.h"
#include "base/status_macros.h"
#include "base/tensor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

// A Kernel that keeps its KernelSpec (attributes, constant inputs, node name for errors).
// Subclasses validate attributes in Init() (called once by CreateValidatedKernel) and validate
// shapes in Reshape(), which requires fully known input shapes (symbolic dimensions are an
// InvalidArgument naming the input). Not thread-safe: one Run at a time per instance.
class SpecKernel : public Kernel {
 public:
  explicit SpecKernel(const KernelSpec& spec) : spec_(spec) {}

  // Attribute validation and constant-input parsing; called once before the first Reshape.
  virtual absl::Status Init() { return absl::OkStatus(); }

  const KernelSpec& spec() const { return spec_; }

 protected:
  // InvalidArgument "op 'X' (node 'n'): <message>".
  absl::Status Error(const std::string& message) const { return KernelError(spec_, message); }

  KernelSpec spec_;
};

// True when every present input of `inputs` has a fully known shape.
bool AllShapesKnown(absl::Span<const TensorDesc> inputs);

// Constructs K(spec), runs Init(), and, when every input shape in spec.inputs is known, Reshape
// on them, so that malformed attributes or shapes fail at create time.
template <typename K>
absl::StatusOr<std::unique_ptr<Kernel>> CreateValidatedKernel(const KernelSpec& spec) {
  auto kernel = std::make_unique<K>(spec);
  YP_RETURN_IF_ERROR(kernel->Init());
  if (AllShapesKnown(spec.inputs)) {
    YP_RETURN_IF_ERROR(kernel->Reshape(spec.inputs).status());
  }
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// --- inputs ---

// True when `inputs` has an entry at `index` and it is not an absent optional input.
bool HasInput(absl::Span<const TensorDesc> inputs, int index);
// The constant value of input `index`, or nullptr when that input is not a constant.
const Tensor* FindConstant(const KernelSpec& spec, int index);
// The values of an integer tensor (int64, int32, int8, uint8 or bool), in physical order.
absl::StatusOr<std::vector<int64_t>> TensorToInt64s(const Tensor& tensor);
// The values of a numeric tensor converted to double, in physical order.
std::vector<double> TensorToDoubles(const Tensor& tensor);
// Reads constant integer input `index` named `input_name` (for messages). Errors when the input
// is absent, not a constant ("input 'shape' must be a constant") or not an integer tensor.
absl::StatusOr<std::vector<int64_t>> ConstantInt64s(const KernelSpec& spec, int index,
                                                    const std::string& input_name);

// Checks that at most `max_inputs` inputs are given and that the first `required` of them are
// present (the others are optional).
absl::Status CheckInputCount(const KernelSpec& spec, absl::Span<const TensorDesc> inputs,
                             int required, int max_inputs);
// Checks that every present input is Layout::kPlain and has a fully known shape.
absl::Status CheckPlainAndKnown(const KernelSpec& spec, absl::Span<const TensorDesc> inputs);
// Checks that every present input has a fully known shape (any layout).
absl::Status CheckKnown(const KernelSpec& spec, absl::Span<const TensorDesc> inputs);
// Checks that input `index` has one of `allowed` dtypes.
absl::Status CheckDType(const KernelSpec& spec, absl::Span<const TensorDesc> inputs, int index,
                        const std::string& input_name, std::initializer_list<DType> allowed);

// --- axes and shapes ---

// Maps axis in [-rank, rank-1] to [0, rank-1]; otherwise "<what> <axis> is out of range for
// rank <rank> ...".
absl::StatusOr<int> NormalizeAxis(const KernelSpec& spec, int64_t axis, int rank,
                                  const std::string& what);

// numpy-style multidirectional broadcast of `shapes`; errors name every shape.
absl::StatusOr<Shape> BroadcastShapes(const KernelSpec& spec, const std::vector<Shape>& shapes);
// Element strides of a row-major tensor.
std::vector<int64_t> RowMajorStrides(const Shape& shape);
// Element strides with which a row-major tensor of shape `in` is read when broadcast to `out`
// (right-aligned; stride 0 on broadcast dimensions). Result has out.size() entries.
std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out);

// "float32(1, 3, 640, 640)" (+ " nhwc").
std::string DescString(const TensorDesc& desc);
// "[1, 2, 3]"
std::string IntsString(absl::Span<const int64_t> values);

// Visits every element of `out_shape` in row-major order. `strides[k]` are input k's element
// strides (out_shape.size() entries, e.g. from BroadcastStrides). Calls
// visit(out_index, offsets) with offsets[k] the element offset into input k.
template <size_t kNumInputs, typename Visit>
void ForEachBroadcastElement(const Shape& out_shape,
                             const std::array<std::vector<int64_t>, kNumInputs>& strides,
                             Visit&& visit) {
  const int64_t total = NumElements(out_shape);
  if (total == 0) return;
  std::array<int64_t, kNumInputs> offsets{};
  const int rank = static_cast<int>(out_shape.size());
  if (rank == 0) {
    visit(int64_t{0}, offsets);
    return;
  }
  const int64_t inner = out_shape[rank - 1];
  std::array<int64_t, kNumInputs> base{};
  std::array<int64_t, kNumInputs> inner_stride{};
  for (size_t k = 0; k < kNumInputs; ++k) inner_stride[k] = strides[k][rank - 1];
  std::vector<int64_t> index(rank, 0);
  for (int64_t o = 0; o < total; o += inner) {
    for (int64_t j = 0; j < inner; ++j) {
      for (size_t k = 0; k < kNumInputs; ++k) offsets[k] = base[k] + j * inner_stride[k];
      visit(o + j, offsets);
    }
    for (int d = rank - 2; d >= 0; --d) {
      ++index[d];
      for (size_t k = 0; k < kNumInputs; ++k) base[k] += strides[k][d];
      if (index[d] < out_shape[d]) break;
      for (size_t k = 0; k < kNumInputs; ++k) base[k] -= strides[k][d] * out_shape[d];
      index[d] = 0;
    }
  }
}

// Copies element src[src_index] to dst[dst_index]; elements are `element_size` bytes.
void CopyElement(const void* src, int64_t src_index, void* dst, int64_t dst_index,
                 size_t element_size);

// --- sliding windows (Conv, MaxPool) ---

// Output size and padding of one spatial axis of a sliding window, following ONNX:
// auto_pad NOTSET uses pad_begin/pad_end; VALID uses no padding; SAME_UPPER/SAME_LOWER pad so that
// out = ceil(in / stride), the odd extra pad at the end (UPPER) or the beginning (LOWER).
// ceil_mode rounds up (a last window that would start inside the end padding is dropped, as
// PyTorch and ONNX Runtime do). Fails when the window does not fit.
struct WindowAxis {
  int64_t out = 0;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;
};
absl::StatusOr<WindowAxis> ComputeWindowAxis(const KernelSpec& spec, const std::string& auto_pad,
                                             int64_t in, int64_t kernel, int64_t stride,
                                             int64_t dilation, int64_t pad_begin,
                                             int64_t pad_end, bool ceil_mode);

// --- dtype dispatch ---

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<T>{}) for T matching `dtype` among float32, float64, int64, int32; returns
// fn's Status, or InvalidArgument for other dtypes.
template <typename Fn>
absl::Status DispatchNumeric(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(TypeTag<float>{});
    case DType::kFloat64: return fn(TypeTag<double>{});
    case DType::kInt64: return fn(TypeTag<int64_t>{});
    case DType::kInt32: return fn(TypeTag<int32_t>{});
    default:
      return absl::InvalidArgumentError("unsupported dtype " + DTypeName(dtype));
  }
}

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_KERNEL_UTIL_H_
