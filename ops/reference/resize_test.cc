#include "ops/reference/resize.h"

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

Attributes ResizeAttrs(const std::string& ctm, const std::string& nearest) {
  Attributes a;
  a.Set("mode", std::string("nearest"));
  a.Set("coordinate_transformation_mode", ctm);
  a.Set("nearest_mode", nearest);
  return a;
}

// Resizes a 1-D row (shape (1, 1, 1, n)) with the given scales or sizes along W and returns it.
std::vector<float> ResizeRow(const std::vector<float>& row, const Attributes& a, float scale_w,
                             int64_t size_w = 0) {
  const int64_t n = static_cast<int64_t>(row.size());
  Tensor x = Tensor::FromFloats({1, 1, 1, n}, row);
  std::vector<Tensor> inputs = {x, Tensor()};
  if (size_w > 0) {
    inputs.push_back(Tensor());
    inputs.push_back(Tensor::FromInt64s({4}, {1, 1, 1, size_w}));
  } else {
    inputs.push_back(Tensor::FromFloats({4}, {1, 1, 1, scale_w}));
  }
  auto y = RunReference("Resize", a, inputs, {2, 3});
  EXPECT_TRUE(y.ok()) << y.status();
  return y.ok() ? ToFloats(*y) : std::vector<float>();
}

TEST(ResizeTest, YoloUpsampleAsymmetricFloorScale2) {
  Tensor x = Tensor::FromFloats({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor scales = Tensor::FromFloats({4}, {1, 1, 2, 2});
  auto y = RunReference("Resize", ResizeAttrs("asymmetric", "floor"), {x, Tensor(), scales},
                        {2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 1, 4, 4}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4));
}

TEST(ResizeTest, HalfPixelNearestModes) {
  // in 2 -> out 3 (scale 1.5): x = (o + 0.5) / 1.5 - 0.5 = -1/6, 1/2, 7/6.
  const std::vector<float> row = {10, 20};
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("half_pixel", "round_prefer_floor"), 1.5f),
              ElementsAre(10, 10, 20));
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("half_pixel", "round_prefer_ceil"), 1.5f),
              ElementsAre(10, 20, 20));
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("half_pixel", "floor"), 1.5f), ElementsAre(10, 10, 20));
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("half_pixel", "ceil"), 1.5f), ElementsAre(10, 20, 20));
}

TEST(ResizeTest, AlignCornersWithSizes) {
  // in 3 -> out 5: x = o * 2 / 4 = 0, 0.5, 1, 1.5, 2.
  const std::vector<float> row = {1, 2, 3};
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("align_corners", "round_prefer_floor"), 0, 5),
              ElementsAre(1, 1, 2, 2, 3));
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("align_corners", "round_prefer_ceil"), 0, 5),
              ElementsAre(1, 2, 2, 3, 3));
}

TEST(ResizeTest, PytorchHalfPixelDiffersFromHalfPixelForOneOutput) {
  // in 4 -> out 1: half_pixel gives x = 0.5 / 0.25 - 0.5 = 1.5 -> 1 (prefer floor);
  // pytorch_half_pixel maps a length-1 output to 0.
  const std::vector<float> row = {1, 2, 3, 4};
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("half_pixel", "round_prefer_floor"), 0, 1),
              ElementsAre(2));
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("pytorch_half_pixel", "round_prefer_floor"), 0, 1),
              ElementsAre(1));
}

TEST(ResizeTest, DownscaleAsymmetricAndTfHalfPixel) {
  const std::vector<float> row = {1, 2, 3, 4};
  // asymmetric: x = 2 o -> 0, 2.
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("asymmetric", "round_prefer_floor"), 0.5f),
              ElementsAre(1, 3));
  // tf_half_pixel_for_nn: x = (o + 0.5) * 2 = 1, 3.
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("tf_half_pixel_for_nn", "round_prefer_floor"), 0.5f),
              ElementsAre(2, 4));
  // half_pixel: x = (o + 0.5) * 2 - 0.5 = 0.5, 2.5 -> prefer floor 0, 2.
  EXPECT_THAT(ResizeRow(row, ResizeAttrs("half_pixel", "round_prefer_floor"), 0.5f),
              ElementsAre(1, 3));
}

