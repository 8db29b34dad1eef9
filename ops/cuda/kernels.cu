// CUDA kernels behind ops/cuda/launchers.h. Simple grid-stride kernels that do their arithmetic in
// float; correctness first, tuned versions can replace them behind the same launchers.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "ops/cuda/launchers.h"

namespace yolopipe::ops::cuda::launch {
namespace {

constexpr int kThreads = 256;
// Grid-stride loops cover any size; the cap keeps the grid within limits.
constexpr int64_t kMaxBlocks = 1 << 16;

int Blocks(int64_t work_items) {
  int64_t blocks = (work_items + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks < 1) blocks = 1;
  return static_cast<int>(blocks);
}

cudaStream_t AsStream(void* stream) { return static_cast<cudaStream_t>(stream); }

int LastLaunchError() { return static_cast<int>(cudaGetLastError()); }

__device__ __forceinline__ float Load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float Load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void Store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void Store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }

__device__ __forceinline__ float Sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

#define YP_GRID_STRIDE_LOOP(i, n)                                                        \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// ---- MaxPool ----------------------------------------------------------------------------------
template <typename T>
__global__ void MaxPoolKernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh,
                              int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                              int64_t oh, int64_t ow, T* y) {
  const int64_t total = n * oh * ow * c;
  YP_GRID_STRIDE_LOOP(i, total) {
    const int64_t ch = i % c;
    int64_t rest = i / c;
    const int64_t ox = rest % ow;
    rest /= ow;
    const int64_t oy = rest % oh;
    const int64_t b = rest / oh;
    float best = -INFINITY;
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t iy = oy * sh - ph + ky;
      if (iy < 0 || iy >= h) continue;
      for (int64_t kx = 0; kx < kw; ++kx) {
        const int64_t ix = ox * sw - pw + kx;
        if (ix < 0 || ix >= w) continue;
        best = fmaxf(best, Load(x, ((b * h + iy) * w + ix) * c + ch));
      }
    }
    Store(y, i, best);
  }
}

// ---- Resize nearest x2 ------------------------------------------------------------------------
template <typename T>
__global__ void ResizeNearest2xKernel(const T* x, int64_t n, int64_t h, int64_t w, int64_t c,
                                      T* y) {
  const int64_t oh = 2 * h, ow = 2 * w;
  const int64_t total = n * oh * ow * c;
  YP_GRID_STRIDE_LOOP(i, total) {
    const int64_t ch = i % c;
    int64_t rest = i / c;
    const int64_t ox = rest % ow;
    rest /= ow;
    const int64_t oy = rest % oh;
    const int64_t b = rest / oh;
    y[i] = x[((b * h + oy / 2) * w + ox / 2) * c + ch];
  }
}

// ---- Channel slices ---------------------------------------------------------------------------
template <typename T>
__global__ void CopyStridedChannelsKernel(const T* src, int64_t src_stride, T* dst,
                                          int64_t dst_stride, int64_t pixels, int64_t count) {
  const int64_t total = pixels * count;
  YP_GRID_STRIDE_LOOP(i, total) {
    const int64_t p = i / count;
    const int64_t k = i % count;
    dst[p * dst_stride + k] = src[p * src_stride + k];
  }
}

// ---- Elementwise ------------------------------------------------------------------------------
template <typename T>
__global__ void BinaryKernel(int op, const T* a, const T* b, T* y, int64_t count) {
  YP_GRID_STRIDE_LOOP(i, count) {
    const float va = Load(a, i), vb = Load(b, i);
    Store(y, i, op == static_cast<int>(BinaryOpCode::kAdd) ? va + vb : va * vb);
  }
}

template <typename T>
__global__ void UnaryKernel(int op, const T* x, T* y, int64_t count) {
  YP_GRID_STRIDE_LOOP(i, count) {
    const float v = Load(x, i);
    Store(y, i, op == static_cast<int>(UnaryOpCode::kSigmoid) ? Sigmoid(v) : v * Sigmoid(v));
  }
}

