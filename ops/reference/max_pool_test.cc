#include "ops/reference/max_pool.h"

#include <algorithm>
#include <limits>
#include <random>
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
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::MakeSpec;
using testing::RandomFloats;
using testing::RunReference;
using testing::ToFloats;

Attributes PoolAttrs(std::vector<int64_t> kernel, std::vector<int64_t> strides,
                     std::vector<int64_t> pads) {
  Attributes a;
  a.Set("kernel_shape", kernel);
  a.Set("strides", strides);
  a.Set("pads", pads);
  return a;
}

TEST(MaxPoolTest, HandComputed2x2Stride2) {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(i + 1);
  auto y = RunReference("MaxPool", PoolAttrs({2, 2}, {2, 2}, {0, 0, 0, 0}),
                        {Tensor::FromFloats({1, 1, 4, 4}, v)});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 1, 2, 2}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(6, 8, 14, 16));
}

TEST(MaxPoolTest, PaddingNeverWinsAgainstNegativeValues) {
  // All values negative: a zero-padded pool would return 0 at the borders.
  Tensor x = Tensor::FromFloats({1, 1, 2, 2}, {-4, -3, -2, -1});
  auto y = RunReference("MaxPool", PoolAttrs({3, 3}, {1, 1}, {1, 1, 1, 1}), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(ToFloats(*y), ElementsAre(-1, -1, -1, -1));
}

TEST(MaxPoolTest, CeilModeKeepsPartialLastWindow) {
  // 1x5 row 1..5, k 2, s 2: floor mode gives [2, 4]; ceil mode adds the partial window [5].
  Tensor x = Tensor::FromFloats({1, 1, 1, 5}, {1, 2, 3, 4, 5});
  auto floor = RunReference("MaxPool", PoolAttrs({1, 2}, {1, 2}, {0, 0, 0, 0}), {x});
  ASSERT_TRUE(floor.ok());
  EXPECT_THAT(ToFloats(*floor), ElementsAre(2, 4));
  Attributes ceil = PoolAttrs({1, 2}, {1, 2}, {0, 0, 0, 0});
  ceil.Set("ceil_mode", int64_t{1});
  auto c = RunReference("MaxPool", ceil, {x});
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(ToFloats(*c), ElementsAre(2, 4, 5));
}

TEST(MaxPoolTest, SppfWindowMatchesIndependentLoop) {
  // kernel 5, stride 1, pad 2 (YOLOv8's SPPF) on a random 2x3x6x7 tensor.
  std::mt19937 rng(5);
  Tensor x = RandomFloats({2, 3, 6, 7}, rng);
  auto y = RunReference("MaxPool", PoolAttrs({5, 5}, {1, 1}, {2, 2, 2, 2}), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), x.shape());
  std::vector<float> want;
  const float* p = x.data<float>();
  for (int nc = 0; nc < 6; ++nc)
    for (int oy = 0; oy < 6; ++oy)
      for (int ox = 0; ox < 7; ++ox) {
        float m = -std::numeric_limits<float>::infinity();
        for (int iy = std::max(0, oy - 2); iy <= std::min(5, oy + 2); ++iy)
          for (int ix = std::max(0, ox - 2); ix <= std::min(6, ox + 2); ++ix)
            m = std::max(m, p[(nc * 6 + iy) * 7 + ix]);
        want.push_back(m);
      }
  EXPECT_THAT(ToFloats(*y), ElementsAreArray(want));
}

TEST(MaxPoolTest, DilationSkipsElements) {
  // 1x5 row, k 2 dilation 2: windows {0,2}, {1,3}, {2,4}.
  Tensor x = Tensor::FromFloats({1, 1, 1, 5}, {5, 1, 2, 9, 3});
  Attributes a = PoolAttrs({1, 2}, {1, 1}, {0, 0, 0, 0});
  a.Set("dilations", std::vector<int64_t>{1, 2});
  auto y = RunReference("MaxPool", a, {x});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_THAT(ToFloats(*y), ElementsAre(5, 9, 3));
}

absl::Status PoolStatus(const Attributes& a, const Shape& shape, int num_outputs = 1) {
  return testing::CreateAndReshapeStatus(
      Backend::kReference,
      MakeSpec("MaxPool", a, {Tensor(DType::kFloat32, shape)}, {}, num_outputs));
}

void ExpectRejected(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok()) << "expected rejection mentioning " << what;
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr(what));
}

TEST(MaxPoolRejectsTest, MalformedAttributesAndShapes) {
  ExpectRejected(PoolStatus(Attributes(), {1, 1, 4, 4}), "kernel_shape");
  Attributes k1;
  k1.Set("kernel_shape", std::vector<int64_t>{2});
  ExpectRejected(PoolStatus(k1, {1, 1, 4, 4}), "only 2-D MaxPool");
  ExpectRejected(PoolStatus(PoolAttrs({2, 2}, {1, 1}, {0, 0}), {1, 1, 4, 4}),
                 "pads must have 4 entries");
  ExpectRejected(PoolStatus(PoolAttrs({2, 2}, {1}, {0, 0, 0, 0}), {1, 1, 4, 4}),
                 "strides must have 2 entries");
  ExpectRejected(PoolStatus(PoolAttrs({3, 3}, {1, 1}, {3, 0, 0, 0}), {1, 1, 4, 4}),
                 "smaller than the kernel");
  Attributes so = PoolAttrs({2, 2}, {1, 1}, {0, 0, 0, 0});
  so.Set("storage_order", int64_t{1});
  ExpectRejected(PoolStatus(so, {1, 1, 4, 4}), "storage_order");
  ExpectRejected(PoolStatus(PoolAttrs({2, 2}, {1, 1}, {0, 0, 0, 0}), {1, 1, 4, 4}, 2),
                 "Indices");
  ExpectRejected(PoolStatus(PoolAttrs({2, 2}, {1, 1}, {0, 0, 0, 0}), {1, 4, 4}),
                 "float32(1, 4, 4) (rank 3");
  ExpectRejected(PoolStatus(PoolAttrs({5, 5}, {1, 1}, {0, 0, 0, 0}), {1, 1, 4, 4}),
                 "does not fit");
}

}  // namespace
}  // namespace yolopipe::ops
