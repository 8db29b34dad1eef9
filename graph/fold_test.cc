#include "graph/fold.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<float> Floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}
std::vector<int64_t> Ints(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(t.GetAsInt64(i));
  return v;
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

TEST(EvaluateNodeTest, RangeThroughTheReferenceKernel) {
  Node range = MakeNode("r", "Range", {"start", "limit", "delta"}, {"y"});
  absl::StatusOr<std::vector<Tensor>> out =
      EvaluateNode(range, {Tensor::ScalarInt64(2), Tensor::ScalarInt64(7), Tensor::ScalarInt64(2)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_THAT(Ints((*out)[0]), ElementsAre(2, 4, 6));
}

TEST(EvaluateNodeTest, RefusesOutputsOverTheLimit) {
  Node cos = MakeNode("fill", "ConstantOfShape", {"shape"}, {"y"});
  absl::StatusOr<std::vector<Tensor>> out =
      EvaluateNode(cos, {Tensor::FromInt64s({1}, {1000})}, /*max_output_bytes=*/100);
  EXPECT_TRUE(absl::IsFailedPrecondition(out.status())) << out.status();
}

TEST(InferNodeOutputsTest, ConvShape) {
  Node conv = MakeNode("c", "Conv", {"x", "w"}, {"y"});
  conv.attrs.Set("strides", std::vector<int64_t>{2, 2});
  conv.attrs.Set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.Set("kernel_shape", std::vector<int64_t>{3, 3});
  Tensor w(DType::kFloat32, {8, 3, 3, 3});
  absl::StatusOr<std::vector<ops::TensorDesc>> out = InferNodeOutputs(
      conv, {{DType::kFloat32, {2, 3, 16, 20}}, {DType::kFloat32, {8, 3, 3, 3}}}, {Tensor(), w});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].shape, ElementsAre(2, 8, 8, 10));
}

// x -> Add(x, Mul(a, b)) where a, b are constants: the Mul folds, the Add stays.
TEST(FoldConstantsTest, FoldsConstantArithmeticAndKeepsTheRest) {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {1, 3}});
  g.AddInitializer("a", Tensor::FromFloats({3}, {1, 2, 3}));
  g.AddInitializer("b", Tensor::FromFloats({3}, {4, 5, 6}));
  g.AddNode(MakeNode("mul", "Mul", {"a", "b"}, {"ab"}));
  g.AddNode(MakeNode("add", "Add", {"x", "ab"}, {"y"}));
  g.AddOutput("y");
  ASSERT_TRUE(FoldConstants(&g).ok());
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0].name, "add");
  const Tensor* ab = g.FindInitializer("ab");
  ASSERT_NE(ab, nullptr);
  EXPECT_THAT(Floats(*ab), ElementsAre(4.0f, 10.0f, 18.0f));
  // Only the folded node read these.
  EXPECT_FALSE(g.IsInitializer("a"));
  EXPECT_FALSE(g.IsInitializer("b"));
  EXPECT_TRUE(g.Validate().ok());
}

// A chain out of order: Cast(Range(...)) + 0.5, with the nodes listed consumer-first.
TEST(FoldConstantsTest, FoldsChainsInTopologicalOrder) {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {4}});
  g.AddInitializer("start", Tensor::ScalarInt64(0));
  g.AddInitializer("limit", Tensor::ScalarInt64(4));
  g.AddInitializer("delta", Tensor::ScalarInt64(1));
  g.AddInitializer("half", Tensor::ScalarFloat(0.5f));
  Node cast = MakeNode("cast", "Cast", {"r"}, {"rf"});
  cast.attrs.Set("to", int64_t{1});
  g.AddNode(MakeNode("add_x", "Add", {"x", "grid"}, {"y"}));
  g.AddNode(MakeNode("offset", "Add", {"rf", "half"}, {"grid"}));
  g.AddNode(cast);
  g.AddNode(MakeNode("range", "Range", {"start", "limit", "delta"}, {"r"}));
  g.AddOutput("y");
  ASSERT_TRUE(FoldConstants(&g).ok());
  ASSERT_EQ(g.nodes().size(), 1u);
  const Tensor* grid = g.FindInitializer("grid");
  ASSERT_NE(grid, nullptr);
  EXPECT_EQ(grid->dtype(), DType::kFloat32);
  EXPECT_THAT(Floats(*grid), ElementsAre(0.5f, 1.5f, 2.5f, 3.5f));
  EXPECT_FALSE(g.IsInitializer("r"));
}

