#include "ops/cpu/max_pool.h"

#include <algorithm>
#include <limits>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "ops/cpu/parallel.h"
#include "ops/reference/kernel_util.h"
#include "ops/reference/max_pool.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

constexpr float kLowest = -std::numeric_limits<float>::infinity();

class CpuMaxPoolKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParsePoolParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(geometry_, ComputePoolGeometry(spec_, params_, inputs));
    return std::vector<TensorDesc>{
        TensorDesc{DType::kFloat32, geometry_.output_shape(), inputs[0].layout}};
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const float* x = inputs[0].data<float>();
    float* y = outputs[0].data<float>();
    const PoolGeometry& g = geometry_;
    if (inputs[0].layout() == Layout::kNHWC) {
      // One task per output row (n, oy); min chunk keeps tiny pools on one thread.
      ParallelFor(ctx.num_threads, g.n * g.oh, std::max<int64_t>(1, 4096 / (g.ow * g.c + 1)),
                  [&](int64_t begin, int64_t end) { PoolRowsNhwc(x, y, begin, end); });
    } else {
      ParallelFor(ctx.num_threads, g.n * g.c * g.oh, std::max<int64_t>(1, 4096 / (g.ow + 1)),
                  [&](int64_t begin, int64_t end) { PoolRowsPlain(x, y, begin, end); });
    }
    return absl::OkStatus();
  }

 private:
  // The valid window taps [*first, *last) of output index `o` along one axis.
  static void TapRange(int64_t o, int64_t stride, int64_t pad, int64_t dilation, int64_t kernel,
                       int64_t size, int64_t* first, int64_t* last) {
    const int64_t start = o * stride - pad;
    int64_t k0 = 0;
    if (start < 0) k0 = (-start + dilation - 1) / dilation;
    int64_t k1 = kernel;
    // Taps with start + k * dilation >= size are outside.
    if (start + (kernel - 1) * dilation >= size) {
      k1 = start >= size ? 0 : (size - 1 - start) / dilation + 1;
    }
    *first = k0;
    *last = std::max(k0, k1);
  }

  // Separable: a window's maximum is the maximum over its rows of each row's maximum. Taking rows
  // in order and taps in order within a row visits the values in the reference's order, and
  // MaxInto keeps the reference's std::max(best, v) choice, so the result is the reference's bit
  // for bit (the sign of a zero maximum, and NaNs, which are skipped, included). Each input row's
  // horizontal maxima are computed once into a small ring and reused by every output row whose
  // window covers it.
  void PoolRowsNhwc(const float* x, float* y, int64_t begin, int64_t end) const {
    const PoolGeometry& g = geometry_;
    const PoolParams& p = g.params;
    const int64_t c = g.c;
    const int64_t row_floats = g.ow * c;
    std::vector<int64_t> kx0(g.ow), kx1(g.ow);
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      TapRange(ox, p.stride_w, g.pad_left, p.dilation_w, p.kernel_w, g.w, &kx0[ox], &kx1[ox]);
    }
    // Slot iy % kernel_h holds the horizontal maxima of input row `ring_key[slot]` (n * h + iy).
    std::vector<float> ring(static_cast<size_t>(p.kernel_h * row_floats));
    std::vector<int64_t> ring_key(p.kernel_h, -1);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.oh, oy = row % g.oh;
      int64_t ky0, ky1;
      TapRange(oy, p.stride_h, g.pad_top, p.dilation_h, p.kernel_h, g.h, &ky0, &ky1);
      float* out = y + row * row_floats;
      std::fill(out, out + row_floats, kLowest);
      for (int64_t ky = ky0; ky < ky1; ++ky) {
        const int64_t iy = oy * p.stride_h - g.pad_top + ky * p.dilation_h;
        const int64_t slot = iy % p.kernel_h;
        float* horizontal = ring.data() + slot * row_floats;
        if (ring_key[slot] != n * g.h + iy) {
          const float* in_row = x + (n * g.h + iy) * g.w * c;
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            float* h = horizontal + ox * c;
            std::fill(h, h + c, kLowest);
            for (int64_t kx = kx0[ox]; kx < kx1[ox]; ++kx) {
              MaxInto(h, in_row + (ox * p.stride_w - g.pad_left + kx * p.dilation_w) * c, c);
            }
          }
          ring_key[slot] = n * g.h + iy;
        }
        MaxInto(out, horizontal, row_floats);
      }
    }
  }

  // acc[i] = std::max(acc[i], v[i]): v[i] replaces acc[i] only when acc[i] < v[i].
  static void MaxInto(float* acc, const float* v, int64_t count) {
    int64_t i = 0;
#if defined(__AVX2__)
    // maxps(a, b) returns b unless a > b: with a = v, b = acc that is std::max(acc, v)'s choice.
    for (; i + 8 <= count; i += 8) {
      _mm256_storeu_ps(acc + i, _mm256_max_ps(_mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
    }
#endif
    for (; i < count; ++i) acc[i] = std::max(acc[i], v[i]);
  }

  void PoolRowsPlain(const float* x, float* y, int64_t begin, int64_t end) const {
    const PoolGeometry& g = geometry_;
    const PoolParams& p = g.params;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t plane = row / g.oh, oy = row % g.oh;
      const float* in_plane = x + plane * g.h * g.w;
      float* out = y + (plane * g.oh + oy) * g.ow;
      int64_t ky0, ky1;
      TapRange(oy, p.stride_h, g.pad_top, p.dilation_h, p.kernel_h, g.h, &ky0, &ky1);
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        int64_t kx0, kx1;
        TapRange(ox, p.stride_w, g.pad_left, p.dilation_w, p.kernel_w, g.w, &kx0, &kx1);
        float best = kLowest;
        for (int64_t ky = ky0; ky < ky1; ++ky) {
          const float* in_row = in_plane + (oy * p.stride_h - g.pad_top + ky * p.dilation_h) * g.w;
          for (int64_t kx = kx0; kx < kx1; ++kx) {
            best = std::max(best, in_row[ox * p.stride_w - g.pad_left + kx * p.dilation_w]);
          }
        }
        out[ox] = best;
      }
    }
  }

  PoolParams params_;
  PoolGeometry geometry_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuMaxPool(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuMaxPoolKernel>(spec);
}

YP_REGISTER_KERNEL(CpuMaxPool, "MaxPool", Backend::kCpu, CreateCpuMaxPool,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{0}});

}  // namespace yolopipe::ops
