#include "graph/fuse.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;

Node MakeNode(const std::string& name, const std::string& op, std::vector<std::string> inputs,
              std::vector<std::string> outputs) {
  Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

const Shape kShape = {1, 4, 8, 8};

// Adds conv `name`: x -> name.out, with 4 channels in and out, and its value description.
void AddConv(Graph& g, const std::string& name, const std::string& x, bool bias = true) {
  g.AddInitializer(name + ".w", Tensor(DType::kFloat32, {4, 4, 1, 1}));
  std::vector<std::string> inputs = {x, name + ".w"};
  if (bias) {
    g.AddInitializer(name + ".b", Tensor(DType::kFloat32, {4}));
    inputs.push_back(name + ".b");
  }
  g.AddNode(MakeNode(name, "Conv", inputs, {name + ".out"}));
  g.SetValue(Value{name + ".out", DType::kFloat32, kShape});
}

// conv.out -> Sigmoid -> Mul(conv.out, sig) (or reversed) -> `out`.
void AddSilu(Graph& g, const std::string& conv, const std::string& out, bool reversed = false) {
  const std::string x = conv + ".out";
  g.AddNode(MakeNode(conv + ".sigmoid", "Sigmoid", {x}, {conv + ".sig"}));
  g.SetValue(Value{conv + ".sig", DType::kFloat32, kShape});
  g.AddNode(MakeNode(conv + ".mul", "Mul",
                     reversed ? std::vector<std::string>{conv + ".sig", x}
                              : std::vector<std::string>{x, conv + ".sig"},
                     {out}));
  g.SetValue(Value{out, DType::kFloat32, kShape});
}

Graph InputGraph() {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, kShape});
  return g;
}

TEST(FuseConvSiluTest, FusesEitherOperandOrder) {
  for (bool reversed : {false, true}) {
    Graph g = InputGraph();
    AddConv(g, "conv", "x");
    AddSilu(g, "conv", "y", reversed);
    g.AddOutput("y");
    ASSERT_TRUE(FuseConvActivations(&g).ok());
    ASSERT_EQ(g.nodes().size(), 1u) << "reversed=" << reversed;
    const Node& conv = g.nodes()[0];
    EXPECT_EQ(conv.name, "conv");
    EXPECT_EQ(conv.op_type, "Conv");
    EXPECT_THAT(conv.outputs, ElementsAre("y"));
    EXPECT_EQ(*conv.attrs.GetString(kActivationAttr, ""), "silu");
    EXPECT_THAT(conv.inputs, ElementsAre("x", "conv.w", "conv.b"));
    // The intermediate tensors are gone from the value table too.
    EXPECT_EQ(g.FindValue("conv.out"), nullptr);
    EXPECT_EQ(g.FindValue("conv.sig"), nullptr);
    EXPECT_TRUE(g.Validate().ok());
  }
}

TEST(FuseConvSiluTest, KeepsPatternWhenConvOutputHasAnotherConsumer) {
  Graph g = InputGraph();
  AddConv(g, "conv", "x");
  AddSilu(g, "conv", "y");
  g.AddNode(MakeNode("other", "Sigmoid", {"conv.out"}, {"z"}));
  g.AddOutput("y");
  g.AddOutput("z");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 4u);
  EXPECT_FALSE(g.nodes()[0].attrs.Has(kActivationAttr));
}

TEST(FuseConvSiluTest, KeepsPatternWhenSigmoidOutputHasAnotherConsumer) {
  Graph g = InputGraph();
  AddConv(g, "conv", "x");
  AddSilu(g, "conv", "y");
  g.AddNode(MakeNode("other", "Identity", {"conv.sig"}, {"z"}));
  g.AddOutput("y");
  g.AddOutput("z");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 4u);
}

TEST(FuseConvSiluTest, KeepsPatternWhenConvOutputIsAGraphOutput) {
  Graph g = InputGraph();
  AddConv(g, "conv", "x");
  AddSilu(g, "conv", "y");
  g.AddOutput("y");
  g.AddOutput("conv.out");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 3u);
}

TEST(FuseConvSiluTest, KeepsMulOfSigmoidWithAnotherTensor) {
  Graph g = InputGraph();
  AddConv(g, "conv", "x");
  g.AddNode(MakeNode("sig", "Sigmoid", {"conv.out"}, {"s"}));
  g.AddNode(MakeNode("mul", "Mul", {"x", "s"}, {"y"}));  // gating x, not SiLU
  g.AddOutput("y");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 3u);
}

