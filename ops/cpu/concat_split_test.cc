// kCpu Concat/Split against the reference. Pure data movement: results must be bitwise equal.
#include "ops/cpu/concat_split.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/cpu/cpu_test_util.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"

namespace yolopipe::ops {
namespace {

using ::testing::HasSubstr;
using testing::CpuCase;
using testing::CpuCreateStatus;
using testing::CpuMatchesReference;
using testing::RandomFloats;

Attributes Axis(int64_t axis) {
  Attributes a;
  a.Set("axis", axis);
  return a;
}

TEST(CpuConcatTest, ChannelConcatNhwcMatchesReference) {
  std::mt19937 rng(1);
  for (int64_t n : {1, 3}) {
    for (int threads : {1, 2}) {
      // C2f-like: [a, b, m1, m2] with odd channel counts.
      CpuCase c{"Concat", Axis(1),
                {RandomFloats({n, 17, 9, 7}, rng), RandomFloats({n, 3, 9, 7}, rng),
                 RandomFloats({n, 144, 9, 7}, rng), RandomFloats({n, 17, 9, 7}, rng)},
                {},
                {Layout::kNHWC, Layout::kNHWC, Layout::kNHWC, Layout::kNHWC}};
      c.num_threads = threads;
      EXPECT_TRUE(CpuMatchesReference(c, Layout::kNHWC)) << "n=" << n << " threads=" << threads;
      c.attrs = Axis(-3);
      EXPECT_TRUE(CpuMatchesReference(c, Layout::kNHWC));
    }
  }
}

TEST(CpuConcatTest, LargeNhwcConcatUsesThreads) {
  std::mt19937 rng(2);
  CpuCase c{"Concat", Axis(1),
            {RandomFloats({1, 64, 40, 40}, rng), RandomFloats({1, 128, 40, 40}, rng)},
            {},
            {Layout::kNHWC, Layout::kNHWC}};
  c.num_threads = 2;
  EXPECT_TRUE(CpuMatchesReference(c, Layout::kNHWC));
}

// Channel counts that hit every copy loop: the fixed-size runs (8, 16, 32, 48, 64 floats), the
// 32-byte-chunk loop with each tail (16, 8, 4 bytes), and runs of 1 KiB and more; on enough
// pixels for several blocks per thread.
TEST(CpuConcatTest, EveryRunWidthNhwc) {
  std::mt19937 rng(11);
  for (int64_t c : {1, 2, 3, 4, 5, 7, 8, 16, 17, 32, 48, 64, 72, 300}) {
    CpuCase cat{"Concat", Axis(1),
                {RandomFloats({2, c, 23, 37}, rng), RandomFloats({2, 16, 23, 37}, rng),
                 RandomFloats({2, c, 23, 37}, rng)},
                {},
                {Layout::kNHWC, Layout::kNHWC, Layout::kNHWC}};
    cat.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(cat, Layout::kNHWC)) << "c=" << c;
    CpuCase split{"Split", Axis(1), {RandomFloats({2, 2 * c, 23, 37}, rng)}, {}, {Layout::kNHWC}};
    split.num_outputs = 2;
    split.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(split, Layout::kNHWC)) << "c=" << c;
  }
}

// One-byte elements: runs of any byte count.
TEST(CpuConcatTest, PlainByteRunsOfEveryLength) {
  std::mt19937 rng(12);
  auto bytes = [&](const Shape& shape) {
    Tensor t(DType::kUInt8, shape);
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<uint8_t>()[i] = rng() & 0xFF;
    return t;
  };
  for (int64_t width : {1, 3, 7, 15, 31, 33, 63, 1100}) {
    CpuCase cat{"Concat", Axis(1), {bytes({5, width}), bytes({5, 2}), bytes({5, width})}};
    EXPECT_TRUE(CpuMatchesReference(cat, Layout::kPlain)) << "width " << width;
    CpuCase split{"Split", Axis(-1), {bytes({5, 2 * width})}};
    split.num_outputs = 2;
    EXPECT_TRUE(CpuMatchesReference(split, Layout::kPlain)) << "width " << width;
  }
}

// Rows of 4 KiB and more are copied as byte ranges split across threads, even with one row.
TEST(CpuConcatTest, PlainLongRowsSplitAcrossThreads) {
  std::mt19937 rng(13);
  for (int64_t n : {1, 3}) {
    // The detect head: (B, 64, A) box and (B, 80, A) class rows, an empty input in between.
    CpuCase cat{"Concat", Axis(1),
                {RandomFloats({n, 64, 3001}, rng), RandomFloats({n, 0, 3001}, rng),
                 RandomFloats({n, 80, 3001}, rng)}};
    cat.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(cat, Layout::kPlain)) << "n=" << n;
    CpuCase split{"Split", Axis(1),
                  {RandomFloats({n, 144, 3001}, rng), Tensor::FromInt64s({3}, {64, 0, 80})},
                  {1}};
    split.num_outputs = 3;
    split.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(split, Layout::kPlain)) << "n=" << n;
  }
  // Many long rows, and pieces that straddle the 64 KiB chunk boundaries at odd offsets.
  CpuCase rows{"Concat", Axis(-1),
               {RandomFloats({37, 1001}, rng), RandomFloats({37, 3}, rng),
                RandomFloats({37, 2000}, rng)}};
  rows.num_threads = 2;
  EXPECT_TRUE(CpuMatchesReference(rows, Layout::kPlain));
  CpuCase split_rows{"Split", Axis(-1), {RandomFloats({37, 3003}, rng)}};
  split_rows.num_outputs = 3;
  split_rows.num_threads = 2;
  EXPECT_TRUE(CpuMatchesReference(split_rows, Layout::kPlain));
}

