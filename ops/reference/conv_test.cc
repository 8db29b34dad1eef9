#include "ops/reference/conv.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeSpec;
using testing::RandomFloats;
using testing::RunReference;
using testing::ToFloats;

// An independent, per-output-pixel convolution in double precision (explicit pads).
std::vector<double> NaiveConv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t group,
                              int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt,
                              int64_t pl, int64_t oh, int64_t ow, bool silu,
                              const Tensor* residual) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t m = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  std::vector<double> y(n * m * oh * ow);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t om = 0; om < m; ++om)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t g = om / (m / group);
          double s = b ? b->data<float>()[om] : 0.0;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * sh - pt + ky * dh;
                const int64_t ix = ox * sw - pl + kx * dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                const int64_t ic = g * cg + ci;
                s += static_cast<double>(x.data<float>()[((in * c + ic) * h + iy) * wd + ix]) *
                     w.data<float>()[((om * cg + ci) * kh + ky) * kw + kx];
              }
          if (silu) s = s / (1.0 + std::exp(-s));
          const int64_t i = ((in * m + om) * oh + oy) * ow + ox;
          if (residual) s += residual->data<float>()[i];
          y[i] = s;
        }
  return y;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    // Float accumulation of a few dozen products against a double oracle.
    EXPECT_NEAR(got[i], want[i], 1e-5 + 1e-5 * std::abs(want[i])) << "at " << i;
  }
}

Attributes ConvAttrs(std::vector<int64_t> strides, std::vector<int64_t> pads) {
  Attributes a;
  a.Set("strides", strides);
  a.Set("pads", pads);
  return a;
}

