// Default build (no --config=cuda): nothing can be allocated or copied.
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/device_memory.h"

namespace yolopipe {

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t, int) {
  return NotBuiltWithCudaError("DeviceBuffer::Allocate");
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&&) noexcept { return *this; }
DeviceBuffer::~DeviceBuffer() = default;
void DeviceBuffer::Free() {}

absl::StatusOr<PinnedHostBuffer> PinnedHostBuffer::Allocate(size_t) {
  return NotBuiltWithCudaError("PinnedHostBuffer::Allocate");
}
PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&&) noexcept { return *this; }
PinnedHostBuffer::~PinnedHostBuffer() = default;
void PinnedHostBuffer::Free() {}

absl::Status CopyHostToDeviceAsync(void*, const void*, size_t, const CudaStream&) {
  return NotBuiltWithCudaError("CopyHostToDeviceAsync");
}
absl::Status CopyDeviceToHostAsync(void*, const void*, size_t, const CudaStream&) {
  return NotBuiltWithCudaError("CopyDeviceToHostAsync");
}
absl::Status CopyDeviceToDeviceAsync(void*, const void*, size_t, const CudaStream&) {
  return NotBuiltWithCudaError("CopyDeviceToDeviceAsync");
}
absl::Status MemsetDeviceAsync(void*, int, size_t, const CudaStream&) {
  return NotBuiltWithCudaError("MemsetDeviceAsync");
}

}  // namespace yolopipe
