#include "base/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

TEST(TensorTest, NhwcRoundTripMovesEveryElement) {
  const Shape shape = {2, 3, 4, 5};
  std::vector<float> values(NumElements(shape));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  Tensor plain = Tensor::FromFloats(shape, values);
  auto nhwc = plain.ToLayout(Layout::kNHWC);
  ASSERT_TRUE(nhwc.ok());
  // Element (n=1, c=2, h=3, w=4) sits at ((1*4+3)*5+4)*3+2 in channels-last order.
  const int64_t plain_index = ((1 * 3 + 2) * 4 + 3) * 5 + 4;
  const int64_t nhwc_index = ((1 * 4 + 3) * 5 + 4) * 3 + 2;
  EXPECT_EQ(nhwc->data<float>()[nhwc_index], values[plain_index]);
  auto back = nhwc->ToLayout(Layout::kPlain);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(BitwiseEqual(*back, plain));
}

TEST(TensorTest, ReshapeRejectsWrongElementCount) {
  Tensor t(DType::kFloat32, {2, 3});
  EXPECT_FALSE(t.Reshaped({4, 2}).ok());
  auto r = t.Reshaped({3, 2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->raw_data(), t.raw_data());
}

TEST(TensorTest, ShapeToStringMarksUnknownDims) {
  EXPECT_EQ(ShapeToString({kUnknownDim, 3, 640, 640}), "(?, 3, 640, 640)");
  EXPECT_EQ(ShapeToString({}), "()");
}

}  // namespace
}  // namespace yolopipe