TEST(CpuConcatTest, MixedNhwcAndPlainInputs) {
  std::mt19937 rng(3);
  CpuCase c{"Concat", Axis(1),
            {RandomFloats({3, 5, 4, 6}, rng), RandomFloats({3, 17, 4, 6}, rng)},
            {1},
            {Layout::kNHWC, Layout::kPlain}};
  EXPECT_TRUE(CpuMatchesReference(c, Layout::kNHWC));
}

TEST(CpuConcatTest, PlainAnyAxisAndDtype) {
  std::mt19937 rng(4);
  for (int64_t axis : {0, 1, 2, -1}) {
    CpuCase c{"Concat", Axis(axis),
              {RandomFloats({2, 3, 4, 5}, rng), RandomFloats({2, 3, 4, 5}, rng)}};
    EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain)) << "axis " << axis;
  }
  CpuCase ints{"Concat", Axis(0), {Tensor::FromInt64s({2}, {1, 2}), Tensor::FromInt64s({1}, {3})}};
  EXPECT_TRUE(CpuMatchesReference(ints, Layout::kPlain));
}

TEST(CpuConcatTest, RejectsNhwcAlongNonChannelAxis) {
  std::mt19937 rng(5);
  CpuCase c{"Concat", Axis(2),
            {RandomFloats({1, 3, 4, 4}, rng), RandomFloats({1, 3, 4, 4}, rng)},
            {},
            {Layout::kNHWC, Layout::kNHWC}};
  absl::Status s = CpuCreateStatus(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("test_node"));
  EXPECT_THAT(s.message(), HasSubstr("only be concatenated along the channel axis"));
  // Shape mismatches are reported like the reference.
  CpuCase bad{"Concat", Axis(1),
              {RandomFloats({1, 3, 4, 4}, rng), RandomFloats({1, 3, 5, 4}, rng)},
              {},
              {Layout::kNHWC, Layout::kNHWC}};
  EXPECT_THAT(CpuCreateStatus(bad).message(), HasSubstr("in dimension 2"));
}

TEST(CpuSplitTest, ChannelSplitNhwcMatchesReference) {
  std::mt19937 rng(6);
  for (int64_t n : {1, 3}) {
    // Equal halves (C2f) of 144 channels, and uneven sizes from a constant input.
    CpuCase halves{"Split", Axis(1), {RandomFloats({n, 144, 5, 7}, rng)}, {}, {Layout::kNHWC}};
    halves.num_outputs = 2;
    halves.num_threads = 2;
    EXPECT_TRUE(CpuMatchesReference(halves, Layout::kNHWC));
    CpuCase sizes{"Split", Axis(-3),
                  {RandomFloats({n, 37, 5, 7}, rng), Tensor::FromInt64s({3}, {17, 3, 17})},
                  {1},
                  {Layout::kNHWC}};
    sizes.num_outputs = 3;
    EXPECT_TRUE(CpuMatchesReference(sizes, Layout::kNHWC));
  }
}

TEST(CpuSplitTest, PlainAnyAxis) {
  std::mt19937 rng(7);
  for (int64_t axis : {0, 2, -1}) {
    CpuCase c{"Split", Axis(axis), {RandomFloats({4, 3, 6, 8}, rng)}};
    c.num_outputs = 2;
    EXPECT_TRUE(CpuMatchesReference(c, Layout::kPlain)) << "axis " << axis;
  }
  // The DFL/detect split of (1, 144, 8400) into box (64) and cls (80) along axis 1.
  CpuCase detect{"Split", Axis(1),
                 {RandomFloats({1, 144, 300}, rng), Tensor::FromInt64s({2}, {64, 80})},
                 {1}};
  detect.num_outputs = 2;
  EXPECT_TRUE(CpuMatchesReference(detect, Layout::kPlain));
}

TEST(CpuSplitTest, RejectsNhwcAlongNonChannelAxis) {
  std::mt19937 rng(8);
  CpuCase c{"Split", Axis(3), {RandomFloats({1, 4, 4, 4}, rng)}, {}, {Layout::kNHWC}};
  c.num_outputs = 2;
  absl::Status s = CpuCreateStatus(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("only be split along the channel axis"));
}

}  // namespace
}  // namespace yolopipe::ops
