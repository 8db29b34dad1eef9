#include "runtime/cuda/device_memory.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

static_assert(AlignToArena(0) == 0);
static_assert(AlignToArena(1) == 256);
static_assert(AlignToArena(256) == 256);
static_assert(AlignToArena(257) == 512);

TEST(ArenaOffsetsTest, ChecksPlannedRanges) {
  ArenaOffsets offsets(1024);
  EXPECT_TRUE(offsets.CheckRange(0, 1024).ok());
  EXPECT_TRUE(offsets.CheckRange(768, 256).ok());
  EXPECT_TRUE(offsets.CheckRange(1024, 0).ok());
  const absl::Status misaligned = offsets.CheckRange(100, 4);
  EXPECT_EQ(misaligned.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(misaligned.message()), HasSubstr("not a multiple of 256"));
  EXPECT_EQ(offsets.CheckRange(768, 257).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(offsets.CheckRange(1280, 0).code(), absl::StatusCode::kInvalidArgument);
  // offset + bytes would wrap around.
  EXPECT_EQ(offsets.CheckRange(256, std::numeric_limits<size_t>::max()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ArenaOffsetsTest, ReserveHandsOutAlignedOffsetsUntilFull) {
  ArenaOffsets offsets(1024);
  EXPECT_EQ(*offsets.Reserve(100), 0u);
  EXPECT_EQ(*offsets.Reserve(10), 256u);
  EXPECT_EQ(offsets.used_bytes(), 266u);
  EXPECT_EQ(*offsets.Reserve(512), 512u);
  EXPECT_EQ(offsets.used_bytes(), 1024u);
  const absl::StatusOr<size_t> full = offsets.Reserve(1);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("1024"));
  EXPECT_EQ(*offsets.Reserve(0), 1024u);  // an empty range at the end still fits
  offsets.Reset();
  EXPECT_EQ(offsets.used_bytes(), 0u);
  EXPECT_EQ(*offsets.Reserve(1024), 0u);
  EXPECT_EQ(offsets.Reserve(std::numeric_limits<size_t>::max()).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(DeviceMemoryTest, WithoutGpuEveryCallIsFailedPrecondition) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(DeviceBuffer::Allocate(1024).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PinnedHostBuffer::Allocate(1024).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(DeviceArena::Create(1024).status().code(), absl::StatusCode::kFailedPrecondition);
  CudaStream empty;
  char host[4] = {0};
  EXPECT_EQ(CopyHostToDeviceAsync(host, host, 4, empty).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CopyDeviceToHostAsync(host, host, 4, empty).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CopyDeviceToDeviceAsync(host, host, 4, empty).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MemsetDeviceAsync(host, 0, 4, empty).code(), absl::StatusCode::kFailedPrecondition);
  if (!BuiltWithCuda()) {
    EXPECT_THAT(std::string(DeviceBuffer::Allocate(8).status().message()),
                HasSubstr("built without CUDA support"));
  }
}

TEST(DeviceMemoryTest, CopiesRoundTripThroughTheDevice) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  constexpr size_t kCount = 1000;
  constexpr size_t kBytes = kCount * sizeof(int32_t);
  absl::StatusOr<CudaStream> stream = CudaStream::Create(0);
  ASSERT_TRUE(stream.ok()) << stream.status();
  absl::StatusOr<PinnedHostBuffer> host_in = PinnedHostBuffer::Allocate(kBytes);
  absl::StatusOr<PinnedHostBuffer> host_out = PinnedHostBuffer::Allocate(kBytes);
  absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(kBytes);
  absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(kBytes);
  ASSERT_TRUE(host_in.ok() && host_out.ok() && a.ok() && b.ok());
  EXPECT_EQ(a->size_bytes(), kBytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data()) % kDeviceArenaAlignment, 0u);
  auto* in = static_cast<int32_t*>(host_in->data());
  for (size_t i = 0; i < kCount; ++i) in[i] = static_cast<int32_t>(i * 7 - 300);
  std::memset(host_out->data(), 0, kBytes);

  ASSERT_TRUE(CopyHostToDeviceAsync(a->data(), in, kBytes, *stream).ok());
  ASSERT_TRUE(CopyDeviceToDeviceAsync(b->data(), a->data(), kBytes, *stream).ok());
  ASSERT_TRUE(CopyDeviceToHostAsync(host_out->data(), b->data(), kBytes, *stream).ok());
  ASSERT_TRUE(stream->Synchronize().ok());
  const auto* out = static_cast<const int32_t*>(host_out->data());
  for (size_t i = 0; i < kCount; ++i) ASSERT_EQ(out[i], static_cast<int32_t>(i * 7 - 300)) << i;

  // Memset the second half of b to 0xff bytes (int32 -1).
  ASSERT_TRUE(
      MemsetDeviceAsync(static_cast<char*>(b->data()) + kBytes / 2, 0xff, kBytes / 2, *stream)
          .ok());
  ASSERT_TRUE(CopyDeviceToHostAsync(host_out->data(), b->data(), kBytes, *stream).ok());
  ASSERT_TRUE(stream->Synchronize().ok());
  for (size_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(out[i], i < kCount / 2 ? static_cast<int32_t>(i * 7 - 300) : -1) << i;
  }
  EXPECT_EQ(CopyHostToDeviceAsync(nullptr, in, 4, *stream).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DeviceMemoryTest, BuffersMoveAndEmptyAllocationsAreEmpty) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<DeviceBuffer> empty = DeviceBuffer::Allocate(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->data(), nullptr);
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(4096);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  void* data = buffer->data();
  DeviceBuffer moved = std::move(buffer).value();
  EXPECT_EQ(moved.data(), data);
  EXPECT_EQ(moved.size_bytes(), 4096u);
  DeviceBuffer assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.data(), data);
  EXPECT_EQ(moved.data(), nullptr);  // NOLINT(bugprone-use-after-move): documented empty state
}

TEST(DeviceMemoryTest, HugeAllocationIsResourceExhausted) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<DeviceBuffer> huge = DeviceBuffer::Allocate(size_t{1} << 50);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
}

