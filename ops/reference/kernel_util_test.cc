#include "ops/reference/kernel_util.h"

#include <array>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe::ops {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

KernelSpec Spec() {
  KernelSpec spec;
  spec.node_name = "util_node";
  spec.op_type = "Test";
  return spec;
}

TEST(BroadcastShapesTest, Multidirectional) {
  auto s = BroadcastShapes(Spec(), {{2, 1, 3}, {4, 1}, {}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre(2, 4, 3));
}

TEST(BroadcastShapesTest, RejectsIncompatibleAndNamesShapes) {
  auto s = BroadcastShapes(Spec(), {{2, 3}, {4}});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("util_node"));
  EXPECT_THAT(s.status().message(), HasSubstr("(2, 3)"));
  EXPECT_THAT(s.status().message(), HasSubstr("(4,)"));
}

TEST(BroadcastStridesTest, ZeroOnBroadcastDimensions) {
  EXPECT_THAT(BroadcastStrides({3, 1}, {2, 3, 4}), ElementsAre(0, 1, 0));
  EXPECT_THAT(BroadcastStrides({2, 3, 4}, {2, 3, 4}), ElementsAre(12, 4, 1));
  EXPECT_THAT(RowMajorStrides({2, 3, 4}), ElementsAre(12, 4, 1));
}

TEST(ForEachBroadcastElementTest, VisitsOffsetsInRowMajorOrder) {
  // a (2,1) and b (3,) broadcast to (2,3): a index = row, b index = column.
  std::array<std::vector<int64_t>, 2> strides = {BroadcastStrides({2, 1}, {2, 3}),
                                                 BroadcastStrides({3}, {2, 3})};
  std::vector<int64_t> seen;
  ForEachBroadcastElement<2>({2, 3}, strides, [&](int64_t i, const std::array<int64_t, 2>& off) {
    seen.push_back(i * 100 + off[0] * 10 + off[1]);
  });
  EXPECT_THAT(seen, ElementsAre(0, 101, 202, 310, 411, 512));
}

TEST(ForEachBroadcastElementTest, ScalarAndEmpty) {
  int calls = 0;
  std::array<std::vector<int64_t>, 1> none = {std::vector<int64_t>{}};
  ForEachBroadcastElement<1>({}, none, [&](int64_t, const std::array<int64_t, 1>&) { ++calls; });
  EXPECT_EQ(calls, 1);
  std::array<std::vector<int64_t>, 1> s = {std::vector<int64_t>{1, 1}};
  ForEachBroadcastElement<1>({0, 3}, s, [&](int64_t, const std::array<int64_t, 1>&) { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(NormalizeAxisTest, RangeAndMessage) {
  EXPECT_EQ(*NormalizeAxis(Spec(), -1, 4, "axis"), 3);
  EXPECT_EQ(*NormalizeAxis(Spec(), 2, 4, "axis"), 2);
  auto bad = NormalizeAxis(Spec(), 4, 4, "axis");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("axis 4 is out of range for rank 4"));
  EXPECT_FALSE(NormalizeAxis(Spec(), -5, 4, "axis").ok());
}

TEST(ComputeWindowAxisTest, ExplicitPadsFloorAndCeil) {
  // in 5, k 2, s 2: floor -> 2 windows, ceil -> 3 (the last one partial).
  auto f = ComputeWindowAxis(Spec(), "NOTSET", 5, 2, 2, 1, 0, 0, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->out, 2);
  auto c = ComputeWindowAxis(Spec(), "NOTSET", 5, 2, 2, 1, 0, 0, true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->out, 3);
  // in 4, k 3, s 2, pad 1+1, ceil: ceil((6-3)/2)+1 = 3; the last window starts at input index 3.
  auto d = ComputeWindowAxis(Spec(), "NOTSET", 4, 3, 2, 1, 1, 1, true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->out, 3);
  // in 5, k 2, s 2, pad 1+1, ceil: ceil((7-2)/2)+1 = 4, but window 3 would start at input index
  // 5, inside the end padding, so it is dropped.
  auto dropped = ComputeWindowAxis(Spec(), "NOTSET", 5, 2, 2, 1, 1, 1, true);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped->out, 3);
  // Dilation 2 with k 3 spans 5.
  auto e = ComputeWindowAxis(Spec(), "NOTSET", 7, 3, 1, 2, 0, 0, false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->out, 3);
}

TEST(ComputeWindowAxisTest, AutoPad) {
  // in 5, k 4, s 2 -> out 3, total pad (3-1)*2+4-5 = 3.
  auto upper = ComputeWindowAxis(Spec(), "SAME_UPPER", 5, 4, 2, 1, 0, 0, false);
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->out, 3);
  EXPECT_EQ(upper->pad_begin, 1);
  EXPECT_EQ(upper->pad_end, 2);
  auto lower = ComputeWindowAxis(Spec(), "SAME_LOWER", 5, 4, 2, 1, 0, 0, false);
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(lower->pad_begin, 2);
  EXPECT_EQ(lower->pad_end, 1);
  auto valid = ComputeWindowAxis(Spec(), "VALID", 5, 3, 1, 1, 7, 7, false);
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(valid->out, 3);
  EXPECT_EQ(valid->pad_begin, 0);
}

TEST(ComputeWindowAxisTest, Rejections) {
  auto too_big = ComputeWindowAxis(Spec(), "NOTSET", 2, 3, 1, 1, 0, 0, false);
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(too_big.status().message(), HasSubstr("does not fit"));
  auto bad_mode = ComputeWindowAxis(Spec(), "SAME", 2, 1, 1, 1, 0, 0, false);
  ASSERT_FALSE(bad_mode.ok());
  EXPECT_THAT(bad_mode.status().message(), HasSubstr("auto_pad 'SAME'"));
  EXPECT_FALSE(ComputeWindowAxis(Spec(), "NOTSET", 4, 1, 0, 1, 0, 0, false).ok());
  EXPECT_FALSE(ComputeWindowAxis(Spec(), "NOTSET", 4, 1, 1, 1, -1, 0, false).ok());
}

TEST(ConstantInt64sTest, RequiresConstant) {
  KernelSpec spec = Spec();
  spec.inputs = {TensorDesc{DType::kFloat32, {2}}, TensorDesc{DType::kInt64, {2}}};
  spec.constant_inputs = {Tensor(), Tensor()};
  auto missing = ConstantInt64s(spec, 1, "shape");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("input 'shape' must be a constant"));
  spec.constant_inputs[1] = Tensor::FromInt64s({2}, {3, -1});
  auto ok = ConstantInt64s(spec, 1, "shape");
  ASSERT_TRUE(ok.ok());
  EXPECT_THAT(*ok, ElementsAre(3, -1));
  spec.constant_inputs[1] = Tensor::FromFloats({2}, {1.0f, 2.0f});
  EXPECT_FALSE(ConstantInt64s(spec, 1, "shape").ok());
}

TEST(CheckPlainAndKnownTest, RejectsNhwcAndUnknown) {
  KernelSpec spec = Spec();
  std::vector<TensorDesc> nhwc = {TensorDesc{DType::kFloat32, {1, 2, 3, 4}, Layout::kNHWC}};
  auto s = CheckPlainAndKnown(spec, nhwc);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("channels-last"));
  std::vector<TensorDesc> unknown = {TensorDesc{DType::kFloat32, {kUnknownDim, 2}}};
  EXPECT_THAT(CheckPlainAndKnown(spec, unknown).message(), HasSubstr("not fully known"));
}

}  // namespace
}  // namespace yolopipe::ops
