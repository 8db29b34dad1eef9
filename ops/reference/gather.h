// Reference Gather (Backend::kReference), ONNX semantics: data of any dtype, indices int64 or
// int32 of any rank (negative indices count from the end), attribute axis (default 0).
// Output shape = data.shape[:axis] + indices.shape + data.shape[axis+1:]. Out-of-range indices
// fail at create/Reshape when the indices are a constant, otherwise at Run.
#ifndef YOLOPIPE_OPS_REFERENCE_GATHER_H_
#define YOLOPIPE_OPS_REFERENCE_GATHER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceGather(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_GATHER_H_
