// RoPE inverse frequencies as transformers' rope initialisation functions compute them (default,
// linear, llama3), in f32 with the same operation order, so the angles match its to rounding.
#include <cmath>

#include "saelab/error.hpp"
#include "saelab/lm.hpp"

namespace saelab {

std::vector<float> rope_inv_freq(const RopeParams& p, int rotary_dim) {
  SAELAB_ASSERT(rotary_dim > 0 && rotary_dim % 2 == 0, "rotary_dim {}", rotary_dim);
  const int half = rotary_dim / 2;
  std::vector<float> f(static_cast<size_t>(half));
  const float base = static_cast<float>(p.theta);
  for (int i = 0; i < half; ++i)  // 1 / base^(2i / r)
    f[i] = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
  if (p.type == "default") return f;
  const float factor = static_cast<float>(p.factor);
  if (p.type == "linear") {
    for (float& x : f) x /= factor;
    return f;
  }
  SAELAB_ASSERT(p.type == "llama3", "rope type {}", p.type);
  // Wavelengths longer than the original context / low_freq_factor are slowed by `factor`, shorter
  // than context / high_freq_factor kept, and the band between interpolated.
  const float old_ctx = static_cast<float>(p.original_max_positions);
  const float lo = static_cast<float>(p.low_freq_factor), hi = static_cast<float>(p.high_freq_factor);
  const float low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
  for (float& x : f) {
    const float wavelen = 2.0f * static_cast<float>(M_PI) / x;
    const float scaled = wavelen > low_freq_wavelen ? x / factor : x;
    const float smooth = (old_ctx / wavelen - lo) / (hi - lo);
    const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    x = medium ? smoothed : scaled;
  }
  return f;
}

}  // namespace saelab
