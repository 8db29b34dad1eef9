// --config=cuda build of the device_memory.h calls that touch the CUDA runtime.
#include <cuda_runtime_api.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/device_memory.h"

namespace yolopipe {
namespace {

absl::Status CheckCopyArgs(void* dst, const void* src, size_t bytes, const CudaStream& stream,
                           const char* what) {
  if (!stream.valid()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": the stream is empty"));
  }
  if (bytes > 0 && (dst == nullptr || src == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": null pointer for ", bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CopyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                       const CudaStream& stream, const char* what) {
  if (auto s = CheckCopyArgs(dst, src, bytes, stream, what); !s.ok()) return s;
  if (bytes == 0) return absl::OkStatus();
  YP_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(dst, src, bytes, kind, static_cast<cudaStream_t>(stream.handle())));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes, int device) {
  ScopedCudaDevice scope(device);
  if (!scope.status().ok()) return scope.status();
  DeviceBuffer buffer;
  buffer.device_ = device;
  if (bytes == 0) return buffer;
  void* data = nullptr;
  const cudaError_t error = cudaMalloc(&data, bytes);
  if (error != cudaSuccess) {
    return CudaErrorToStatus(error, absl::StrCat("cudaMalloc(", bytes, " bytes) on cuda:", device));
  }
  buffer.data_ = data;
  buffer.size_bytes_ = bytes;
  return buffer;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Free(); }

void DeviceBuffer::Free() {
  // cudaFree synchronises the device; a failure here (e.g. a sticky error from an earlier kernel)
  // cannot be reported from a destructor and was already visible to the stream's owner.
  if (data_ != nullptr) cudaFree(data_);
  data_ = nullptr;
  size_bytes_ = 0;
}

absl::StatusOr<PinnedHostBuffer> PinnedHostBuffer::Allocate(size_t bytes) {
  PinnedHostBuffer buffer;
  if (bytes == 0) return buffer;
  void* data = nullptr;
  const cudaError_t error = cudaMallocHost(&data, bytes);
  if (error != cudaSuccess) {
    return CudaErrorToStatus(error, absl::StrCat("cudaMallocHost(", bytes, " bytes)"));
  }
  buffer.data_ = data;
  buffer.size_bytes_ = bytes;
  return buffer;
}

PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

PinnedHostBuffer::~PinnedHostBuffer() { Free(); }

void PinnedHostBuffer::Free() {
  if (data_ != nullptr) cudaFreeHost(data_);
  data_ = nullptr;
  size_bytes_ = 0;
}

absl::Status CopyHostToDeviceAsync(void* device_dst, const void* host_src, size_t bytes,
                                   const CudaStream& stream) {
  return CopyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream,
                   "CopyHostToDeviceAsync");
}

absl::Status CopyDeviceToHostAsync(void* host_dst, const void* device_src, size_t bytes,
                                   const CudaStream& stream) {
  return CopyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream,
                   "CopyDeviceToHostAsync");
}

absl::Status CopyDeviceToDeviceAsync(void* device_dst, const void* device_src, size_t bytes,
                                     const CudaStream& stream) {
  return CopyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice, stream,
                   "CopyDeviceToDeviceAsync");
}

absl::Status MemsetDeviceAsync(void* device_dst, int byte_value, size_t bytes,
                               const CudaStream& stream) {
  if (auto s = CheckCopyArgs(device_dst, device_dst, bytes, stream, "MemsetDeviceAsync"); !s.ok()) {
    return s;
  }
  if (bytes == 0) return absl::OkStatus();
  YP_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(device_dst, byte_value, bytes, static_cast<cudaStream_t>(stream.handle())));
  return absl::OkStatus();
}

}  // namespace yolopipe
