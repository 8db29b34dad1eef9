// Internal: the nvcc-compiled kernel launchers behind ops/cuda/kernels.h and conv.h. Plain C++
// with no CUDA types (streams are cudaStream_t passed as void*), so g++ code can call them.
// Arguments are NOT validated here; the callers in kernels.cc / conv_cudnn.cc do that. Each
// function enqueues its kernel on `stream` and returns the cudaError_t of the launch as int
// (0 = launched; errors during execution surface at the next synchronisation). Element counts of
// zero launch nothing. The default build links launchers_stub.cc, whose functions are never
// reached (callers check BuiltWithCuda() first) and return -1.
#ifndef YOLOPIPE_OPS_CUDA_LAUNCHERS_H_
#define YOLOPIPE_OPS_CUDA_LAUNCHERS_H_

#include <cstdint>

namespace yolopipe::ops::cuda::launch {

// Storage type of activations: float32 or IEEE binary16 (__half). Arithmetic is done in float.
enum class ElemType : int { kFloat32 = 0, kFloat16 = 1 };

// NHWC max pooling; padding never wins (acts as -infinity).
int MaxPool2dNhwc(ElemType type, const void* x, int64_t n, int64_t h, int64_t w, int64_t c,
                  int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                  int64_t pad_h, int64_t pad_w, int64_t out_h, int64_t out_w, void* y,
                  void* stream);

// y (n, 2h, 2w, c) = x (n, h, w, c) at (oy / 2, ox / 2).
int ResizeNearest2xNhwc(ElemType type, const void* x, int64_t n, int64_t h, int64_t w, int64_t c,
                        void* y, void* stream);

// For each of `pixels` pixels, copies `count` consecutive values from src + p * src_stride to
// dst + p * dst_stride (strides and pointers in elements of `type`, already offset to the slice).
int CopyStridedChannels(ElemType type, const void* src, int64_t src_stride, void* dst,
                        int64_t dst_stride, int64_t pixels, int64_t count, void* stream);

enum class BinaryOpCode : int { kAdd = 0, kMul = 1 };
enum class UnaryOpCode : int { kSigmoid = 0, kSilu = 1 };
int Binary(BinaryOpCode op, ElemType type, const void* a, const void* b, void* y, int64_t count,
           void* stream);
int Unary(UnaryOpCode op, ElemType type, const void* x, void* y, int64_t count, void* stream);

// float32 NCHW -> NHWC of `out_type`, and NHWC of `in_type` -> float32 NCHW.
int NchwFloatToNhwc(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, ElemType out_type,
                    void* y, void* stream);
int NhwcToNchwFloat(ElemType in_type, const void* x, int64_t n, int64_t c, int64_t h, int64_t w,
                    float* y, void* stream);

// Row-wise softmax of a (rows, cols) float32 matrix.
int SoftmaxLastAxis(const float* x, float* y, int64_t rows, int64_t cols, void* stream);

inline constexpr int kMaxDetectLevels = 4;
inline constexpr int kDetectRegMax = 16;

struct DetectLevelArgs {
  const void* box = nullptr;  // first of 4 * kDetectRegMax box channels of pixel 0
  int64_t box_stride = 0;     // elements between pixels
  const void* cls = nullptr;  // first class channel of pixel 0
  int64_t cls_stride = 0;
  int64_t height = 0, width = 0;
  float stride = 0.0f;        // pixels per grid cell
  int64_t anchor_offset = 0;  // anchors of the earlier levels
};

// Writes out (batch, 4 + num_classes, total_anchors) float32: cx, cy, w, h (input pixels) from DFL
// + anchor decode, then sigmoid of each class logit.
int DetectDecode(ElemType type, const DetectLevelArgs* levels, int num_levels, int64_t batch,
                 int64_t num_classes, int64_t total_anchors, float* out, void* stream);

// out[p * out_stride + k] = act(conv[p * c_out + k] + bias[k]) + residual[p * residual_stride + k]
// for p < pixels, k < c_out; bias and residual may be null; act is SiLU or identity. `out` may
// equal `conv` when out_stride == c_out (each element is read before it is written by one thread).
int ConvEpilogue(ElemType type, const void* conv, const float* bias, bool silu,
                 const void* residual, int64_t residual_stride, void* out, int64_t out_stride,
                 int64_t pixels, int64_t c_out, void* stream);

}  // namespace yolopipe::ops::cuda::launch

#endif  // YOLOPIPE_OPS_CUDA_LAUNCHERS_H_