TEST(ConvTest, HandComputed2x2KernelOfOnes) {
  // X = 1..9 in a 3x3 plane; a 2x2 window of ones sums 4 neighbours.
  Tensor x = Tensor::FromFloats({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = Tensor::FromFloats({1, 1, 2, 2}, {1, 1, 1, 1});
  auto y = RunReference("Conv", Attributes(), {x, w}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 1, 2, 2}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(12, 16, 24, 28));
}

TEST(ConvTest, HandComputedPaddedStridedWithBias) {
  // 3x3 ones, pad 1, stride 2 over 1..9: windows centred on (0,0), (0,2), (2,0), (2,2) cover
  // {1,2,4,5}, {2,3,5,6}, {4,5,7,8}, {5,6,8,9}; plus bias 1.
  Tensor x = Tensor::FromFloats({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = Tensor::FromFloats({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  Tensor b = Tensor::FromFloats({1}, {1.0f});
  auto y = RunReference("Conv", ConvAttrs({2, 2}, {1, 1, 1, 1}), {x, w, b}, {1, 2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(ToFloats(*y), ElementsAre(13, 17, 25, 29));
}

TEST(ConvTest, HandComputedSiluAndResidual) {
  // 1x1 conv with weight 1: y = silu(x + b) + r. silu(0) = 0, silu(2) = 2 / (1 + e^-2).
  Tensor x = Tensor::FromFloats({1, 1, 1, 2}, {-1.0f, 1.0f});
  Tensor w = Tensor::FromFloats({1, 1, 1, 1}, {1.0f});
  Tensor b = Tensor::FromFloats({1}, {1.0f});
  Tensor r = Tensor::FromFloats({1, 1, 1, 2}, {10.0f, 20.0f});
  Attributes a;
  a.Set("activation", std::string("silu"));
  auto y = RunReference("Conv", a, {x, w, b, r}, {1, 2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_NEAR(ToFloats(*y)[0], 10.0, 1e-6);
  EXPECT_NEAR(ToFloats(*y)[1], 20.0 + 2.0 / (1.0 + std::exp(-2.0)), 1e-5);
}

TEST(ConvTest, MatchesNaiveLoopWithGroupsDilationAsymmetricPads) {
  std::mt19937 rng(7);
  Tensor x = RandomFloats({2, 4, 7, 6}, rng);
  Tensor w = RandomFloats({6, 2, 3, 2}, rng);  // group 2: 4 input channels, 6 outputs
  Tensor b = RandomFloats({6}, rng);
  Attributes a = ConvAttrs({2, 1}, {1, 0, 2, 1});
  a.Set("dilations", std::vector<int64_t>{2, 1});
  a.Set("group", int64_t{2});
  a.Set("kernel_shape", std::vector<int64_t>{3, 2});
  // H: (7 + 1 + 2 - 5) / 2 + 1 = 3; W: (6 + 0 + 1 - 2) / 1 + 1 = 6.
  auto y = RunReference("Conv", a, {x, w, b}, {1, 2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 6, 3, 6}));
  ExpectClose(ToFloats(*y), NaiveConv(x, w, &b, 2, 2, 1, 2, 1, 1, 0, 3, 6, false, nullptr));
}

TEST(ConvTest, MatchesNaiveLoopWithSiluAndResidual) {
  std::mt19937 rng(11);
  Tensor x = RandomFloats({1, 3, 5, 5}, rng);
  Tensor w = RandomFloats({4, 3, 3, 3}, rng);
  Tensor b = RandomFloats({4}, rng);
  Tensor r = RandomFloats({1, 4, 5, 5}, rng);
  Attributes a = ConvAttrs({1, 1}, {1, 1, 1, 1});
  a.Set("activation", std::string("silu"));
  auto y = RunReference("Conv", a, {x, w, b, r}, {1, 2});
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectClose(ToFloats(*y), NaiveConv(x, w, &b, 1, 1, 1, 1, 1, 1, 1, 5, 5, true, &r));
}

TEST(ConvTest, AutoPadSameUpperAndLowerPlaceTheOddPad) {
  std::mt19937 rng(3);
  Tensor x = RandomFloats({1, 1, 5, 5}, rng);
  Tensor w = RandomFloats({1, 1, 4, 4}, rng);
  // out = ceil(5/2) = 3, total pad = 2*2 + 4 - 5 = 3: UPPER pads 1 before, LOWER 2 before.
  Attributes upper;
  upper.Set("auto_pad", std::string("SAME_UPPER"));
  upper.Set("strides", std::vector<int64_t>{2, 2});
  auto yu = RunReference("Conv", upper, {x, w}, {1});
  ASSERT_TRUE(yu.ok()) << yu.status();
  EXPECT_EQ(yu->shape(), (Shape{1, 1, 3, 3}));
  ExpectClose(ToFloats(*yu), NaiveConv(x, w, nullptr, 1, 2, 2, 1, 1, 1, 1, 3, 3, false, nullptr));
  Attributes lower = upper;
  lower.Set("auto_pad", std::string("SAME_LOWER"));
  auto yl = RunReference("Conv", lower, {x, w}, {1});
  ASSERT_TRUE(yl.ok());
  ExpectClose(ToFloats(*yl), NaiveConv(x, w, nullptr, 1, 2, 2, 1, 1, 2, 2, 3, 3, false, nullptr));
  Attributes valid;
  valid.Set("auto_pad", std::string("VALID"));
  auto yv = RunReference("Conv", valid, {x, w}, {1});
  ASSERT_TRUE(yv.ok());
  EXPECT_EQ(yv->shape(), (Shape{1, 1, 2, 2}));
}

TEST(ConvTest, GeometryReportsFlops) {
  KernelSpec spec = MakeSpec("Conv", ConvAttrs({1, 1}, {1, 1, 1, 1}),
                             {Tensor(DType::kFloat32, {8, 32, 16, 16}),
                              Tensor(DType::kFloat32, {32, 32, 3, 3})}, {});
  auto params = ParseConvParams(spec);
  ASSERT_TRUE(params.ok());
  auto g = ComputeConvGeometry(spec, *params, spec.inputs);
  ASSERT_TRUE(g.ok());
  EXPECT_DOUBLE_EQ(g->flops(), 2.0 * 8 * 32 * 16 * 16 * 32 * 9);
}

// --- rejections: every message names the node and the offending thing ---

absl::Status ConvStatus(const Attributes& a, const std::vector<Shape>& shapes,
                        Layout x_layout = Layout::kPlain) {
  std::vector<Tensor> inputs;
  for (const Shape& s : shapes) inputs.emplace_back(DType::kFloat32, s);
  KernelSpec spec = MakeSpec("Conv", a, inputs, {});
  spec.inputs[0].layout = x_layout;
  return testing::CreateAndReshapeStatus(Backend::kReference, spec);
}

void ExpectRejected(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok()) << "expected rejection mentioning " << what;
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr(what));
}

TEST(ConvRejectsTest, WrongRanks) {
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8}, {4, 3, 3}}), "float32(1, 3, 8) (rank 3");
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}, {4, 3, 3, 3, 3}}), "rank 5");
  Attributes k3d;
  k3d.Set("kernel_shape", std::vector<int64_t>{3, 3, 3});
  ExpectRejected(ConvStatus(k3d, {{1, 3, 8, 8}, {4, 3, 3, 3}}), "only 2-D");
}

