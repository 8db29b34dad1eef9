// Device and pinned host memory as RAII objects returning absl::Status, async copies on a
// CudaStream, and DeviceArena: one device allocation carved into 256-byte aligned pieces at
// offsets given by the static memory plan. Plain C++: no CUDA headers needed to include this.
//
// In a build without --config=cuda, allocations and copies return FailedPrecondition("... built
// without CUDA support"); ArenaOffsets (pure host arithmetic) works everywhere.
//
// Ownership: buffers own their memory and free it in the destructor; they are move-only and a
// moved-from buffer is empty (data() == nullptr). Thread-safety: none of these objects is
// synchronised; share them across threads only with external ordering.
#ifndef YOLOPIPE_RUNTIME_CUDA_DEVICE_MEMORY_H_
#define YOLOPIPE_RUNTIME_CUDA_DEVICE_MEMORY_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {

// Alignment of every DeviceArena offset (cudaMalloc itself returns at least 256-byte alignment,
// which vectorised kernels and cuDNN expect).
inline constexpr size_t kDeviceArenaAlignment = 256;

// `bytes` rounded up to a multiple of kDeviceArenaAlignment.
constexpr size_t AlignToArena(size_t bytes) {
  return (bytes + kDeviceArenaAlignment - 1) / kDeviceArenaAlignment * kDeviceArenaAlignment;
}

// cudaMalloc'd device memory.
class DeviceBuffer {
 public:
  // `bytes` on `device`; 0 bytes gives an empty buffer. The current device is left unchanged.
  // ResourceExhausted when the device is out of memory.
  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes, int device = 0);

  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = static_cast<DeviceBuffer&&>(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }
  int device() const { return device_; }

 private:
  void Free();

  void* data_ = nullptr;
  size_t size_bytes_ = 0;
  int device_ = -1;
};

// Page-locked host memory (cudaMallocHost): async copies from/to it overlap with compute.
class PinnedHostBuffer {
 public:
  static absl::StatusOr<PinnedHostBuffer> Allocate(size_t bytes);

  PinnedHostBuffer() = default;
  PinnedHostBuffer(PinnedHostBuffer&& other) noexcept {
    *this = static_cast<PinnedHostBuffer&&>(other);
  }
  PinnedHostBuffer& operator=(PinnedHostBuffer&& other) noexcept;
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;
  ~PinnedHostBuffer();

  void* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }

 private:
  void Free();

  void* data_ = nullptr;
  size_t size_bytes_ = 0;
};

// Enqueue `bytes` of copy on `stream` (cudaMemcpyAsync). Copies from or to pageable host memory
// work but do not overlap with the host; use PinnedHostBuffer for that. The source must stay
// alive and unchanged until the stream reaches the copy. Null pointers with bytes > 0 or an empty
// stream give InvalidArgument / FailedPrecondition.
absl::Status CopyHostToDeviceAsync(void* device_dst, const void* host_src, size_t bytes,
                                   const CudaStream& stream);
absl::Status CopyDeviceToHostAsync(void* host_dst, const void* device_src, size_t bytes,
                                   const CudaStream& stream);
absl::Status CopyDeviceToDeviceAsync(void* device_dst, const void* device_src, size_t bytes,
                                     const CudaStream& stream);
// Sets `bytes` bytes at `device_dst` to `byte_value` (cudaMemsetAsync).
absl::Status MemsetDeviceAsync(void* device_dst, int byte_value, size_t bytes,
                               const CudaStream& stream);

// Offset bookkeeping of an arena of `capacity_bytes`: validates planned ranges and bump-allocates
// aligned ones. Pure host arithmetic; no device calls.
class ArenaOffsets {
 public:
  explicit ArenaOffsets(size_t capacity_bytes = 0) : capacity_bytes_(capacity_bytes) {}

  // OK when [offset, offset + bytes) lies inside the arena and offset is a multiple of
  // kDeviceArenaAlignment; InvalidArgument otherwise (also on overflow).
  absl::Status CheckRange(size_t offset, size_t bytes) const;
  // The next aligned offset with room for `bytes` (which then count as used);
  // ResourceExhausted when they do not fit.
  absl::StatusOr<size_t> Reserve(size_t bytes);
  // Forgets all Reserve()d ranges.
  void Reset() { used_bytes_ = 0; }

  size_t capacity_bytes() const { return capacity_bytes_; }
  size_t used_bytes() const { return used_bytes_; }

 private:
  size_t capacity_bytes_ = 0;
  size_t used_bytes_ = 0;
};

// One device allocation for a stage's activations and workspaces. The memory planner assigns
// offsets and calls At(); code without a plan can Allocate() from the unplanned tail. Mixing both
// is the caller's responsibility (Allocate does not know the planned ranges).
class DeviceArena {
 public:
  // capacity_bytes is rounded up to kDeviceArenaAlignment.
  static absl::StatusOr<DeviceArena> Create(size_t capacity_bytes, int device = 0);

  DeviceArena() = default;
  // A moved-from arena is empty (capacity 0).
  DeviceArena(DeviceArena&& other) noexcept { *this = static_cast<DeviceArena&&>(other); }
  DeviceArena& operator=(DeviceArena&& other) noexcept {
    if (this != &other) {
      buffer_ = static_cast<DeviceBuffer&&>(other.buffer_);
      offsets_ = other.offsets_;
      other.offsets_ = ArenaOffsets();
    }
    return *this;
  }

  // Device address of the planned range [offset, offset + bytes); ArenaOffsets::CheckRange errors.
  absl::StatusOr<void*> At(size_t offset, size_t bytes) const;
  // Bump allocation (ArenaOffsets::Reserve) returning the device address.
  absl::StatusOr<void*> Allocate(size_t bytes);
  // Forgets Allocate()d ranges; the memory stays allocated.
  void Reset() { offsets_.Reset(); }

  void* base() const { return buffer_.data(); }
  size_t capacity_bytes() const { return offsets_.capacity_bytes(); }
  size_t used_bytes() const { return offsets_.used_bytes(); }
  int device() const { return buffer_.device(); }

 private:
  DeviceBuffer buffer_;
  ArenaOffsets offsets_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_DEVICE_MEMORY_H_
