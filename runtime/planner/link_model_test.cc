#include "runtime/planner/link_model.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

TEST(LinkModelTest, PresetsCarryTheBaselineBandwidths) {
  const std::pair<const char*, double> expected[] = {
      {"nvlink4", 450}, {"pcie5", 64},      {"pcie4", 32},        {"ib-ndr", 50},
      {"loopback", 1},  {"nccl-socket", 1}, {"shared-memory", 10}};
  for (const auto& [name, gbps] : expected) {
    auto link = LinkPreset(name);
    ASSERT_TRUE(link.ok()) << name;
    EXPECT_EQ(link->name, name);
    EXPECT_DOUBLE_EQ(link->bandwidth_gbps, gbps) << name;
    EXPECT_GT(link->latency_us, 0) << name;
  }
  EXPECT_EQ(LinkPresetNames().size(), 7u);
}

TEST(LinkModelTest, TransferTime) {
  const LinkModel link{"custom", 2.0, 50};
  // 4 MB at 2 GB/s = 2 ms, plus 50 us.
  EXPECT_DOUBLE_EQ(link.TransferMs(4e6), 2.05);
  EXPECT_DOUBLE_EQ(link.TransferMs(0), 0.05);
}

TEST(LinkModelTest, ParsesPresetsAndCustomLinks) {
  auto preset = ParseLink("pcie4");
  ASSERT_TRUE(preset.ok());
  EXPECT_DOUBLE_EQ(preset->bandwidth_gbps, 32);
  auto custom = ParseLink("custom:12.5:7");
  ASSERT_TRUE(custom.ok()) << custom.status();
  EXPECT_EQ(custom->name, "custom");
  EXPECT_DOUBLE_EQ(custom->bandwidth_gbps, 12.5);
  EXPECT_DOUBLE_EQ(custom->latency_us, 7);
  auto pair = ParseLink("3,0");
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_DOUBLE_EQ(pair->bandwidth_gbps, 3);
  EXPECT_DOUBLE_EQ(pair->latency_us, 0);
  EXPECT_EQ(LinkToString(*custom), "custom (12.5 GB/s, 7 us)");
}

TEST(LinkModelTest, RejectsBadLinks) {
  auto fails = [](const std::string& spec, const std::string& text) {
    auto link = ParseLink(spec);
    ASSERT_FALSE(link.ok()) << spec;
    EXPECT_EQ(link.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_THAT(link.status().message(), HasSubstr(text)) << spec;
  };
  fails("warp-drive", "unknown link 'warp-drive' (presets: nvlink4, pcie5");
  fails("custom:10", "expected a preset, custom:BW_GBPS:LAT_US or BW_GBPS,LAT_US");
  fails("custom:x:1", "expected a preset");
  fails("1,2,3", "expected a preset");
  fails("0,5", "bandwidth must be > 0 GB/s");
  fails("-3,5", "bandwidth must be > 0 GB/s");
  fails("inf,5", "bandwidth must be > 0 GB/s");
  fails("10,-1", "latency must be >= 0 us");
  fails("10,nan", "latency must be >= 0 us");
  EXPECT_EQ(LinkPreset("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(LinkModelTest, FromAMeasuredProfile) {
  proto::LinkProfile profile;
  profile.set_transport("mpi");
  profile.set_bandwidth_gbps(2.5);
  profile.set_latency_us(40);
  auto link = LinkFromProfile(profile);
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->name, "measured (mpi)");
  // 1 MB: 1e6 / 2.5e9 s = 0.4 ms, plus 0.04 ms.
  EXPECT_NEAR(link->TransferMs(1e6), 0.44, 1e-12);
  profile.set_bandwidth_gbps(0);
  EXPECT_EQ(LinkFromProfile(profile).status().code(), absl::StatusCode::kInvalidArgument);
  profile.set_bandwidth_gbps(1);
  profile.set_latency_us(-1);
  EXPECT_EQ(LinkFromProfile(profile).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace yolopipe