TEST(ConvRejectsTest, ChannelMismatchAndGroup) {
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}, {4, 2, 3, 3}}), "channel mismatch");
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}, {4, 2, 3, 3}}), "(4, 2, 3, 3)");
  Attributes g2;
  g2.Set("group", int64_t{2});
  ExpectRejected(ConvStatus(g2, {{1, 4, 8, 8}, {3, 2, 3, 3}}), "group 2 does not divide the 3");
  Attributes g0;
  g0.Set("group", int64_t{0});
  ExpectRejected(ConvStatus(g0, {{1, 4, 8, 8}, {4, 4, 3, 3}}), "group must be >= 1");
}

TEST(ConvRejectsTest, AttributeLengthsAndValues) {
  ExpectRejected(ConvStatus(ConvAttrs({1, 1}, {1, 1}), {{1, 3, 8, 8}, {4, 3, 3, 3}}),
                 "'pads' must have 4 entries");
  ExpectRejected(ConvStatus(ConvAttrs({1, 1, 1}, {0, 0, 0, 0}), {{1, 3, 8, 8}, {4, 3, 3, 3}}),
                 "'strides' must have 2 entries");
  ExpectRejected(ConvStatus(ConvAttrs({0, 1}, {0, 0, 0, 0}), {{1, 3, 8, 8}, {4, 3, 3, 3}}),
                 "strides must be >= 1");
  ExpectRejected(ConvStatus(ConvAttrs({1, 1}, {0, -1, 0, 0}), {{1, 3, 8, 8}, {4, 3, 3, 3}}),
                 "pads must be >= 0");
  Attributes ks;
  ks.Set("kernel_shape", std::vector<int64_t>{5, 5});
  ExpectRejected(ConvStatus(ks, {{1, 3, 8, 8}, {4, 3, 3, 3}}), "kernel_shape [5, 5] does not match");
  Attributes act;
  act.Set("activation", std::string("gelu"));
  ExpectRejected(ConvStatus(act, {{1, 3, 8, 8}, {4, 3, 3, 3}}), "unsupported activation 'gelu'");
  Attributes ap;
  ap.Set("auto_pad", std::string("SAME"));
  ExpectRejected(ConvStatus(ap, {{1, 3, 8, 8}, {4, 3, 3, 3}}), "auto_pad 'SAME'");
  Attributes wrong_kind;
  wrong_kind.Set("group", std::string("two"));
  ExpectRejected(ConvStatus(wrong_kind, {{1, 3, 8, 8}, {4, 3, 3, 3}}), "group");
}

TEST(ConvRejectsTest, BiasResidualAndWindow) {
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}, {4, 3, 3, 3}, {3}}),
                 "bias B is float32(3,), expected float32(4,)");
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}, {4, 3, 3, 3}, {4}, {1, 4, 8, 8}}),
                 "residual is float32(1, 4, 8, 8), expected float32(1, 4, 6, 6)");
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 2, 2}, {4, 3, 3, 3}}), "does not fit");
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}}), "input 1 is missing");
}

TEST(ConvRejectsTest, ChannelsLastInputAndIntegerDType) {
  ExpectRejected(ConvStatus(Attributes(), {{1, 3, 8, 8}, {4, 3, 3, 3}}, Layout::kNHWC),
                 "channels-last");
  KernelSpec spec = MakeSpec("Conv", Attributes(),
                             {Tensor(DType::kInt64, {1, 3, 8, 8}),
                              Tensor(DType::kFloat32, {4, 3, 3, 3})}, {});
  ExpectRejected(testing::CreateAndReshapeStatus(Backend::kReference, spec),
                 "'X' has unsupported dtype int64");
}

}  // namespace
}  // namespace yolopipe::ops
