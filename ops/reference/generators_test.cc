#include "ops/reference/generators.h"

#include <limits>

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
using testing::Int32s;
using testing::MakeSpec;
using testing::RunReference;
using testing::ToFloats;
using testing::ToInt64s;

Tensor Range(const Tensor& start, const Tensor& limit, const Tensor& delta) {
  auto y = RunReference("Range", Attributes(), {start, limit, delta}, {0, 1, 2});
  EXPECT_TRUE(y.ok()) << y.status();
  return y.ok() ? *y : Tensor();
}

TEST(RangeTest, Int64PositiveAndNegativeDelta) {
  using T = Tensor;
  EXPECT_THAT(ToInt64s(Range(T::ScalarInt64(0), T::ScalarInt64(5), T::ScalarInt64(2))),
              ElementsAre(0, 2, 4));
  EXPECT_THAT(ToInt64s(Range(T::ScalarInt64(10), T::ScalarInt64(4), T::ScalarInt64(-3))),
              ElementsAre(10, 7));
  Tensor empty = Range(T::ScalarInt64(5), T::ScalarInt64(0), T::ScalarInt64(1));
  EXPECT_EQ(empty.shape(), (Shape{0}));
  Tensor i32 = Range(Int32s({}, {1}), Int32s({}, {4}), Int32s({}, {1}));
  EXPECT_EQ(i32.dtype(), DType::kInt32);
  EXPECT_THAT(ToInt64s(i32), ElementsAre(1, 2, 3));
}

TEST(RangeTest, FloatCountUsesCeil) {
  Tensor y = Range(Tensor::ScalarFloat(0.5f), Tensor::ScalarFloat(2.0f),
                   Tensor::ScalarFloat(0.5f));
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_THAT(ToFloats(y), ElementsAre(0.5, 1.0, 1.5));
  // (80 - 0) / 1 anchors, as the dynamic export builds its grid.
  EXPECT_EQ(Range(Tensor::ScalarFloat(0), Tensor::ScalarFloat(80), Tensor::ScalarFloat(1))
                .num_elements(),
            80);
}

TEST(RangeRejectsTest, ZeroDeltaNonConstantAndMixedTypes) {
  auto status = [](const std::vector<Tensor>& in, const std::vector<int>& constants) {
    return testing::CreateAndReshapeStatus(Backend::kReference,
                                           MakeSpec("Range", Attributes(), in, constants));
  };
  using T = Tensor;
  auto zero = status({T::ScalarInt64(0), T::ScalarInt64(4), T::ScalarInt64(0)}, {0, 1, 2});
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.message(), HasSubstr("test_node"));
  EXPECT_THAT(zero.message(), HasSubstr("delta must be non-zero"));
  EXPECT_THAT(status({T::ScalarInt64(0), T::ScalarInt64(4), T::ScalarInt64(1)}, {0, 2}).message(),
              HasSubstr("input 'limit' must be a constant"));
  EXPECT_THAT(status({T::ScalarInt64(0), T::ScalarFloat(4), T::ScalarInt64(1)}, {0, 1, 2})
                  .message(),
              HasSubstr("'limit' must be a one-element int64 tensor"));
  EXPECT_THAT(status({T::ScalarInt64(0), T::ScalarInt64(int64_t{1} << 40), T::ScalarInt64(1)},
                     {0, 1, 2})
                  .message(),
              HasSubstr("elements"));
  // Found by //fuzz:fuzz_onnx_import: counts beyond int64's range (undefined conversions and
  // overflowing subtractions before the fix) are refused.
  EXPECT_THAT(status({T::ScalarFloat(0), T::ScalarFloat(-4.8e24f), T::ScalarFloat(-1)}, {0, 1, 2})
                  .message(),
              HasSubstr("elements"));
  EXPECT_THAT(status({T::ScalarFloat(-3e38f), T::ScalarFloat(3e38f), T::ScalarFloat(1e-30f)},
                     {0, 1, 2})
                  .message(),
              HasSubstr("elements"));
  EXPECT_THAT(status({T::ScalarInt64(std::numeric_limits<int64_t>::min()),
                      T::ScalarInt64(std::numeric_limits<int64_t>::max()), T::ScalarInt64(1)},
                     {0, 1, 2})
                  .message(),
              HasSubstr("overflows"));
  // A float range running backwards is empty, not an error.
  EXPECT_TRUE(status({T::ScalarFloat(5), T::ScalarFloat(0), T::ScalarFloat(1)}, {0, 1, 2}).ok());
}

TEST(ConstantOfShapeTest, DefaultFloatZeroAndInt64Value) {
  auto zero = RunReference("ConstantOfShape", Attributes(), {Tensor::FromInt64s({2}, {2, 3})},
                           {0});
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->dtype(), DType::kFloat32);
  EXPECT_EQ(zero->shape(), (Shape{2, 3}));
  EXPECT_THAT(ToFloats(*zero), ElementsAre(0, 0, 0, 0, 0, 0));
  Attributes a;
  a.Set("value", Tensor::FromInt64s({1}, {7}));
  auto sevens = RunReference("ConstantOfShape", a, {Tensor::FromInt64s({1}, {3})}, {0});
  ASSERT_TRUE(sevens.ok());
  EXPECT_EQ(sevens->dtype(), DType::kInt64);
  EXPECT_THAT(ToInt64s(*sevens), ElementsAre(7, 7, 7));
  auto scalar = RunReference("ConstantOfShape", a, {Tensor::FromInt64s({0}, {})}, {0});
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->shape(), Shape{});
  EXPECT_THAT(ToInt64s(*scalar), ElementsAre(7));
}

TEST(ConstantOfShapeRejectsTest, NegativeNonConstantAndBadValue) {
  auto status = [](const Attributes& a, const Tensor& shape, bool constant) {
    return testing::CreateAndReshapeStatus(
        Backend::kReference,
        MakeSpec("ConstantOfShape", a, {shape}, constant ? std::vector<int>{0} : std::vector<int>{}));
  };
  EXPECT_THAT(status(Attributes(), Tensor::FromInt64s({2}, {2, -1}), true).message(),
              HasSubstr("negative"));
  EXPECT_THAT(status(Attributes(), Tensor::FromInt64s({2}, {2, 1}), false).message(),
              HasSubstr("must be a constant"));
  Attributes two;
  two.Set("value", Tensor::FromInt64s({2}, {1, 2}));
  EXPECT_THAT(status(two, Tensor::FromInt64s({1}, {2}), true).message(),
              HasSubstr("one element"));
}

}  // namespace
}  // namespace yolopipe::ops
