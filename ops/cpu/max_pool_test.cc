// kCpu MaxPool against the reference, plain and NHWC. A max is exact: results must be equal.
#include "ops/cpu/max_pool.h"

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
