#include "ops/cpu/matrix_transpose.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace yolopipe::ops {
namespace {

// Transposes a rows x cols sub-matrix with padded strides (and with a dense destination, which
// has its own path for few rows) for every element size, and checks each destination element
// against a naive loop, and that the padding is left untouched.
TEST(MatrixTransposeTest, MatchesNaiveLoopOnRaggedShapesAndStrides) {
  std::mt19937 rng(7);
  for (size_t size : {1u, 2u, 4u, 8u, 3u}) {
    for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 40}) {
      for (int64_t cols : {1, 5, 8, 15, 16, 33}) {
        for (bool dense : {false, true}) {
          const int64_t src_stride = cols + 3, dst_stride = dense ? rows : rows + 5;
          std::vector<uint8_t> src(static_cast<size_t>(rows * src_stride) * size);
          for (uint8_t& b : src) b = static_cast<uint8_t>(rng());
          std::vector<uint8_t> dst(static_cast<size_t>(cols * dst_stride) * size, 0xAB);
          std::vector<uint8_t> want = dst;
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
              std::memcpy(&want[(c * dst_stride + r) * size], &src[(r * src_stride + c) * size],
                          size);
            }
          }
          TransposeMatrix(src.data(), src_stride, dst.data(), dst_stride, rows, cols, size);
          ASSERT_EQ(dst, want) << "element size " << size << ", " << rows << " x " << cols
                               << (dense ? " dense" : "");
        }
      }
    }
  }
}

// NaN payloads and signed zeros of float data survive (the copy never goes through arithmetic).
TEST(MatrixTransposeTest, KeepsFloatBitPatterns) {
  const int64_t rows = 16, cols = 24;
  std::vector<uint32_t> src(rows * cols);
  for (size_t i = 0; i < src.size(); ++i) {
    src[i] = 0x7F800001u + static_cast<uint32_t>(i);  // signalling NaNs with distinct payloads
  }
  src[5] = 0x80000000u;  // -0.0f
  std::vector<uint32_t> dst(rows * cols, 0);
  TransposeMatrix(src.data(), cols, dst.data(), rows, rows, cols, sizeof(float));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      ASSERT_EQ(dst[c * rows + r], src[r * cols + c]) << r << ", " << c;
    }
  }
}

TEST(MatrixTransposeTest, EmptyMatrixWritesNothing) {
  std::vector<float> src = {1.0f, 2.0f};
  std::vector<float> dst = {7.0f, 7.0f};
  TransposeMatrix(src.data(), 2, dst.data(), 1, 0, 2, sizeof(float));
  TransposeMatrix(src.data(), 2, dst.data(), 1, 2, 0, sizeof(float));
  EXPECT_EQ(dst, (std::vector<float>{7.0f, 7.0f}));
}

}  // namespace
}  // namespace yolopipe::ops
