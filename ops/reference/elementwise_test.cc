#include "ops/reference/elementwise.h"

#include <cmath>
#include <cstdint>
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

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::FloatEq;
using ::testing::HasSubstr;
using ::testing::Pointwise;
using testing::Bools;
using testing::Float64s;
using testing::Int32s;
using testing::MakeSpec;
using testing::RunReference;
using testing::ToFloats;
using testing::ToInt64s;

Tensor Run2(const std::string& op, const Tensor& a, const Tensor& b) {
  auto out = RunReference(op, Attributes(), {a, b});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : Tensor();
}

absl::Status CreateStatus(const std::string& op, const std::vector<Tensor>& inputs) {
  return testing::CreateAndReshapeStatus(Backend::kReference,
                                         MakeSpec(op, Attributes(), inputs, {}));
}

TEST(ElementwiseTest, AddBroadcastsRowVector) {
  Tensor a = Tensor::FromFloats({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::FromFloats({3}, {10, 20, 30});
  Tensor y = Run2("Add", a, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_THAT(ToFloats(y), ElementsAre(11, 22, 33, 14, 25, 36));
}

TEST(ElementwiseTest, SubBroadcastsBothWays) {
  // (2,1) - (1,3) -> (2,3): a[i] - b[j].
  Tensor a = Tensor::FromFloats({2, 1}, {10, 20});
  Tensor b = Tensor::FromFloats({1, 3}, {1, 2, 3});
  Tensor y = Run2("Sub", a, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_THAT(ToFloats(y), ElementsAre(9, 8, 7, 19, 18, 17));
}

TEST(ElementwiseTest, MulWithScalarAndFloatDiv) {
  Tensor a = Tensor::FromFloats({1, 2, 2}, {1, 2, 3, 4});
  EXPECT_THAT(ToFloats(Run2("Mul", a, Tensor::ScalarFloat(0.5f))), ElementsAre(0.5, 1, 1.5, 2));
  EXPECT_THAT(ToFloats(Run2("Div", Tensor::ScalarFloat(1.0f), a)),
              ElementsAre(FloatEq(1.0f), FloatEq(0.5f), FloatEq(1.0f / 3), FloatEq(0.25f)));
}

TEST(ElementwiseTest, Int64ArithmeticAndTruncatingDivision) {
  Tensor a = Tensor::FromInt64s({4}, {7, -7, 7, -7});
  Tensor b = Tensor::FromInt64s({4}, {2, 2, -2, -2});
  Tensor q = Run2("Div", a, b);
  EXPECT_EQ(q.dtype(), DType::kInt64);
  EXPECT_THAT(ToInt64s(q), ElementsAre(3, -3, -3, 3));
  EXPECT_THAT(ToInt64s(Run2("Mul", a, Tensor::ScalarInt64(3))), ElementsAre(21, -21, 21, -21));
  EXPECT_THAT(ToInt64s(Run2("Add", a, b)), ElementsAre(9, -5, 5, -9));
  EXPECT_THAT(ToInt64s(Run2("Sub", a, b)), ElementsAre(5, -9, 9, -5));
}

TEST(ElementwiseTest, Int32AndFloat64) {
  Tensor y = Run2("Add", Int32s({2}, {1, -5}), Int32s({1}, {3}));
  EXPECT_EQ(y.dtype(), DType::kInt32);
  EXPECT_THAT(ToInt64s(y), ElementsAre(4, -2));
  Tensor d = Run2("Mul", Float64s({2}, {1.5, 2.5}), Float64s({}, {2.0}));
  EXPECT_EQ(d.dtype(), DType::kFloat64);
  EXPECT_EQ(d.data<double>()[0], 3.0);
  EXPECT_EQ(d.data<double>()[1], 5.0);
}

TEST(ElementwiseTest, IntegerDivisionByZeroIsARunError) {
  auto out = RunReference("Div", Attributes(),
                          {Tensor::FromInt64s({2}, {1, 2}), Tensor::FromInt64s({2}, {1, 0})});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("test_node"));
  EXPECT_THAT(out.status().message(), HasSubstr("division by zero"));
}

TEST(ElementwiseTest, EqualProducesBool) {
  Tensor y = Run2("Equal", Tensor::FromInt64s({3}, {1, 2, 3}), Tensor::ScalarInt64(2));
  EXPECT_EQ(y.dtype(), DType::kBool);
  EXPECT_THAT(ToInt64s(y), ElementsAre(0, 1, 0));
  Tensor f = Run2("Equal", Tensor::FromFloats({2, 1}, {1, 2}), Tensor::FromFloats({2}, {2, 1}));
  EXPECT_EQ(f.shape(), (Shape{2, 2}));
  EXPECT_THAT(ToInt64s(f), ElementsAre(0, 1, 1, 0));
  Tensor b = Run2("Equal", Bools({2}, {true, false}), Bools({2}, {true, true}));
  EXPECT_THAT(ToInt64s(b), ElementsAre(1, 0));
}

TEST(ElementwiseTest, WhereBroadcastsAllThree) {
  Tensor cond = Bools({2, 1}, {true, false});
  Tensor x = Tensor::FromInt64s({3}, {1, 2, 3});
  Tensor y = Tensor::ScalarInt64(-1);
  auto out = RunReference("Where", Attributes(), {cond, x, y});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape(), (Shape{2, 3}));
  EXPECT_THAT(ToInt64s(*out), ElementsAre(1, 2, 3, -1, -1, -1));
}

TEST(ElementwiseTest, SigmoidIsStableAndAccurate) {
  const std::vector<float> xs = {0.0f, 1.0f, -1.0f, 20.0f, -20.0f, -100.0f, 100.0f};
  auto out = RunReference("Sigmoid", Attributes(), {Tensor::FromFloats({7}, xs)});
  ASSERT_TRUE(out.ok());
  std::vector<double> expected;
  for (float x : xs) expected.push_back(1.0 / (1.0 + std::exp(-static_cast<double>(x))));
  std::vector<float> got = ToFloats(*out);
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_FALSE(std::isnan(got[i]));
    EXPECT_NEAR(got[i], expected[i], 1e-7 + 1e-6 * expected[i]) << "x=" << xs[i];
  }
}

TEST(ElementwiseTest, FloorAndCeil) {
  Tensor x = Tensor::FromFloats({4}, {1.5f, -1.5f, 2.0f, -0.2f});
  EXPECT_THAT(ToFloats(*RunReference("Floor", Attributes(), {x})), ElementsAre(1, -2, 2, -1));
  EXPECT_THAT(ToFloats(*RunReference("Ceil", Attributes(), {x})), ElementsAre(2, -1, 2, 0));
}

TEST(ElementwiseTest, RejectsBroadcastFailureWithShapes) {
  absl::Status s = CreateStatus("Add", {Tensor(DType::kFloat32, {2, 3}),
                                        Tensor(DType::kFloat32, {4})});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("(2, 3)"));
  EXPECT_THAT(s.message(), HasSubstr("(4,)"));
}

