#include "ops/reference/softmax.h"

#include <cmath>
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

using ::testing::HasSubstr;
using testing::MakeSpec;
using testing::RunReference;
using testing::ToFloats;

TEST(SoftmaxTest, AlongMiddleAxis) {
  // (1, 2, 2): softmax over axis 1 pairs element [0][0][j] with [0][1][j].
  Tensor x = Tensor::FromFloats({1, 2, 2}, {0.0f, 1.0f, std::log(3.0f), 1.0f});
  Attributes a;
  a.Set("axis", int64_t{1});
  auto y = RunReference("Softmax", a, {x});
  ASSERT_TRUE(y.ok()) << y.status();
  std::vector<float> v = ToFloats(*y);
  // column 0: e^0 : e^ln3 = 1 : 3; column 1: equal.
  EXPECT_NEAR(v[0], 0.25, 1e-6);
  EXPECT_NEAR(v[2], 0.75, 1e-6);
  EXPECT_NEAR(v[1], 0.5, 1e-6);
  EXPECT_NEAR(v[3], 0.5, 1e-6);
}

TEST(SoftmaxTest, DefaultLastAxisIsStableForLargeInputs) {
  Tensor x = Tensor::FromFloats({2, 2}, {1000.0f, 1001.0f, -1000.0f, -1000.0f});
  auto y = RunReference("Softmax", Attributes(), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  std::vector<float> v = ToFloats(*y);
  const double e = std::exp(1.0);
  EXPECT_NEAR(v[0], 1.0 / (1.0 + e), 1e-6);
  EXPECT_NEAR(v[1], e / (1.0 + e), 1e-6);
  EXPECT_NEAR(v[2], 0.5, 1e-6);
  EXPECT_NEAR(v[3], 0.5, 1e-6);
}

TEST(SoftmaxTest, RejectsBadAxisAndDType) {
  Attributes a;
  a.Set("axis", int64_t{3});
  auto s = testing::CreateAndReshapeStatus(
      Backend::kReference, MakeSpec("Softmax", a, {Tensor(DType::kFloat32, {2, 3})}, {}));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("axis (input (2, 3)) 3 is out of range"));
  auto d = testing::CreateAndReshapeStatus(
      Backend::kReference, MakeSpec("Softmax", Attributes(), {Tensor(DType::kInt64, {2})}, {}));
  EXPECT_THAT(d.message(), HasSubstr("unsupported dtype int64"));
}

}  // namespace
}  // namespace yolopipe::ops
