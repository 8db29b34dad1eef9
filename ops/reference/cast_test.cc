#include "ops/reference/cast.h"

#include <cmath>
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
using testing::Bools;
using testing::MakeSpec;
using testing::RunReference;
using testing::ToFloats;
using testing::ToInt64s;

Tensor CastTo(const Tensor& x, DType to) {
  Attributes attrs;
  attrs.Set("to", int64_t{DTypeToOnnx(to)});
  auto out = RunReference("Cast", attrs, {x});
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return Tensor();
  EXPECT_EQ(out->dtype(), to);
  return *out;
}

TEST(CastTest, FloatToIntegerTruncatesTowardZero) {
  Tensor x = Tensor::FromFloats({4}, {2.7f, -2.7f, 0.5f, -0.5f});
  EXPECT_THAT(ToInt64s(CastTo(x, DType::kInt64)), ElementsAre(2, -2, 0, 0));
  EXPECT_THAT(ToInt64s(CastTo(x, DType::kInt32)), ElementsAre(2, -2, 0, 0));
}

TEST(CastTest, FloatToIntegerSaturatesAndMapsNanToZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::FromFloats({3}, {nan, 1e30f, -1e30f});
  EXPECT_THAT(ToInt64s(CastTo(x, DType::kInt32)),
              ElementsAre(0, std::numeric_limits<int32_t>::max(),
                          std::numeric_limits<int32_t>::min()));
}

TEST(CastTest, IntegerToFloatAndBool) {
  Tensor x = Tensor::FromInt64s({3}, {-3, 0, 5});
  EXPECT_THAT(ToFloats(CastTo(x, DType::kFloat32)), ElementsAre(-3, 0, 5));
  EXPECT_THAT(ToInt64s(CastTo(x, DType::kBool)), ElementsAre(1, 0, 1));
  Tensor d = CastTo(x, DType::kFloat64);
  EXPECT_EQ(d.data<double>()[2], 5.0);
}

TEST(CastTest, BoolToNumbersAndFloat64ToFloat32) {
  Tensor b = Bools({2}, {true, false});
  EXPECT_THAT(ToInt64s(CastTo(b, DType::kInt32)), ElementsAre(1, 0));
  EXPECT_THAT(ToFloats(CastTo(b, DType::kFloat32)), ElementsAre(1, 0));
  Tensor d = testing::Float64s({2}, {0.25, -1e10});
  EXPECT_THAT(ToFloats(CastTo(d, DType::kFloat32)), ElementsAre(0.25f, -1e10f));
  Tensor f = Tensor::FromFloats({2}, {0.0f, -0.1f});
  EXPECT_THAT(ToInt64s(CastTo(f, DType::kBool)), ElementsAre(0, 1));
}

TEST(CastTest, Int64ToInt32KeepsLowBits) {
  Tensor x = Tensor::FromInt64s({2}, {(int64_t{1} << 32) + 7, -1});
  EXPECT_THAT(ToInt64s(CastTo(x, DType::kInt32)), ElementsAre(7, -1));
}

TEST(CastTest, RejectsMissingAndUnsupportedTargets) {
  Tensor x = Tensor::FromFloats({1}, {1.0f});
  auto missing = KernelRegistry::Global().Create(Backend::kReference,
                                                 MakeSpec("Cast", Attributes(), {x}, {}));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("test_node"));
  EXPECT_THAT(missing.status().message(), HasSubstr("'to'"));
  Attributes half;
  half.Set("to", int64_t{10});  // float16
  auto h = KernelRegistry::Global().Create(Backend::kReference, MakeSpec("Cast", half, {x}, {}));
  ASSERT_FALSE(h.ok());
  EXPECT_THAT(h.status().message(), HasSubstr("to=10"));
  Attributes str;
  str.Set("to", int64_t{8});  // string
  EXPECT_FALSE(KernelRegistry::Global().Create(Backend::kReference,
                                               MakeSpec("Cast", str, {x}, {})).ok());
}

TEST(CastTest, RejectsUnsupportedInputDType) {
  Attributes attrs;
  attrs.Set("to", int64_t{1});
  auto s = testing::CreateAndReshapeStatus(
      Backend::kReference, MakeSpec("Cast", attrs, {Tensor(DType::kFloat16, {2})}, {}));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("float16(2,)"));
}

}  // namespace
}  // namespace yolopipe::ops