TEST(DeviceArenaTest, PlannedAndBumpAllocations) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<DeviceArena> arena = DeviceArena::Create(1000);
  ASSERT_TRUE(arena.ok()) << arena.status();
  EXPECT_EQ(arena->capacity_bytes(), 1024u);
  char* base = static_cast<char*>(arena->base());
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(*arena->At(512, 512), base + 512);
  EXPECT_EQ(arena->At(100, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(arena->At(512, 513).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*arena->Allocate(10), base);
  EXPECT_EQ(*arena->Allocate(10), base + 256);
  EXPECT_EQ(arena->Allocate(1024).status().code(), absl::StatusCode::kResourceExhausted);
  arena->Reset();
  EXPECT_EQ(*arena->Allocate(1024), base);

  // The memory is usable: write through one planned range, read back.
  absl::StatusOr<CudaStream> stream = CudaStream::Create(0);
  ASSERT_TRUE(stream.ok());
  std::vector<uint8_t> in(256), out(256, 0);
  for (int i = 0; i < 256; ++i) in[i] = static_cast<uint8_t>(255 - i);
  void* slot = *arena->At(768, 256);
  ASSERT_TRUE(CopyHostToDeviceAsync(slot, in.data(), 256, *stream).ok());
  ASSERT_TRUE(CopyDeviceToHostAsync(out.data(), slot, 256, *stream).ok());
  ASSERT_TRUE(stream->Synchronize().ok());
  EXPECT_EQ(in, out);

  DeviceArena moved = std::move(arena).value();
  EXPECT_EQ(moved.base(), base);
  EXPECT_EQ(moved.capacity_bytes(), 1024u);
}

}  // namespace
}  // namespace yolopipe
