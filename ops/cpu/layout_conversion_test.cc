// kCpu LayoutConversion against the reference kernel: pure data movement, so bitwise equal.
#include "ops/cpu/layout_conversion.h"

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"
#include "ops/reference/layout_conversion.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

using ::testing::HasSubstr;
using testing::CreateAndReshapeStatus;
using testing::CreateAndRun;
using testing::MakeSpec;
using testing::RandomFloats;

Attributes To(Layout layout) {
  Attributes a;
  a.Set("to", LayoutName(layout));
  return a;
}

// Runs both backends on `x` (already in the source layout) and compares the bytes.
::testing::AssertionResult CpuMatchesReference(const Tensor& x, Layout to, int threads) {
  const KernelSpec spec = MakeSpec("LayoutConversion", To(to), {x}, {});
  auto backend = KernelRegistry::Global().ResolveBackend("LayoutConversion", Backend::kCpu);
  if (!backend.ok() || *backend != Backend::kCpu) {
    return ::testing::AssertionFailure() << "no kCpu LayoutConversion kernel";
  }
  auto ref = CreateAndRun(Backend::kReference, spec, {x});
  if (!ref.ok()) return ::testing::AssertionFailure() << "reference: " << ref.status();
  auto cpu = CreateAndRun(Backend::kCpu, spec, {x}, threads);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "cpu: " << cpu.status();
  const Tensor& want = (*ref)[0];
  const Tensor& got = (*cpu)[0];
  if (got.layout() != to || want.layout() != to) {
    return ::testing::AssertionFailure() << "got " << got.DebugString() << ", reference "
                                         << want.DebugString();
  }
  if (!BitwiseEqual(got, want)) {
    const float* g = got.data<float>();
    const float* w = want.data<float>();
    for (int64_t i = 0; i < want.num_elements(); ++i) {
      if (g[i] != w[i]) {
        return ::testing::AssertionFailure() << got.DebugString() << ": physical element " << i
                                             << " is " << g[i] << ", reference " << w[i];
      }
    }
    return ::testing::AssertionFailure() << "bits differ";
  }
  return ::testing::AssertionSuccess();
}

TEST(CpuLayoutConversionTest, BothDirectionsOnOddShapesMatchReferenceBitwise) {
  std::mt19937 rng(1);
  // H*W of 35, 15 and 400 (not multiples of 16), and a single row of 1000 pixels.
  const std::vector<std::pair<int64_t, int64_t>> spatial = {{5, 7}, {3, 5}, {20, 20}, {1, 1000}};
  for (int64_t n : {1, 3}) {
    for (int64_t c : {1, 3, 17, 144}) {
      for (const auto& [h, w] : spatial) {
        for (int threads : {1, 2}) {
          const Tensor plain = RandomFloats({n, c, h, w}, rng);
          EXPECT_TRUE(CpuMatchesReference(plain, Layout::kNHWC, threads))
              << "to nhwc n" << n << " c" << c << " " << h << "x" << w << " t" << threads;
          const Tensor nhwc = *RandomFloats({n, c, h, w}, rng).ToLayout(Layout::kNHWC);
          EXPECT_TRUE(CpuMatchesReference(nhwc, Layout::kPlain, threads))
              << "to plain n" << n << " c" << c << " " << h << "x" << w << " t" << threads;
        }
      }
    }
  }
}

// Shapes large enough to be split across threads into several pixel blocks per image, with
// ragged blocks at the end of each image.
TEST(CpuLayoutConversionTest, LargeActivationsSplitAcrossThreads) {
  std::mt19937 rng(2);
  for (const Shape& shape : {Shape{3, 16, 4, 1050}, Shape{2, 144, 40, 41}, Shape{2, 3, 97, 101},
                             Shape{1, 64, 1, 1}}) {
    const Tensor plain = RandomFloats(shape, rng);
    EXPECT_TRUE(CpuMatchesReference(plain, Layout::kNHWC, 2)) << ShapeToString(shape);
    EXPECT_TRUE(CpuMatchesReference(*plain.ToLayout(Layout::kNHWC), Layout::kPlain, 2))
        << ShapeToString(shape);
  }
}

TEST(CpuLayoutConversionTest, RoundTripRestoresTheInput) {
  std::mt19937 rng(3);
  const Tensor x = RandomFloats({2, 33, 9, 11}, rng);
  auto nhwc = CreateAndRun(Backend::kCpu, MakeSpec("LayoutConversion", To(Layout::kNHWC), {x}, {}),
                           {x}, 2);
  ASSERT_TRUE(nhwc.ok()) << nhwc.status();
  const Tensor mid = (*nhwc)[0];
  auto back = CreateAndRun(Backend::kCpu,
                           MakeSpec("LayoutConversion", To(Layout::kPlain), {mid}, {}), {mid}, 2);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(BitwiseEqual((*back)[0], x));
}

TEST(CpuLayoutConversionRejectsTest, SameChecksAsReference) {
  auto status = [](const Attributes& attrs, const std::vector<Tensor>& inputs) {
    return CreateAndReshapeStatus(Backend::kCpu, MakeSpec("LayoutConversion", attrs, inputs, {}));
  };
  const Tensor plain(DType::kFloat32, {1, 2, 3, 4});
  absl::Status same = status(To(Layout::kPlain), {plain});
  ASSERT_FALSE(same.ok());
  EXPECT_THAT(same.message(), HasSubstr("test_node"));
  EXPECT_THAT(same.message(), HasSubstr("is already in layout plain"));
  EXPECT_THAT(status(To(Layout::kNHWC), {*plain.ToLayout(Layout::kNHWC)}).message(),
              HasSubstr("is already in layout nhwc"));
  EXPECT_THAT(status(To(Layout::kNHWC), {Tensor(DType::kFloat32, {2, 3, 4})}).message(),
              HasSubstr("input must be a 4-D float32 tensor"));
  EXPECT_THAT(status(To(Layout::kNHWC), {Tensor(DType::kInt32, {1, 2, 3, 4})}).message(),
              HasSubstr("input must be a 4-D float32 tensor, got int32"));
  EXPECT_THAT(status(Attributes(), {plain}).message(), HasSubstr("attribute 'to' is required"));
  Attributes bad;
  bad.Set("to", std::string("nchw"));
  EXPECT_THAT(status(bad, {plain}).message(), HasSubstr("got \"nchw\""));
}

// A Run whose tensors disagree with the layouts of the last Reshape must not silently copy.
TEST(CpuLayoutConversionRejectsTest, RunWithInputAlreadyInTargetLayout) {
  const Tensor plain(DType::kFloat32, {1, 2, 3, 4});
  auto kernel = KernelRegistry::Global().Create(
      Backend::kCpu, MakeSpec("LayoutConversion", To(Layout::kNHWC), {plain}, {}));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  const Tensor nhwc = *plain.ToLayout(Layout::kNHWC);
  Tensor out(DType::kFloat32, {1, 2, 3, 4}, Layout::kNHWC);
  std::vector<Tensor> outputs = {out};
  absl::Status s = (*kernel)->Run(RunContext{}, {nhwc}, absl::MakeSpan(outputs));
  EXPECT_THAT(s.message(), HasSubstr("is already nhwc"));
}

}  // namespace
}  // namespace yolopipe::ops
