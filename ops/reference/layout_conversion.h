// LayoutConversion: an internal (non-ONNX) op that the runtime inserts where a 4-D float32
// activation must change its physical layout between kPlain (N, C, H, W row-major) and kNHWC
// (channels-last). The logical shape never changes.
//
// Contract:
//  - one input, 4-D float32, with a fully known shape; one output of the same shape.
//  - string attribute "to": "nhwc" or "plain" (required), the output layout.
//  - the input must arrive in the other layout (KernelSpec::inputs[0].layout); converting a tensor
//    to the layout it already has is rejected, since the runtime should not have asked for it.
//  - Reshape returns the input description with layout = "to".
// The reference kernel (Backend::kReference) is a plain element loop (ConvertLayoutInto); the
// kCpu kernel (ops/cpu/layout_conversion.h) must match it bitwise.
#ifndef YOLOPIPE_OPS_REFERENCE_LAYOUT_CONVERSION_H_
#define YOLOPIPE_OPS_REFERENCE_LAYOUT_CONVERSION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/tensor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

// The op type under which both kernels are registered.
inline constexpr char kLayoutConversionOp[] = "LayoutConversion";

// The target layout named by `spec`'s "to" attribute; InvalidArgument naming the node when the
// attribute is missing, not a string, or neither "nhwc" nor "plain".
absl::StatusOr<Layout> LayoutConversionTarget(const KernelSpec& spec);

// The output description for converting `inputs` to `target`, with the checks listed above
// (shared by every backend so that they reject the same inputs with the same messages).
absl::StatusOr<TensorDesc> LayoutConversionOutput(const KernelSpec& spec, Layout target,
                                                  absl::Span<const TensorDesc> inputs);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceLayoutConversion(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_LAYOUT_CONVERSION_H_
