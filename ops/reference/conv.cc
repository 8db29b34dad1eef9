#include "ops/reference/conv.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ops/reference/elementwise.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class ConvKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseConvParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_ASSIGN_OR_RETURN(geometry_, ComputeConvGeometry(spec_, params_, inputs));
    return std::vector<TensorDesc>{
        TensorDesc{DType::kFloat32, geometry_.output_shape(), Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const float* bias = geometry_.has_bias ? inputs[2].data<float>() : nullptr;
    const float* residual = geometry_.has_residual ? inputs[3].data<float>() : nullptr;
    ReferenceConv2D(geometry_, params_.activation, inputs[0].data<float>(),
                    inputs[1].data<float>(), bias, residual, outputs[0].data<float>());
    return absl::OkStatus();
  }

 private:
  ConvParams params_;
  ConvGeometry geometry_;
};

absl::StatusOr<std::vector<int64_t>> GetIntsOfLength(const KernelSpec& spec, const char* name,
                                                     const std::vector<int64_t>& default_value,
                                                     size_t length, const char* meaning) {
  auto values = spec.attrs.GetInts(name, default_value);
  if (!values.ok()) return KernelError(spec, std::string(values.status().message()));
  if (values->size() != length) {
    return KernelError(spec, absl::StrCat("attribute '", name, "' must have ", length,
                                          " entries ", meaning, " for a 2-D convolution, got ",
                                          IntsString(*values)));
  }
  return values;
}

}  // namespace

absl::StatusOr<ConvParams> ParseConvParams(const KernelSpec& spec) {
  ConvParams p;
  auto kernel_shape = spec.attrs.GetInts("kernel_shape", {});
  if (!kernel_shape.ok()) return KernelError(spec, std::string(kernel_shape.status().message()));
  if (!kernel_shape->empty() && kernel_shape->size() != 2) {
    return KernelError(spec, absl::StrCat("only 2-D convolution is supported; kernel_shape is ",
                                          IntsString(*kernel_shape)));
  }
  p.kernel_shape = *kernel_shape;
  YP_ASSIGN_OR_RETURN(auto strides, GetIntsOfLength(spec, "strides", {1, 1}, 2, "[h, w]"));
  YP_ASSIGN_OR_RETURN(auto dilations, GetIntsOfLength(spec, "dilations", {1, 1}, 2, "[h, w]"));
  YP_ASSIGN_OR_RETURN(auto pads, GetIntsOfLength(spec, "pads", {0, 0, 0, 0}, 4,
                                                 "[top, left, bottom, right]"));
  for (int64_t v : strides) {
    if (v < 1) return KernelError(spec, absl::StrCat("strides must be >= 1, got ", IntsString(strides)));
  }
  for (int64_t v : dilations) {
    if (v < 1) {
      return KernelError(spec, absl::StrCat("dilations must be >= 1, got ", IntsString(dilations)));
    }
  }
  for (int64_t v : pads) {
    if (v < 0) return KernelError(spec, absl::StrCat("pads must be >= 0, got ", IntsString(pads)));
  }
  for (int64_t v : p.kernel_shape) {
    if (v < 1) {
      return KernelError(spec, absl::StrCat("kernel_shape must be >= 1, got ",
                                            IntsString(p.kernel_shape)));
    }
  }
  p.stride_h = strides[0];
  p.stride_w = strides[1];
  p.dilation_h = dilations[0];
  p.dilation_w = dilations[1];
  p.pad_top = pads[0];
  p.pad_left = pads[1];
  p.pad_bottom = pads[2];
  p.pad_right = pads[3];

  auto group = spec.attrs.GetInt("group", 1);
  if (!group.ok()) return KernelError(spec, std::string(group.status().message()));
  if (*group < 1) return KernelError(spec, absl::StrCat("group must be >= 1, got ", *group));
  p.group = *group;

  auto auto_pad = spec.attrs.GetString("auto_pad", "NOTSET");
  if (!auto_pad.ok()) return KernelError(spec, std::string(auto_pad.status().message()));
  if (*auto_pad != "NOTSET" && *auto_pad != "SAME_UPPER" && *auto_pad != "SAME_LOWER" &&
      *auto_pad != "VALID" && !auto_pad->empty()) {
    return KernelError(spec, absl::StrCat("unknown auto_pad '", *auto_pad,
                                          "' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)"));
  }
  p.auto_pad = auto_pad->empty() ? "NOTSET" : *auto_pad;

  auto activation = spec.attrs.GetString("activation", "");
  if (!activation.ok()) return KernelError(spec, std::string(activation.status().message()));
  const std::string act = absl::AsciiStrToLower(*activation);
  if (act.empty() || act == "none") {
    p.activation = ConvActivation::kNone;
  } else if (act == "silu") {
    p.activation = ConvActivation::kSilu;
  } else {
    return KernelError(spec, absl::StrCat("unsupported activation '", *activation,
                                          "' (supported: none, silu)"));
  }
  return p;
}

