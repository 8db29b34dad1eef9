#include "ops/reference/transpose.h"

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
using testing::RunReference;
using testing::ToFloats;
using testing::ToInt64s;

TEST(TransposeTest, DefaultReversesAxes) {
  auto y = RunReference("Transpose", Attributes(),
                        {Tensor::FromInt64s({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{3, 2}));
  EXPECT_THAT(ToInt64s(*y), ElementsAre(1, 4, 2, 5, 3, 6));
}

TEST(TransposeTest, DflPermutationSwapsMiddleAxes) {
  // (1, 2, 3, 2) with perm (0, 2, 1, 3): out[0][j][i][k] = in[0][i][j][k].
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<float>(i);
  Attributes a;
  a.Set("perm", std::vector<int64_t>{0, 2, 1, 3});
  auto y = RunReference("Transpose", a, {Tensor::FromFloats({1, 2, 3, 2}, v)});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 3, 2, 2}));
  // in index (i, j, k) = 6i + 2j + k; out order (j, i, k).
  EXPECT_THAT(ToFloats(*y), ElementsAre(0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11));
}

TEST(TransposeRejectsTest, BadPermutation) {
  auto status = [](std::vector<int64_t> perm) {
    Attributes a;
    a.Set("perm", perm);
    return testing::CreateAndReshapeStatus(
        Backend::kReference, MakeSpec("Transpose", a, {Tensor(DType::kFloat32, {2, 3})}, {}));
  };
  auto dup = status({0, 0});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.message(), HasSubstr("test_node"));
  EXPECT_THAT(dup.message(), HasSubstr("perm [0, 0] is not a permutation"));
  EXPECT_THAT(status({0, 1, 2}).message(), HasSubstr("has 3 entries but input float32(2, 3)"));
  EXPECT_THAT(status({0, 2}).message(), HasSubstr("not a permutation"));
}

}  // namespace
}  // namespace yolopipe::ops
