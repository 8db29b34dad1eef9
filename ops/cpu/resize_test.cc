// kCpu Resize (nearest) against the reference, plain and NHWC. Data movement: results must be
// equal.
#include "ops/cpu/resize.h"

#include <random>
#include <string>
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

Attributes ResizeAttrs(const std::string& ctm, const std::string& nearest) {
  Attributes a;
  a.Set("mode", std::string("nearest"));
  a.Set("coordinate_transformation_mode", ctm);
  a.Set("nearest_mode", nearest);
  return a;
}

CpuCase ScalesCase(const Attributes& a, const Tensor& x, std::vector<float> scales,
                   Layout layout) {
  return CpuCase{"Resize", a, {x, Tensor(), Tensor::FromFloats({4}, scales)}, {2}, {layout}};
}

TEST(CpuResizeTest, YoloUpsampleX2InBothLayouts) {
  std::mt19937 rng(1);
  for (int64_t c : {3, 17, 144}) {
    for (int64_t n : {1, 3}) {
      for (Layout layout : {Layout::kPlain, Layout::kNHWC}) {
        CpuCase cs = ScalesCase(ResizeAttrs("asymmetric", "floor"),
                                RandomFloats({n, c, 5, 7}, rng), {1, 1, 2, 2}, layout);
        cs.num_threads = 2;
        EXPECT_TRUE(CpuMatchesReference(cs, layout)) << "c" << c << " n" << n;
      }
    }
  }
}

TEST(CpuResizeTest, GeneralScalesAndModes) {
  std::mt19937 rng(2);
  const std::vector<std::pair<std::string, std::string>> modes = {
      {"asymmetric", "floor"},
      {"half_pixel", "round_prefer_floor"},
      {"half_pixel", "round_prefer_ceil"},
      {"align_corners", "round_prefer_floor"},
      {"pytorch_half_pixel", "ceil"},
  };
  const std::vector<std::vector<float>> scales = {
      {1, 1, 3, 3}, {1, 1, 1.5f, 2.5f}, {1, 1, 0.5f, 0.75f}, {1, 2, 2, 1}, {2, 1, 1, 2}};
  for (const auto& [ctm, nearest] : modes) {
    for (const auto& s : scales) {
      for (Layout layout : {Layout::kPlain, Layout::kNHWC}) {
        CpuCase cs = ScalesCase(ResizeAttrs(ctm, nearest), RandomFloats({2, 5, 6, 8}, rng), s,
                                layout);
        EXPECT_TRUE(CpuMatchesReference(cs, layout))
            << ctm << "/" << nearest << " scales " << s[0] << "," << s[1] << "," << s[2] << ","
            << s[3] << " " << LayoutName(layout);
      }
    }
  }
}

TEST(CpuResizeTest, SizesInputAndNon4DFallback) {
  std::mt19937 rng(3);
  CpuCase sizes{"Resize", ResizeAttrs("half_pixel", "round_prefer_floor"),
                {RandomFloats({1, 17, 6, 6}, rng), Tensor(), Tensor(),
                 Tensor::FromInt64s({4}, {1, 17, 13, 4})},
                {3},
                {Layout::kNHWC}};
  EXPECT_TRUE(CpuMatchesReference(sizes, Layout::kNHWC));
  // int64 3-D data runs the reference kernel inside the kCpu one.
  CpuCase ints{"Resize", ResizeAttrs("asymmetric", "floor"),
               {Tensor::FromInt64s({1, 2, 3}, {1, 2, 3, 4, 5, 6}), Tensor(),
                Tensor::FromFloats({3}, {1, 2, 2})},
               {2}};
  EXPECT_TRUE(CpuMatchesReference(ints, Layout::kPlain));
}

TEST(CpuResizeTest, RejectsLikeTheReference) {
  Attributes linear;
  linear.Set("mode", std::string("linear"));
  CpuCase cs = ScalesCase(linear, Tensor(DType::kFloat32, {1, 3, 4, 4}), {1, 1, 2, 2},
                          Layout::kNHWC);
  absl::Status s = CpuCreateStatus(cs);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("unsupported Resize mode 'linear'"));
  CpuCase not_constant{"Resize", Attributes(),
                       {Tensor(DType::kFloat32, {1, 3, 4, 4}), Tensor(),
                        Tensor::FromFloats({4}, {1, 1, 2, 2})},
                       {},
                       {Layout::kNHWC}};
  EXPECT_THAT(CpuCreateStatus(not_constant).message(),
              HasSubstr("input 'scales' must be a constant"));
}

}  // namespace
}  // namespace yolopipe::ops
