#include "runtime/cuda/stream.h"

#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/cuda_util.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

TEST(CudaStreamTest, WithoutGpuCreateIsFailedPrecondition) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<CudaStream> stream = CudaStream::Create(0);
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<CudaEvent> event = CudaEvent::Create(0, /*enable_timing=*/true);
  EXPECT_EQ(event.status().code(), absl::StatusCode::kFailedPrecondition);
  if (!BuiltWithCuda()) {
    EXPECT_THAT(std::string(stream.status().message()), HasSubstr("built without CUDA support"));
  }
}

// Runs everywhere: empty objects never reach the driver.
TEST(CudaStreamTest, EmptyObjectsRejectEveryOperation) {
  CudaStream stream;
  CudaEvent event;
  EXPECT_FALSE(stream.valid());
  EXPECT_FALSE(event.valid());
  EXPECT_EQ(stream.Synchronize().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stream.WaitEvent(event).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(event.Record(stream).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(event.Synchronize().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(event.IsComplete().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ElapsedMs(event, event).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CudaStreamTest, RecordSynchronizeAndTime) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<CudaStream> stream = CudaStream::Create(0);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_TRUE(stream->valid());
  EXPECT_EQ(stream->device(), 0);
  absl::StatusOr<CudaEvent> start = CudaEvent::Create(0, /*enable_timing=*/true);
  absl::StatusOr<CudaEvent> end = CudaEvent::Create(0, /*enable_timing=*/true);
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_TRUE(end.ok()) << end.status();
  ASSERT_TRUE(start->Record(*stream).ok());
  ASSERT_TRUE(end->Record(*stream).ok());
  ASSERT_TRUE(end->Synchronize().ok());
  absl::StatusOr<bool> done = end->IsComplete();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  absl::StatusOr<float> ms = ElapsedMs(*start, *end);
  ASSERT_TRUE(ms.ok()) << ms.status();
  EXPECT_GE(*ms, 0.0f);
  EXPECT_TRUE(stream->Synchronize().ok());
}

TEST(CudaStreamTest, CrossStreamWaitAndUntimedEvents) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<CudaStream> producer = CudaStream::Create(0);
  absl::StatusOr<CudaStream> consumer = CudaStream::Create(0);
  absl::StatusOr<CudaEvent> ready = CudaEvent::Create(0);
  ASSERT_TRUE(producer.ok() && consumer.ok() && ready.ok());
  EXPECT_FALSE(ready->timing_enabled());
  ASSERT_TRUE(ready->Record(*producer).ok());
  ASSERT_TRUE(consumer->WaitEvent(*ready).ok());
  ASSERT_TRUE(consumer->Synchronize().ok());
  EXPECT_EQ(ElapsedMs(*ready, *ready).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CudaStreamTest, MoveTransfersOwnership) {
  if (auto devices = ListCudaDevices(); !devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<CudaStream> created = CudaStream::Create(0);
  ASSERT_TRUE(created.ok()) << created.status();
  void* handle = created->handle();
  CudaStream moved = std::move(created).value();
  EXPECT_EQ(moved.handle(), handle);
  CudaStream assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.handle(), handle);
  EXPECT_FALSE(moved.valid());  // NOLINT(bugprone-use-after-move): documented empty state
  EXPECT_TRUE(assigned.Synchronize().ok());
}

}  // namespace
}  // namespace yolopipe
