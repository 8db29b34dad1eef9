// CUDA and cuDNN return codes as absl::Status, usable from plain C++ (no CUDA headers here: codes
// travel as int). Built with real error names under --config=cuda; the default build has a stub
// whose BuiltWithCuda() is false.
#ifndef YOLOPIPE_OPS_CUDA_CUDA_STATUS_H_
#define YOLOPIPE_OPS_CUDA_CUDA_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace yolopipe::ops::cuda {

// True when this binary was built with --config=cuda (CUDA calls are compiled in).
bool BuiltWithCuda();

// FailedPrecondition("<what>: built without CUDA support (build with --config=cuda)").
absl::Status NotBuiltWithCudaError(absl::string_view what);

// `error` is a cudaError_t. OK for cudaSuccess; otherwise "<call> failed: <cudaErrorName>
// (<description>)". No device, no or stub driver, or an initialisation error give
// FailedPrecondition (the machine has no usable GPU); out of memory gives ResourceExhausted; an
// invalid device ordinal InvalidArgument; anything else Internal. In the CUDA build it also resets
// the calling thread's last-error state (cudaGetLastError), so a reported failure is not reported
// twice.
absl::Status CudaErrorToStatus(int error, absl::string_view call);

// `status` is a cudnnStatus_t. OK for CUDNN_STATUS_SUCCESS; otherwise "<call> failed:
// <CUDNN_STATUS_...> (<message>)". NOT_SUPPORTED* gives Unimplemented, BAD_PARAM* InvalidArgument,
// allocation failures ResourceExhausted, anything else Internal.
absl::Status CudnnErrorToStatus(int status, absl::string_view call);

}  // namespace yolopipe::ops::cuda

// Returns a Status from the enclosing function when a CUDA runtime call (`expr` evaluates to a
// cudaError_t) fails. The message carries the expression text.
#define YP_CUDA_RETURN_IF_ERROR(expr)                                         \
  do {                                                                        \
    const int yp_cuda_error_ = static_cast<int>(expr);                        \
    if (yp_cuda_error_ != 0) {                                                \
      return ::yolopipe::ops::cuda::CudaErrorToStatus(yp_cuda_error_, #expr); \
    }                                                                         \
  } while (0)

// Same for cuDNN calls (`expr` evaluates to a cudnnStatus_t).
#define YP_CUDNN_RETURN_IF_ERROR(expr)                                           \
  do {                                                                           \
    const int yp_cudnn_status_ = static_cast<int>(expr);                         \
    if (yp_cudnn_status_ != 0) {                                                 \
      return ::yolopipe::ops::cuda::CudnnErrorToStatus(yp_cudnn_status_, #expr); \
    }                                                                            \
  } while (0)

#endif  // YOLOPIPE_OPS_CUDA_CUDA_STATUS_H_
