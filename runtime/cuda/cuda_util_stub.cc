// Default build (no --config=cuda).
#include "runtime/cuda/cuda_util.h"

namespace yolopipe {

absl::StatusOr<int> CudaDeviceCount() { return NotBuiltWithCudaError("CudaDeviceCount"); }

absl::StatusOr<int> CurrentCudaDevice() { return NotBuiltWithCudaError("CurrentCudaDevice"); }

absl::Status SetCudaDevice(int) { return NotBuiltWithCudaError("SetCudaDevice"); }

absl::Status SynchronizeCudaDevice() { return NotBuiltWithCudaError("SynchronizeCudaDevice"); }

ScopedCudaDevice::ScopedCudaDevice(int) : status_(NotBuiltWithCudaError("ScopedCudaDevice")) {}

ScopedCudaDevice::~ScopedCudaDevice() = default;

}  // namespace yolopipe
