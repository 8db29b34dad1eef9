#include "graph/bind.h"

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Node MakeNode(const std::string& name, const std::string& op, std::vector<std::string> inputs,
              std::vector<std::string> outputs) {
  Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

std::vector<int64_t> Ints(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(t.GetAsInt64(i));
  return v;
}

// images (declared) -> 1x1 Conv 4 -> 6 channels -> "features" (batch, 6, H, W).
Graph ConvGraph(const Shape& declared) {
  Graph g;
  g.AddInput(Value{"images", DType::kFloat32, declared});
  g.AddInitializer("conv.w", Tensor(DType::kFloat32, {6, 4, 1, 1}));
  g.AddInitializer("conv.b", Tensor(DType::kFloat32, {6}));
  g.AddNode(MakeNode("conv", "Conv", {"images", "conv.w", "conv.b"}, {"features"}));
  g.SetValue(Value{"features", DType::kFloat32, {declared[0], 6, declared[2], declared[3]}});
  return g;
}

// ConvGraph followed by Reshape(features, shape_values) -> "y".
Graph ReshapeGraph(const Shape& declared, const std::vector<int64_t>& shape_values) {
  Graph g = ConvGraph(declared);
  g.AddInitializer("shape",
                   Tensor::FromInt64s({static_cast<int64_t>(shape_values.size())}, shape_values));
  g.AddNode(MakeNode("flatten_hw", "Reshape", {"features", "shape"}, {"y"}));
  g.AddOutput("y");
  return g;
}

const Shape& OutputShape(const Graph& g) { return g.FindValue(g.outputs()[0])->shape; }

TEST(BindInputShapeTest, RebindsBatchOneStaticReshape) {
  const Graph model = ReshapeGraph({1, 4, 8, 8}, {1, 6, -1});
  absl::StatusOr<Graph> bound = BindInputShape(model, {3, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(3, 6, 64));
  EXPECT_THAT(bound->FindValue("images")->shape, ElementsAre(3, 4, 8, 8));
  EXPECT_THAT(bound->FindValue("features")->shape, ElementsAre(3, 6, 8, 8));
  const Node& reshape = bound->nodes()[bound->FindNode("flatten_hw")];
  ASSERT_NE(reshape.inputs[1], "shape");  // a new constant; the shared one is not edited
  EXPECT_THAT(Ints(*bound->FindInitializer(reshape.inputs[1])), ElementsAre(3, 6, -1));
  // The input graph is untouched.
  EXPECT_THAT(Ints(*model.FindInitializer("shape")), ElementsAre(1, 6, -1));
  EXPECT_THAT(model.FindValue("images")->shape, ElementsAre(1, 4, 8, 8));
  EXPECT_EQ(model.nodes()[1].inputs[1], "shape");
}

TEST(BindInputShapeTest, SameBatchNeedsNoRewrite) {
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({1, 4, 8, 8}, {1, 6, -1}), {1, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(1, 6, 64));
  EXPECT_EQ(bound->nodes()[bound->FindNode("flatten_hw")].inputs[1], "shape");
}

TEST(BindInputShapeTest, RebindsFixedBatchOtherThanOne) {
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({2, 4, 8, 8}, {2, 6, -1}), {5, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(5, 6, 64));
}

TEST(BindInputShapeTest, ReshapeCopyingTheBatchNeedsNoRewrite) {
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({1, 4, 8, 8}, {0, 6, -1}), {4, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(4, 6, 64));
  EXPECT_EQ(bound->nodes()[bound->FindNode("flatten_hw")].inputs[1], "shape");
}

// The torch pattern for x.view(x.shape[0], C, -1): the shape is computed from Shape(x), so it is
// recomputed at the new batch and folds away.
TEST(BindInputShapeTest, ShapeComputedReshapeFoldsAtTheNewBatch) {
  Graph g = ConvGraph({1, 4, 8, 8});
  g.AddInitializer("zero", Tensor::FromInt64s({1}, {0}));
  g.AddInitializer("index0", Tensor::ScalarInt64(0));
  g.AddInitializer("six_minus_one", Tensor::FromInt64s({2}, {6, -1}));
  g.AddNode(MakeNode("shape", "Shape", {"features"}, {"s"}));
  g.AddNode(MakeNode("batch", "Gather", {"s", "index0"}, {"b"}));
  g.AddNode(MakeNode("batch1d", "Unsqueeze", {"b", "zero"}, {"b1"}));
  Node concat = MakeNode("target", "Concat", {"b1", "six_minus_one"}, {"target_shape"});
  concat.attrs.Set("axis", int64_t{0});
  g.AddNode(concat);
  g.AddNode(MakeNode("view", "Reshape", {"features", "target_shape"}, {"y"}));
  g.AddOutput("y");
  absl::StatusOr<Graph> bound = BindInputShape(g, {3, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(3, 6, 64));
  ASSERT_EQ(bound->nodes().size(), 2u);  // Conv, Reshape; the shape arithmetic folded
  const Node& view = bound->nodes()[1];
  EXPECT_THAT(Ints(*bound->FindInitializer(view.inputs[1])), ElementsAre(3, 6, -1));
}

TEST(BindInputShapeTest, ResizeSizesAndScalesFollowTheBatch) {
  Graph g = ConvGraph({1, 4, 8, 8});
  g.AddInitializer("scales", Tensor::FromFloats({4}, {1, 1, 2, 2}));
  g.AddInitializer("sizes", Tensor::FromInt64s({4}, {1, 6, 4, 4}));
  Node up = MakeNode("up", "Resize", {"features", "", "scales"}, {"y"});
  up.attrs.Set("mode", std::string("nearest"));
  g.AddNode(up);
  Node down = MakeNode("down", "Resize", {"features", "", "", "sizes"}, {"z"});
  down.attrs.Set("mode", std::string("nearest"));
  g.AddNode(down);
  g.AddOutput("y");
  g.AddOutput("z");
  absl::StatusOr<Graph> bound = BindInputShape(g, {2, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(bound->FindValue("y")->shape, ElementsAre(2, 6, 16, 16));
  EXPECT_THAT(bound->FindValue("z")->shape, ElementsAre(2, 6, 4, 4));
}

TEST(BindInputShapeTest, BroadcastConstantWithUnitBatchIsFine) {
  Graph g = ConvGraph({1, 4, 8, 8});
  g.AddInitializer("scale", Tensor(DType::kFloat32, {1, 6, 1, 1}));
  g.AddNode(MakeNode("scale_mul", "Mul", {"features", "scale"}, {"y"}));
  g.AddOutput("y");
  absl::StatusOr<Graph> bound = BindInputShape(g, {3, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(3, 6, 8, 8));
}

TEST(BindInputShapeTest, FlattenAtAxisOneAndFullSliceOfAxisZeroAreFine) {
  Graph g = ConvGraph({1, 4, 8, 8});
  g.AddInitializer("starts", Tensor::FromInt64s({2}, {0, 2}));
  g.AddInitializer("ends", Tensor::FromInt64s({2}, {std::numeric_limits<int64_t>::max(), 4}));
  g.AddInitializer("axes", Tensor::FromInt64s({2}, {0, 1}));
  g.AddNode(MakeNode("slice", "Slice", {"features", "starts", "ends", "axes"}, {"sliced"}));
  Node flatten = MakeNode("flat", "Flatten", {"sliced"}, {"y"});
  flatten.attrs.Set("axis", int64_t{1});
  g.AddNode(flatten);
  g.AddOutput("y");
  absl::StatusOr<Graph> bound = BindInputShape(g, {3, 4, 8, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(3, 128));
}

struct RefusalCase {
  std::string label;
  std::function<void(Graph&)> add_nodes;  // reads "features" (1, 6, 8, 8), writes output "y"
  std::string node;                       // the node the error must name
};

std::vector<RefusalCase> RefusalCases() {
  auto reshape_to = [](std::vector<int64_t> shape) {
    return [shape](Graph& g) {
      g.AddInitializer("target", Tensor::FromInt64s({static_cast<int64_t>(shape.size())}, shape));
      g.AddNode(MakeNode("bad", "Reshape", {"features", "target"}, {"y"}));
    };
  };
  auto with_axis = [](const std::string& op, int64_t axis, std::vector<std::string> extra = {}) {
    return [op, axis, extra](Graph& g) {
      std::vector<std::string> inputs = {"features"};
      inputs.insert(inputs.end(), extra.begin(), extra.end());
      Node n = MakeNode("bad", op, inputs, {"y"});
      n.attrs.Set("axis", axis);
      g.AddNode(n);
    };
  };
  return {
      {"reshape merging batch and channels", reshape_to({6, -1}), "bad"},
      {"reshape flattening everything", reshape_to({-1}), "bad"},
      {"transpose moving axis 0",
       [](Graph& g) {
         Node n = MakeNode("bad", "Transpose", {"features"}, {"y"});
         n.attrs.Set("perm", std::vector<int64_t>{1, 0, 2, 3});
         g.AddNode(n);
       },
       "bad"},
      {"concat on axis 0", with_axis("Concat", 0, {"features"}), "bad"},
      {"concat with a constant",
       [](Graph& g) {
         g.AddInitializer("extra", Tensor(DType::kFloat32, {1, 2, 8, 8}));
         Node n = MakeNode("bad", "Concat", {"features", "extra"}, {"y"});
         n.attrs.Set("axis", int64_t{1});
         g.AddNode(n);
       },
       "bad"},
      {"split on axis 0",
       [](Graph& g) {
         g.AddInitializer("split", Tensor::FromInt64s({1}, {1}));
         Node n = MakeNode("bad", "Split", {"features", "split"}, {"y"});
         n.attrs.Set("axis", int64_t{0});
         g.AddNode(n);
       },
       "bad"},
      {"softmax on axis 0", with_axis("Softmax", 0), "bad"},
      {"gather on axis 0",
       [](Graph& g) {
         g.AddInitializer("idx", Tensor::FromInt64s({1}, {0}));
         Node n = MakeNode("bad", "Gather", {"features", "idx"}, {"y"});
         n.attrs.Set("axis", int64_t{0});
         g.AddNode(n);
       },
       "bad"},
      {"slice of axis 0",
       [](Graph& g) {
         g.AddInitializer("s0", Tensor::FromInt64s({1}, {0}));
         g.AddInitializer("e0", Tensor::FromInt64s({1}, {1}));
         g.AddInitializer("a0", Tensor::FromInt64s({1}, {0}));
         g.AddNode(MakeNode("bad", "Slice", {"features", "s0", "e0", "a0"}, {"y"}));
       },
       "bad"},
      {"flatten at axis 2", with_axis("Flatten", 2), "bad"},
      {"unsqueeze at axis 0",
       [](Graph& g) {
         g.AddInitializer("ax", Tensor::FromInt64s({1}, {0}));
         g.AddNode(MakeNode("bad", "Unsqueeze", {"features", "ax"}, {"y"}));
       },
       "bad"},
      {"squeeze without axes",
       [](Graph& g) { g.AddNode(MakeNode("bad", "Squeeze", {"features"}, {"y"})); }, "bad"},
  };
}

TEST(BindInputShapeTest, RefusesOpsThatMixTheBatchAxis) {
  for (const RefusalCase& c : RefusalCases()) {
    Graph g = ConvGraph({1, 4, 8, 8});
    c.add_nodes(g);
    g.AddOutput("y");
    // At the declared batch the model is fine...
    absl::StatusOr<Graph> same = BindInputShape(g, {1, 4, 8, 8});
    EXPECT_TRUE(same.ok()) << c.label << ": " << same.status();
    // ...at another batch it is refused with the node named.
    absl::StatusOr<Graph> bound = BindInputShape(g, {3, 4, 8, 8});
    ASSERT_FALSE(bound.ok()) << c.label;
    EXPECT_THAT(std::string(bound.status().message()),
                AllOf(HasSubstr("node '" + c.node + "'"), HasSubstr("batch 3"),
                      HasSubstr("fixed batch of 1")))
        << c.label;
  }
}

TEST(BindInputShapeTest, RefusesConstantCarryingTheFixedBatch) {
  Graph g = ConvGraph({2, 4, 8, 8});
  g.AddInitializer("per_image", Tensor(DType::kFloat32, {2, 6, 1, 1}));
  g.AddNode(MakeNode("per_image_mul", "Mul", {"features", "per_image"}, {"y"}));
  g.AddOutput("y");
  absl::StatusOr<Graph> bound = BindInputShape(g, {3, 4, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()),
              AllOf(HasSubstr("per_image_mul"), HasSubstr("per_image")));
}

TEST(BindInputShapeTest, SymbolicDimensionsBindToAnything) {
  absl::StatusOr<Graph> bound = BindInputShape(
      ReshapeGraph({kUnknownDim, 4, kUnknownDim, kUnknownDim}, {0, 6, -1}), {2, 4, 16, 8});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_THAT(OutputShape(*bound), ElementsAre(2, 6, 128));
  EXPECT_THAT(bound->FindValue("features")->shape, ElementsAre(2, 6, 16, 8));
}

TEST(BindInputShapeTest, RejectsWrongRank) {
  absl::StatusOr<Graph> bound = BindInputShape(ReshapeGraph({1, 4, 8, 8}, {1, 6, -1}), {4, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()),
              AllOf(HasSubstr("input 'images'"), HasSubstr("4-D"), HasSubstr("(4, 8, 8)")));
}

TEST(BindInputShapeTest, RejectsWrongChannels) {
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({1, 4, 8, 8}, {1, 6, -1}), {1, 3, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(std::string(bound.status().message()), "input 'images' expects 4 channels, got 3");
}

TEST(BindInputShapeTest, RejectsOtherImageSizeForStaticModel) {
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({1, 4, 8, 8}, {1, 6, -1}), {1, 4, 16, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(
      std::string(bound.status().message()),
      AllOf(HasSubstr("fixed height of 8"), HasSubstr("(1, 4, 8, 8)"), HasSubstr("(1, 4, 16, 8)")));
  bound = BindInputShape(ReshapeGraph({1, 4, 8, 8}, {1, 6, -1}), {1, 4, 8, 16});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()), HasSubstr("fixed width of 8"));
}

TEST(BindInputShapeTest, RejectsNonPositiveDimensions) {
  absl::StatusOr<Graph> bound = BindInputShape(
      ReshapeGraph({kUnknownDim, 4, kUnknownDim, kUnknownDim}, {0, 6, -1}), {0, 4, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()), HasSubstr("(0, 4, 8, 8)"));
}

TEST(BindInputShapeTest, RejectsAbsurdlyLargeShapes) {
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({kUnknownDim, 4, kUnknownDim, kUnknownDim}, {0, 6, -1}),
                     {1 << 20, 4, 1 << 20, 1 << 20});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()), HasSubstr("elements"));
}

// A shape that only binding computes (here an Expand too large for constant folding) must not
// reach the executor's allocator: refused, naming the tensor.
TEST(BindInputShapeTest, RefusesAValueOfAbsurdSizeComputedAtBindTime) {
  Graph g = ConvGraph({1, 4, 8, 8});
  g.AddOutput("features");
  g.AddInitializer("one", Tensor::FromFloats({1}, {1.0f}));
  g.AddInitializer("huge_shape", Tensor::FromInt64s({2}, {int64_t{1} << 20, int64_t{1} << 20}));
  g.AddNode(MakeNode("bomb", "Expand", {"one", "huge_shape"}, {"big"}));
  g.AddOutput("big");
  absl::StatusOr<Graph> bound = BindInputShape(g, {1, 4, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kResourceExhausted) << bound.status();
  EXPECT_THAT(std::string(bound.status().message()),
              AllOf(HasSubstr("'big'"), HasSubstr("(1048576, 1048576)")));
  // The same graph with a modest Expand binds.
  Graph modest = ConvGraph({1, 4, 8, 8});
  modest.AddOutput("features");
  modest.AddInitializer("one", Tensor::FromFloats({1}, {1.0f}));
  modest.AddInitializer("shape", Tensor::FromInt64s({2}, {3, 5}));
  modest.AddNode(MakeNode("expand", "Expand", {"one", "shape"}, {"small"}));
  modest.AddOutput("small");
  EXPECT_TRUE(BindInputShape(modest, {1, 4, 8, 8}).ok());
}

TEST(BindInputShapeTest, RejectsGraphWithTwoInputs) {
  Graph g = ReshapeGraph({1, 4, 8, 8}, {1, 6, -1});
  g.AddInput(Value{"second", DType::kFloat32, {1, 4, 8, 8}});
  absl::StatusOr<Graph> bound = BindInputShape(g, {1, 4, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()), HasSubstr("2 inputs"));
}

TEST(BindInputShapeTest, KernelShapeErrorsNameTheNode) {
  // A symbolic-batch model whose Reshape hard-codes batch 1 cannot run at batch 2.
  absl::StatusOr<Graph> bound =
      BindInputShape(ReshapeGraph({kUnknownDim, 4, 8, 8}, {1, 6, 64}), {2, 4, 8, 8});
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(std::string(bound.status().message()), HasSubstr("flatten_hw"));
}

}  // namespace
}  // namespace yolopipe
