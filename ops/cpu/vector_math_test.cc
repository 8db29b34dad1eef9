#include "ops/cpu/vector_math.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "ops/reference/elementwise.h"

namespace yolopipe::ops::vmath {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Distance in units in the last place between two finite floats of the same sign.
int64_t UlpDistance(float a, float b) {
  return std::llabs(static_cast<int64_t>(Bits(a)) - static_cast<int64_t>(Bits(b)));
}

// Every 61st float in [lo, hi] (both finite, same sign), in bit-pattern order.
std::vector<float> Sweep(float lo, float hi) {
  std::vector<float> out;
  uint32_t a = Bits(lo), b = Bits(hi);
  if (a > b) std::swap(a, b);
  for (uint64_t u = a; u <= b; u += 61) out.push_back(FromBits(static_cast<uint32_t>(u)));
  return out;
}

std::vector<float> ExpSweep() {
  std::vector<float> xs = Sweep(0.0f, kFastExpMax);
  std::vector<float> negative = Sweep(-0.0f, kFastExpMin);
  xs.insert(xs.end(), negative.begin(), negative.end());
  return xs;
}

// Applies the 8-lane version where there is one, else the scalar one.
std::vector<float> Vectorised(const std::vector<float>& xs, bool sigmoid) {
  std::vector<float> ys(xs.size());
  size_t i = 0;
#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
  for (; i + 8 <= xs.size(); i += 8) {
    const __m256 x = _mm256_loadu_ps(&xs[i]);
    _mm256_storeu_ps(&ys[i], sigmoid ? Sigmoid8(x) : Exp8(x));
  }
#endif
  for (; i < xs.size(); ++i) ys[i] = sigmoid ? Sigmoid(xs[i]) : Exp(xs[i]);
  return ys;
}

TEST(VectorMathTest, ExpIsWithinTwoUlpOfLibmOnTheFastRange) {
  const std::vector<float> xs = ExpSweep();
  ASSERT_GT(xs.size(), 10'000'000u);
  int64_t worst = 0;
  float worst_x = 0.0f;
  for (float x : xs) {
    const float want = std::exp(x);
    const float got = Exp(x);
    // Results below the smallest normal lose precision with their exponent; compare those by
    // absolute error instead.
    if (want < std::numeric_limits<float>::min()) {
      ASSERT_LE(std::fabs(got - want), 2 * std::numeric_limits<float>::denorm_min()) << x;
      continue;
    }
    const int64_t d = UlpDistance(got, want);
    if (d > worst) {
      worst = d;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, 2) << "at x = " << worst_x << ": " << Exp(worst_x) << " vs libm "
                      << std::exp(worst_x);
}

TEST(VectorMathTest, VectorAndScalarPathsGiveTheSameBits) {
  std::vector<float> xs = ExpSweep();
  const std::vector<float> extra = Sweep(-120.0f, -80.0f);
  xs.insert(xs.end(), extra.begin(), extra.end());
  for (bool sigmoid : {false, true}) {
    const std::vector<float> vector_ys = Vectorised(xs, sigmoid);
    for (size_t i = 0; i < xs.size(); ++i) {
      const float scalar = sigmoid ? Sigmoid(xs[i]) : Exp(xs[i]);
      ASSERT_EQ(Bits(vector_ys[i]), Bits(scalar))
          << (sigmoid ? "sigmoid(" : "exp(") << xs[i] << ")";
    }
  }
}

TEST(VectorMathTest, OutsideTheFastRangeMatchesLibmExactly) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> xs = {88.5f,   89.0f,   1000.0f, inf,  -87.2f, -90.0f, -100.0f,
                                 -103.9f, -104.0f, -1e4f,   -inf, 0.0f,   -0.0f,  1e-30f};
  // Padded to a multiple of 8 with in-range values so that the vector path sees mixed lanes.
  std::vector<float> padded = xs;
  while (padded.size() % 8 != 0) padded.push_back(1.5f);
  const std::vector<float> ys = Vectorised(padded, false);
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!InFastExpRange(xs[i])) {
      EXPECT_EQ(Bits(ys[i]), Bits(std::exp(xs[i]))) << "exp(" << xs[i] << ")";
    }
    EXPECT_EQ(Bits(Exp(xs[i])), Bits(ys[i])) << xs[i];
  }
  EXPECT_EQ(Exp(0.0f), 1.0f);
  EXPECT_EQ(Exp(-inf), 0.0f);
  EXPECT_EQ(Exp(inf), inf);
  EXPECT_TRUE(std::isnan(Exp(std::numeric_limits<float>::quiet_NaN())));
  std::vector<float> nan_lanes(8, std::numeric_limits<float>::quiet_NaN());
  nan_lanes[3] = 2.0f;
  const std::vector<float> nan_ys = Vectorised(nan_lanes, false);
  EXPECT_TRUE(std::isnan(nan_ys[0]));
  EXPECT_EQ(Bits(nan_ys[3]), Bits(Exp(2.0f)));
}

// The kCpu Sigmoid replaces the reference kernel's std::exp with Exp: the results agree to 1e-6
// relative (about 8 ulp; the bound that the kernel tests state).
TEST(VectorMathTest, SigmoidAgreesWithTheReferenceFormula) {
  std::vector<float> xs = Sweep(0.0f, 120.0f);
  const std::vector<float> negative = Sweep(-0.0f, -120.0f);
  xs.insert(xs.end(), negative.begin(), negative.end());
  float worst = 0.0f;
  for (float x : xs) {
    const float want = ops::Sigmoid(x);
    const float got = Sigmoid(x);
    if (want == 0.0f) {
      ASSERT_EQ(got, 0.0f) << x;
      continue;
    }
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LE(worst, 1e-6f);
  EXPECT_EQ(Sigmoid(0.0f), 0.5f);
  EXPECT_EQ(Sigmoid(std::numeric_limits<float>::infinity()), 1.0f);
  EXPECT_EQ(Sigmoid(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isnan(Sigmoid(std::numeric_limits<float>::quiet_NaN())));
}

TEST(VectorMathTest, SigmoidArrayHandlesTailsAndInPlace) {
  std::vector<float> xs;
  for (int i = 0; i < 21; ++i) xs.push_back(-10.0f + 1.1f * static_cast<float>(i));
  std::vector<float> ys(xs.size());
  SigmoidArray(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(Bits(ys[i]), Bits(Sigmoid(xs[i]))) << i;
  SigmoidArray(xs.data(), xs.data(), static_cast<int64_t>(xs.size()));
  EXPECT_EQ(xs, ys);
}

}  // namespace
}  // namespace yolopipe::ops::vmath
