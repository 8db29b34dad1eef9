#include "ops/reference/shape_ops.h"

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

Tensor Ints(const std::vector<int64_t>& v) {
  return Tensor::FromInt64s({static_cast<int64_t>(v.size())}, v);
}

Tensor Iota(const Shape& shape) {
  std::vector<float> v(NumElements(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::FromFloats(shape, v);
}

void ExpectRejected(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok()) << "expected rejection mentioning " << what;
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr(what));
}

absl::Status Status(const std::string& op, const Attributes& a, const std::vector<Tensor>& in,
                    const std::vector<int>& constants) {
  return testing::CreateAndReshapeStatus(Backend::kReference, MakeSpec(op, a, in, constants));
}

TEST(ReshapeTest, ZeroCopiesAndMinusOneInfers) {
  auto y = RunReference("Reshape", Attributes(), {Iota({2, 3, 4}), Ints({0, -1})}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 12}));
  EXPECT_EQ(ToFloats(*y)[13], 13.0f);
}

TEST(ReshapeTest, AllowZeroKeepsZeroAndOldAttributeForm) {
  Attributes a;
  a.Set("allowzero", int64_t{1});
  auto y = RunReference("Reshape", a, {Tensor(DType::kFloat32, {0, 3}), Ints({3, 0})}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{3, 0}));
  Attributes old;
  old.Set("shape", std::vector<int64_t>{4, 1});
  auto z = RunReference("Reshape", old, {Ints({1, 2, 3, 4})});
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->shape(), (Shape{4, 1}));
  EXPECT_THAT(ToInt64s(*z), ElementsAre(1, 2, 3, 4));
}

TEST(ReshapeRejectsTest, BadShapes) {
  Tensor x(DType::kFloat32, {2, 3});
  ExpectRejected(Status("Reshape", Attributes(), {x, Ints({4, 2})}, {1}),
                 "cannot reshape input (2, 3) (6 elements) to shape [4, 2]");
  ExpectRejected(Status("Reshape", Attributes(), {x, Ints({-1, -1})}, {1}), "more than one -1");
  ExpectRejected(Status("Reshape", Attributes(), {x, Ints({4, -1})}, {1}), "do not divide");
  ExpectRejected(Status("Reshape", Attributes(), {x, Ints({6, -2})}, {1}), "entry 1 is -2");
  ExpectRejected(Status("Reshape", Attributes(), {x, Ints({6, 1, 0})}, {1}),
                 "entry 2 is 0 (copy the input dimension) but the input has rank 2");
  ExpectRejected(Status("Reshape", Attributes(), {x, Ints({6})}, {}),
                 "input 'shape' must be a constant");
  Attributes a;
  a.Set("allowzero", int64_t{1});
  ExpectRejected(Status("Reshape", a, {Tensor(DType::kFloat32, {0, 3}), Ints({0, -1})}, {1}),
                 "forbids mixing 0 and -1");
  // Found by //fuzz:fuzz_onnx_import: entries whose product overflows int64 (UB before the fix).
  ExpectRejected(Status("Reshape", Attributes(),
                        {x, Ints({int64_t{2810246167479189505}, 6, -1})}, {1}),
                 "overflows");
}

TEST(FlattenTest, Axes) {
  auto f = [](int64_t axis) {
    Attributes a;
    a.Set("axis", axis);
    auto y = RunReference("Flatten", a, {Iota({2, 3, 4})});
    EXPECT_TRUE(y.ok()) << y.status();
    return y.ok() ? y->shape() : Shape{};
  };
  EXPECT_EQ(f(0), (Shape{1, 24}));
  EXPECT_EQ(f(1), (Shape{2, 12}));
  EXPECT_EQ(f(-1), (Shape{6, 4}));
  EXPECT_EQ(f(3), (Shape{24, 1}));
  Attributes bad;
  bad.Set("axis", int64_t{4});
  ExpectRejected(Status("Flatten", bad, {Iota({2, 3, 4})}, {}), "axis 4 is out of range");
}

