#include "ops/cpu/resize.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cpu/parallel.h"
#include "ops/reference/kernel_util.h"
#include "ops/reference/resize.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

bool IsIdentity(const std::vector<int64_t>& map, int64_t in_size) {
  if (static_cast<int64_t>(map.size()) != in_size) return false;
  for (size_t i = 0; i < map.size(); ++i) {
    if (map[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// The integer factor f when map[o] == o / f for every o and the output is exactly f times the
// input; 0 otherwise.
int64_t ReplicationFactor(const std::vector<int64_t>& map, int64_t in_size) {
  if (in_size == 0 || map.size() % in_size != 0) return 0;
  const int64_t f = static_cast<int64_t>(map.size()) / in_size;
  for (size_t o = 0; o < map.size(); ++o) {
    if (map[o] != static_cast<int64_t>(o) / f) return 0;
  }
  return f;
}

class CpuResizeKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseResizeParams(spec_));
    // Plain tensors that are not 4-D float32 use the reference kernel.
    KernelSpec plain = spec_;
    for (TensorDesc& d : plain.inputs) d.layout = Layout::kPlain;
    YP_ASSIGN_OR_RETURN(fallback_, CreateReferenceResize(plain));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 4));
    for (int i = 1; i < static_cast<int>(inputs.size()); ++i) {
      if (HasInput(inputs, i) && inputs[i].layout != Layout::kPlain) {
        return Error(absl::StrCat("input ", i, " must be in plain layout"));
      }
    }
    YP_ASSIGN_OR_RETURN(plan_, PlanResize(spec_, params_, inputs));
    const TensorDesc& x = inputs[0];
    layout_ = x.layout;
    fast_ = x.shape.size() == 4 && x.dtype == DType::kFloat32;
    if (layout_ == Layout::kNHWC && !fast_) {
      return Error(absl::StrCat("a channels-last input must be 4-D float32, got ",
                                DescString(x)));
    }
    if (!fast_) {
      std::vector<TensorDesc> plain(inputs.begin(), inputs.end());
      YP_RETURN_IF_ERROR(fallback_->Reshape(plain).status());
    } else {
      const Shape& s = x.shape;
      channels_identity_ = IsIdentity(plan_.index_maps[1], s[1]);
      batch_identity_ = IsIdentity(plan_.index_maps[0], s[0]);
      factor_h_ = ReplicationFactor(plan_.index_maps[2], s[2]);
      factor_w_ = ReplicationFactor(plan_.index_maps[3], s[3]);
    }
    return std::vector<TensorDesc>{TensorDesc{x.dtype, plan_.output_shape, layout_}};
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (!fast_) return fallback_->Run(ctx, inputs, outputs);
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    if (layout_ == Layout::kNHWC && channels_identity_ && batch_identity_ && factor_h_ > 0 &&
        factor_w_ > 0) {
      RunNhwcReplicate(ctx, x, y);
    } else if (layout_ == Layout::kNHWC) {
      RunNhwcGather(ctx, x, y);
    } else {
      RunPlain(ctx, x, y);
    }
    return absl::OkStatus();
  }

 private:
  // Output row oy = iy * fh is input row iy with every pixel repeated fw times; rows
  // iy * fh + 1 .. iy * fh + fh - 1 are copies of it.
  void RunNhwcReplicate(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    const int64_t fh = factor_h_, fw = factor_w_, ow = w * fw;
    const float* src = x.data<float>();
    float* dst = y.data<float>();
    const size_t pixel_bytes = static_cast<size_t>(c) * sizeof(float);
    ParallelFor(ctx.num_threads, n * h, std::max<int64_t>(1, 8192 / (ow * c * fh + 1)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t row = begin; row < end; ++row) {
                    const int64_t b = row / h, iy = row % h;
                    const float* in = src + (b * h + iy) * w * c;
                    float* out = dst + (b * h * fh + iy * fh) * ow * c;
                    for (int64_t ix = 0; ix < w; ++ix) {
                      for (int64_t r = 0; r < fw; ++r) {
                        std::memcpy(out + (ix * fw + r) * c, in + ix * c, pixel_bytes);
                      }
                    }
                    for (int64_t r = 1; r < fh; ++r) {
                      std::memcpy(out + r * ow * c, out, ow * pixel_bytes);
                    }
                  }
                });
  }

  void RunNhwcGather(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    const int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3);
    const int64_t on = y.dim(0), oc = y.dim(1), oh = y.dim(2), ow = y.dim(3);
    const auto& mn = plan_.index_maps[0];
    const auto& mc = plan_.index_maps[1];
    const auto& mh = plan_.index_maps[2];
    const auto& mw = plan_.index_maps[3];
    const float* src = x.data<float>();
    float* dst = y.data<float>();
    ParallelFor(ctx.num_threads, on * oh, std::max<int64_t>(1, 8192 / (ow * oc + 1)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t row = begin; row < end; ++row) {
                    const int64_t b = row / oh, oy = row % oh;
                    const float* in_row = src + (mn[b] * h + mh[oy]) * w * c;
                    float* out = dst + row * ow * oc;
                    for (int64_t ox = 0; ox < ow; ++ox) {
                      const float* in = in_row + mw[ox] * c;
                      if (channels_identity_) {
                        std::memcpy(out + ox * oc, in, static_cast<size_t>(oc) * sizeof(float));
                      } else {
                        for (int64_t ch = 0; ch < oc; ++ch) out[ox * oc + ch] = in[mc[ch]];
                      }
                    }
                  }
                });
  }

  void RunPlain(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    const int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3);
    const int64_t on = y.dim(0), oc = y.dim(1), oh = y.dim(2), ow = y.dim(3);
    const auto& mn = plan_.index_maps[0];
    const auto& mc = plan_.index_maps[1];
    const auto& mh = plan_.index_maps[2];
    const auto& mw = plan_.index_maps[3];
    const float* src = x.data<float>();
    float* dst = y.data<float>();
    ParallelFor(ctx.num_threads, on * oc * oh, std::max<int64_t>(1, 8192 / (ow + 1)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t row = begin; row < end; ++row) {
                    const int64_t oy = row % oh, plane = row / oh;
                    const int64_t b = plane / oc, ch = plane % oc;
                    const float* in_row = src + ((mn[b] * c + mc[ch]) * h + mh[oy]) * w;
                    float* out = dst + row * ow;
                    for (int64_t ox = 0; ox < ow; ++ox) out[ox] = in_row[mw[ox]];
                  }
                });
  }

  ResizeParams params_;
  ResizePlan plan_;
  std::unique_ptr<Kernel> fallback_;
  Layout layout_ = Layout::kPlain;
  bool fast_ = false;
  bool channels_identity_ = false, batch_identity_ = false;
  int64_t factor_h_ = 0, factor_w_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuResize(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuResizeKernel>(spec);
}

YP_REGISTER_KERNEL(CpuResize, "Resize", Backend::kCpu, CreateCpuResize,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{0}});

}  // namespace yolopipe::ops
