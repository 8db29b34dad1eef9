// Reference Slice (Backend::kReference), any dtype (pure data movement), ONNX semantics:
// opset 10+ takes starts, ends, axes (optional) and steps (optional) as inputs, which must be
// constants; opset 1-9 takes starts, ends, axes as attributes. Negative starts/ends count from the
// end; values are clamped to the dimension (so INT64_MAX means "to the end"); negative steps walk
// backwards; step 0 and repeated axes are rejected.
#ifndef YOLOPIPE_OPS_REFERENCE_SLICE_H_
#define YOLOPIPE_OPS_REFERENCE_SLICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSlice(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_SLICE_H_