// ---- Layout conversion ------------------------------------------------------------------------
template <typename T>
__global__ void NchwToNhwcKernel(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, T* y) {
  const int64_t total = n * c * h * w;
  YP_GRID_STRIDE_LOOP(i, total) {  // i indexes the NHWC output
    const int64_t ch = i % c;
    int64_t rest = i / c;
    const int64_t x_pos = rest % w;
    rest /= w;
    const int64_t y_pos = rest % h;
    const int64_t b = rest / h;
    Store(y, i, x[((b * c + ch) * h + y_pos) * w + x_pos]);
  }
}

template <typename T>
__global__ void NhwcToNchwKernel(const T* x, int64_t n, int64_t c, int64_t h, int64_t w, float* y) {
  const int64_t total = n * c * h * w;
  YP_GRID_STRIDE_LOOP(i, total) {  // i indexes the NCHW output
    const int64_t x_pos = i % w;
    int64_t rest = i / w;
    const int64_t y_pos = rest % h;
    rest /= h;
    const int64_t ch = rest % c;
    const int64_t b = rest / c;
    y[i] = Load(x, ((b * h + y_pos) * w + x_pos) * c + ch);
  }
}

// ---- Softmax: one warp per row ----------------------------------------------------------------
__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void SoftmaxKernel(const float* x, float* y, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_block = blockDim.x / 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / 32;
  // Every lane of a warp runs the same number of iterations, so the shuffles stay converged.
  for (int64_t row = first; row < rows; row += warps_per_block * gridDim.x) {
    const float* in = x + row * cols;
    float* out = y + row * cols;
    float m = -INFINITY;
    for (int64_t k = lane; k < cols; k += 32) m = fmaxf(m, in[k]);
    m = WarpMax(m);
    float sum = 0.0f;
    for (int64_t k = lane; k < cols; k += 32) sum += expf(in[k] - m);
    sum = WarpSum(sum);
    const float inv = 1.0f / sum;
    for (int64_t k = lane; k < cols; k += 32) out[k] = expf(in[k] - m) * inv;
  }
}

// ---- Detect head decode -----------------------------------------------------------------------
struct DetectLevels {
  DetectLevelArgs level[kMaxDetectLevels];
  int count;
};

template <typename T>
__global__ void DetectDecodeKernel(DetectLevels levels, int64_t batch, int64_t num_classes,
                                   int64_t total_anchors, float* out) {
  const int64_t total = batch * total_anchors;
  YP_GRID_STRIDE_LOOP(i, total) {
    const int64_t a = i % total_anchors;
    const int64_t b = i / total_anchors;
    int li = 0;
    while (li + 1 < levels.count && a >= levels.level[li + 1].anchor_offset) ++li;
    const DetectLevelArgs& lv = levels.level[li];
    const int64_t cell = a - lv.anchor_offset;
    const int64_t gx = cell % lv.width;
    const int64_t gy = cell / lv.width;
    const int64_t pixel = b * lv.height * lv.width + cell;
    const T* box = static_cast<const T*>(lv.box) + pixel * lv.box_stride;
    // DFL: the box channels are 4 sides (left, top, right, bottom) x kDetectRegMax bins.
    float dist[4];
    for (int side = 0; side < 4; ++side) {
      float m = -INFINITY;
      for (int j = 0; j < kDetectRegMax; ++j) m = fmaxf(m, Load(box, side * kDetectRegMax + j));
      float sum = 0.0f, weighted = 0.0f;
      for (int j = 0; j < kDetectRegMax; ++j) {
        const float e = expf(Load(box, side * kDetectRegMax + j) - m);
        sum += e;
        weighted += e * static_cast<float>(j);
      }
      dist[side] = weighted / sum;
    }
    const float ax = static_cast<float>(gx) + 0.5f;
    const float ay = static_cast<float>(gy) + 0.5f;
    const float x1 = ax - dist[0], y1 = ay - dist[1];
    const float x2 = ax + dist[2], y2 = ay + dist[3];
    float* o = out + b * (4 + num_classes) * total_anchors + a;
    o[0 * total_anchors] = (x1 + x2) * 0.5f * lv.stride;
    o[1 * total_anchors] = (y1 + y2) * 0.5f * lv.stride;
    o[2 * total_anchors] = (x2 - x1) * lv.stride;
    o[3 * total_anchors] = (y2 - y1) * lv.stride;
    const T* cls = static_cast<const T*>(lv.cls) + pixel * lv.cls_stride;
    for (int64_t k = 0; k < num_classes; ++k) o[(4 + k) * total_anchors] = Sigmoid(Load(cls, k));
  }
}