TEST(ElementwiseTest, RejectsMixedDTypes) {
  absl::Status s = CreateStatus("Mul", {Tensor(DType::kFloat32, {2}), Tensor(DType::kInt64, {2})});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("different dtypes"));
  EXPECT_THAT(s.message(), HasSubstr("int64(2,)"));
}

TEST(ElementwiseTest, RejectsUnsupportedDTypesAndMissingInputs) {
  EXPECT_THAT(CreateStatus("Add", {Bools({1}, {true}), Bools({1}, {true})}).message(),
              HasSubstr("unsupported dtype bool"));
  EXPECT_THAT(CreateStatus("Sigmoid", {Tensor::FromInt64s({1}, {1})}).message(),
              HasSubstr("unsupported dtype int64"));
  EXPECT_THAT(CreateStatus("Add", {Tensor(DType::kFloat32, {2})}).message(),
              HasSubstr("input 1 is missing"));
  EXPECT_THAT(CreateStatus("Where", {Tensor(DType::kFloat32, {2}), Tensor(DType::kFloat32, {2}),
                                     Tensor(DType::kFloat32, {2})})
                  .message(),
              HasSubstr("'condition' has unsupported dtype float32"));
}

TEST(ElementwiseTest, RejectsChannelsLastInputs) {
  Tensor a(DType::kFloat32, {1, 2, 2, 2}, Layout::kNHWC);
  absl::Status s = CreateStatus("Add", {a, a});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("channels-last"));
}

TEST(ElementwiseTest, ReshapeRevalidatesNewShapes) {
  // Created with unknown dimensions (no shape check possible), then given incompatible shapes.
  KernelSpec spec = MakeSpec("Add", Attributes(),
                             {Tensor(DType::kFloat32, {1}), Tensor(DType::kFloat32, {1})}, {});
  spec.inputs[0].shape = {kUnknownDim, 3};
  auto kernel = KernelRegistry::Global().Create(Backend::kReference, spec);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  std::vector<TensorDesc> descs = {TensorDesc{DType::kFloat32, {2, 3}},
                                   TensorDesc{DType::kFloat32, {2, 2}}};
  auto out = (*kernel)->Reshape(descs);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("cannot be broadcast"));
}

}  // namespace
}  // namespace yolopipe::ops
