// Reference Transpose (Backend::kReference), any dtype: attribute perm (a permutation of
// 0..rank-1; default: reversed axes). Output dimension i is input dimension perm[i].
#ifndef YOLOPIPE_OPS_REFERENCE_TRANSPOSE_H_
#define YOLOPIPE_OPS_REFERENCE_TRANSPOSE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceTranspose(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_TRANSPOSE_H_
