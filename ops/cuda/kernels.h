// CUDA kernels for the YOLOv8 operators other than convolution (see conv.h), on raw device
// pointers and a CUDA stream. Plain C++: no CUDA headers needed to include this.
//
// Conventions for every function here:
// - Activations are NHWC (channels last), dense unless a ChannelSlice says otherwise.
// - `dtype` is DType::kFloat32 or DType::kFloat16 (IEEE binary16, CUDA __half); arithmetic is done
//   in float32 and rounded once on store.
// - Pointers are device pointers on the current device; `stream` is a cudaStream_t passed as
//   void* (nullptr = the legacy default stream). Work is only enqueued: results are ready after the
//   stream is synchronised. Inputs and outputs must not overlap unless a function says so.
// - Arguments are validated before anything is enqueued: bad shapes, parameters, dtypes or null
//   pointers give InvalidArgument. A build without --config=cuda returns FailedPrecondition
//   ("... built without CUDA support") for valid arguments. Launch failures give the CUDA error
//   (see cuda_status.h); errors during kernel execution surface at the next synchronisation.
// - Thread-safety: the functions keep no state; concurrent calls on different streams are fine.
#ifndef YOLOPIPE_OPS_CUDA_KERNELS_H_
#define YOLOPIPE_OPS_CUDA_KERNELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/dtype.h"

namespace yolopipe::ops::cuda {

// Dimensions of a dense NHWC tensor.
struct NhwcShape {
  int64_t n = 0, h = 0, w = 0, c = 0;

  int64_t pixels() const { return n * h * w; }
  int64_t elements() const { return n * h * w * c; }
  std::string ToString() const;
  bool operator==(const NhwcShape& other) const {
    return n == other.n && h == other.h && w == other.w && c == other.c;
  }
};

// Channels [offset, offset + count) of an NHWC tensor whose pixels each hold `channels` values
// (`count` is given by the operation). `data` points at the tensor's first element (NOT at the
// slice). Concat and Split become slice copies, and producers can write into slices directly.
struct ConstChannelSlice {
  const void* data = nullptr;
  int64_t channels = 0;
  int64_t offset = 0;
};
struct ChannelSlice {
  void* data = nullptr;
  int64_t channels = 0;
  int64_t offset = 0;
};

// InvalidArgument unless `dtype` is float32 or float16 (`what` names the caller in the message).
absl::Status CheckActivationDType(DType dtype, const char* what);

// ---- MaxPool ----------------------------------------------------------------------------------
// Symmetric padding; padded positions never win. YOLOv8's SPPF uses kernel 5, stride 1, pad 2.
struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
};
// out = floor((in + 2 * pad - kernel) / stride) + 1 per spatial axis. InvalidArgument for kernel
// or stride < 1, pad < 0, pad >= kernel, negative dims, or an empty output.
absl::StatusOr<NhwcShape> MaxPool2dOutputShape(const NhwcShape& in, const Pool2dParams& params);
// y has MaxPool2dOutputShape(in, params).
absl::Status MaxPool2d(DType dtype, const void* x, const NhwcShape& in, const Pool2dParams& params,
                       void* y, void* stream);

// ---- Resize -----------------------------------------------------------------------------------
// Nearest neighbour, scale 2 on H and W (ONNX Resize nearest, asymmetric, floor; YOLOv8 Upsample):
// y (n, 2h, 2w, c)[b, oy, ox, k] = x[b, oy / 2, ox / 2, k].
absl::Status ResizeNearest2x(DType dtype, const void* x, const NhwcShape& in, void* y,
                             void* stream);

// ---- Concat / Split ---------------------------------------------------------------------------
// Copies `count` channels of every one of `pixels` pixels (N*H*W) from the src slice to the dst
// slice. Concat = one copy per input into the output's slices; Split = one copy per output.
// InvalidArgument when a slice does not fit its tensor (offset < 0, offset + count > channels).
absl::Status CopyChannelSlice(DType dtype, const ConstChannelSlice& src, const ChannelSlice& dst,
                              int64_t pixels, int64_t count, void* stream);

// ---- Elementwise ------------------------------------------------------------------------------
enum class BinaryOp { kAdd, kMul };
enum class UnaryOp { kSigmoid, kSilu };  // SiLU(x) = x * sigmoid(x)
// y[i] = a[i] op b[i] for i < count (same shapes; no broadcasting). y may alias a or b.
absl::Status Elementwise(BinaryOp op, DType dtype, const void* a, const void* b, void* y,
                         int64_t count, void* stream);
// y[i] = op(x[i]). y may alias x.
absl::Status Elementwise(UnaryOp op, DType dtype, const void* x, void* y, int64_t count,
                         void* stream);

// ---- Layout and precision conversion (graph and stage boundaries) ------------------------------
// x: float32 NCHW (shape.n, shape.c, shape.h, shape.w); y: NHWC `out_dtype`.
absl::Status NchwFloatToNhwc(const float* x, const NhwcShape& shape, DType out_dtype, void* y,
                             void* stream);
// x: NHWC `in_dtype`; y: float32 NCHW.
absl::Status NhwcToNchwFloat(DType in_dtype, const void* x, const NhwcShape& shape, float* y,
                             void* stream);

// ---- Softmax ----------------------------------------------------------------------------------
// Row-wise softmax of a float32 (rows, cols) matrix (the last axis), max-subtracted.
absl::Status SoftmaxLastAxis(const float* x, float* y, int64_t rows, int64_t cols, void* stream);

// ---- YOLOv8 Detect head decode ----------------------------------------------------------------
inline constexpr int64_t kDetectRegMax = 16;
inline constexpr int64_t kDetectBoxChannels = 4 * kDetectRegMax;  // 64
inline constexpr int kDetectMaxLevels = 4;

// One feature level of the head: box logits (64 channels: left, top, right, bottom, 16 bins each)
// and class logits (num_classes channels), both NHWC (batch, height, width, ...) and possibly
// slices of one [box, cls] tensor.
struct DetectLevel {
  ConstChannelSlice box;
  ConstChannelSlice cls;
  int64_t height = 0, width = 0;
  float stride = 0.0f;  // input pixels per grid cell (8, 16, 32)
};
// Σ height * width over the levels (8400 for 640x640).
int64_t DetectAnchorCount(const std::vector<DetectLevel>& levels);
// Writes `out`: float32 (batch, 4 + num_classes, A), A = DetectAnchorCount(levels), anchors in
// level order, row-major within a level: rows 0-3 are cx, cy, w, h in input pixels (DFL softmax
// expectation, anchor = cell + 0.5, × stride), rows 4.. are sigmoid(class logits) (YOLOV8.md).
// `dtype` is the logits' dtype. InvalidArgument for 0 or > kDetectMaxLevels levels, slices that
// do not fit, non-positive sizes, strides or class counts.
absl::Status DetectDecode(DType dtype, const std::vector<DetectLevel>& levels, int64_t batch,
                          int64_t num_classes, float* out, void* stream);

}  // namespace yolopipe::ops::cuda

#endif  // YOLOPIPE_OPS_CUDA_KERNELS_H_