// ---- Convolution epilogue ---------------------------------------------------------------------
template <typename T>
__global__ void ConvEpilogueKernel(const T* conv, const float* bias, bool silu, const T* residual,
                                   int64_t residual_stride, T* out, int64_t out_stride,
                                   int64_t pixels, int64_t c_out) {
  const int64_t total = pixels * c_out;
  YP_GRID_STRIDE_LOOP(i, total) {
    const int64_t p = i / c_out;
    const int64_t k = i % c_out;
    float v = Load(conv, i);
    if (bias != nullptr) v += bias[k];
    if (silu) v = v * Sigmoid(v);
    if (residual != nullptr) v += Load(residual, p * residual_stride + k);
    Store(out, p * out_stride + k, v);
  }
}

}  // namespace

template <typename T>
static const T* CastIn(const void* p) {
  return static_cast<const T*>(p);
}
template <typename T>
static T* CastOut(void* p) {
  return static_cast<T*>(p);
}

int MaxPool2dNhwc(ElemType type, const void* x, int64_t n, int64_t h, int64_t w, int64_t c,
                  int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                  int64_t pad_h, int64_t pad_w, int64_t out_h, int64_t out_w, void* y,
                  void* stream) {
  const int64_t total = n * out_h * out_w * c;
  if (total == 0) return 0;
  if (type == ElemType::kFloat32) {
    MaxPoolKernel<float><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<float>(x), n, h, w, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h,
        out_w, CastOut<float>(y));
  } else {
    MaxPoolKernel<__half><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<__half>(x), n, h, w, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h,
        out_w, CastOut<__half>(y));
  }
  return LastLaunchError();
}

int ResizeNearest2xNhwc(ElemType type, const void* x, int64_t n, int64_t h, int64_t w, int64_t c,
                        void* y, void* stream) {
  const int64_t total = n * 4 * h * w * c;
  if (total == 0) return 0;
  if (type == ElemType::kFloat32) {
    ResizeNearest2xKernel<float><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<float>(x), n, h, w, c, CastOut<float>(y));
  } else {
    ResizeNearest2xKernel<__half><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<__half>(x), n, h, w, c, CastOut<__half>(y));
  }
  return LastLaunchError();
}

int CopyStridedChannels(ElemType type, const void* src, int64_t src_stride, void* dst,
                        int64_t dst_stride, int64_t pixels, int64_t count, void* stream) {
  const int64_t total = pixels * count;
  if (total == 0) return 0;
  if (type == ElemType::kFloat32) {
    CopyStridedChannelsKernel<float><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<float>(src), src_stride, CastOut<float>(dst), dst_stride, pixels, count);
  } else {
    CopyStridedChannelsKernel<__half><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<__half>(src), src_stride, CastOut<__half>(dst), dst_stride, pixels, count);
  }
  return LastLaunchError();
}

int Binary(BinaryOpCode op, ElemType type, const void* a, const void* b, void* y, int64_t count,
           void* stream) {
  if (count == 0) return 0;
  if (type == ElemType::kFloat32) {
    BinaryKernel<float><<<Blocks(count), kThreads, 0, AsStream(stream)>>>(
        static_cast<int>(op), CastIn<float>(a), CastIn<float>(b), CastOut<float>(y), count);
  } else {
    BinaryKernel<__half><<<Blocks(count), kThreads, 0, AsStream(stream)>>>(
        static_cast<int>(op), CastIn<__half>(a), CastIn<__half>(b), CastOut<__half>(y), count);
  }
  return LastLaunchError();
}

