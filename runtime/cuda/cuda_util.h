// Status helpers for CUDA runtime code, usable from plain C++ (no CUDA headers needed).
//
// The error conversion itself lives in ops/cuda/cuda_status.h (ops code cannot include runtime/)
// and is re-exported here: CudaErrorToStatus, CudnnErrorToStatus, YP_CUDA_RETURN_IF_ERROR,
// YP_CUDNN_RETURN_IF_ERROR, BuiltWithCuda, NotBuiltWithCudaError. In a build without
// --config=cuda every function below returns FailedPrecondition("... built without CUDA support").
#ifndef YOLOPIPE_RUNTIME_CUDA_CUDA_UTIL_H_
#define YOLOPIPE_RUNTIME_CUDA_CUDA_UTIL_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ops/cuda/cuda_status.h"

namespace yolopipe {

using ops::cuda::BuiltWithCuda;
using ops::cuda::CudaErrorToStatus;
using ops::cuda::CudnnErrorToStatus;
using ops::cuda::NotBuiltWithCudaError;

// Number of visible CUDA devices (0 is an OK answer only if the driver says so; a machine without
// a driver gives FailedPrecondition).
absl::StatusOr<int> CudaDeviceCount();

// The calling thread's current device.
absl::StatusOr<int> CurrentCudaDevice();

// Makes `device` current for the calling thread.
absl::Status SetCudaDevice(int device);

// Waits for all work on the current device (cudaDeviceSynchronize); reports asynchronous errors
// of earlier kernels.
absl::Status SynchronizeCudaDevice();

// Makes `device` current for this object's lifetime and restores the previous current device in
// the destructor. Check status() after construction: when it is not OK nothing was changed.
// Not copyable; use on one thread.
class ScopedCudaDevice {
 public:
  explicit ScopedCudaDevice(int device);
  ~ScopedCudaDevice();
  ScopedCudaDevice(const ScopedCudaDevice&) = delete;
  ScopedCudaDevice& operator=(const ScopedCudaDevice&) = delete;

  const absl::Status& status() const { return status_; }

 private:
  int previous_ = -1;  // -1: nothing to restore
  absl::Status status_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_CUDA_UTIL_H_
