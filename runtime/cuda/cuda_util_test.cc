#include "runtime/cuda/cuda_util.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_probe.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

bool HaveGpu() { return ListCudaDevices().ok(); }

TEST(CudaUtilTest, WithoutGpuEveryCallIsFailedPrecondition) {
  if (HaveGpu()) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(CudaDeviceCount().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CurrentCudaDevice().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SetCudaDevice(0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SynchronizeCudaDevice().code(), absl::StatusCode::kFailedPrecondition);
  ScopedCudaDevice scope(0);
  EXPECT_EQ(scope.status().code(), absl::StatusCode::kFailedPrecondition);
  if (!BuiltWithCuda()) {
    EXPECT_THAT(std::string(SetCudaDevice(0).message()), HasSubstr("built without CUDA support"));
  }
}

TEST(CudaUtilTest, DeviceCountMatchesTheProbe) {
  auto devices = ListCudaDevices();
  if (!devices.ok()) GTEST_SKIP() << devices.status();
  absl::StatusOr<int> count = CudaDeviceCount();
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, static_cast<int>(devices->size()));
}

TEST(CudaUtilTest, RejectsBadDeviceOrdinals) {
  auto devices = ListCudaDevices();
  if (!devices.ok()) GTEST_SKIP() << devices.status();
  EXPECT_EQ(SetCudaDevice(-1).code(), absl::StatusCode::kInvalidArgument);
  const absl::Status past_end = SetCudaDevice(static_cast<int>(devices->size()));
  EXPECT_FALSE(past_end.ok());
  EXPECT_THAT(std::string(past_end.message()), HasSubstr("cudaSetDevice"));
}

TEST(CudaUtilTest, ScopedDeviceRestoresThePreviousDevice) {
  auto devices = ListCudaDevices();
  if (!devices.ok()) GTEST_SKIP() << devices.status();
  const int last = static_cast<int>(devices->size()) - 1;
  ASSERT_TRUE(SetCudaDevice(0).ok());
  {
    ScopedCudaDevice scope(last);
    ASSERT_TRUE(scope.status().ok()) << scope.status();
    EXPECT_EQ(*CurrentCudaDevice(), last);
  }
  EXPECT_EQ(*CurrentCudaDevice(), 0);
  EXPECT_TRUE(SynchronizeCudaDevice().ok());
}

}  // namespace
}  // namespace yolopipe
