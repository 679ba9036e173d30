// Elementwise math that GCC can vectorise inside `omp simd` loops (std::exp is a library call per
// element without -ffast-math's vector variants).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace saelab::cpu {

// e^x for float x, within a few ulp of std::exp on [-86.5, 88.72]; +inf above, 0 below (results
// under 3e-38 are 0 to every caller here: softmax weights and SiLU). Cody–Waite reduction
// x = n·ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, and 2^(n-1) built in the exponent
// bits (then doubled, so n = 128 does not overflow the exponent field).
inline float exp_simd(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  // NaN fails both comparisons and becomes -86.5 here (a NaN cast to int is undefined; found by
  // fuzzing), then is returned as itself below, so a corrupt model's NaN still propagates.
  const float xc = x > -86.5f ? (x < 88.72f ? x : 88.72f) : -86.5f;
  const float n = static_cast<float>(static_cast<int32_t>(xc * kLog2e + (xc >= 0.f ? 0.5f : -0.5f)));
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  // Taylor coefficients 1/k! (k = 2..6): enough for |r| <= 0.347 at float precision.
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 126) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = p * scale * 2.f;
  return x > 88.72f ? __builtin_inff() : (x >= -86.5f ? y : (x < -86.5f ? 0.f : x));
}

// GELU with the tanh approximation (GPT-2's gelu_new, PyTorch's gelu(approximate="tanh")):
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
inline float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

}  // namespace saelab::cpu
