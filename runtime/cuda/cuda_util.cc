// --config=cuda build.
#include "runtime/cuda/cuda_util.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"

namespace yolopipe {

absl::StatusOr<int> CudaDeviceCount() {
  int count = 0;
  YP_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count));
  return count;
}

absl::StatusOr<int> CurrentCudaDevice() {
  int device = 0;
  YP_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  return device;
}

absl::Status SetCudaDevice(int device) {
  if (device < 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CUDA device ordinal ", device));
  }
  YP_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  return absl::OkStatus();
}

absl::Status SynchronizeCudaDevice() {
  YP_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return absl::OkStatus();
}

ScopedCudaDevice::ScopedCudaDevice(int device) {
  absl::StatusOr<int> previous = CurrentCudaDevice();
  if (!previous.ok()) {
    status_ = previous.status();
    return;
  }
  if (*previous == device) return;
  status_ = SetCudaDevice(device);
  if (status_.ok()) previous_ = *previous;
}

ScopedCudaDevice::~ScopedCudaDevice() {
  // Restoring a device that was current a moment ago cannot fail in practice; a destructor has
  // nowhere to report it anyway.
  if (previous_ >= 0) cudaSetDevice(previous_);
}

}  // namespace yolopipe
