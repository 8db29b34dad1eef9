// 2-D convolution on NHWC activations through cuDNN with a fused epilogue: + bias, optional SiLU,
// optional residual add, and a store into a channel slice of a wider NHWC output (so Concat needs
// no copy). Two selectable implementations behind one API, so a GPU session can measure which is
// faster (ConvImplementation):
// - kLegacyPlusEpilogue: cudnnConvolutionForward (algorithm from
//   cudnnGetConvolutionForwardAlgorithm_v7), then our epilogue kernel. fp16 runs on tensor cores
//   (CUDNN_TENSOR_OP_MATH, fp32 accumulation; the raw result is rounded to fp16 once before the
//   epilogue); fp32 uses FMA math unless allow_tf32 is set.
// - kGraphFusion: cuDNN's backend graph API, one operation graph conv -> add bias -> swish -> add
//   residual (the parts the epilogue asks for) executed by a runtime-fusion engine; intermediates
//   stay in fp32 registers. Not every shape/dtype has an engine: those give Unimplemented.
//
//   y[b, oy, ox, out.offset + k] = act(conv(x, w)[b, oy, ox, k] + bias[k]) + residual[b, oy, ox, k]
//
// act is SiLU or identity; the residual is added after the activation (YOLOv8 Bottleneck).
// Plain C++: no CUDA or cuDNN headers needed to include this.
#ifndef YOLOPIPE_OPS_CUDA_CONV_H_
#define YOLOPIPE_OPS_CUDA_CONV_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "ops/cuda/kernels.h"

namespace yolopipe::ops::cuda {

// Shape and parameters of one convolution. Symmetric padding (YOLOv8 uses k // 2).
struct ConvParams {
  DType dtype = DType::kFloat16;  // of x, w, residual and y (float32 or float16)
  int64_t n = 0, h = 0, w = 0, c_in = 0, c_out = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  // float32 only: let cuDNN use TF32 tensor cores (about 1e-3 relative error instead of 1e-6).
  bool allow_tf32 = false;

  std::string ToString() const;
};

// The epilogue applied to the convolution result before it is stored.
struct ConvEpilogueParams {
  const float* bias = nullptr;  // c_out float32 values on the device, or null for none
  bool silu = false;
  // c_out channels from residual.offset of an NHWC tensor shaped like the output, or
  // residual.data == nullptr for none. Must not overlap the output.
  ConstChannelSlice residual;
};

// Output NHWC shape (channels = c_out). InvalidArgument for non-positive sizes, kernel, stride or
// dilation, negative padding, channels not divisible by groups, or an empty output.
absl::StatusOr<NhwcShape> ConvOutputShape(const ConvParams& params);

// Host-side checks of one Forward call (shape, dtype, pointers, epilogue and output slices).
// Forward runs them first; exposed so they are testable without a GPU.
absl::Status ValidateConvCall(const ConvParams& params, const void* x, const void* w,
                              const ConvEpilogueParams& epilogue, const ChannelSlice& y);

// True when Forward lets cuDNN write straight into y (y is dense: channels == c_out); otherwise
// the raw convolution goes to scratch space inside the workspace first.
bool ConvWritesInPlace(const ConvParams& params, const ChannelSlice& y);

enum class ConvImplementation {
  kLegacyPlusEpilogue,  // cudnnConvolutionForward + our epilogue kernel (the default)
  kGraphFusion,         // cuDNN backend graph with the epilogue fused by cuDNN
};

// Runs convolutions on the current CUDA device. Owns a cudnnHandle_t and a cache of plans keyed by
// the full ConvParams (and, for kGraphFusion, the epilogue's structure and slice layouts), so each
// shape is planned once: legacy plans hold tensor descriptors and the chosen algorithm; graph
// plans hold a finalized execution plan. Not thread-safe: use one runner per thread (or guard
// it); a runner may be used with any stream on its device.
class CudnnConvRunner {
 public:
  // FailedPrecondition without a GPU or without --config=cuda.
  static absl::StatusOr<std::unique_ptr<CudnnConvRunner>> Create(
      ConvImplementation implementation = ConvImplementation::kLegacyPlusEpilogue);
  ~CudnnConvRunner();
  CudnnConvRunner(const CudnnConvRunner&) = delete;
  CudnnConvRunner& operator=(const CudnnConvRunner&) = delete;

  // Device workspace bytes Forward needs for this call shape: cuDNN's workspace, plus (legacy
  // only) scratch for the raw result when !ConvWritesInPlace, each rounded up to 256 bytes.
  // Plans and caches the shape; only the structure of `epilogue` and `y` matters, not pointers.
  absl::StatusOr<size_t> WorkspaceBytes(const ConvParams& params,
                                        const ConvEpilogueParams& epilogue, const ChannelSlice& y);

  // Enqueues the convolution and its epilogue on `stream` (cudaStream_t as void*). x: NHWC
  // (n, h, w, c_in); w: (c_out, kernel_h, kernel_w, c_in / groups) (cuDNN NHWC filter layout, i.e.
  // ONNX OIHW transposed to OHWI); both in params.dtype. kGraphFusion also needs x, w, y.data,
  // residual.data and the bias 16-byte aligned (cudaMalloc and DeviceArena give 256); the slice
  // offsets may make the actual slice pointers less aligned. `workspace` must hold
  // WorkspaceBytes(params, epilogue, y) bytes (may be null when that is 0), 256-byte aligned.
  absl::Status Forward(const ConvParams& params, const void* x, const void* w,
                       const ConvEpilogueParams& epilogue, const ChannelSlice& y, void* workspace,
                       size_t workspace_bytes, void* stream);

  // Plans made so far.
  size_t cached_plans() const { return plans_.size(); }
  ConvImplementation implementation() const { return implementation_; }
  // What was chosen for this call shape (planning it if needed), e.g. "legacy algo 1, math 1,
  // cuDNN workspace 0 bytes" or "graph engine 3 (...), workspace 0 bytes": for logs and
  // benchmark reports.
  absl::StatusOr<std::string> DescribePlan(const ConvParams& params,
                                           const ConvEpilogueParams& epilogue,
                                           const ChannelSlice& y);

 private:
  struct Plan;
  // Out of line: the members' destructors need the complete Plan.
  explicit CudnnConvRunner(ConvImplementation implementation);
  absl::StatusOr<const Plan*> GetPlan(const ConvParams& params, const ConvEpilogueParams& epilogue,
                                      const ChannelSlice& y);
  // Fill a new plan (conv_cudnn.cc only).
  absl::Status BuildLegacyPlan(const ConvParams& params, Plan* plan);
  absl::Status BuildGraphPlan(const ConvParams& params, const ConvEpilogueParams& epilogue,
                              const ChannelSlice& y, Plan* plan);

  ConvImplementation implementation_;
  void* handle_ = nullptr;  // cudnnHandle_t
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans_;
};

}  // namespace yolopipe::ops::cuda

#endif  // YOLOPIPE_OPS_CUDA_CONV_H_
