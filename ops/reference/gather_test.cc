#include "ops/reference/gather.h"

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

Attributes Axis(int64_t axis) {
  Attributes a;
  a.Set("axis", axis);
  return a;
}

TEST(GatherTest, Axis0WithNegativeIndicesOnInt64) {
  // The dynamic YOLOv8 export gathers dimensions out of Shape's int64 output.
  Tensor data = Tensor::FromInt64s({4}, {1, 3, 640, 480});
  auto y = RunReference("Gather", Attributes(), {data, Tensor::FromInt64s({3}, {2, 0, -1})}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(ToInt64s(*y), ElementsAre(640, 1, 480));
}

TEST(GatherTest, ScalarIndexDropsTheAxis) {
  Tensor data = Tensor::FromInt64s({4}, {1, 3, 640, 480});
  auto y = RunReference("Gather", Attributes(), {data, Tensor::ScalarInt64(3)}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), Shape{});
  EXPECT_THAT(ToInt64s(*y), ElementsAre(480));
}

TEST(GatherTest, Axis1WithMatrixOfInt32Indices) {
  // data (2, 3); indices (2, 2) along axis 1 -> (2, 2, 2): out[i][j][k] = data[i][idx[j][k]].
  Tensor data = Tensor::FromFloats({2, 3}, {0, 1, 2, 10, 11, 12});
  auto y = RunReference("Gather", Axis(1), {data, Int32s({2, 2}, {2, 0, 1, 1})});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 2, 2}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(2, 0, 1, 1, 12, 10, 11, 11));
}

TEST(GatherRejectsTest, OutOfRangeIndicesAndAxis) {
  Tensor data(DType::kFloat32, {2, 3});
  auto constant = testing::CreateAndReshapeStatus(
      Backend::kReference,
      MakeSpec("Gather", Axis(1), {data, Tensor::FromInt64s({1}, {3})}, {1}));
  ASSERT_FALSE(constant.ok());
  EXPECT_THAT(constant.message(), HasSubstr("test_node"));
  EXPECT_THAT(constant.message(), HasSubstr("index 3 is out of range for axis 1 of size 3"));
  // Non-constant indices are checked at Run.
  auto run = RunReference("Gather", Axis(0), {data, Tensor::FromInt64s({1}, {-3})});
  ASSERT_FALSE(run.ok());
  EXPECT_THAT(run.status().message(), HasSubstr("index -3 is out of range"));
  auto axis = testing::CreateAndReshapeStatus(
      Backend::kReference, MakeSpec("Gather", Axis(2), {data, Tensor::ScalarInt64(0)}, {}));
  EXPECT_THAT(axis.message(), HasSubstr("2 is out of range for rank 2"));
  auto dtype = testing::CreateAndReshapeStatus(
      Backend::kReference,
      MakeSpec("Gather", Attributes(), {data, Tensor::ScalarFloat(0.0f)}, {}));
  EXPECT_THAT(dtype.message(), HasSubstr("'indices' has unsupported dtype float32"));
}

}  // namespace
}  // namespace yolopipe::ops
