#include "runtime/executor.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

Tensor RandomTensor(const Shape& shape, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

Node ConvNode(const std::string& name, const std::vector<std::string>& inputs,
              const std::string& output, bool silu) {
  Node n;
  n.name = name;
  n.op_type = "Conv";
  n.inputs = inputs;
  n.outputs = {output};
  n.attrs.Set("kernel_shape", std::vector<int64_t>{3, 3});
  n.attrs.Set("pads", std::vector<int64_t>{1, 1, 1, 1});
  n.attrs.Set("strides", std::vector<int64_t>{1, 1});
  if (silu) n.attrs.Set("activation", std::string("silu"));
  return n;
}

// x(1,3,8,8) -> conv+silu -> a(1,4,8,8) -> conv+silu+residual(a) -> b -> concat(a,b) -> c(1,8,8,8)
// -> maxpool k2 s2 -> d(1,8,4,4) -> reshape (1,8,16) -> out
Graph SmallGraph() {
  Graph g;
  g.AddInput({"x", DType::kFloat32, {1, 3, 8, 8}});
  g.AddInitializer("w1", RandomTensor({4, 3, 3, 3}, 1, 0.5f));
  g.AddInitializer("b1", RandomTensor({4}, 2, 0.1f));
  g.AddInitializer("w2", RandomTensor({4, 4, 3, 3}, 3, 0.5f));
  g.AddInitializer("b2", RandomTensor({4}, 4, 0.1f));
  g.AddInitializer("shape", Tensor::FromInt64s({3}, {1, 8, -1}));
  g.AddNode(ConvNode("conv1", {"x", "w1", "b1"}, "a", true));
  g.AddNode(ConvNode("conv2", {"a", "w2", "b2", "a"}, "b", true));
  Node concat;
  concat.name = "concat";
  concat.op_type = "Concat";
  concat.inputs = {"a", "b"};
  concat.outputs = {"c"};
  concat.attrs.Set("axis", int64_t{1});
  g.AddNode(concat);
  Node pool;
  pool.name = "pool";
  pool.op_type = "MaxPool";
  pool.inputs = {"c"};
  pool.outputs = {"d"};
  pool.attrs.Set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.attrs.Set("strides", std::vector<int64_t>{2, 2});
  g.AddNode(pool);
  Node reshape;
  reshape.name = "reshape";
  reshape.op_type = "Reshape";
  reshape.inputs = {"d", "shape"};
  reshape.outputs = {"out"};
  g.AddNode(reshape);
  g.AddOutput("out");
  g.SetValue({"a", DType::kFloat32, {1, 4, 8, 8}});
  g.SetValue({"b", DType::kFloat32, {1, 4, 8, 8}});
  g.SetValue({"c", DType::kFloat32, {1, 8, 8, 8}});
  g.SetValue({"d", DType::kFloat32, {1, 8, 4, 4}});
  g.SetValue({"out", DType::kFloat32, {1, 8, 16}});
  return g;
}

// Straightforward NCHW computation of SmallGraph, independent of every kernel.
Tensor Expected(const Graph& g, const Tensor& x) {
  auto conv = [](const Tensor& in, const Tensor& w, const Tensor& b, const Tensor* residual) {
    const int64_t ci = in.dim(1), co = w.dim(0), h = in.dim(2), wd = in.dim(3);
    Tensor out(DType::kFloat32, {1, co, h, wd});
    for (int64_t o = 0; o < co; ++o)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < wd; ++xx) {
          double acc = b.data<float>()[o];
          for (int64_t c = 0; c < ci; ++c)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                const int64_t iy = y + ky - 1, ix = xx + kx - 1;
                if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
                acc += in.data<float>()[(c * h + iy) * wd + ix] *
                       w.data<float>()[((o * ci + c) * 3 + ky) * 3 + kx];
              }
          double v = acc / (1.0 + std::exp(-acc));
          if (residual) v += residual->data<float>()[(o * h + y) * wd + xx];
          out.data<float>()[(o * h + y) * wd + xx] = static_cast<float>(v);
        }
    return out;
  };
  Tensor a = conv(x, *g.FindInitializer("w1"), *g.FindInitializer("b1"), nullptr);
  Tensor b = conv(a, *g.FindInitializer("w2"), *g.FindInitializer("b2"), &a);
  Tensor out(DType::kFloat32, {1, 8, 16});
  for (int64_t c = 0; c < 8; ++c) {
    const Tensor& src = c < 4 ? a : b;
    const int64_t sc = c % 4;
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t xx = 0; xx < 4; ++xx) {
        float m = -INFINITY;
        for (int64_t dy = 0; dy < 2; ++dy)
          for (int64_t dx = 0; dx < 2; ++dx)
            m = std::max(m, src.data<float>()[(sc * 8 + 2 * y + dy) * 8 + 2 * xx + dx]);
        out.data<float>()[c * 16 + y * 4 + xx] = m;
      }
  }
  return out;
}

