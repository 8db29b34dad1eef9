#include "ops/reference/slice.h"

#include <cstdint>
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
using testing::MakeSpec;
using testing::RunReference;
using testing::ToFloats;
using testing::ToInt64s;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Tensor Ints(const std::vector<int64_t>& v) {
  return Tensor::FromInt64s({static_cast<int64_t>(v.size())}, v);
}

// 3x4 tensor with values 10*row + column.
Tensor Grid() {
  std::vector<float> v;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) v.push_back(10.0f * r + c);
  return Tensor::FromFloats({3, 4}, v);
}

Tensor Slice(const Tensor& x, std::vector<int64_t> starts, std::vector<int64_t> ends,
             std::vector<int64_t> axes = {}, std::vector<int64_t> steps = {}) {
  std::vector<Tensor> in = {x, Ints(starts), Ints(ends)};
  std::vector<int> constants = {1, 2};
  if (!axes.empty() || !steps.empty()) {
    in.push_back(axes.empty() ? Tensor() : Ints(axes));
    constants.push_back(3);
  }
  if (!steps.empty()) {
    in.push_back(Ints(steps));
    constants.push_back(4);
  }
  auto y = RunReference("Slice", Attributes(), in, constants);
  EXPECT_TRUE(y.ok()) << y.status();
  return y.ok() ? *y : Tensor(DType::kFloat32, {0});
}

TEST(SliceTest, BasicRangeOnBothAxes) {
  Tensor y = Slice(Grid(), {1, 1}, {3, 3});
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_THAT(ToFloats(y), ElementsAre(11, 12, 21, 22));
}

TEST(SliceTest, NegativeIndicesAndInt64MaxEnd) {
  // Columns -2..end of every row.
  Tensor y = Slice(Grid(), {-2}, {kMax}, {1});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_THAT(ToFloats(y), ElementsAre(2, 3, 12, 13, 22, 23));
}

TEST(SliceTest, NegativeAxisAndClampedStart) {
  Tensor y = Slice(Grid(), {-100}, {1}, {-2});
  EXPECT_EQ(y.shape(), (Shape{1, 4}));
  EXPECT_THAT(ToFloats(y), ElementsAre(0, 1, 2, 3));
}

TEST(SliceTest, StepsForwardAndBackward) {
  // Every other column.
  Tensor even = Slice(Grid(), {0}, {kMax}, {1}, {2});
  EXPECT_THAT(ToFloats(even), ElementsAre(0, 2, 10, 12, 20, 22));
  // Full reversal of rows: start -1, end INT64_MIN, step -1.
  Tensor rev = Slice(Grid(), {-1}, {kMin}, {0}, {-1});
  EXPECT_EQ(rev.shape(), (Shape{3, 4}));
  EXPECT_THAT(ToFloats(rev), ElementsAre(20, 21, 22, 23, 10, 11, 12, 13, 0, 1, 2, 3));
  // Columns 3, 1 (start 3, end 0 exclusive, step -2).
  Tensor back = Slice(Grid(), {3}, {0}, {1}, {-2});
  EXPECT_THAT(ToFloats(back), ElementsAre(3, 1, 13, 11, 23, 21));
}

TEST(SliceTest, EmptyResult) {
  Tensor y = Slice(Grid(), {2}, {1}, {0});
  EXPECT_EQ(y.shape(), (Shape{0, 4}));
}

TEST(SliceTest, Int64DataAndAttributeForm) {
  Tensor x = Ints({5, 6, 7, 8});
  Attributes a;
  a.Set("starts", std::vector<int64_t>{1});
  a.Set("ends", std::vector<int64_t>{-1});
  auto y = RunReference("Slice", a, {x});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(ToInt64s(*y), ElementsAre(6, 7));
}

void ExpectRejected(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok()) << "expected rejection mentioning " << what;
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr(what));
}

absl::Status SliceStatus(const std::vector<Tensor>& in, const std::vector<int>& constants) {
  return testing::CreateAndReshapeStatus(Backend::kReference,
                                         MakeSpec("Slice", Attributes(), in, constants));
}

TEST(SliceRejectsTest, MalformedInputs) {
  Tensor x(DType::kFloat32, {3, 4});
  ExpectRejected(SliceStatus({x, Ints({0}), Ints({1})}, {2}), "input 'starts' must be a constant");
  ExpectRejected(SliceStatus({x, Ints({0}), Ints({1}), Ints({0}), Ints({0})}, {1, 2, 3, 4}),
                 "steps must be non-zero");
  ExpectRejected(SliceStatus({x, Ints({0, 0}), Ints({1, 1}), Ints({1, -1})}, {1, 2, 3}),
                 "repeat axis 1");
  ExpectRejected(SliceStatus({x, Ints({0, 0}), Ints({1})}, {1, 2}), "different lengths");
  ExpectRejected(SliceStatus({x, Ints({0}), Ints({1}), Ints({2})}, {1, 2, 3}),
                 "2 is out of range for rank 2");
  ExpectRejected(SliceStatus({x, Ints({0})}, {1}), "inputs 'starts' and 'ends' are required");
}

}  // namespace
}  // namespace yolopipe::ops