TEST(SqueezeTest, AxesFromInputAttributeOrAllOnes) {
  auto in = RunReference("Squeeze", Attributes(), {Iota({1, 3, 1, 2}), Ints({-2})}, {1});
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->shape(), (Shape{1, 3, 2}));
  Attributes a;
  a.Set("axes", std::vector<int64_t>{0});
  auto attr = RunReference("Squeeze", a, {Iota({1, 3, 1, 2})});
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->shape(), (Shape{3, 1, 2}));
  auto all = RunReference("Squeeze", Attributes(), {Iota({1, 3, 1, 2})});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->shape(), (Shape{3, 2}));
  EXPECT_THAT(ToFloats(*all), ElementsAre(0, 1, 2, 3, 4, 5));
  ExpectRejected(Status("Squeeze", Attributes(), {Iota({1, 3}), Ints({1})}, {1}),
                 "cannot squeeze axis 1 of input float32(1, 3): its size is 3");
  ExpectRejected(Status("Squeeze", Attributes(), {Iota({1, 3}), Ints({1})}, {}),
                 "input 'axes' must be a constant");
}

TEST(UnsqueezeTest, AxesRelativeToOutputRank) {
  auto y = RunReference("Unsqueeze", Attributes(), {Ints({7, 8}), Ints({0, -1})}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 2, 1}));
  EXPECT_THAT(ToInt64s(*y), ElementsAre(7, 8));
  Attributes a;
  a.Set("axes", std::vector<int64_t>{0});
  auto s = RunReference("Unsqueeze", a, {Tensor::ScalarInt64(5)});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->shape(), (Shape{1}));
  // A scalar gains one axis, so only 0 and -1 are valid.
  Attributes past_end;
  past_end.Set("axes", std::vector<int64_t>{1});
  ExpectRejected(Status("Unsqueeze", past_end, {Tensor::ScalarInt64(5)}, {}),
                 "1 is out of range for rank 1");
}

TEST(UnsqueezeRejectsTest, RepeatsMissingAndRange) {
  ExpectRejected(Status("Unsqueeze", Attributes(), {Ints({1, 2}), Ints({0, 0})}, {1}),
                 "repeat axis 0");
  ExpectRejected(Status("Unsqueeze", Attributes(), {Ints({1, 2})}, {}), "axes are required");
  ExpectRejected(Status("Unsqueeze", Attributes(), {Ints({1, 2}), Ints({3})}, {1}),
                 "3 is out of range for rank 2");
}

TEST(ShapeTest, FullAndSlicedAnyLayout) {
  Tensor x(DType::kFloat32, {1, 3, 640, 480}, Layout::kNHWC);
  auto y = RunReference("Shape", Attributes(), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->dtype(), DType::kInt64);
  EXPECT_THAT(ToInt64s(*y), ElementsAre(1, 3, 640, 480));
  Attributes a;
  a.Set("start", int64_t{-2});
  a.Set("end", int64_t{100});
  auto s = RunReference("Shape", a, {x});
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(ToInt64s(*s), ElementsAre(640, 480));
}

TEST(IdentityTest, CopiesData) {
  Tensor x = Ints({4, 5});
  auto y = RunReference("Identity", Attributes(), {x});
  ASSERT_TRUE(y.ok());
  EXPECT_THAT(ToInt64s(*y), ElementsAre(4, 5));
  EXPECT_NE(y->raw_data(), x.raw_data());
}

TEST(ExpandTest, BidirectionalBroadcast) {
  // (3, 1) expanded with shape (2, 1, 4): the 1 in the shape keeps the input's 3.
  auto y = RunReference("Expand", Attributes(), {Iota({3, 1}), Ints({2, 1, 4})}, {1});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 3, 4}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1,
                                        1, 2, 2, 2, 2));
  ExpectRejected(Status("Expand", Attributes(), {Iota({3, 2}), Ints({4})}, {1}),
                 "cannot be broadcast");
  ExpectRejected(Status("Expand", Attributes(), {Iota({3, 2}), Ints({4})}, {}),
                 "input 'shape' must be a constant");
}

}  // namespace
}  // namespace yolopipe::ops
