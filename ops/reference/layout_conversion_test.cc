#include "ops/reference/layout_conversion.h"

#include <string>
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
using testing::CreateAndReshapeStatus;
using testing::CreateAndRun;
using testing::MakeSpec;

Attributes To(const std::string& layout) {
  Attributes a;
  a.Set("to", layout);
  return a;
}

// A (n, c, h, w) tensor in `layout` whose element (b, ch, y, x) holds a value that encodes its
// logical index, so that every misplaced element is detected.
Tensor Indexed(int64_t n, int64_t c, int64_t h, int64_t w, Layout layout) {
  Tensor t(DType::kFloat32, {n, c, h, w}, layout);
  float* p = t.data<float>();
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const int64_t logical = ((b * c + ch) * h + y) * w + x;
          const int64_t physical = layout == Layout::kPlain
                                       ? logical
                                       : ((b * h + y) * w + x) * c + ch;
          p[physical] = static_cast<float>(logical);
        }
      }
    }
  }
  return t;
}

TEST(LayoutConversionTest, PlainToNhwcPutsChannelsInnermost) {
  const Tensor x = Indexed(2, 3, 2, 5, Layout::kPlain);
  auto y = CreateAndRun(Backend::kReference, MakeSpec("LayoutConversion", To("nhwc"), {x}, {}),
                        {x});
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ(y->size(), 1u);
  const Tensor& out = (*y)[0];
  EXPECT_EQ(out.layout(), Layout::kNHWC);
  EXPECT_EQ(out.shape(), (Shape{2, 3, 2, 5}));
  EXPECT_TRUE(BitwiseEqual(out, Indexed(2, 3, 2, 5, Layout::kNHWC)));
  // Spot check by hand: element (b=1, c=2, y=1, x=3) is logical 1*30 + 2*10 + 1*5 + 3 = 58 and
  // sits at physical ((1*2 + 1)*5 + 3)*3 + 2 = 56.
  EXPECT_EQ(out.data<float>()[56], 58.0f);
}

TEST(LayoutConversionTest, NhwcToPlainRestoresRowMajor) {
  const Tensor x = Indexed(3, 17, 3, 1, Layout::kNHWC);
  auto y = CreateAndRun(Backend::kReference, MakeSpec("LayoutConversion", To("plain"), {x}, {}),
                        {x});
  ASSERT_TRUE(y.ok()) << y.status();
  const Tensor& out = (*y)[0];
  EXPECT_EQ(out.layout(), Layout::kPlain);
  for (int64_t i = 0; i < out.num_elements(); ++i) {
    ASSERT_EQ(out.data<float>()[i], static_cast<float>(i)) << "element " << i;
  }
}

TEST(LayoutConversionTest, ReshapeOnlyChangesTheLayout) {
  KernelSpec spec = MakeSpec("LayoutConversion", To("plain"),
                             {Tensor(DType::kFloat32, {1, 4, 2, 2}, Layout::kNHWC)}, {});
  auto kernel = KernelRegistry::Global().Create(Backend::kReference, spec);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  // Another batch size after creation.
  auto descs = (*kernel)->Reshape({TensorDesc{DType::kFloat32, {5, 4, 2, 2}, Layout::kNHWC}});
  ASSERT_TRUE(descs.ok()) << descs.status();
  ASSERT_EQ(descs->size(), 1u);
  EXPECT_EQ((*descs)[0], (TensorDesc{DType::kFloat32, {5, 4, 2, 2}, Layout::kPlain}));
  EXPECT_EQ((*kernel)->workspace_bytes(), 0u);
}

absl::Status SpecStatus(const Attributes& attrs, const std::vector<TensorDesc>& inputs) {
  KernelSpec spec;
  spec.node_name = "conv:to_nhwc";
  spec.op_type = "LayoutConversion";
  spec.attrs = attrs;
  spec.inputs = inputs;
  spec.constant_inputs.resize(inputs.size());
  return CreateAndReshapeStatus(Backend::kReference, spec);
}

TEST(LayoutConversionRejectsTest, BadTargetAttribute) {
  const std::vector<TensorDesc> in = {TensorDesc{DType::kFloat32, {1, 2, 3, 4}, Layout::kPlain}};
  absl::Status missing = SpecStatus(Attributes(), in);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr("conv:to_nhwc"));
  EXPECT_THAT(missing.message(), HasSubstr("attribute 'to' is required"));
  EXPECT_THAT(SpecStatus(To("NCHW"), in).message(),
              HasSubstr("must be \"nhwc\" or \"plain\", got \"NCHW\""));
  Attributes not_string;
  not_string.Set("to", int64_t{1});
  absl::Status wrong_kind = SpecStatus(not_string, in);
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_THAT(wrong_kind.message(), HasSubstr("conv:to_nhwc"));
}

TEST(LayoutConversionRejectsTest, AlreadyInTargetLayout) {
  absl::Status s = SpecStatus(To("nhwc"), {TensorDesc{DType::kFloat32, {1, 2, 3, 4},
                                                      Layout::kNHWC}});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("is already in layout nhwc"));
  EXPECT_THAT(SpecStatus(To("plain"), {TensorDesc{DType::kFloat32, {1, 2, 3, 4}}}).message(),
              HasSubstr("is already in layout plain"));
}

TEST(LayoutConversionRejectsTest, NotA4DFloatTensor) {
  EXPECT_THAT(SpecStatus(To("nhwc"), {TensorDesc{DType::kFloat32, {2, 3, 4}}}).message(),
              HasSubstr("input must be a 4-D float32 tensor, got float32(2, 3, 4)"));
  EXPECT_THAT(SpecStatus(To("nhwc"), {TensorDesc{DType::kInt64, {1, 2, 3, 4}}}).message(),
              HasSubstr("input must be a 4-D float32 tensor, got int64(1, 2, 3, 4)"));
  EXPECT_FALSE(SpecStatus(To("nhwc"), {}).ok());
  const TensorDesc ok{DType::kFloat32, {1, 2, 3, 4}};
  EXPECT_FALSE(SpecStatus(To("nhwc"), {ok, ok}).ok());
}

TEST(LayoutConversionRejectsTest, UnknownDimensionAtReshape) {
  KernelSpec spec = MakeSpec("LayoutConversion", To("nhwc"),
                             {Tensor(DType::kFloat32, {1, 2, 3, 4})}, {});
  spec.inputs[0].shape[0] = kUnknownDim;  // creation defers the shape checks
  auto kernel = KernelRegistry::Global().Create(Backend::kReference, spec);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_FALSE((*kernel)->Reshape(spec.inputs).ok());
}

}  // namespace
}  // namespace yolopipe::ops
