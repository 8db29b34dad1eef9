#include "ops/reference/layout_conversion.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class LayoutConversionKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(target_, LayoutConversionTarget(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(TensorDesc out, LayoutConversionOutput(spec_, target_, inputs));
    return std::vector<TensorDesc>{out};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (inputs[0].layout() == outputs[0].layout()) {
      return Error(absl::StrCat("input ", inputs[0].DebugString(), " is already ",
                                LayoutName(outputs[0].layout())));
    }
    ConvertLayoutInto(inputs[0], outputs[0]);
    return absl::OkStatus();
  }

 private:
  Layout target_ = Layout::kNHWC;
};

}  // namespace

absl::StatusOr<Layout> LayoutConversionTarget(const KernelSpec& spec) {
  if (!spec.attrs.Has("to")) {
    return KernelError(spec, "attribute 'to' is required (\"nhwc\" or \"plain\")");
  }
  auto to = spec.attrs.GetString("to", "");
  if (!to.ok()) return KernelError(spec, std::string(to.status().message()));
  if (*to == "nhwc") return Layout::kNHWC;
  if (*to == "plain") return Layout::kPlain;
  return KernelError(spec, absl::StrCat("attribute 'to' must be \"nhwc\" or \"plain\", got \"",
                                        *to, "\""));
}

absl::StatusOr<TensorDesc> LayoutConversionOutput(const KernelSpec& spec, Layout target,
                                                  absl::Span<const TensorDesc> inputs) {
  YP_RETURN_IF_ERROR(CheckInputCount(spec, inputs, 1, 1));
  YP_RETURN_IF_ERROR(CheckKnown(spec, inputs));
  const TensorDesc& x = inputs[0];
  if (x.dtype != DType::kFloat32 || x.shape.size() != 4) {
    return KernelError(spec, absl::StrCat("input must be a 4-D float32 tensor, got ",
                                          DescString(x)));
  }
  if (x.layout == target) {
    return KernelError(spec, absl::StrCat("input ", DescString(x), " is already in layout ",
                                          LayoutName(target), "; nothing to convert"));
  }
  TensorDesc out = x;
  out.layout = target;
  return out;
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceLayoutConversion(const KernelSpec& spec) {
  return CreateValidatedKernel<LayoutConversionKernel>(spec);
}

YP_REGISTER_KERNEL(RefLayoutConversion, kLayoutConversionOp, Backend::kReference,
                   CreateReferenceLayoutConversion);

}  // namespace yolopipe::ops
