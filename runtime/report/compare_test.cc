#include "runtime/report/compare.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/device.h"
#include "runtime/model.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

// yolov8n at 64x64 on two 1-thread CPU devices, 5 images in micro-batches of 2 (the last one
// partial): single, data and pipeline run, agree bitwise, and report measured memory per device;
// the pipeline's prediction is the simulator's for this finite batch, below the steady state
// (fill and drain of 3 micro-batches over 2 stages cannot reach it).
TEST(CompareTest, EveryModeOnOneBatch) {
  BuiltinModelOptions mo;
  mo.imgsz = 64;
  auto model = LoadModel("yolov8n", mo);
  ASSERT_TRUE(model.ok()) << model.status();
  auto devices = ParseDevices("cpu:2", 1);
  ASSERT_TRUE(devices.ok());
  CompareOptions o;
  o.devices = *devices;
  o.imgsz = 64;
  o.batch = 5;
  o.microbatch = 2;
  o.sweep_microbatches.clear();
  o.record_traces = false;
  auto result = RunComparison(*model, o);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->modes.size(), 3u);
  EXPECT_TRUE(result->all_bitwise_equal);
  const size_t devices_per_mode[] = {1, 2, 2};
  for (size_t i = 0; i < 3; ++i) {
    const ModeResult& m = result->modes[i];
    EXPECT_EQ(m.stats.stage_peak_bytes.size(), devices_per_mode[i]) << ModeName(m.mode);
    for (int64_t b : m.stats.stage_peak_bytes) EXPECT_GT(b, 0);
    EXPECT_EQ(m.stats.images, 5);
    EXPECT_EQ(m.stats.num_microbatches, 3);
  }
  const ModeResult& pipeline = result->modes[2];
  ASSERT_EQ(pipeline.mode, Mode::kPipeline);
  ASSERT_TRUE(pipeline.predicted_throughput.has_value());
  ASSERT_TRUE(pipeline.steady_state_throughput.has_value());
  EXPECT_GT(*pipeline.predicted_throughput, 0.0);
  EXPECT_LT(*pipeline.predicted_throughput, *pipeline.steady_state_throughput);
  EXPECT_FALSE(result->modes[0].predicted_throughput.has_value());
  const std::string table = FormatCompareTable(*result);
  EXPECT_THAT(table, HasSubstr("pipeline"));
  EXPECT_THAT(table, HasSubstr("MiB/"));  // two devices' memory
}

TEST(CompareTest, RejectsBadOptions) {
  BuiltinModelOptions mo;
  mo.imgsz = 64;
  auto model = LoadModel("yolov8n", mo);
  ASSERT_TRUE(model.ok());
  CompareOptions o;
  EXPECT_EQ(RunComparison(*model, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.devices = *ParseDevices("cpu:2", 1);
  o.microbatch = 0;
  EXPECT_EQ(RunComparison(*model, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.microbatch = 1;
  o.repeats = 0;
  EXPECT_EQ(RunComparison(*model, o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace yolopipe
