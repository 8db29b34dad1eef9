// kCpu Add/Mul/Sigmoid against the reference. Add and Mul run the same float operations as the
// reference, so their results must be bitwise equal; float32 Sigmoid uses a vectorised exp within
// 1 ulp of std::exp, so it must agree to kSigmoidRelTol.
#include "ops/cpu/elementwise.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/cpu/cpu_test_util.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

using ::testing::HasSubstr;
using testing::CpuCase;
using testing::CpuCreateStatus;
using testing::CpuMatchesReference;
using testing::MakeSpec;
using testing::RandomFloats;

TEST(CpuElementwiseTest, SameShapeInEveryLayoutCombination) {
  std::mt19937 rng(1);
  for (const char* op : {"Add", "Mul"}) {
    for (int64_t c : {3, 17, 144}) {
      for (int64_t n : {1, 3}) {
        Tensor a = RandomFloats({n, c, 6, 5}, rng);
        Tensor b = RandomFloats({n, c, 6, 5}, rng);
        CpuCase nhwc{op, Attributes(), {a, b}, {}, {Layout::kNHWC, Layout::kNHWC}};
        nhwc.num_threads = 2;
        EXPECT_TRUE(CpuMatchesReference(nhwc, Layout::kNHWC)) << op << " c" << c << " n" << n;
        CpuCase plain{op, Attributes(), {a, b}};
        EXPECT_TRUE(CpuMatchesReference(plain, Layout::kPlain));
        // Mixed: the plain operand is converted through the workspace.
        CpuCase mixed_a{op, Attributes(), {a, b}, {}, {Layout::kPlain, Layout::kNHWC}};
        EXPECT_TRUE(CpuMatchesReference(mixed_a, Layout::kNHWC));
        CpuCase mixed_b{op, Attributes(), {a, b}, {}, {Layout::kNHWC, Layout::kPlain}};
        EXPECT_TRUE(CpuMatchesReference(mixed_b, Layout::kNHWC));
      }
    }
  }
}

TEST(CpuElementwiseTest, OneElementOperandKeepsTheOtherLayout) {
  std::mt19937 rng(2);
  Tensor x = RandomFloats({3, 17, 4, 4}, rng);
  CpuCase scalar_b{"Mul", Attributes(), {x, Tensor::ScalarFloat(0.25f)}, {1}, {Layout::kNHWC}};
  EXPECT_TRUE(CpuMatchesReference(scalar_b, Layout::kNHWC));
  CpuCase scalar_a{"Add", Attributes(), {Tensor::FromFloats({1, 1, 1, 1}, {2.0f}), x}, {0},
                   {Layout::kPlain, Layout::kNHWC}};
  EXPECT_TRUE(CpuMatchesReference(scalar_a, Layout::kNHWC));
  CpuCase plain{"Add", Attributes(), {x, Tensor::ScalarFloat(1.0f)}};
  EXPECT_TRUE(CpuMatchesReference(plain, Layout::kPlain));
}

TEST(CpuElementwiseTest, PlainBroadcastingAndOtherDtypesUseReferenceSemantics) {
  std::mt19937 rng(3);
  CpuCase per_channel{"Mul", Attributes(),
                      {RandomFloats({2, 17, 3, 3}, rng), RandomFloats({17, 1, 1}, rng)}};
  EXPECT_TRUE(CpuMatchesReference(per_channel, Layout::kPlain));
  // The detect head's anchor arithmetic: (1, 2, 8400)-like against (1, 1, 8400)-like.
  CpuCase anchors{"Add", Attributes(),
                  {RandomFloats({1, 2, 50}, rng), RandomFloats({1, 1, 50}, rng)}};
  EXPECT_TRUE(CpuMatchesReference(anchors, Layout::kPlain));
  CpuCase ints{"Mul", Attributes(), {Tensor::FromInt64s({3}, {1, -2, 3}), Tensor::ScalarInt64(4)}};
  EXPECT_TRUE(CpuMatchesReference(ints, Layout::kPlain));
}

TEST(CpuElementwiseTest, RejectsNhwcWithRealBroadcastAndMismatches) {
  std::mt19937 rng(4);
  CpuCase per_channel{"Add", Attributes(),
                      {RandomFloats({1, 17, 3, 3}, rng), RandomFloats({1, 17, 1, 1}, rng)},
                      {1},
                      {Layout::kNHWC}};
  absl::Status s = CpuCreateStatus(per_channel);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("channels-last inputs need identical float32 shapes"));
  CpuCase bad{"Add", Attributes(), {RandomFloats({2, 3}, rng), RandomFloats({4}, rng)}};
  EXPECT_THAT(CpuCreateStatus(bad).message(), HasSubstr("cannot be broadcast"));
  CpuCase dtypes{"Mul", Attributes(), {RandomFloats({2}, rng), Tensor::FromInt64s({2}, {1, 2})}};
  EXPECT_THAT(CpuCreateStatus(dtypes).message(), HasSubstr("different dtypes"));
}

constexpr float kSigmoidRelTol = 1e-6f;

TEST(CpuSigmoidTest, AnyLayoutAndFloat64Fallback) {
  std::mt19937 rng(5);
  Tensor x = RandomFloats({3, 144, 5, 5}, rng, -30.0f, 30.0f);
  for (Layout layout : {Layout::kPlain, Layout::kNHWC}) {
    CpuCase c{"Sigmoid", Attributes(), {x}, {}, {layout}};
    c.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(c, layout, 0.0f, kSigmoidRelTol));
  }
  // Saturated and subnormal outputs (std::exp takes over outside the fast range), an odd count
  // for the scalar tail, and a size split across threads.
  std::vector<float> extremes = {-120.0f, -100.0f, -88.0f, -87.5f, -50.0f, -1e-30f, 0.0f,
                                 -0.0f,   1e-30f,  17.0f,  88.5f,  100.0f, 3e38f};
  CpuCase tails{"Sigmoid", Attributes(),
                {Tensor::FromFloats({static_cast<int64_t>(extremes.size())}, extremes)}};
  EXPECT_TRUE(CpuMatchesReference(tails, Layout::kPlain, 0.0f, kSigmoidRelTol));
  CpuCase large{"Sigmoid", Attributes(), {RandomFloats({2, 80, 1001}, rng, -20.0f, 20.0f)}};
  large.num_threads = 2;
  EXPECT_TRUE(CpuMatchesReference(large, Layout::kPlain, 0.0f, kSigmoidRelTol));
  CpuCase f64{"Sigmoid", Attributes(), {testing::Float64s({3}, {-1.0, 0.0, 2.0})}};
  EXPECT_TRUE(CpuMatchesReference(f64, Layout::kPlain));
  CpuCase ints{"Sigmoid", Attributes(), {Tensor::FromInt64s({1}, {1})}};
  EXPECT_THAT(CpuCreateStatus(ints).message(), HasSubstr("unsupported dtype int64"));
}

}  // namespace
}  // namespace yolopipe::ops
