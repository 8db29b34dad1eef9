// Host-side shape arithmetic and argument checks, compiled in every build. The cuDNN part is in
// conv_cudnn.cc (--config=cuda) or conv_stub.cc.
#include "ops/cuda/conv.h"

#include "absl/strings/str_cat.h"

namespace yolopipe::ops::cuda {

std::string ConvParams::ToString() const {
  return absl::StrCat(DTypeName(dtype), " x(n=", n, ", h=", h, ", w=", w, ", c=", c_in,
                      ") -> c_out=", c_out, ", kernel ", kernel_h, "x", kernel_w, ", stride ",
                      stride_h, "x", stride_w, ", pad ", pad_h, "x", pad_w, ", dilation ",
                      dilation_h, "x", dilation_w, ", groups ", groups);
}

absl::StatusOr<NhwcShape> ConvOutputShape(const ConvParams& p) {
  if (auto s = CheckActivationDType(p.dtype, "Conv"); !s.ok()) return s;
  if (p.n < 1 || p.h < 1 || p.w < 1 || p.c_in < 1 || p.c_out < 1 || p.kernel_h < 1 ||
      p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 || p.dilation_w < 1 ||
      p.pad_h < 0 || p.pad_w < 0 || p.groups < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Conv: sizes, kernel, stride, dilation and groups must be >= 1 and padding >= 0: ",
        p.ToString()));
  }
  if (p.c_in % p.groups != 0 || p.c_out % p.groups != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Conv: channels are not divisible by groups: ", p.ToString()));
  }
  const int64_t span_h = p.h + 2 * p.pad_h - p.dilation_h * (p.kernel_h - 1) - 1;
  const int64_t span_w = p.w + 2 * p.pad_w - p.dilation_w * (p.kernel_w - 1) - 1;
  if (span_h < 0 || span_w < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Conv: kernel is larger than the padded input: ", p.ToString()));
  }
  return NhwcShape{p.n, span_h / p.stride_h + 1, span_w / p.stride_w + 1, p.c_out};
}

absl::Status ValidateConvCall(const ConvParams& params, const void* x, const void* w,
                              const ConvEpilogueParams& epilogue, const ChannelSlice& y) {
  absl::StatusOr<NhwcShape> out = ConvOutputShape(params);
  if (!out.ok()) return out.status();
  if (x == nullptr || w == nullptr || y.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("Conv: x, w and y must be non-null: ", params.ToString()));
  }
  if (y.offset < 0 || y.offset + params.c_out > y.channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Conv: output slice [", y.offset, ", ", y.offset + params.c_out,
        ") does not fit an output with ", y.channels, " channels per pixel: ", params.ToString()));
  }
  const ConstChannelSlice& r = epilogue.residual;
  if (r.data != nullptr && (r.offset < 0 || r.offset + params.c_out > r.channels)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Conv: residual slice [", r.offset, ", ", r.offset + params.c_out,
        ") does not fit a residual with ", r.channels, " channels per pixel: ", params.ToString()));
  }
  if (params.allow_tf32 && params.dtype != DType::kFloat32) {
    return absl::InvalidArgumentError(
        absl::StrCat("Conv: allow_tf32 applies to float32 only: ", params.ToString()));
  }
  return absl::OkStatus();
}

bool ConvWritesInPlace(const ConvParams& params, const ChannelSlice& y) {
  return y.channels == params.c_out && y.offset == 0;
}

}  // namespace yolopipe::ops::cuda
