#include "graph/prepare.h"

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/fuse.h"
#include "graph/onnx_import.h"
#include "graph/testing/mini_detector.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using testing::ExportStyle;
using ::testing::HasSubstr;

// Every referenced value is concrete, and every node reads only values defined before it.
void ExpectExecutable(const Graph& g) {
  std::set<std::string> defined(g.inputs().begin(), g.inputs().end());
  for (const auto& [name, t] : g.initializers()) defined.insert(name);
  auto expect_concrete = [&](const std::string& name) {
    const Value* v = g.FindValue(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_NE(v->dtype, DType::kUndefined) << name;
    EXPECT_TRUE(IsFullyKnown(v->shape)) << name << " " << ShapeToString(v->shape);
  };
  for (const std::string& in : g.inputs()) expect_concrete(in);
  for (const Node& node : g.nodes()) {
    for (const std::string& in : node.inputs) {
      if (in.empty()) continue;
      EXPECT_TRUE(defined.count(in)) << node.name << " reads " << in << " before it is defined";
      expect_concrete(in);
    }
    for (const std::string& out : node.outputs) {
      expect_concrete(out);
      defined.insert(out);
    }
  }
  for (const std::string& out : g.outputs()) expect_concrete(out);
}

TEST(PrepareForExecutionTest, BothStylesBecomeExecutable) {
  for (ExportStyle style : {ExportStyle::kStatic, ExportStyle::kDynamic}) {
    absl::StatusOr<Graph> g = ImportOnnxBytes(testing::MiniDetector(style).Bytes(), "mini.onnx");
    ASSERT_TRUE(g.ok()) << g.status();
    absl::StatusOr<Graph> prepared = PrepareForExecution(*g, {4, 3, 16, 16});
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    ExpectExecutable(*prepared);
    EXPECT_THAT(prepared->FindValue("output0")->shape, ElementsAre(4, 6, 64));
    for (const Node& node : prepared->nodes()) {
      EXPECT_NE(node.op_type, "Shape") << node.name;
      EXPECT_NE(node.op_type, "Identity") << node.name;
    }
    // Both SiLU convs fused, the Bottleneck's Add too.
    EXPECT_EQ(*prepared->nodes()[prepared->FindNode("conv1")].attrs.GetString(kActivationAttr, ""),
              "silu");
    EXPECT_EQ(prepared->nodes()[prepared->FindNode("conv1")].inputs.size(), 4u);
    EXPECT_EQ(prepared->FindNode("bottleneck/add"), -1);
    // Metadata travels with the graph.
    EXPECT_EQ(prepared->metadata().at("task"), "detect");
  }
}

TEST(PrepareForExecutionTest, LeavesTheInputGraphAlone) {
  absl::StatusOr<Graph> g =
      ImportOnnxBytes(testing::MiniDetector(ExportStyle::kDynamic).Bytes(), "mini.onnx");
  ASSERT_TRUE(g.ok()) << g.status();
  const size_t nodes = g->nodes().size();
  ASSERT_TRUE(PrepareForExecution(*g, {1, 3, 16, 16}).ok());
  EXPECT_EQ(g->nodes().size(), nodes);
  EXPECT_THAT(g->FindValue("images")->shape, ElementsAre(kUnknownDim, 3, kUnknownDim, kUnknownDim));
  // The same graph prepares again for another shape.
  absl::StatusOr<Graph> other = PrepareForExecution(*g, {2, 3, 32, 8});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_THAT(other->FindValue("output0")->shape, ElementsAre(2, 6, 64));
}

Node MakeNode(const std::string& name, const std::string& op, std::vector<std::string> inputs,
              std::vector<std::string> outputs) {
  Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

TEST(PrepareForExecutionTest, RemovesDeadNodes) {
  Graph g;
  g.AddInput(Value{"images", DType::kFloat32, {1, 3, 4, 4}});
  g.AddNode(MakeNode("used", "Sigmoid", {"images"}, {"y"}));
  g.AddNode(MakeNode("unused", "Sigmoid", {"images"}, {"z"}));
  g.AddInitializer("orphan", Tensor::ScalarFloat(1.0f));
  g.AddOutput("y");
  absl::StatusOr<Graph> prepared = PrepareForExecution(g, {1, 3, 4, 4});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prepared->nodes().size(), 1u);
  EXPECT_EQ(prepared->nodes()[0].name, "used");
  EXPECT_FALSE(prepared->IsInitializer("orphan"));
  EXPECT_EQ(prepared->FindValue("z"), nullptr);
}

TEST(PrepareForExecutionTest, KernelRejectionOfAFusedNodeNamesIt) {
  // A residual whose shape does not match the Conv output: the kernel refuses it.
  Graph g;
  g.AddInput(Value{"images", DType::kFloat32, {1, 3, 4, 4}});
  g.AddInitializer("w", Tensor(DType::kFloat32, {3, 3, 1, 1}));
  g.AddInitializer("wrong_residual", Tensor(DType::kFloat32, {1, 3, 2, 2}));
  Node conv = MakeNode("fused_conv", "Conv", {"images", "w", "", "wrong_residual"}, {"y"});
  conv.attrs.Set(kActivationAttr, std::string(kActivationSilu));
  g.AddNode(conv);
  g.AddOutput("y");
  absl::StatusOr<Graph> prepared = PrepareForExecution(g, {1, 3, 4, 4});
  ASSERT_FALSE(prepared.ok());
  EXPECT_THAT(std::string(prepared.status().message()), HasSubstr("fused_conv"));
}

TEST(PrepareForExecutionTest, InputShapeErrorsPassThrough) {
  absl::StatusOr<Graph> g =
      ImportOnnxBytes(testing::MiniDetector(ExportStyle::kStatic).Bytes(), "mini.onnx");
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<Graph> prepared = PrepareForExecution(*g, {1, 4, 16, 16});
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.status().message(), "input 'images' expects 3 channels, got 4");
}

}  // namespace
}  // namespace yolopipe
