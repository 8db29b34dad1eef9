// Reference kernels that generate tensors from constants (Backend::kReference):
//   Range            start, limit, delta: scalar constants of one dtype (float32, float64, int64,
//                    int32); output 1-D of max(ceil((limit - start) / delta), 0) elements
//                    start + i * delta; delta 0 is rejected.
//   ConstantOfShape  input: constant int64 1-D shape (non-negative; empty = scalar); attribute
//                    value: a one-element Tensor (default float32 0) giving dtype and fill value.
#ifndef YOLOPIPE_OPS_REFERENCE_GENERATORS_H_
#define YOLOPIPE_OPS_REFERENCE_GENERATORS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceRange(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceConstantOfShape(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_GENERATORS_H_