// Bottleneck: y = x + silu(conv2(silu(conv1(x)))).
TEST(FuseConvResidualTest, FusesSameShapeAddIntoInputThree) {
  for (bool residual_first : {false, true}) {
    Graph g = InputGraph();
    AddConv(g, "c1", "x");
    AddSilu(g, "c1", "h");
    AddConv(g, "c2", "h", /*bias=*/false);
    AddSilu(g, "c2", "m");
    g.AddNode(MakeNode(
        "add", "Add",
        residual_first ? std::vector<std::string>{"x", "m"} : std::vector<std::string>{"m", "x"},
        {"y"}));
    g.SetValue(Value{"y", DType::kFloat32, kShape});
    g.AddOutput("y");
    ASSERT_TRUE(FuseConvActivations(&g).ok());
    ASSERT_EQ(g.nodes().size(), 2u);
    const Node& c2 = g.nodes()[1];
    EXPECT_EQ(c2.name, "c2");
    // No bias: the residual sits at index 3 behind an absent input.
    EXPECT_THAT(c2.inputs, ElementsAre("h", "c2.w", "", "x"));
    EXPECT_THAT(c2.outputs, ElementsAre("y"));
    EXPECT_EQ(g.FindValue("m"), nullptr);
    EXPECT_TRUE(g.Validate().ok());
  }
}

TEST(FuseConvResidualTest, KeepsBroadcastingAdd) {
  Graph g = InputGraph();
  AddConv(g, "c1", "x");
  AddSilu(g, "c1", "h");
  g.AddInitializer("bias", Tensor(DType::kFloat32, {1, 4, 1, 1}));
  g.AddNode(MakeNode("add", "Add", {"h", "bias"}, {"y"}));
  g.AddOutput("y");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.nodes()[1].op_type, "Add");
}

TEST(FuseConvResidualTest, KeepsAddWhenShapesAreUnknown) {
  Graph g = InputGraph();
  AddConv(g, "c1", "x");
  AddSilu(g, "c1", "h");
  g.SetValue(Value{"h", DType::kFloat32, {kUnknownDim, 4, kUnknownDim, kUnknownDim}});
  g.SetValue(Value{"x", DType::kFloat32, {kUnknownDim, 4, kUnknownDim, kUnknownDim}});
  g.AddNode(MakeNode("add", "Add", {"h", "x"}, {"y"}));
  g.AddOutput("y");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.nodes()[1].op_type, "Add");
}

TEST(FuseConvResidualTest, KeepsAddWhenConvOutputHasAnotherConsumer) {
  Graph g = InputGraph();
  AddConv(g, "c1", "x");
  AddSilu(g, "c1", "h");
  g.AddNode(MakeNode("add", "Add", {"h", "x"}, {"y"}));
  g.AddNode(MakeNode("other", "Sigmoid", {"h"}, {"z"}));
  g.AddOutput("y");
  g.AddOutput("z");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 3u);
  EXPECT_EQ(g.nodes()[0].inputs.size(), 3u);
}

TEST(FuseConvResidualTest, PlainConvWithoutActivationIsNotFused) {
  Graph g = InputGraph();
  AddConv(g, "c1", "x");
  g.AddNode(MakeNode("add", "Add", {"c1.out", "x"}, {"y"}));
  g.AddOutput("y");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  EXPECT_EQ(g.nodes().size(), 2u);
}

// Add(a, b) where both are fused convs read only by the Add: the later one takes the residual,
// and a residual produced after its Conv in node order gets the nodes re-sorted.
TEST(FuseConvResidualTest, LaterConvTakesTheResidualAndGraphStaysSorted) {
  Graph g = InputGraph();
  AddConv(g, "early", "x");
  AddSilu(g, "early", "a");
  AddConv(g, "late", "x");
  AddSilu(g, "late", "b");
  g.AddNode(MakeNode("add", "Add", {"b", "a"}, {"y"}));
  g.AddOutput("y");
  ASSERT_TRUE(FuseConvActivations(&g).ok());
  ASSERT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.nodes()[0].name, "early");
  EXPECT_EQ(g.nodes()[1].name, "late");
  EXPECT_THAT(g.nodes()[1].inputs, ElementsAre("x", "late.w", "late.b", "a"));

  // Same graph with the producer of the residual listed after the Conv that absorbs it.
  Graph h = InputGraph();
  AddConv(h, "c", "x");
  AddSilu(h, "c", "m");
  h.AddNode(MakeNode("add", "Add", {"m", "r"}, {"y"}));
  h.AddNode(MakeNode("make_r", "Sigmoid", {"x"}, {"r"}));
  h.SetValue(Value{"r", DType::kFloat32, kShape});
  h.AddOutput("y");
  ASSERT_TRUE(FuseConvActivations(&h).ok());
  ASSERT_EQ(h.nodes().size(), 2u);
  EXPECT_EQ(h.nodes()[0].name, "make_r");
  EXPECT_EQ(h.nodes()[1].name, "c");
  EXPECT_THAT(h.nodes()[1].inputs, ElementsAre("x", "c.w", "c.b", "r"));
  EXPECT_TRUE(h.Validate().ok());
}

}  // namespace
}  // namespace yolopipe
