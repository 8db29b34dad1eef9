// kCpu Transpose against the reference. Pure data movement: outputs must be bitwise equal.
#include "ops/cpu/transpose.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "base/attributes.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cpu/cpu_test_util.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

using testing::CpuCase;
using testing::CpuCreateStatus;
using testing::CreateAndRun;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeSpec;
using testing::ToInt64s;

Attributes Perm(const std::vector<int64_t>& perm) {
  Attributes a;
  a.Set("perm", perm);
  return a;
}

// A tensor of `dtype` whose bytes are random (every bit pattern, NaNs included, must survive).
Tensor RandomBytes(DType dtype, const Shape& shape, std::mt19937& rng) {
  Tensor t(dtype, shape);
  uint8_t* p = static_cast<uint8_t*>(t.raw_data());
  for (size_t i = 0; i < t.bytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  return t;
}

// Runs both backends and compares outputs byte for byte.
::testing::AssertionResult CpuMatchesReference(const Tensor& x, const Attributes& attrs,
                                               int threads) {
  auto backend = KernelRegistry::Global().ResolveBackend("Transpose", Backend::kCpu);
  if (!backend.ok() || *backend != Backend::kCpu) {
    return ::testing::AssertionFailure() << "no kCpu Transpose kernel";
  }
  const KernelSpec spec = MakeSpec("Transpose", attrs, {x}, {});
  auto ref = CreateAndRun(Backend::kReference, spec, {x});
  if (!ref.ok()) return ::testing::AssertionFailure() << "reference: " << ref.status();
  auto cpu = CreateAndRun(Backend::kCpu, spec, {x}, threads);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "cpu: " << cpu.status();
  if (!BitwiseEqual((*cpu)[0], (*ref)[0])) {
    const Tensor& got = (*cpu)[0];
    const Tensor& want = (*ref)[0];
    const uint8_t* g = static_cast<const uint8_t*>(got.raw_data());
    const uint8_t* w = static_cast<const uint8_t*>(want.raw_data());
    size_t i = 0;
    while (i < want.bytes() && i < got.bytes() && g[i] == w[i]) ++i;
    return ::testing::AssertionFailure() << "got " << got.DebugString() << ", reference "
                                         << want.DebugString() << "; first differing byte " << i;
  }
  return ::testing::AssertionSuccess();
}

TEST(CpuTransposeTest, EveryPermutationUpToRank4) {
  std::mt19937 rng(1);
  // Odd sizes, size-1 axes (which the kernel drops) and sizes around the 8x8 / 16x16 tiles.
  const std::vector<Shape> shapes = {
      {5},         {3, 17},      {1, 9},         {17, 33},     {2, 3, 5},     {4, 1, 19},
      {9, 16, 17}, {2, 3, 4, 5}, {1, 4, 16, 37}, {3, 1, 7, 1}, {2, 17, 9, 24}};
  for (const Shape& shape : shapes) {
    std::vector<int64_t> perm(shape.size());
    std::iota(perm.begin(), perm.end(), 0);
    do {
      const Tensor x = RandomBytes(DType::kFloat32, shape, rng);
      EXPECT_TRUE(CpuMatchesReference(x, Perm(perm), 1))
          << ShapeToString(shape) << " perm " << ::testing::PrintToString(perm);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST(CpuTransposeTest, EveryElementSize) {
  std::mt19937 rng(2);
  for (DType dtype : {DType::kUInt8, DType::kBool, DType::kInt8, DType::kFloat16, DType::kInt32,
                      DType::kInt64, DType::kFloat64}) {
    for (const std::vector<int64_t>& perm :
         {std::vector<int64_t>{0, 2, 1, 3}, {3, 2, 1, 0}, {0, 3, 1, 2}, {1, 0, 2, 3}}) {
      const Tensor x = RandomBytes(dtype, {2, 5, 19, 11}, rng);
      EXPECT_TRUE(CpuMatchesReference(x, Perm(perm), 2))
          << DTypeName(dtype) << " perm " << ::testing::PrintToString(perm);
    }
  }
}

TEST(CpuTransposeTest, DefaultReversesAxes) {
  std::mt19937 rng(3);
  EXPECT_TRUE(CpuMatchesReference(RandomBytes(DType::kFloat32, {3, 4, 35}, rng), Attributes(), 2));
  // And independently of the reference.
  const Tensor x = Tensor::FromInt64s({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = CreateAndRun(Backend::kCpu, MakeSpec("Transpose", Attributes(), {x}, {}), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ((*y)[0].shape(), (Shape{3, 2}));
  EXPECT_THAT(ToInt64s((*y)[0]), ElementsAre(1, 4, 2, 5, 3, 6));
}

// Shapes large enough for several threads and several tiles per matrix.
TEST(CpuTransposeTest, LargeTensorsOnTwoThreads) {
  std::mt19937 rng(4);
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{2, 4, 16, 1050}, {0, 2, 1, 3}},  // YOLOv8's DFL transpose, smaller
      {{2, 84, 1344}, {0, 2, 1}},        // (B, 4+nc, A) -> (B, A, 4+nc)
      {{300, 517}, {1, 0}},
      {{3, 5, 7, 11, 13}, {4, 0, 3, 1, 2}},
      {{64, 2, 700}, {2, 1, 0}},
  };
  for (const auto& [shape, perm] : cases) {
    EXPECT_TRUE(CpuMatchesReference(RandomBytes(DType::kFloat32, shape, rng), Perm(perm), 2))
        << ShapeToString(shape);
  }
}

TEST(CpuTransposeTest, EmptyAndSingleElementTensors) {
  std::mt19937 rng(5);
  EXPECT_TRUE(CpuMatchesReference(Tensor(DType::kFloat32, {0, 3}), Perm({1, 0}), 1));
  EXPECT_TRUE(
      CpuMatchesReference(RandomBytes(DType::kFloat32, {1, 1, 1}, rng), Perm({2, 0, 1}), 1));
  EXPECT_TRUE(CpuMatchesReference(RandomBytes(DType::kInt64, {1}, rng), Attributes(), 1));
}

TEST(CpuTransposeRejectsTest, SameChecksAsReference) {
  std::mt19937 rng(6);
  const Tensor x = RandomBytes(DType::kFloat32, {2, 3}, rng);
  absl::Status dup = CpuCreateStatus(CpuCase{"Transpose", Perm({0, 0}), {x}});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.message(), HasSubstr("test_node"));
  EXPECT_THAT(dup.message(), HasSubstr("perm [0, 0] is not a permutation"));
  EXPECT_THAT(CpuCreateStatus(CpuCase{"Transpose", Perm({0, 1, 2}), {x}}).message(),
              HasSubstr("has 3 entries but input float32(2, 3)"));
  EXPECT_THAT(CpuCreateStatus(CpuCase{"Transpose", Perm({0, 2}), {x}}).message(),
              HasSubstr("not a permutation"));
  const Tensor image = RandomBytes(DType::kFloat32, {1, 3, 2, 2}, rng);
  EXPECT_THAT(
      CpuCreateStatus(CpuCase{"Transpose", Perm({0, 2, 3, 1}), {image}, {}, {Layout::kNHWC}})
          .message(),
      HasSubstr("needs plain layout"));
  Attributes not_ints;
  not_ints.Set("perm", std::string("0,1"));
  EXPECT_THAT(CpuCreateStatus(CpuCase{"Transpose", not_ints, {x}}).message(),
              HasSubstr("test_node"));
}

}  // namespace
}  // namespace yolopipe::ops
