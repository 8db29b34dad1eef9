#include "runtime/comm/link_profiler.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/comm/local_communicator.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

// Ping-pong between two threads over the in-process transport: one point per size, in order,
// with sane times and a fitted line; the echo side returns an empty profile.
TEST(LinkProfilerTest, PingPongOverInProcessChannels) {
  auto fabric = LocalFabric::Create(2, LocalFabric::kRendezvous);
  ASSERT_TRUE(fabric.ok());
  LinkProfileOptions o;
  o.sizes = {4096, 1 << 20, 8 << 20};
  o.repeats = 5;
  o.warmup = 1;
  absl::StatusOr<proto::LinkProfile> echo;
  std::thread other([&] { echo = ProfileLink(*(*fabric)->endpoint(1), 0, false, o); });
  auto profile = ProfileLink(*(*fabric)->endpoint(0), 1, true, o);
  other.join();
  ASSERT_TRUE(profile.ok()) << profile.status();
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(echo->points_size(), 0);
  ASSERT_EQ(profile->points_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const proto::LinkPoint& p = profile->points(i);
    EXPECT_EQ(p.bytes(), o.sizes[i]);
    EXPECT_GT(p.median_us(), 0);
    EXPECT_LE(p.min_us(), p.median_us());
    EXPECT_NEAR(p.gbps(), p.bytes() / (p.median_us() * 1e3), 1e-9);
  }
  EXPECT_GT(profile->bandwidth_gbps(), 0);
  EXPECT_GE(profile->latency_us(), 0);
  EXPECT_EQ(profile->repeats(), 5);
  // Each size moved (warmup + repeats) messages each way.
  EXPECT_EQ((*fabric)->endpoint(0)->bytes_sent(), 6 * (4096 + (1 << 20) + (8 << 20)));
}

// The fit recovers a line the test builds itself (latency 7 us, 2.5 GB/s).
TEST(LinkProfilerTest, FitRecoversAKnownLine) {
  proto::LinkProfile profile;
  for (int64_t bytes : {1000, 100000, 10000000}) {
    proto::LinkPoint* p = profile.add_points();
    p->set_bytes(bytes);
    p->set_median_us(7.0 + bytes / 2500.0);  // 2.5 GB/s = 2500 bytes per us
  }
  ASSERT_TRUE(FitLink(profile).ok());
  EXPECT_NEAR(profile.latency_us(), 7.0, 1e-6);
  EXPECT_NEAR(profile.bandwidth_gbps(), 2.5, 1e-9);
}

TEST(LinkProfilerTest, FitClampsANegativeLatencyAndRejectsFlatTimes) {
  proto::LinkProfile profile;
  for (int64_t bytes : {1000, 2000}) {
    proto::LinkPoint* p = profile.add_points();
    p->set_bytes(bytes);
    p->set_median_us(bytes * 0.001 - 0.5);  // intercept -0.5 us
  }
  ASSERT_TRUE(FitLink(profile).ok());
  EXPECT_EQ(profile.latency_us(), 0.0);
  EXPECT_GT(profile.bandwidth_gbps(), 0.0);
  proto::LinkProfile flat;
  for (int64_t bytes : {1000, 2000}) {
    proto::LinkPoint* p = flat.add_points();
    p->set_bytes(bytes);
    p->set_median_us(5.0);
  }
  EXPECT_THAT(std::string(FitLink(flat).message()), HasSubstr("do not grow"));
  proto::LinkProfile one;
  one.add_points()->set_bytes(10);
  EXPECT_EQ(FitLink(one).code(), absl::StatusCode::kInvalidArgument);
}

TEST(LinkProfilerTest, RejectsBadOptions) {
  LinkProfileOptions o;
  o.sizes = {};
  EXPECT_EQ(ValidateLinkProfileOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o.sizes = {6};
  EXPECT_THAT(std::string(ValidateLinkProfileOptions(o).message()), HasSubstr("multiples of 4"));
  o.sizes = {64, 16};
  EXPECT_THAT(std::string(ValidateLinkProfileOptions(o).message()), HasSubstr("increasing"));
  o.sizes = {64};
  o.repeats = 0;
  EXPECT_EQ(ValidateLinkProfileOptions(o).code(), absl::StatusCode::kInvalidArgument);
  o.repeats = 1;
  o.warmup = -1;
  EXPECT_EQ(ValidateLinkProfileOptions(o).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace yolopipe
