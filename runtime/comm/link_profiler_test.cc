#include "runtime/comm/link_profiler.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

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

// A loopback endpoint whose echo differs from what was sent in element `bad` (or not at all when
// bad < 0): the profiler must notice, whichever element it is.
class LoopbackEndpoint final : public LinkEndpoint {
 public:
  explicit LoopbackEndpoint(int64_t bad) : bad_(bad) {}
  absl::Status Prepare(int64_t bytes, bool initiator) override {
    message_.assign(static_cast<size_t>(bytes / 4), 0.0f);
    for (size_t i = 0; i < message_.size(); ++i) message_[i] = static_cast<float>(i % 251);
    if (bad_ >= 0 && bad_ < static_cast<int64_t>(message_.size())) message_[bad_] += 1.0f;
    ++prepared_;
    return absl::OkStatus();
  }
  absl::Status Send(MicroBatchId, absl::Duration) override { return absl::OkStatus(); }
  absl::Status Recv(MicroBatchId, absl::Duration) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<float>> Received(const std::vector<int64_t>& indices) override {
    std::vector<float> values;
    for (int64_t i : indices) values.push_back(message_.at(static_cast<size_t>(i)));
    return values;
  }
  int prepared_ = 0;

 private:
  const int64_t bad_;
  std::vector<float> message_;
};

TEST(LinkProfilerTest, GarbledEchoIsDataLoss) {
  LinkProfileOptions o;
  o.sizes = {4096, 8192};
  o.repeats = 2;
  LoopbackEndpoint good(-1);
  auto profile = ProfileLink(good, true, o);
  ASSERT_TRUE(profile.ok()) << profile.status();
  EXPECT_EQ(profile->points_size(), 2);
  EXPECT_EQ(good.prepared_, 2);
  for (int64_t bad : {int64_t{0}, int64_t{1023}}) {  // the first and the last element of 4 KiB
    LoopbackEndpoint garbled(bad);
    auto failed = ProfileLink(garbled, true, o);
    EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss) << bad;
    EXPECT_THAT(failed.status().message(), HasSubstr(absl::StrCat("element ", bad)));
  }
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

TEST(LinkProfilerTest, FitClampsANegativeLatency) {
  proto::LinkProfile profile;
  for (int64_t bytes : {1000, 2000}) {
    proto::LinkPoint* p = profile.add_points();
    p->set_bytes(bytes);
    p->set_median_us(bytes * 0.001 - 0.5);  // intercept -0.5 us
  }
  ASSERT_TRUE(FitLink(profile).ok());
  EXPECT_EQ(profile.latency_us(), 0.0);
  EXPECT_GT(profile.bandwidth_gbps(), 0.0);
  EXPECT_TRUE(profile.fit().empty());
  proto::LinkProfile one;
  one.add_points()->set_bytes(10);
  EXPECT_EQ(FitLink(one).code(), absl::StatusCode::kInvalidArgument);
}

// A busy machine: the small message waited out a scheduler tick, so time falls with size (as
// measured under load on the development machine). The fit falls back to bounds taken from the
// points themselves and says so.
TEST(LinkProfilerTest, TimesThatFallWithSizeGetTheConservativeFallback) {
  proto::LinkProfile noisy;
  const struct { int64_t bytes; double min_us, median_us; } points[] = {
      {4096, 2100.0, 2846.7}, {1 << 20, 900.0, 3762.4}, {4 << 20, 1500.0, 1831.9}};
  for (const auto& pt : points) {
    proto::LinkPoint* p = noisy.add_points();
    p->set_bytes(pt.bytes);
    p->set_min_us(pt.min_us);
    p->set_median_us(pt.median_us);
  }
  ASSERT_TRUE(FitLink(noisy).ok());
  EXPECT_THAT(noisy.fit(), HasSubstr("do not grow"));
  EXPECT_DOUBLE_EQ(noisy.latency_us(), 2846.7);                         // smallest's median
  EXPECT_DOUBLE_EQ(noisy.bandwidth_gbps(), (4 << 20) / (1831.9 * 1e3));  // largest's throughput
  // Priced with these, neither end of the measurement is cheaper than its median time.
  for (const auto& pt : {points[0], points[2]}) {
    EXPECT_GE(noisy.latency_us() + pt.bytes / (noisy.bandwidth_gbps() * 1e3), pt.median_us);
  }
  // Flat times; a largest message measured at no time cannot be fitted.
  proto::LinkProfile flat;
  for (int64_t bytes : {1000, 2000}) {
    proto::LinkPoint* p = flat.add_points();
    p->set_bytes(bytes);
    p->set_median_us(5.0);
  }
  ASSERT_TRUE(FitLink(flat).ok());
  EXPECT_DOUBLE_EQ(flat.latency_us(), 5.0);
  EXPECT_DOUBLE_EQ(flat.bandwidth_gbps(), 2000 / 5e3);  // 400 bytes per us
  flat.mutable_points(1)->set_median_us(0.0);
  EXPECT_THAT(std::string(FitLink(flat).message()), HasSubstr("measured at no time"));
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
