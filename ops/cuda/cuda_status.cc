// --config=cuda build: error names and descriptions come from the CUDA runtime and cuDNN.
#include "ops/cuda/cuda_status.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "absl/strings/str_cat.h"

namespace yolopipe::ops::cuda {

bool BuiltWithCuda() { return true; }

absl::Status NotBuiltWithCudaError(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": built without CUDA support (build with --config=cuda)"));
}

absl::Status CudaErrorToStatus(int error, absl::string_view call) {
  if (error == 0) return absl::OkStatus();
  const auto code = static_cast<cudaError_t>(error);
  // Reset the thread's last-error state: a failed call (e.g. an out-of-memory cudaMalloc) leaves
  // its non-sticky error there, and the next kernel launch check (cudaGetLastError) would
  // otherwise report it again as a launch failure. Sticky errors persist regardless.
  cudaGetLastError();
  const std::string message =
      absl::StrCat(call, " failed: ", cudaGetErrorName(code), " (", cudaGetErrorString(code), ")");
  switch (code) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorStubLibrary:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      return absl::FailedPreconditionError(message);
    case cudaErrorMemoryAllocation:
      return absl::ResourceExhaustedError(message);
    case cudaErrorInvalidDevice:  // an ordinal past the device count
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status CudnnErrorToStatus(int status, absl::string_view call) {
  if (status == 0) return absl::OkStatus();
  const auto code = static_cast<cudnnStatus_t>(status);
  char detail[512] = {0};
  // cudnnGetLastErrorString describes the most recent failure of this thread (cuDNN 9).
  cudnnGetLastErrorString(detail, sizeof(detail));
  std::string message = absl::StrCat(call, " failed: ", cudnnGetErrorString(code));
  if (detail[0] != '\0') absl::StrAppend(&message, " (", detail, ")");
  // cuDNN 9 codes are grouped by thousands (2xxx bad parameter, 3xxx not supported, ...).
  if (status == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
      status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED) {
    return absl::ResourceExhaustedError(message);
  }
  switch (status / 1000) {
    case 2:
      return absl::InvalidArgumentError(message);
    case 3:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace yolopipe::ops::cuda
