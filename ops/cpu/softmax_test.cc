// kCpu Softmax against the reference. The kernels differ only in e^x (vmath::Exp is within 1 ulp
// of std::exp) and, on the last axis, in the order of the row sum, so the outputs must agree to
// kRelTol relative; kAbsTol only matters for probabilities below the normal range.
#include "ops/cpu/softmax.h"

#include <cmath>
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
using testing::CpuMatchesReference;
using testing::CreateAndRun;
using ::testing::HasSubstr;
using testing::MakeSpec;
using testing::RandomFloats;

constexpr float kRelTol = 1e-6f;
constexpr float kAbsTol = 1e-30f;

Attributes Axis(int64_t axis) {
  Attributes a;
  a.Set("axis", axis);
  return a;
}

TEST(CpuSoftmaxTest, DflShapeOverAxisOne) {
  std::mt19937 rng(1);
  // (B, 16, 4, A) with A not a multiple of 8, and one large enough for several blocks.
  for (const Shape& shape : {Shape{1, 16, 4, 37}, Shape{3, 16, 4, 300}, Shape{2, 16, 4, 1344}}) {
    for (int threads : {1, 2}) {
      CpuCase c{"Softmax", Axis(1), {RandomFloats(shape, rng, -10.0f, 10.0f)}};
      c.num_threads = threads;
      EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain, kAbsTol, kRelTol))
          << ShapeToString(shape) << " threads " << threads;
    }
  }
}

TEST(CpuSoftmaxTest, EveryAxisOfSeveralRanks) {
  std::mt19937 rng(2);
  for (const Shape& shape : {Shape{7}, Shape{3, 9}, Shape{2, 3, 17}, Shape{2, 5, 3, 11},
                             Shape{1, 100, 1, 3}, Shape{4, 1, 6, 8}}) {
    const int rank = static_cast<int>(shape.size());
    for (int64_t axis = -rank; axis < rank; ++axis) {
      CpuCase c{"Softmax", Axis(axis), {RandomFloats(shape, rng, -5.0f, 5.0f)}};
      c.num_threads = 2;
      EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain, kAbsTol, kRelTol))
          << ShapeToString(shape) << " axis " << axis;
    }
  }
  CpuCase default_axis{"Softmax", Attributes(), {RandomFloats({5, 33}, rng)}};
  EXPECT_TRUE(CpuMatchesReference(default_axis, Layout::kPlain, kAbsTol, kRelTol));
}

TEST(CpuSoftmaxTest, LastAxisRows) {
  std::mt19937 rng(3);
  // Rows shorter than a vector, ragged rows, and the class-score width of YOLOv8 (80).
  for (int64_t row : {1, 5, 8, 13, 80, 100}) {
    CpuCase c{"Softmax", Axis(-1), {RandomFloats({67, row}, rng, -8.0f, 8.0f)}};
    c.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain, kAbsTol, kRelTol)) << "row " << row;
  }
  // Long rows: the partial sums round differently from the reference's sequential sum by up to
  // about sqrt(n) ulp.
  CpuCase long_rows{"Softmax", Axis(1), {RandomFloats({3, 4000}, rng, -3.0f, 3.0f)}};
  EXPECT_TRUE(CpuMatchesReference(long_rows, Layout::kPlain, kAbsTol, 1e-5f));
}

TEST(CpuSoftmaxTest, LargeMagnitudesAreStable) {
  // Without subtracting the maximum, e^1000 would overflow and e^-1000 underflow.
  std::vector<float> v;
  for (int i = 0; i < 48; ++i) v.push_back((i % 2 == 0 ? 1000.0f : -1000.0f) + 0.5f * (i % 7));
  const Tensor x = Tensor::FromFloats({2, 3, 8}, v);
  for (int64_t axis : {1, 2}) {
    CpuCase c{"Softmax", Axis(axis), {x}};
    EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain, kAbsTol, kRelTol)) << "axis " << axis;
  }
  // Independently of the reference: softmax of (1000, 1001) over the last axis.
  auto y = CreateAndRun(
      Backend::kCpu,
      MakeSpec("Softmax", Attributes(), {Tensor::FromFloats({1, 2}, {1000.0f, 1001.0f})}, {}),
      {Tensor::FromFloats({1, 2}, {1000.0f, 1001.0f})});
  ASSERT_TRUE(y.ok()) << y.status();
  const double e = std::exp(1.0);
  EXPECT_NEAR((*y)[0].data<float>()[0], 1.0 / (1.0 + e), 1e-7);
  EXPECT_NEAR((*y)[0].data<float>()[1], e / (1.0 + e), 1e-7);
}

TEST(CpuSoftmaxTest, ResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(4);
  for (int64_t axis : {1, 3}) {
    const Tensor x = RandomFloats({3, 16, 4, 257}, rng, -6.0f, 6.0f);
    const KernelSpec spec = MakeSpec("Softmax", Axis(axis), {x}, {});
    auto one = CreateAndRun(Backend::kCpu, spec, {x}, 1);
    auto two = CreateAndRun(Backend::kCpu, spec, {x}, 2);
    ASSERT_TRUE(one.ok() && two.ok());
    EXPECT_TRUE(BitwiseEqual((*one)[0], (*two)[0])) << "axis " << axis;
  }
}

TEST(CpuSoftmaxTest, Float64RunsTheReference) {
  CpuCase c{"Softmax", Axis(0), {testing::Float64s({3, 2}, {0.5, -1.0, 2.0, 3.0, -7.0, 0.0})}};
  EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain));
}

TEST(CpuSoftmaxRejectsTest, SameChecksAsReference) {
  std::mt19937 rng(5);
  CpuCase bad_axis{"Softmax", Axis(3), {RandomFloats({2, 3}, rng)}};
  absl::Status s = CpuCreateStatus(bad_axis);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("3 is out of range"));
  CpuCase ints{"Softmax", Attributes(), {Tensor::FromInt64s({2}, {1, 2})}};
  EXPECT_THAT(CpuCreateStatus(ints).message(), HasSubstr("unsupported dtype int64"));
  CpuCase nhwc{"Softmax", Axis(1), {RandomFloats({1, 16, 2, 2}, rng)}, {}, {Layout::kNHWC}};
  EXPECT_THAT(CpuCreateStatus(nhwc).message(), HasSubstr("needs plain layout"));
  Attributes not_int;
  not_int.Set("axis", std::string("1"));
  CpuCase bad_attr{"Softmax", not_int, {RandomFloats({2, 3}, rng)}};
  EXPECT_FALSE(CpuCreateStatus(bad_attr).ok());
  EXPECT_THAT(CpuCreateStatus(bad_attr).message(), HasSubstr("test_node"));
}

}  // namespace
}  // namespace yolopipe::ops