void ExpectNear(const Tensor& got, const Tensor& want, float tol) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], tol) << "element " << i;
  }
}

class ExecutorBackendTest : public ::testing::TestWithParam<ops::Backend> {};

TEST_P(ExecutorBackendTest, MatchesIndependentComputation) {
  const Graph g = SmallGraph();
  ExecutorOptions options;
  options.backend = GetParam();
  auto ex = Executor::Create(g, options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  const Tensor x = RandomTensor({1, 3, 8, 8}, 9);
  auto out = (*ex)->Run({x});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].layout(), Layout::kPlain);
  // fp32 sums of <= 36 products of O(1) values: 1e-4 absolute is ~100 ulps of headroom.
  ExpectNear((*out)[0], Expected(g, x), 1e-4f);
  // A second run over the reused arena gives the same bits.
  auto again = (*ex)->Run({x});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(BitwiseEqual((*out)[0], (*again)[0]));
}

INSTANTIATE_TEST_SUITE_P(Backends, ExecutorBackendTest,
                         ::testing::Values(ops::Backend::kReference, ops::Backend::kCpu));

TEST(ExecutorTest, ChannelsLastRegionEndsBeforeReshape) {
  ExecutorOptions options;
  options.backend = ops::Backend::kCpu;
  auto ex = Executor::Create(SmallGraph(), options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  // conv1 reads the plain input and opens an NHWC region; the reshape needs plain data, so exactly
  // one conversion back to plain must precede it, and none to NHWC is needed.
  int to_plain = 0, to_nhwc = 0;
  for (const ExecutionStep& s : (*ex)->steps()) {
    if (s.op_type != "LayoutConversion") continue;
    (s.output_layout == Layout::kPlain ? to_plain : to_nhwc)++;
  }
  EXPECT_EQ(to_plain, 1);
  EXPECT_LE(to_nhwc, 1);
  EXPECT_EQ((*ex)->steps().front().op_type == "Conv" ||
                (*ex)->steps().front().op_type == "LayoutConversion",
            true);
}

TEST(ExecutorTest, ArenaReusesMemory) {
  ExecutorOptions options;
  options.backend = ops::Backend::kReference;
  auto ex = Executor::Create(SmallGraph(), options);
  ASSERT_TRUE(ex.ok());
  EXPECT_LT((*ex)->arena_bytes(), (*ex)->unplanned_activation_bytes() + 64 * 8);
  EXPECT_GT((*ex)->weight_bytes(), 0u);
}

TEST(ExecutorTest, RejectsWrongInputShape) {
  auto ex = Executor::Create(SmallGraph(), ExecutorOptions{});
  ASSERT_TRUE(ex.ok());
  auto out = (*ex)->Run({RandomTensor({1, 3, 8, 9}, 1)});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("input 'x'"));
  EXPECT_THAT(out.status().message(), HasSubstr("(1, 3, 8, 8)"));
}

TEST(ExecutorTest, RejectsUnboundShapes) {
  Graph g = SmallGraph();
  g.SetValue({"c", DType::kFloat32, {kUnknownDim, 8, 8, 8}});
  auto ex = Executor::Create(g, ExecutorOptions{});
  ASSERT_FALSE(ex.ok());
  EXPECT_THAT(ex.status().message(), HasSubstr("'c'"));
}

TEST(ExecutorTest, UnsupportedOpNamesTheNode) {
  Graph g = SmallGraph();
  g.mutable_nodes()[2].op_type = "FancyAttention";
  auto ex = Executor::Create(g, ExecutorOptions{});
  ASSERT_FALSE(ex.ok());
  EXPECT_THAT(ex.status().message(), HasSubstr("concat"));
  EXPECT_THAT(ex.status().message(), HasSubstr("FancyAttention"));
}

}  // namespace
}  // namespace yolopipe

namespace yolopipe {
namespace {

TEST(ExecutorTest, PlainReshapeIsAZeroCopyView) {
  // The final Reshape reads the pool output in plain layout (the kReference backend never goes
  // channels-last), so it must be a view and the result must still be right.
  ExecutorOptions options;
  options.backend = ops::Backend::kReference;
  const Graph g = SmallGraph();
  auto ex = Executor::Create(g, options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  bool reshape_is_view = false;
  for (const ExecutionStep& s : (*ex)->steps()) {
    if (s.name == "reshape") reshape_is_view = s.view;
  }
  EXPECT_TRUE(reshape_is_view);
  const Tensor x = RandomTensor({1, 3, 8, 8}, 21);
  auto out = (*ex)->Run({x});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear((*out)[0], Expected(g, x), 1e-4f);
}

}  // namespace
}  // namespace yolopipe
