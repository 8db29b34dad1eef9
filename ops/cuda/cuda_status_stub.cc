// Default build (no --config=cuda): there are no CUDA calls, so codes are reported by number.
#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_status.h"

namespace yolopipe::ops::cuda {

bool BuiltWithCuda() { return false; }

absl::Status NotBuiltWithCudaError(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": built without CUDA support (build with --config=cuda)"));
}

absl::Status CudaErrorToStatus(int error, absl::string_view call) {
  if (error == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(call, " failed: CUDA error ", error));
}

absl::Status CudnnErrorToStatus(int status, absl::string_view call) {
  if (status == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(call, " failed: cuDNN status ", status));
}

}  // namespace yolopipe::ops::cuda
