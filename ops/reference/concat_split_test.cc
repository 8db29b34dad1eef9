#include "ops/reference/concat_split.h"

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
using testing::CreateAndRun;
using testing::MakeSpec;
using testing::RunReference;
using testing::ToFloats;
using testing::ToInt64s;

Attributes Axis(int64_t axis) {
  Attributes a;
  a.Set("axis", axis);
  return a;
}

void ExpectRejected(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok()) << "expected rejection mentioning " << what;
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr(what));
}

TEST(ConcatTest, ChannelAxisInterleavesRows) {
  // (1, 1, 2) and (1, 2, 2) along axis 1 -> (1, 3, 2).
  Tensor a = Tensor::FromFloats({1, 1, 2}, {1, 2});
  Tensor b = Tensor::FromFloats({1, 2, 2}, {3, 4, 5, 6});
  auto y = RunReference("Concat", Axis(1), {a, b});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 3, 2}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(ConcatTest, NegativeAxisAndOuterBlocks) {
  // (2, 1) and (2, 2) along axis -1 -> rows [a0 b0 b1], [a1 b2 b3].
  Tensor a = Tensor::FromFloats({2, 1}, {1, 2});
  Tensor b = Tensor::FromFloats({2, 2}, {10, 11, 20, 21});
  auto y = RunReference("Concat", Axis(-1), {a, b});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(ToFloats(*y), ElementsAre(1, 10, 11, 2, 20, 21));
}

TEST(ConcatTest, Int64AndEmptyInput) {
  auto y = RunReference("Concat", Axis(0),
                        {Tensor::FromInt64s({2}, {1, 2}), Tensor::FromInt64s({0}, {}),
                         Tensor::FromInt64s({1}, {-3})});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->dtype(), DType::kInt64);
  EXPECT_THAT(ToInt64s(*y), ElementsAre(1, 2, -3));
}

TEST(ConcatRejectsTest, MismatchesAndAxis) {
  auto status = [](const Attributes& a, const std::vector<Tensor>& in) {
    return testing::CreateAndReshapeStatus(Backend::kReference, MakeSpec("Concat", a, in, {}));
  };
  Tensor a(DType::kFloat32, {1, 2, 3});
  ExpectRejected(status(Axis(1), {a, Tensor(DType::kFloat32, {1, 2, 4})}),
                 "float32(1, 2, 4) differs from input 0 float32(1, 2, 3) in dimension 2");
  ExpectRejected(status(Axis(1), {a, Tensor(DType::kFloat32, {2, 3})}), "another rank");
  ExpectRejected(status(Axis(1), {a, Tensor(DType::kInt64, {1, 2, 3})}), "another dtype");
  ExpectRejected(status(Axis(3), {a, a}), "axis 3 is out of range for rank 3");
  ExpectRejected(status(Attributes(), {a, a}), "'axis'");
}

std::vector<Tensor> RunSplit(const Attributes& a, const std::vector<Tensor>& inputs,
                             const std::vector<int>& constants, int num_outputs) {
  KernelSpec spec = MakeSpec("Split", a, inputs, constants, num_outputs);
  auto out = CreateAndRun(Backend::kReference, spec, inputs);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<Tensor>();
}

TEST(SplitTest, EqualSplitAlongAxis1) {
  Tensor x = Tensor::FromFloats({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  auto out = RunSplit(Axis(1), {x}, {}, 2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_THAT(ToFloats(out[0]), ElementsAre(1, 2, 5, 6));
  EXPECT_THAT(ToFloats(out[1]), ElementsAre(3, 4, 7, 8));
}

TEST(SplitTest, SizesFromConstantInputOpset13) {
  Tensor x = Tensor::FromInt64s({3, 1}, {1, 2, 3});
  auto out = RunSplit(Attributes(), {x, Tensor::FromInt64s({2}, {1, 2})}, {1}, 2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_THAT(ToInt64s(out[0]), ElementsAre(1));
  EXPECT_THAT(ToInt64s(out[1]), ElementsAre(2, 3));
}

TEST(SplitTest, SizesFromAttributeOlderOpsets) {
  Tensor x = Tensor::FromFloats({1, 5}, {1, 2, 3, 4, 5});
  Attributes a = Axis(-1);
  a.Set("split", std::vector<int64_t>{3, 0, 2});
  auto out = RunSplit(a, {x}, {}, 3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THAT(ToFloats(out[0]), ElementsAre(1, 2, 3));
  EXPECT_EQ(out[1].shape(), (Shape{1, 0}));
  EXPECT_THAT(ToFloats(out[2]), ElementsAre(4, 5));
}

TEST(SplitTest, NumOutputsOpset18AllowsSmallerLastPart) {
  Tensor x = Tensor::FromFloats({7}, {1, 2, 3, 4, 5, 6, 7});
  Attributes a;
  a.Set("num_outputs", int64_t{3});
  auto out = RunSplit(a, {x}, {}, 3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THAT(ToFloats(out[0]), ElementsAre(1, 2, 3));
  EXPECT_THAT(ToFloats(out[1]), ElementsAre(4, 5, 6));
  EXPECT_THAT(ToFloats(out[2]), ElementsAre(7));
}

TEST(SplitRejectsTest, BadSizes) {
  auto status = [](const Attributes& a, const std::vector<Tensor>& in,
                   const std::vector<int>& constants, int n) {
    return testing::CreateAndReshapeStatus(Backend::kReference,
                                           MakeSpec("Split", a, in, constants, n));
  };
  Tensor x(DType::kFloat32, {2, 5});
  ExpectRejected(status(Axis(1), {x, Tensor::FromInt64s({2}, {2, 2})}, {1}, 2),
                 "split sizes [2, 2] sum to 4 but dimension 1");
  ExpectRejected(status(Axis(1), {x}, {}, 2), "cannot split dimension 1 (5)");
  ExpectRejected(status(Axis(1), {x, Tensor::FromInt64s({2}, {2, 3})}, {}, 2),
                 "input 'split' must be a constant");
  ExpectRejected(status(Axis(1), {x, Tensor::FromInt64s({2}, {2, 3})}, {1}, 3),
                 "has 2 entries but the node has 3 outputs");
  ExpectRejected(status(Axis(2), {x}, {}, 2), "axis (input float32(2, 5)) 2 is out of range");
  Attributes n;
  n.Set("num_outputs", int64_t{4});
  ExpectRejected(status(n, {x}, {}, 3), "num_outputs is 4 but the node has 3 outputs");
}

}  // namespace
}  // namespace yolopipe::ops
