// Reference 2-D convolution (Backend::kReference), ONNX Conv semantics plus the yolopipe fusion
// extension:
//   inputs   X (N, C, H, W) float32, W (M, C/group, kH, kW), optional B (M,),
//            optional 4th input `residual` (N, M, OH, OW) — yolopipe extension
//   attrs    kernel_shape, strides, pads [top, left, bottom, right], dilations, group,
//            auto_pad (NOTSET, SAME_UPPER, SAME_LOWER, VALID),
//            activation (yolopipe extension: "" or "none", or "silu" = x * sigmoid(x))
//   output   Y = act(conv(X, W) + B) + residual
// Only 2-D convolution (4-D X and W) is supported; other ranks are rejected. The geometry helpers
// below are shared with the optimized kernels in ops/cpu so that both validate identically.
#ifndef YOLOPIPE_OPS_REFERENCE_CONV_H_
#define YOLOPIPE_OPS_REFERENCE_CONV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/dtype.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

enum class ConvActivation { kNone, kSilu };

// Conv attributes after validation (independent of input shapes).
struct ConvParams {
  std::vector<int64_t> kernel_shape;  // empty: taken from W
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::string auto_pad = "NOTSET";
  int64_t group = 1;
  ConvActivation activation = ConvActivation::kNone;
};

// Everything a convolution needs to know about its shapes (explicit pads, auto_pad resolved).
struct ConvGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t m = 0, kh = 0, kw = 0;       // output channels and kernel
  int64_t group = 1;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t oh = 0, ow = 0;  // output
  bool has_bias = false;
  bool has_residual = false;

  Shape output_shape() const { return {n, m, oh, ow}; }
  // 2 x multiply-accumulates.
  double flops() const {
    return 2.0 * static_cast<double>(n * m * oh * ow) * static_cast<double>((c / group) * kh * kw);
  }
};

// Parses and checks attributes (lengths of strides/pads/dilations/kernel_shape, positivity,
// group >= 1, known auto_pad and activation).
absl::StatusOr<ConvParams> ParseConvParams(const KernelSpec& spec);

// Checks input count, dtypes (float32), ranks, the channel relation C == W[1] * group,
// M % group == 0, kernel_shape against W, B of shape (M,), residual of the output shape, and
// that the window fits. Layouts are not checked here.
absl::StatusOr<ConvGeometry> ComputeConvGeometry(const KernelSpec& spec, const ConvParams& params,
                                                 absl::Span<const TensorDesc> inputs);

// Straightforward direct convolution on plain NCHW data. bias and residual may be null.
void ReferenceConv2D(const ConvGeometry& g, ConvActivation activation, const float* x,
                     const float* w, const float* bias, const float* residual, float* y);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceConv(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_CONV_H_
