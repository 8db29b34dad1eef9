#include "ops/reference/max_pool.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class MaxPoolKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParsePoolParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_ASSIGN_OR_RETURN(geometry_, ComputePoolGeometry(spec_, params_, inputs));
    return std::vector<TensorDesc>{
        TensorDesc{DType::kFloat32, geometry_.output_shape(), Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    ReferenceMaxPool2D(geometry_, inputs[0].data<float>(), outputs[0].data<float>());
    return absl::OkStatus();
  }

 private:
  PoolParams params_;
  PoolGeometry geometry_;
};

}  // namespace

absl::StatusOr<PoolParams> ParsePoolParams(const KernelSpec& spec) {
  if (spec.num_outputs != 1) {
    return KernelError(spec, absl::StrCat("only the Y output is supported (the Indices output is "
                                          "not), node has ", spec.num_outputs, " outputs"));
  }
  auto kernel = spec.attrs.GetInts("kernel_shape");
  if (!kernel.ok()) return KernelError(spec, std::string(kernel.status().message()));
  if (kernel->size() != 2) {
    return KernelError(spec, absl::StrCat("only 2-D MaxPool is supported; kernel_shape is ",
                                          IntsString(*kernel)));
  }
  auto strides = spec.attrs.GetInts("strides", {1, 1});
  auto dilations = spec.attrs.GetInts("dilations", {1, 1});
  auto pads = spec.attrs.GetInts("pads", {0, 0, 0, 0});
  auto ceil_mode = spec.attrs.GetInt("ceil_mode", 0);
  auto storage_order = spec.attrs.GetInt("storage_order", 0);
  auto auto_pad = spec.attrs.GetString("auto_pad", "NOTSET");
  for (const absl::Status& s : {strides.status(), dilations.status(), pads.status(),
                                ceil_mode.status(), storage_order.status(), auto_pad.status()}) {
    if (!s.ok()) return KernelError(spec, std::string(s.message()));
  }
  if (strides->size() != 2) {
    return KernelError(spec, absl::StrCat("strides must have 2 entries, got ", IntsString(*strides)));
  }
  if (dilations->size() != 2) {
    return KernelError(spec,
                       absl::StrCat("dilations must have 2 entries, got ", IntsString(*dilations)));
  }
  if (pads->size() != 4) {
    return KernelError(spec, absl::StrCat("pads must have 4 entries [top, left, bottom, right], "
                                          "got ", IntsString(*pads)));
  }
  if (*storage_order != 0) {
    return KernelError(spec, "storage_order 1 (column-major indices) is not supported");
  }
  PoolParams p;
  p.kernel_h = (*kernel)[0];
  p.kernel_w = (*kernel)[1];
  p.stride_h = (*strides)[0];
  p.stride_w = (*strides)[1];
  p.dilation_h = (*dilations)[0];
  p.dilation_w = (*dilations)[1];
  p.pad_top = (*pads)[0];
  p.pad_left = (*pads)[1];
  p.pad_bottom = (*pads)[2];
  p.pad_right = (*pads)[3];
  p.ceil_mode = *ceil_mode != 0;
  p.auto_pad = auto_pad->empty() ? "NOTSET" : *auto_pad;
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 ||
      p.dilation_h < 1 || p.dilation_w < 1) {
    return KernelError(spec, absl::StrCat("kernel_shape ", IntsString(*kernel), ", strides ",
                                          IntsString(*strides), " and dilations ",
                                          IntsString(*dilations), " must be >= 1"));
  }
  for (int64_t v : *pads) {
    if (v < 0) return KernelError(spec, absl::StrCat("pads must be >= 0, got ", IntsString(*pads)));
  }
  // A pad as large as the window would allow windows made only of padding (no max defined).
  const int64_t extent_h = (p.kernel_h - 1) * p.dilation_h + 1;
  const int64_t extent_w = (p.kernel_w - 1) * p.dilation_w + 1;
  if (p.pad_top >= extent_h || p.pad_bottom >= extent_h || p.pad_left >= extent_w ||
      p.pad_right >= extent_w) {
    return KernelError(spec, absl::StrCat("pads ", IntsString(*pads),
                                          " must be smaller than the kernel extent ",
                                          IntsString({extent_h, extent_w})));
  }
  if (p.auto_pad != "NOTSET" && p.auto_pad != "VALID" && p.auto_pad != "SAME_UPPER" &&
      p.auto_pad != "SAME_LOWER") {
    return KernelError(spec, absl::StrCat("unknown auto_pad '", p.auto_pad, "'"));
  }
  return p;
}

absl::StatusOr<PoolGeometry> ComputePoolGeometry(const KernelSpec& spec, const PoolParams& params,
                                                 absl::Span<const TensorDesc> inputs) {
  YP_RETURN_IF_ERROR(CheckInputCount(spec, inputs, 1, 1));
  YP_RETURN_IF_ERROR(CheckKnown(spec, inputs));
  YP_RETURN_IF_ERROR(CheckDType(spec, inputs, 0, "X", {DType::kFloat32}));
  const TensorDesc& x = inputs[0];
  if (x.shape.size() != 4) {
    return KernelError(spec, absl::StrCat("only 2-D MaxPool is supported: X is ", DescString(x),
                                          " (rank ", x.shape.size(), ", expected 4)"));
  }
  PoolGeometry g;
  g.params = params;
  g.n = x.shape[0];
  g.c = x.shape[1];
  g.h = x.shape[2];
  g.w = x.shape[3];
  YP_ASSIGN_OR_RETURN(WindowAxis ah, ComputeWindowAxis(spec, params.auto_pad, g.h, params.kernel_h,
                                                       params.stride_h, params.dilation_h,
                                                       params.pad_top, params.pad_bottom,
                                                       params.ceil_mode));
  YP_ASSIGN_OR_RETURN(WindowAxis aw, ComputeWindowAxis(spec, params.auto_pad, g.w, params.kernel_w,
                                                       params.stride_w, params.dilation_w,
                                                       params.pad_left, params.pad_right,
                                                       params.ceil_mode));
  g.oh = ah.out;
  g.ow = aw.out;
  g.pad_top = ah.pad_begin;
  g.pad_left = aw.pad_begin;
  return g;
}

void ReferenceMaxPool2D(const PoolGeometry& g, const float* x, float* y) {
  const PoolParams& p = g.params;
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const float* x_plane = x + nc * g.h * g.w;
    float* y_plane = y + nc * g.oh * g.ow;
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        float best = -std::numeric_limits<float>::infinity();
        for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
          const int64_t iy = oy * p.stride_h - g.pad_top + ky * p.dilation_h;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
            const int64_t ix = ox * p.stride_w - g.pad_left + kx * p.dilation_w;
            if (ix < 0 || ix >= g.w) continue;
            best = std::max(best, x_plane[iy * g.w + ix]);
          }
        }
        y_plane[oy * g.ow + ox] = best;
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceMaxPool(const KernelSpec& spec) {
  return CreateValidatedKernel<MaxPoolKernel>(spec);
}

YP_REGISTER_KERNEL(RefMaxPool, "MaxPool", Backend::kReference, CreateReferenceMaxPool);

}  // namespace yolopipe::ops
