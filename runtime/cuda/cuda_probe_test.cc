#include "runtime/cuda/cuda_probe.h"

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

// Without a GPU (or without --config=cuda) the probe must report "no CUDA devices" cleanly;
// with one it must describe it.
TEST(CudaProbeTest, ReportsDevicesOrCleanAbsence) {
  auto devices = ListCudaDevices();
  if (!devices.ok()) {
    EXPECT_EQ(devices.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(devices.status().message().find("no CUDA devices"), std::string::npos)
        << devices.status();
    GTEST_SKIP() << devices.status().message();
  }
  ASSERT_FALSE(devices->empty());
  for (const CudaDeviceInfo& d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.total_memory_bytes, 0u);
    EXPECT_GE(d.compute_capability_major, 3);
  }
}

}  // namespace
}  // namespace yolopipe