absl::StatusOr<ConvGeometry> ComputeConvGeometry(const KernelSpec& spec, const ConvParams& params,
                                                 absl::Span<const TensorDesc> inputs) {
  YP_RETURN_IF_ERROR(CheckInputCount(spec, inputs, 2, 4));
  YP_RETURN_IF_ERROR(CheckKnown(spec, inputs));
  YP_RETURN_IF_ERROR(CheckDType(spec, inputs, 0, "X", {DType::kFloat32}));
  YP_RETURN_IF_ERROR(CheckDType(spec, inputs, 1, "W", {DType::kFloat32}));
  const TensorDesc& x = inputs[0];
  const TensorDesc& w = inputs[1];
  if (x.shape.size() != 4) {
    return KernelError(spec, absl::StrCat("only 2-D convolution is supported: X is ",
                                          DescString(x), " (rank ", x.shape.size(),
                                          ", expected 4)"));
  }
  if (w.shape.size() != 4) {
    return KernelError(spec, absl::StrCat("only 2-D convolution is supported: W is ",
                                          DescString(w), " (rank ", w.shape.size(),
                                          ", expected 4)"));
  }
  ConvGeometry g;
  g.n = x.shape[0];
  g.c = x.shape[1];
  g.h = x.shape[2];
  g.w = x.shape[3];
  g.m = w.shape[0];
  g.kh = w.shape[2];
  g.kw = w.shape[3];
  g.group = params.group;
  if (w.shape[1] * params.group != g.c) {
    return KernelError(spec, absl::StrCat("channel mismatch: X ", ShapeToString(x.shape), " has ",
                                          g.c, " channels but W ", ShapeToString(w.shape),
                                          " with group ", params.group, " expects ",
                                          w.shape[1] * params.group));
  }
  if (g.m % params.group != 0) {
    return KernelError(spec, absl::StrCat("group ", params.group, " does not divide the ", g.m,
                                          " output channels of W ", ShapeToString(w.shape)));
  }
  if (g.m < 1 || g.kh < 1 || g.kw < 1) {
    return KernelError(spec, absl::StrCat("W ", ShapeToString(w.shape), " is empty"));
  }
  if (!params.kernel_shape.empty() &&
      (params.kernel_shape[0] != g.kh || params.kernel_shape[1] != g.kw)) {
    return KernelError(spec, absl::StrCat("kernel_shape ", IntsString(params.kernel_shape),
                                          " does not match W ", ShapeToString(w.shape)));
  }
  if (HasInput(inputs, 2)) {
    const TensorDesc& b = inputs[2];
    if (b.dtype != DType::kFloat32 || b.shape != Shape{g.m}) {
      return KernelError(spec, absl::StrCat("bias B is ", DescString(b), ", expected float32(",
                                            g.m, ",) for W ", ShapeToString(w.shape)));
    }
    g.has_bias = true;
  }
  YP_ASSIGN_OR_RETURN(WindowAxis ah, ComputeWindowAxis(spec, params.auto_pad, g.h, g.kh,
                                                       params.stride_h, params.dilation_h,
                                                       params.pad_top, params.pad_bottom, false));
  YP_ASSIGN_OR_RETURN(WindowAxis aw, ComputeWindowAxis(spec, params.auto_pad, g.w, g.kw,
                                                       params.stride_w, params.dilation_w,
                                                       params.pad_left, params.pad_right, false));
  g.stride_h = params.stride_h;
  g.stride_w = params.stride_w;
  g.dilation_h = params.dilation_h;
  g.dilation_w = params.dilation_w;
  g.pad_top = ah.pad_begin;
  g.pad_bottom = ah.pad_end;
  g.pad_left = aw.pad_begin;
  g.pad_right = aw.pad_end;
  g.oh = ah.out;
  g.ow = aw.out;
  if (HasInput(inputs, 3)) {
    const TensorDesc& r = inputs[3];
    if (r.dtype != DType::kFloat32 || r.shape != g.output_shape()) {
      return KernelError(spec, absl::StrCat("residual is ", DescString(r),
                                            ", expected float32", ShapeToString(g.output_shape()),
                                            " (the convolution's output shape)"));
    }
    g.has_residual = true;
  }
  return g;
}

void ReferenceConv2D(const ConvGeometry& g, ConvActivation activation, const float* x,
                     const float* w, const float* bias, const float* residual, float* y) {
  const int64_t c_per_group = g.c / g.group;
  const int64_t m_per_group = g.m / g.group;
  const int64_t plane = g.oh * g.ow;
  std::vector<float> acc(plane);
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t m = 0; m < g.m; ++m) {
      const int64_t group = m / m_per_group;
      std::fill(acc.begin(), acc.end(), bias != nullptr ? bias[m] : 0.0f);
      for (int64_t ci = 0; ci < c_per_group; ++ci) {
        const int64_t c = group * c_per_group + ci;
        const float* x_plane = x + (n * g.c + c) * g.h * g.w;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const float wv = w[((m * c_per_group + ci) * g.kh + ky) * g.kw + kx];
            for (int64_t oy = 0; oy < g.oh; ++oy) {
              const int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
              if (iy < 0 || iy >= g.h) continue;
              const float* x_row = x_plane + iy * g.w;
              float* acc_row = acc.data() + oy * g.ow;
              for (int64_t ox = 0; ox < g.ow; ++ox) {
                const int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
                if (ix >= 0 && ix < g.w) acc_row[ox] += wv * x_row[ix];
              }
            }
          }
        }
      }
      float* y_plane = y + (n * g.m + m) * plane;
      const float* r_plane = residual != nullptr ? residual + (n * g.m + m) * plane : nullptr;
      for (int64_t i = 0; i < plane; ++i) {
        float v = acc[i];
        if (activation == ConvActivation::kSilu) v = v * Sigmoid(v);
        if (r_plane != nullptr) v += r_plane[i];
        y_plane[i] = v;
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceConv(const KernelSpec& spec) {
  return CreateValidatedKernel<ConvKernel>(spec);
}

YP_REGISTER_KERNEL(RefConv, "Conv", Backend::kReference, CreateReferenceConv);

}  // namespace yolopipe::ops
