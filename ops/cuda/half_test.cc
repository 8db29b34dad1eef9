#include "ops/cuda/half.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace yolopipe::ops::cuda {
namespace {

// Independent decoder: value = (-1)^s * 2^(e-15) * (1 + m/1024), subnormal 2^-14 * m/1024.
double DecodeHalf(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 0) {
    v = std::ldexp(m / 1024.0, -14);
  } else if (e == 31) {
    v = m == 0 ? std::numeric_limits<double>::infinity() : std::nan("");
  } else {
    v = std::ldexp(1.0 + m / 1024.0, e - 15);
  }
  return s ? -v : v;
}

TEST(HalfTest, KnownBitPatterns) {
  EXPECT_EQ(FloatToHalfBits(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalfBits(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalfBits(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalfBits(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalfBits(0.5f), 0x3800);
  EXPECT_EQ(FloatToHalfBits(65504.0f), 0x7bff);               // largest finite
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7c00);               // ties to even -> inf
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (zero)
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalfBits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(FloatToHalfBits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(FloatToHalfBits(std::numeric_limits<float>::infinity()), 0x7c00);
  const uint16_t nan = FloatToHalfBits(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
}

TEST(HalfTest, EveryHalfRoundTripsAndDecodesExactly) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    const float f = HalfBitsToFloat(h);
    const double expected = DecodeHalf(h);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(f)) << bits;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), expected) << bits;
    ASSERT_EQ(FloatToHalfBits(f), h) << bits;
  }
}

TEST(HalfTest, RandomFloatsRoundToTheNearestHalf) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  std::uniform_real_distribution<float> small(-1e-4f, 1e-4f);
  for (int i = 0; i < 20000; ++i) {
    const float f = (i % 2 == 0) ? dist(rng) : small(rng);
    const uint16_t h = FloatToHalfBits(f);
    const double got = DecodeHalf(h);
    if (std::fabs(f) >= 65520.0f) {
      EXPECT_TRUE(std::isinf(got)) << f;
      continue;
    }
    // No other half of the same sign may be strictly closer: check the neighbours.
    const double err = std::fabs(got - f);
    for (int delta : {-1, 1}) {
      const int neighbour = static_cast<int>(h & 0x7fff) + delta;
      if (neighbour < 0 || neighbour > 0x7bff) continue;
      const uint16_t nb = static_cast<uint16_t>((h & 0x8000) | neighbour);
      EXPECT_LE(err, std::fabs(DecodeHalf(nb) - f)) << f;
    }
  }
}

}  // namespace
}  // namespace yolopipe::ops::cuda
