#include "runtime/device.h"

#include <pthread.h>
#include <sched.h>

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

TEST(DeviceTest, CpuDevicesSplitTheCoresWithoutOverlap) {
  const int cores = AvailableCores();
  auto devices = ParseDevices("cpu:" + std::to_string(cores));
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(devices->size(), static_cast<size_t>(cores));
  int next = 0;
  for (const DeviceSpec& d : *devices) {
    EXPECT_EQ(d.kind, DeviceKind::kCpu);
    EXPECT_EQ(d.first_core, next);
    EXPECT_EQ(d.num_threads, 1);
    next += d.num_threads;
  }
  auto one = ParseDevices("cpu");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].num_threads, cores);
}

TEST(DeviceTest, MoreDevicesThanCoresShareCores) {
  const int cores = AvailableCores();
  auto devices = ParseDevices("cpu:" + std::to_string(cores + 3));
  ASSERT_TRUE(devices.ok());
  for (const DeviceSpec& d : *devices) {
    EXPECT_EQ(d.num_threads, 1);
    EXPECT_LT(d.first_core, cores);
  }
}

TEST(DeviceTest, ThreadOverride) {
  auto devices = ParseDevices("cpu:2", 3);
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ((*devices)[1].num_threads, 3);
}

TEST(DeviceTest, CudaList) {
  auto devices = ParseDevices("cuda:0,2");
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_EQ((*devices)[1].kind, DeviceKind::kCuda);
  EXPECT_EQ((*devices)[1].index, 2);
}

// A GPU listed twice holds two stages (a pipeline tried out on one GPU).
TEST(DeviceTest, CudaListMayRepeatAGpu) {
  auto devices = ParseDevices("cuda:0,0,1");
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(devices->size(), 3u);
  EXPECT_EQ((*devices)[0].index, 0);
  EXPECT_EQ((*devices)[1].index, 0);
  EXPECT_EQ((*devices)[2].index, 1);
}

// Pinning maps a device's cores onto the process's allowed CPUs, and a pinned thread does not
// shrink what later devices see (AllowedCpus is captured once).
TEST(DeviceTest, PinningUsesTheAllowedCpus) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  auto devices = ParseDevices(absl::StrCat("cpu:", cpus.size()));
  ASSERT_TRUE(devices.ok());
  for (size_t i = 0; i < devices->size(); ++i) {
    std::vector<int> got;
    std::thread t([&] {
      PinCurrentThread((*devices)[i]);
      cpu_set_t set;
      ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(set), &set), 0);
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) got.push_back(c);
      }
      EXPECT_EQ(AvailableCores(), static_cast<int>(cpus.size()));  // not the pinned thread's 1
    });
    t.join();
    EXPECT_EQ(got, std::vector<int>{cpus[i]}) << "device " << i;
  }
}

TEST(DeviceTest, RejectsMalformed) {
  for (const char* bad : {"gpu:1", "cpu:0", "cpu:x", "cuda:-1", "cuda:a", ""}) {
    auto r = ParseDevices(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--devices"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace yolopipe