int Unary(UnaryOpCode op, ElemType type, const void* x, void* y, int64_t count, void* stream) {
  if (count == 0) return 0;
  if (type == ElemType::kFloat32) {
    UnaryKernel<float><<<Blocks(count), kThreads, 0, AsStream(stream)>>>(
        static_cast<int>(op), CastIn<float>(x), CastOut<float>(y), count);
  } else {
    UnaryKernel<__half><<<Blocks(count), kThreads, 0, AsStream(stream)>>>(
        static_cast<int>(op), CastIn<__half>(x), CastOut<__half>(y), count);
  }
  return LastLaunchError();
}

int NchwFloatToNhwc(const float* x, int64_t n, int64_t c, int64_t h, int64_t w, ElemType out_type,
                    void* y, void* stream) {
  const int64_t total = n * c * h * w;
  if (total == 0) return 0;
  if (out_type == ElemType::kFloat32) {
    NchwToNhwcKernel<float>
        <<<Blocks(total), kThreads, 0, AsStream(stream)>>>(x, n, c, h, w, CastOut<float>(y));
  } else {
    NchwToNhwcKernel<__half>
        <<<Blocks(total), kThreads, 0, AsStream(stream)>>>(x, n, c, h, w, CastOut<__half>(y));
  }
  return LastLaunchError();
}

int NhwcToNchwFloat(ElemType in_type, const void* x, int64_t n, int64_t c, int64_t h, int64_t w,
                    float* y, void* stream) {
  const int64_t total = n * c * h * w;
  if (total == 0) return 0;
  if (in_type == ElemType::kFloat32) {
    NhwcToNchwKernel<float>
        <<<Blocks(total), kThreads, 0, AsStream(stream)>>>(CastIn<float>(x), n, c, h, w, y);
  } else {
    NhwcToNchwKernel<__half>
        <<<Blocks(total), kThreads, 0, AsStream(stream)>>>(CastIn<__half>(x), n, c, h, w, y);
  }
  return LastLaunchError();
}

int SoftmaxLastAxis(const float* x, float* y, int64_t rows, int64_t cols, void* stream) {
  if (rows == 0 || cols == 0) return 0;
  constexpr int64_t kWarpsPerBlock = kThreads / 32;
  int64_t blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  SoftmaxKernel<<<static_cast<int>(blocks), kThreads, 0, AsStream(stream)>>>(x, y, rows, cols);
  return LastLaunchError();
}

int DetectDecode(ElemType type, const DetectLevelArgs* levels, int num_levels, int64_t batch,
                 int64_t num_classes, int64_t total_anchors, float* out, void* stream) {
  if (num_levels < 1 || num_levels > kMaxDetectLevels) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  const int64_t total = batch * total_anchors;
  if (total == 0) return 0;
  DetectLevels packed = {};
  for (int i = 0; i < num_levels; ++i) packed.level[i] = levels[i];
  packed.count = num_levels;
  if (type == ElemType::kFloat32) {
    DetectDecodeKernel<float><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        packed, batch, num_classes, total_anchors, out);
  } else {
    DetectDecodeKernel<__half><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        packed, batch, num_classes, total_anchors, out);
  }
  return LastLaunchError();
}

int ConvEpilogue(ElemType type, const void* conv, const float* bias, bool silu,
                 const void* residual, int64_t residual_stride, void* out, int64_t out_stride,
                 int64_t pixels, int64_t c_out, void* stream) {
  const int64_t total = pixels * c_out;
  if (total == 0) return 0;
  if (type == ElemType::kFloat32) {
    ConvEpilogueKernel<float><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<float>(conv), bias, silu, CastIn<float>(residual), residual_stride,
        CastOut<float>(out), out_stride, pixels, c_out);
  } else {
    ConvEpilogueKernel<__half><<<Blocks(total), kThreads, 0, AsStream(stream)>>>(
        CastIn<__half>(conv), bias, silu, CastIn<__half>(residual), residual_stride,
        CastOut<__half>(out), out_stride, pixels, c_out);
  }
  return LastLaunchError();
}

}  // namespace yolopipe::ops::cuda::launch