TEST(ResizeTest, Int64DataAndNonIntegerScaleFloorsOutputSize) {
  Tensor x = Tensor::FromInt64s({1, 3}, {7, 8, 9});
  Tensor scales = Tensor::FromFloats({2}, {1.0f, 1.7f});  // floor(3 * 1.7) = 5
  auto y = RunReference("Resize", ResizeAttrs("asymmetric", "floor"), {x, Tensor(), scales}, {2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->dtype(), DType::kInt64);
  EXPECT_EQ(y->shape(), (Shape{1, 5}));
  // x = floor(o / 1.7) = 0, 0, 1, 1, 2.
  EXPECT_THAT(ToInt64s(*y), ElementsAre(7, 7, 8, 8, 9));
}

TEST(ResizeTest, AxesAttributeLimitsScales) {
  Tensor x = Tensor::FromFloats({1, 1, 1, 2}, {5, 6});
  Attributes a = ResizeAttrs("asymmetric", "floor");
  a.Set("axes", std::vector<int64_t>{-1});
  auto y = RunReference("Resize", a, {x, Tensor(), Tensor::FromFloats({1}, {3.0f})}, {2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{1, 1, 1, 6}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(5, 5, 5, 6, 6, 6));
}

TEST(ResizeTest, EmptyScalesConstantCountsAsAbsent) {
  // opset 11 style: roi and scales are empty constants, sizes given.
  Tensor x = Tensor::FromFloats({1, 2}, {1, 2});
  Tensor empty = Tensor::FromFloats({0}, {});
  auto y = RunReference("Resize", ResizeAttrs("asymmetric", "floor"),
                        {x, empty, empty, Tensor::FromInt64s({2}, {2, 4})}, {1, 2, 3});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 4}));
  EXPECT_THAT(ToFloats(*y), ElementsAre(1, 1, 2, 2, 1, 1, 2, 2));
}

absl::Status ResizeStatus(const Attributes& a, const std::vector<Tensor>& inputs,
                          const std::vector<int>& constants) {
  return testing::CreateAndReshapeStatus(Backend::kReference,
                                         MakeSpec("Resize", a, inputs, constants));
}

void ExpectRejected(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok()) << "expected rejection mentioning " << what;
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr(what));
}

TEST(ResizeRejectsTest, UnsupportedModesAndBadInputs) {
  Tensor x(DType::kFloat32, {1, 1, 2, 2});
  Tensor scales = Tensor::FromFloats({4}, {1, 1, 2, 2});
  Tensor sizes = Tensor::FromInt64s({4}, {1, 1, 4, 4});
  Attributes linear;
  linear.Set("mode", std::string("linear"));
  ExpectRejected(ResizeStatus(linear, {x, Tensor(), scales}, {2}), "unsupported Resize mode 'linear'");
  Attributes cubic;
  cubic.Set("mode", std::string("cubic"));
  ExpectRejected(ResizeStatus(cubic, {x, Tensor(), scales}, {2}), "unsupported");
  ExpectRejected(ResizeStatus(ResizeAttrs("tf_crop_and_resize", "floor"), {x, Tensor(), scales}, {2}),
                 "coordinate_transformation_mode 'tf_crop_and_resize'");
  ExpectRejected(ResizeStatus(ResizeAttrs("asymmetric", "nearest"), {x, Tensor(), scales}, {2}),
                 "nearest_mode 'nearest'");
  ExpectRejected(ResizeStatus(Attributes(), {x, Tensor(), scales, sizes}, {2, 3}),
                 "both scales and sizes");
  ExpectRejected(ResizeStatus(Attributes(), {x}, {}), "neither scales nor sizes");
  ExpectRejected(ResizeStatus(Attributes(), {x, Tensor(), scales}, {}),
                 "input 'scales' must be a constant");
  ExpectRejected(ResizeStatus(Attributes(), {x, Tensor(), Tensor::FromFloats({2}, {2, 2})}, {2}),
                 "scales has 2 entries");
  ExpectRejected(ResizeStatus(Attributes(), {x, Tensor(), Tensor::FromFloats({4}, {1, 1, 0, 2})},
                              {2}),
                 "scales must be > 0");
  ExpectRejected(ResizeStatus(Attributes(), {x, Tensor(), Tensor::FromFloats({4}, {1, 1, 0.1f, 1})},
                              {2}),
                 "would be empty");
}

}  // namespace
}  // namespace yolopipe::ops
