// kCpu MaxPool against the reference, plain and NHWC. A max is exact: results must be equal.
#include "ops/cpu/max_pool.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/cpu/cpu_test_util.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"

namespace yolopipe::ops {
namespace {

using ::testing::HasSubstr;
using testing::CpuCase;
using testing::CpuCreateStatus;
using testing::CpuMatchesReference;
using testing::RandomFloats;

struct PoolCase {
  int64_t k, stride, pad, dilation;
  bool ceil;
};

Attributes PoolAttrs(const PoolCase& p) {
  Attributes a;
  a.Set("kernel_shape", std::vector<int64_t>{p.k, p.k});
  a.Set("strides", std::vector<int64_t>{p.stride, p.stride});
  a.Set("pads", std::vector<int64_t>{p.pad, p.pad, p.pad, p.pad});
  a.Set("dilations", std::vector<int64_t>{p.dilation, p.dilation});
  a.Set("ceil_mode", int64_t{p.ceil ? 1 : 0});
  return a;
}

TEST(CpuMaxPoolTest, MatchesReferenceInBothLayouts) {
  std::mt19937 rng(1);
  const std::vector<PoolCase> pools = {
      {5, 1, 2, 1, false},  // SPPF
      {3, 2, 1, 1, false},
      {2, 2, 0, 1, true},   // ceil mode with a partial last window on odd sizes
      {3, 1, 2, 2, false},  // dilation
  };
  for (const PoolCase& p : pools) {
    for (int64_t c : {3, 17, 144}) {
      for (int64_t n : {1, 3}) {
        for (Layout layout : {Layout::kPlain, Layout::kNHWC}) {
          CpuCase cs{"MaxPool", PoolAttrs(p), {RandomFloats({n, c, 9, 7}, rng)}, {}, {layout}};
          cs.num_threads = c == 144 ? 2 : 1;
          EXPECT_TRUE(CpuMatchesReference(cs, layout))
              << "k" << p.k << " s" << p.stride << " p" << p.pad << " d" << p.dilation
              << " c" << c << " n" << n << " " << LayoutName(layout);
        }
      }
    }
  }
}

// Larger inputs on two threads: SPPF's 5x5 window reuses each row's horizontal maxima across
// output rows; a dilation equal to the kernel size makes every tap of a window share one ring
// slot; stride 2 skips rows.
TEST(CpuMaxPoolTest, RowReuseAcrossOutputRowsNhwc) {
  std::mt19937 rng(2);
  for (const PoolCase& p : std::vector<PoolCase>{{5, 1, 2, 1, false},
                                                 {3, 1, 3, 3, false},
                                                 {3, 2, 1, 1, true},
                                                 {1, 1, 0, 1, false}}) {
    CpuCase cs{"MaxPool", PoolAttrs(p), {RandomFloats({3, 40, 20, 21}, rng)}, {}, {Layout::kNHWC}};
    cs.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(cs, Layout::kNHWC))
        << "k" << p.k << " s" << p.stride << " p" << p.pad << " d" << p.dilation;
  }
}

// Ties between -0 and +0 resolve to the first one in window order and NaNs are skipped, as in
// the reference; compared bit for bit (== would not tell the zeros apart).
TEST(CpuMaxPoolTest, ZeroSignsAndNaNsMatchReferenceBitwise) {
  std::mt19937 rng(3);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> pool = {0.0f, -0.0f, -0.0f, 0.0f, nan, -inf, -1.0f};
  Tensor x(DType::kFloat32, {2, 11, 9, 10});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = pool[rng() % pool.size()];
  const Attributes attrs = PoolAttrs({3, 1, 1, 1, false});
  auto ref =
      testing::CreateAndRun(Backend::kReference, testing::MakeSpec("MaxPool", attrs, {x}, {}), {x});
  ASSERT_TRUE(ref.ok()) << ref.status();
  const Tensor nhwc = *x.ToLayout(Layout::kNHWC);
  auto cpu = testing::CreateAndRun(Backend::kCpu, testing::MakeSpec("MaxPool", attrs, {nhwc}, {}),
                                   {nhwc}, 2);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(BitwiseEqual(*(*cpu)[0].ToLayout(Layout::kPlain), (*ref)[0]));
  // The data really has zero maxima of both signs.
  int negative_zeros = 0;
  for (int64_t i = 0; i < (*ref)[0].num_elements(); ++i) {
    const float v = (*ref)[0].data<float>()[i];
    negative_zeros += v == 0.0f && std::signbit(v);
  }
  EXPECT_GT(negative_zeros, 0);
}

TEST(CpuMaxPoolTest, RejectsLikeTheReference) {
  Attributes no_kernel;
  CpuCase c{"MaxPool", no_kernel, {Tensor(DType::kFloat32, {1, 3, 8, 8})}, {}, {Layout::kNHWC}};
  absl::Status s = CpuCreateStatus(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("kernel_shape"));
  CpuCase big{"MaxPool", PoolAttrs({9, 1, 0, 1, false}), {Tensor(DType::kFloat32, {1, 3, 8, 8})},
              {}, {Layout::kNHWC}};
  EXPECT_THAT(CpuCreateStatus(big).message(), HasSubstr("does not fit"));
}

}  // namespace
}  // namespace yolopipe::ops
