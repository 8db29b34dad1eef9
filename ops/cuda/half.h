// Host-side IEEE 754 binary16 conversion (the bit layout of CUDA's __half), for preparing fp16
// inputs and reading fp16 outputs on the host without CUDA headers. Round to nearest even;
// subnormals, infinities and NaN are handled.
#ifndef YOLOPIPE_OPS_CUDA_HALF_H_
#define YOLOPIPE_OPS_CUDA_HALF_H_

#include <cstdint>
#include <cstring>
#include <vector>

namespace yolopipe::ops::cuda {

inline uint16_t FloatToHalfBits(float value) {
  uint32_t f;
  std::memcpy(&f, &value, sizeof(f));
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN (keep NaN quiet and non-zero)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x0200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to zero
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    // value = mantissa * 2^(exponent - 150) = mantissa * 2^(exponent - 126) units of 2^-24.
    const int right = 126 - static_cast<int>(exponent);  // 14..24 here
    const uint32_t units = mantissa >> right;
    const uint32_t remainder = mantissa & ((1u << right) - 1u);
    const uint32_t halfway = 1u << (right - 1);
    uint32_t rounded = units;
    if (remainder > halfway || (remainder == halfway && (units & 1u))) ++rounded;
    return static_cast<uint16_t>(sign | rounded);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  const uint32_t rebiased = abs - 0x38000000u;  // (127 - 15) << 23
  uint32_t half = rebiased >> 13;
  const uint32_t remainder = rebiased & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u))) ++half;  // may carry to inf
  return static_cast<uint16_t>(sign | half);
}

inline float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t f;
  if (exponent == 0x1fu) {
    f = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    f = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    f = sign;
  } else {  // subnormal: mantissa * 2^-24, exact in float
    float value = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    std::memcpy(&f, &value, sizeof(f));
    f |= sign;
  }
  float out;
  std::memcpy(&out, &f, sizeof(out));
  return out;
}

inline std::vector<uint16_t> FloatsToHalfBits(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = FloatToHalfBits(values[i]);
  return out;
}

inline std::vector<float> HalfBitsToFloats(const std::vector<uint16_t>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = HalfBitsToFloat(values[i]);
  return out;
}

}  // namespace yolopipe::ops::cuda

#endif  // YOLOPIPE_OPS_CUDA_HALF_H_
