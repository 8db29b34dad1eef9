// Parts of device_memory.h that need no CUDA calls; compiled in every build. The CUDA calls are in
// device_memory_cuda.cc (--config=cuda) or device_memory_stub.cc.
#include "runtime/cuda/device_memory.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace yolopipe {

absl::Status ArenaOffsets::CheckRange(size_t offset, size_t bytes) const {
  if (offset % kDeviceArenaAlignment != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "arena offset ", offset, " is not a multiple of ", kDeviceArenaAlignment, " bytes"));
  }
  if (offset > capacity_bytes_ || bytes > capacity_bytes_ - offset) {
    return absl::InvalidArgumentError(absl::StrCat("arena range [", offset, ", +", bytes,
                                                   " bytes) exceeds the capacity of ",
                                                   capacity_bytes_, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> ArenaOffsets::Reserve(size_t bytes) {
  const size_t offset = AlignToArena(used_bytes_);
  if (offset > capacity_bytes_ || bytes > capacity_bytes_ - offset) {
    return absl::ResourceExhaustedError(absl::StrCat("arena of ", capacity_bytes_,
                                                     " bytes cannot fit ", bytes, " more bytes (",
                                                     used_bytes_, " used)"));
  }
  used_bytes_ = offset + bytes;
  return offset;
}

absl::StatusOr<DeviceArena> DeviceArena::Create(size_t capacity_bytes, int device) {
  const size_t capacity = AlignToArena(capacity_bytes);
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(capacity, device);
  if (!buffer.ok()) return buffer.status();
  DeviceArena arena;
  arena.buffer_ = std::move(buffer).value();
  arena.offsets_ = ArenaOffsets(capacity);
  return arena;
}

absl::StatusOr<void*> DeviceArena::At(size_t offset, size_t bytes) const {
  if (auto s = offsets_.CheckRange(offset, bytes); !s.ok()) return s;
  return static_cast<void*>(static_cast<char*>(buffer_.data()) + offset);
}

absl::StatusOr<void*> DeviceArena::Allocate(size_t bytes) {
  absl::StatusOr<size_t> offset = offsets_.Reserve(bytes);
  if (!offset.ok()) return offset.status();
  return static_cast<void*>(static_cast<char*>(buffer_.data()) + *offset);
}

}  // namespace yolopipe
