#include "ops/reference/resize.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class ResizeKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseResizeParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_ASSIGN_OR_RETURN(plan_, PlanResize(spec_, params_, inputs));
    return std::vector<TensorDesc>{
        TensorDesc{inputs[0].dtype, plan_.output_shape, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    const size_t size = DTypeSize(x.dtype());
    const Shape& out_shape = plan_.output_shape;
    const int rank = static_cast<int>(out_shape.size());
    const int64_t total = NumElements(out_shape);
    const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
    std::vector<int64_t> index(rank, 0);
    for (int64_t o = 0; o < total; ++o) {
      int64_t src = 0;
      for (int d = 0; d < rank; ++d) src += plan_.index_maps[d][index[d]] * in_strides[d];
      CopyElement(x.raw_data(), src, y.raw_data(), o, size);
      for (int d = rank - 1; d >= 0; --d) {
        if (++index[d] < out_shape[d]) break;
        index[d] = 0;
      }
    }
    return absl::OkStatus();
  }

 private:
  ResizeParams params_;
  ResizePlan plan_;
};

// Values of optional constant input `index`; absent (nullopt-like: has=false) when the input is
// not given or has no elements.
absl::Status ReadOptionalConstant(const KernelSpec& spec, int index, const char* name, bool* has,
                                  std::vector<double>* values) {
  *has = false;
  if (!HasInput(spec.inputs, index)) return absl::OkStatus();
  const TensorDesc& d = spec.inputs[index];
  if (IsFullyKnown(d.shape) && NumElements(d.shape) == 0) return absl::OkStatus();
  const Tensor* t = FindConstant(spec, index);
  if (t == nullptr) {
    return KernelError(spec, absl::StrCat("input '", name,
                                          "' must be a constant (its values decide the output "
                                          "shape)"));
  }
  if (t->num_elements() == 0) return absl::OkStatus();
  *has = true;
  *values = TensorToDoubles(*t);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ResizeParams> ParseResizeParams(const KernelSpec& spec) {
  ResizeParams p;
  auto mode = spec.attrs.GetString("mode", "nearest");
  auto ctm = spec.attrs.GetString("coordinate_transformation_mode", "half_pixel");
  auto nearest = spec.attrs.GetString("nearest_mode", "round_prefer_floor");
  auto axes = spec.attrs.GetInts("axes", {});
  auto policy = spec.attrs.GetString("keep_aspect_ratio_policy", "stretch");
  for (const absl::Status& s :
       {mode.status(), ctm.status(), nearest.status(), axes.status(), policy.status()}) {
    if (!s.ok()) return KernelError(spec, std::string(s.message()));
  }
  if (*mode != "nearest") {
    return KernelError(spec, absl::StrCat("unsupported Resize mode '", *mode,
                                          "' (only 'nearest' is supported)"));
  }
  if (*ctm != "half_pixel" && *ctm != "asymmetric" && *ctm != "align_corners" &&
      *ctm != "pytorch_half_pixel" && *ctm != "tf_half_pixel_for_nn") {
    return KernelError(spec, absl::StrCat("unsupported coordinate_transformation_mode '", *ctm,
                                          "' (supported: half_pixel, asymmetric, align_corners, "
                                          "pytorch_half_pixel, tf_half_pixel_for_nn)"));
  }
  if (*nearest != "round_prefer_floor" && *nearest != "round_prefer_ceil" &&
      *nearest != "floor" && *nearest != "ceil") {
    return KernelError(spec, absl::StrCat("unsupported nearest_mode '", *nearest,
                                          "' (supported: round_prefer_floor, round_prefer_ceil, "
                                          "floor, ceil)"));
  }
  if (*policy != "stretch") {
    return KernelError(spec, absl::StrCat("unsupported keep_aspect_ratio_policy '", *policy,
                                          "' (only 'stretch' is supported)"));
  }
  p.coordinate_mode = *ctm;
  p.nearest_mode = *nearest;
  p.axes = *axes;
  if (!HasInput(spec.inputs, 0)) return KernelError(spec, "input X is missing");
  if (spec.inputs.size() > 4) {
    return KernelError(spec, absl::StrCat("expects at most 4 inputs, got ", spec.inputs.size()));
  }
  bool has_scales = false, has_sizes = false;
  std::vector<double> scales, sizes;
  YP_RETURN_IF_ERROR(ReadOptionalConstant(spec, 2, "scales", &has_scales, &scales));
  YP_RETURN_IF_ERROR(ReadOptionalConstant(spec, 3, "sizes", &has_sizes, &sizes));
  if (has_scales == has_sizes) {
    return KernelError(spec, has_scales ? "both scales and sizes are given; give exactly one"
                                        : "neither scales nor sizes is given; give exactly one");
  }
  if (has_scales) {
    if (spec.inputs[2].dtype != DType::kFloat32 && spec.inputs[2].dtype != DType::kFloat64) {
      return KernelError(spec, absl::StrCat("scales must be float, got ",
                                            DescString(spec.inputs[2])));
    }
    for (double s : scales) {
      if (!(s > 0.0)) {
        return KernelError(spec, absl::StrCat("scales must be > 0, got ", s));
      }
      p.scales.push_back(static_cast<float>(s));
    }
  } else {
    if (spec.inputs[3].dtype != DType::kInt64 && spec.inputs[3].dtype != DType::kInt32) {
      return KernelError(spec, absl::StrCat("sizes must be int64, got ",
                                            DescString(spec.inputs[3])));
    }
    for (double s : sizes) {
      if (s < 1) return KernelError(spec, absl::StrCat("sizes must be >= 1, got ", s));
      p.sizes.push_back(static_cast<int64_t>(s));
    }
  }
  return p;
}

int64_t NearestSourceIndex(const std::string& coordinate_mode, const std::string& nearest_mode,
                           int64_t out_index, int64_t in_size, int64_t out_size, float scale) {
  const float o = static_cast<float>(out_index);
  float x = 0.0f;
  if (coordinate_mode == "half_pixel") {
    x = (o + 0.5f) / scale - 0.5f;
  } else if (coordinate_mode == "pytorch_half_pixel") {
    x = out_size > 1 ? (o + 0.5f) / scale - 0.5f : 0.0f;
  } else if (coordinate_mode == "align_corners") {
    x = out_size == 1 ? 0.0f
                      : o * static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1);
  } else if (coordinate_mode == "tf_half_pixel_for_nn") {
    x = (o + 0.5f) / scale;
  } else {  // asymmetric
    x = o / scale;
  }
  const float fl = std::floor(x);
  float r = 0.0f;
  if (nearest_mode == "floor") {
    r = fl;
  } else if (nearest_mode == "ceil") {
    r = std::ceil(x);
  } else if (x == fl + 0.5f) {  // exactly halfway
    r = nearest_mode == "round_prefer_ceil" ? fl + 1.0f : fl;
  } else {
    r = std::round(x);
  }
  int64_t i = static_cast<int64_t>(r);
  return std::clamp<int64_t>(i, 0, in_size - 1);
}

