#include "graph/yolov8/stats.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "base/dtype.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "graph/ir.h"
#include "graph/yolov8/yolov8.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

// x (2, 4, 10, 12) -> grouped, strided 3x3 conv (2 groups, stride 2, pad 1) -> (2, 6, 5, 6)
// -> Sigmoid -> 1x1 conv -> (2, 3, 5, 6).
Graph SmallGraph() {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {2, 4, 10, 12}});
  g.AddInitializer("w1", Tensor(DType::kFloat32, {6, 2, 3, 3}));
  g.AddInitializer("w2", Tensor(DType::kFloat32, {3, 6, 1, 1}));
  g.SetValue(Value{"c1", DType::kFloat32, {2, 6, 5, 6}});
  g.SetValue(Value{"s1", DType::kFloat32, {2, 6, 5, 6}});
  g.SetValue(Value{"c2", DType::kFloat32, {2, 3, 5, 6}});
  g.AddNode(Node{"conv1", "Conv", {"x", "w1"}, {"c1"}, {}});
  g.AddNode(Node{"sig", "Sigmoid", {"c1"}, {"s1"}, {}});
  g.AddNode(Node{"conv2", "Conv", {"s1", "w2"}, {"c2"}, {}});
  g.AddOutput("c2");
  return g;
}

TEST(StatsTest, CountsMacsOfEveryConv) {
  const Graph g = SmallGraph();
  // Each output element of conv1 reads Cin/group * 3 * 3 = 18 weights.
  const int64_t conv1 = 2 * 6 * 5 * 6 * 18;
  const int64_t conv2 = 2 * 3 * 5 * 6 * 6;
  EXPECT_EQ(*ConvNodeMacs(g, g.nodes()[0]), conv1);
  EXPECT_EQ(*ConvNodeMacs(g, g.nodes()[2]), conv2);
  EXPECT_EQ(*ConvMacs(g), conv1 + conv2);
  EXPECT_EQ(*ConvFlops(g), 2 * (conv1 + conv2));
  EXPECT_EQ(*ConvMacs(Graph()), 0);
}

TEST(StatsTest, RejectsUnknownOrMissingShapes) {
  Graph g = SmallGraph();
  g.FindMutableValue("c2")->shape = {kUnknownDim, 3, 5, 6};
  absl::StatusOr<int64_t> macs = ConvMacs(g);
  EXPECT_EQ(macs.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(macs.status().message()), HasSubstr("Conv 'conv2'"));
  EXPECT_THAT(std::string(macs.status().message()), HasSubstr("(?, 3, 5, 6)"));

  Graph missing = SmallGraph();
  missing.mutable_nodes()[0].outputs = {"nowhere"};
  macs = ConvMacs(missing);
  EXPECT_EQ(macs.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(macs.status().message()), HasSubstr("'nowhere' has no recorded shape"));
}

TEST(StatsTest, RejectsInconsistentShapesAndNonConvNodes) {
  Graph g = SmallGraph();
  g.FindMutableValue("c1")->shape = {2, 7, 5, 6};  // 7 output channels, weight says 6
  absl::StatusOr<int64_t> macs = ConvMacs(g);
  EXPECT_EQ(macs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(macs.status().message()), HasSubstr("Conv 'conv1'"));

  const Graph ok = SmallGraph();
  macs = ConvNodeMacs(ok, ok.nodes()[1]);
  EXPECT_EQ(macs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(macs.status().message()), HasSubstr("'sig' is a Sigmoid"));

  Graph no_weight = SmallGraph();
  no_weight.mutable_nodes()[0].inputs = {"x"};
  EXPECT_EQ(ConvMacs(no_weight).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StatsTest, ReportsOverflow) {
  Graph g = SmallGraph();
  const int64_t big = int64_t{1} << 31;
  g.FindMutableValue("c2")->shape = {big, 3, big, 6};
  EXPECT_EQ(ConvMacs(g).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(StatsTest, BuiltinModelsHavePublishedGflops) {
  // YOLOV8.md: GFLOPs at 640x640, batch 1, rounded to 2 decimals.
  const struct {
    char scale;
    int64_t centi_gflops;
  } kPublished[] = {{'n', 874}, {'s', 2860}, {'m', 7894}, {'l', 16515}, {'x', 25780}};
  for (const auto& p : kPublished) {
    YoloV8Config config;
    config.scale = p.scale;
    absl::StatusOr<Graph> g = BuildYoloV8(config);
    ASSERT_TRUE(g.ok()) << g.status();
    absl::StatusOr<int64_t> flops = ConvFlops(*g);
    ASSERT_TRUE(flops.ok()) << flops.status();
    EXPECT_EQ(std::llround(static_cast<double>(*flops) / 1e7), p.centi_gflops)
        << "yolov8" << p.scale << ": " << *flops << " FLOPs";
  }
}

TEST(StatsTest, FlopsScaleWithBatchAndArea) {
  YoloV8Config config;
  config.imgsz = 640;
  const int64_t base = *ConvFlops(*BuildYoloV8(config));
  config.batch = 3;
  EXPECT_EQ(*ConvFlops(*BuildYoloV8(config)), 3 * base);
  // Every spatial size halves at 320 (all sizes stay integral), so each conv does a quarter.
  config.batch = 1;
  config.imgsz = 320;
  EXPECT_EQ(*ConvFlops(*BuildYoloV8(config)) * 4, base);
}

}  // namespace
}  // namespace yolopipe