TEST(FoldConstantsTest, NeverFoldsShapeOfTheGraphInput) {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {1, 3, 8, 8}});
  g.AddNode(MakeNode("shape", "Shape", {"x"}, {"s"}));
  g.AddOutput("s");
  ASSERT_TRUE(FoldConstants(&g).ok());
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0].op_type, "Shape");
}

TEST(FoldConstantsTest, ConstantGraphOutputStaysAvailable) {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {1}});
  g.AddInitializer("a", Tensor::FromFloats({2}, {1, 2}));
  g.AddNode(MakeNode("neg_like", "Sub", {"a", "a"}, {"zero"}));
  g.AddNode(MakeNode("id", "Identity", {"x"}, {"y"}));
  g.AddOutput("zero");
  g.AddOutput("y");
  ASSERT_TRUE(FoldConstants(&g).ok());
  ASSERT_NE(g.FindInitializer("zero"), nullptr);
  EXPECT_THAT(Floats(*g.FindInitializer("zero")), ElementsAre(0.0f, 0.0f));
  EXPECT_TRUE(g.Validate().ok());
}

TEST(FoldConstantsTest, AbsurdlyLargeConstantsStayNodes) {
  for (const std::vector<int64_t>& dims :
       {std::vector<int64_t>{1 << 20, 1 << 20}, std::vector<int64_t>{int64_t{1} << 40, 1 << 30}}) {
    Graph g;
    g.AddInput(Value{"x", DType::kFloat32, {1}});
    g.AddInitializer("dims", Tensor::FromInt64s({2}, dims));
    g.AddNode(MakeNode("huge", "ConstantOfShape", {"dims"}, {"y"}));
    g.AddOutput("y");
    // Folding would allocate terabytes (or overflow the byte count): the node is kept.
    ASSERT_TRUE(FoldConstants(&g).ok());
    ASSERT_EQ(g.nodes().size(), 1u);
    EXPECT_EQ(g.nodes()[0].name, "huge");
  }
}

TEST(FoldConstantsTest, EvaluationErrorNamesTheNode) {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {1}});
  g.AddInitializer("data", Tensor::FromFloats({6}, {1, 2, 3, 4, 5, 6}));
  g.AddInitializer("bad_shape", Tensor::FromInt64s({2}, {4, 4}));
  g.AddNode(MakeNode("broken_reshape", "Reshape", {"data", "bad_shape"}, {"r"}));
  g.AddNode(MakeNode("id", "Identity", {"x"}, {"y"}));
  g.AddOutput("r");
  g.AddOutput("y");
  absl::Status status = FoldConstants(&g);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("broken_reshape"));
}

TEST(DropStaleValuesTest, ForgetsValuesNothingUses) {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {2}});
  g.AddNode(MakeNode("id", "Identity", {"x"}, {"y"}));
  g.AddOutput("y");
  g.SetValue(Value{"y", DType::kFloat32, {2}});
  g.SetValue(Value{"gone", DType::kFloat32, {7}});
  g.mutable_metadata()["k"] = "v";
  DropStaleValues(&g);
  EXPECT_EQ(g.FindValue("gone"), nullptr);
  ASSERT_NE(g.FindValue("y"), nullptr);
  EXPECT_THAT(g.FindValue("y")->shape, ElementsAre(2));
  EXPECT_THAT(g.FindValue("x")->shape, ElementsAre(2));
  EXPECT_EQ(g.metadata().at("k"), "v");
  EXPECT_EQ(g.nodes().size(), 1u);
}

}  // namespace
}  // namespace yolopipe