absl::StatusOr<ResizePlan> PlanResize(const KernelSpec& spec, const ResizeParams& params,
                                      absl::Span<const TensorDesc> inputs) {
  YP_RETURN_IF_ERROR(CheckInputCount(spec, inputs, 1, 4));
  YP_RETURN_IF_ERROR(CheckKnown(spec, inputs));
  const TensorDesc& x = inputs[0];
  const int rank = static_cast<int>(x.shape.size());
  std::vector<int> axes;
  if (params.axes.empty()) {
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  } else {
    for (int64_t a : params.axes) {
      YP_ASSIGN_OR_RETURN(int axis, NormalizeAxis(spec, a, rank, "axes entry"));
      if (std::find(axes.begin(), axes.end(), axis) != axes.end()) {
        return KernelError(spec, absl::StrCat("axes ", IntsString(params.axes),
                                              " repeats axis ", axis));
      }
      axes.push_back(axis);
    }
  }
  const size_t given = params.scales.empty() ? params.sizes.size() : params.scales.size();
  if (given != axes.size()) {
    return KernelError(spec, absl::StrCat(params.scales.empty() ? "sizes" : "scales", " has ",
                                          given, " entries but X ", DescString(x), " needs ",
                                          axes.size()));
  }
  ResizePlan plan;
  plan.output_shape = x.shape;
  std::vector<float> scale(rank, 1.0f);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int d = axes[i];
    const int64_t in = x.shape[d];
    int64_t out = 0;
    if (!params.scales.empty()) {
      scale[d] = params.scales[i];
      out = static_cast<int64_t>(std::floor(static_cast<double>(in) * params.scales[i]));
    } else {
      out = params.sizes[i];
      scale[d] = in > 0 ? static_cast<float>(out) / static_cast<float>(in) : 1.0f;
    }
    if (out < 1 && in > 0) {
      return KernelError(spec, absl::StrCat("output dimension ", d, " of X ", DescString(x),
                                            " would be empty (scale ", scale[d], ")"));
    }
    plan.output_shape[d] = out;
  }
  plan.index_maps.resize(rank);
  for (int d = 0; d < rank; ++d) {
    const int64_t in = x.shape[d];
    const int64_t out = plan.output_shape[d];
    plan.index_maps[d].resize(out);
    for (int64_t o = 0; o < out; ++o) {
      plan.index_maps[d][o] =
          in == out && scale[d] == 1.0f
              ? o
              : NearestSourceIndex(params.coordinate_mode, params.nearest_mode, o, in, out,
                                   scale[d]);
    }
  }
  return plan;
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceResize(const KernelSpec& spec) {
  return CreateValidatedKernel<ResizeKernel>(spec);
}

YP_REGISTER_KERNEL(RefResize, "Resize", Backend::kReference, CreateReferenceResize);

}  // namespace yolopipe::ops
