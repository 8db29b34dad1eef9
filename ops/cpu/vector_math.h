// Vectorised float32 exp and sigmoid for the kCpu kernels (header-only).
//
// Exp evaluates e^x with Cephes' expf scheme: x = n ln2 + r with n = round(x log2 e), a degree-5
// polynomial for e^r on |r| <= ln2/2, then an exact scaling by 2^n. On [kFastExpMin, kFastExpMax]
// its error is within 2 ulp of the correctly rounded result (vector_math_test sweeps every float
// there); outside that range (overflow, results in the subnormal range, NaN) it returns std::exp,
// so infinities, zeros and subnormals come out exactly as libm's.
//
// Every function has an 8-lane AVX2+FMA version (Exp8, Sigmoid8; compiled when the target has
// AVX2 and FMA, as the project's x86-64-v3 baseline does) and a scalar version that performs the
// same operations in the same order (fused multiply-adds included), so a value gets the same bits
// whether it lands in a vector body or in a scalar tail. Results therefore never depend on how
// work is split across threads.
#ifndef YOLOPIPE_OPS_CPU_VECTOR_MATH_H_
#define YOLOPIPE_OPS_CPU_VECTOR_MATH_H_

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define YOLOPIPE_VECTOR_MATH_AVX2 1
#endif

namespace yolopipe::ops::vmath {

// The range of x on which the polynomial path runs: n stays in [-126, 127], so 2^n is a normal
// float and only the final multiply can round.
inline constexpr float kFastExpMin = -87.0f;
inline constexpr float kFastExpMax = 88.0f;

namespace internal {
inline constexpr float kLog2e = 1.44269504088896341f;
// ln 2 split so that n * kLn2Hi is exact for |n| < 2^9 (Cephes' C1, C2).
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kP0 = 1.9875691500e-4f;
inline constexpr float kP1 = 1.3981999507e-3f;
inline constexpr float kP2 = 8.3334519073e-3f;
inline constexpr float kP3 = 4.1665795894e-2f;
inline constexpr float kP4 = 1.6666665459e-1f;
inline constexpr float kP5 = 5.0000001201e-1f;

// e^x for x in [kFastExpMin, kFastExpMax].
inline float ExpInRange(float x) {
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = kP0;
  p = std::fma(p, r, kP1);
  p = std::fma(p, r, kP2);
  p = std::fma(p, r, kP3);
  p = std::fma(p, r, kP4);
  p = std::fma(p, r, kP5);
  const float r2 = r * r;
  const float y = std::fma(p, r2, r) + 1.0f;
  const int32_t scale_bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof(scale));
  return y * scale;
}
}  // namespace internal

inline bool InFastExpRange(float x) { return x >= kFastExpMin && x <= kFastExpMax; }

// e^x (see the file comment for accuracy).
inline float Exp(float x) { return InFastExpRange(x) ? internal::ExpInRange(x) : std::exp(x); }

// 1 / (1 + e^-x), computed as the reference kernel does (ops/reference/elementwise.h: e^-|x|,
// then 1 / (1 + e) for x >= 0 and e / (1 + e) otherwise), with Exp in place of std::exp.
inline float Sigmoid(float x) {
  const float e = Exp(-std::fabs(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
// Exp of 8 lanes; lanes outside the fast range are recomputed with std::exp.
inline __m256 Exp8(__m256 x) {
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(internal::kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-internal::kLn2Hi), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-internal::kLn2Lo), r);
  __m256 p = _mm256_set1_ps(internal::kP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(internal::kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(internal::kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(internal::kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(internal::kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(internal::kP5));
  const __m256 r2 = _mm256_mul_ps(r, r);
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
  // n is only used where it lies in [-126, 127]; other lanes are replaced below.
  const __m256i scale_bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 result = _mm256_mul_ps(y, _mm256_castsi256_ps(scale_bits));
  // Ordered compares: NaN lanes count as out of range.
  const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(kFastExpMin), _CMP_GE_OQ),
                                        _mm256_cmp_ps(x, _mm256_set1_ps(kFastExpMax), _CMP_LE_OQ));
  if (_mm256_movemask_ps(in_range) != 0xFF) {
    alignas(32) float lanes_x[8];
    alignas(32) float lanes_y[8];
    _mm256_store_ps(lanes_x, x);
    _mm256_store_ps(lanes_y, result);
    for (int k = 0; k < 8; ++k) {
      if (!InFastExpRange(lanes_x[k])) lanes_y[k] = std::exp(lanes_x[k]);
    }
    result = _mm256_load_ps(lanes_y);
  }
  return result;
}

inline __m256 Sigmoid8(__m256 x) {
  // -|x|: set the sign bit, exactly what -std::fabs(x) does.
  const __m256 e = Exp8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
  const __m256 one_plus_e = _mm256_add_ps(_mm256_set1_ps(1.0f), e);
  const __m256 positive = _mm256_div_ps(_mm256_set1_ps(1.0f), one_plus_e);
  const __m256 negative = _mm256_div_ps(e, one_plus_e);
  return _mm256_blendv_ps(negative, positive, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}
#endif  // YOLOPIPE_VECTOR_MATH_AVX2

// y[i] = Sigmoid(x[i]) for i in [0, count); x and y may be the same array.
inline void SigmoidArray(const float* x, float* y, int64_t count) {
  int64_t i = 0;
#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(y + i, Sigmoid8(_mm256_loadu_ps(x + i)));
#endif
  for (; i < count; ++i) y[i] = Sigmoid(x[i]);
}

}  // namespace yolopipe::ops::vmath

#endif  // YOLOPIPE_OPS_CPU_VECTOR_MATH_H_
