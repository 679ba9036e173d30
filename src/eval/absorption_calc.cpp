// Absorption of one word (SAEBench FeatureAbsorptionCalculator.calculate_absorption).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"

namespace saelab {

std::vector<float> decoder_cosines(const std::vector<float>& W_dec, int F, int d, const std::vector<float>& dir) {
  SAELAB_ASSERT(static_cast<int64_t>(W_dec.size()) == int64_t{F} * d && static_cast<int>(dir.size()) == d,
                "decoder_cosines shapes");
  constexpr double kEps = 1e-8;  // torch.nn.functional.cosine_similarity's eps on each norm
  double dn = 0;
  for (float v : dir) dn += double{v} * v;
  dn = std::max(std::sqrt(dn), kEps);
  std::vector<float> cos(static_cast<size_t>(F));
  for (int i = 0; i < F; ++i) {
    const float* w = W_dec.data() + int64_t{i} * d;
    double dot = 0, wn = 0;
    for (int j = 0; j < d; ++j) {
      dot += double{w[j]} * dir[j];
      wn += double{w[j]} * w[j];
    }
    cos[i] = static_cast<float>(dot / (std::max(std::sqrt(wn), kEps) * dn));
  }
  return cos;
}

namespace {

// Indices of the `k` largest of v, largest first (ties by lower index).
std::vector<int> top_indices(const std::vector<float>& v, const std::vector<int>& among, int k) {
  std::vector<int> idx = among;
  k = std::min<int>(k, static_cast<int>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int a, int b) { return v[a] != v[b] ? v[a] > v[b] : a < b; });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

// _is_full_absorption: no main latent fires, the top projecting latent is aligned with the probe,
// the probe projection is not negative, and that latent carries at least `projection_proportion` of it.
bool full_absorption(double probe_proj, const float* f, const std::vector<float>& proj, const std::vector<float>& cos,
                     const std::vector<int>& main_feats, int top, const AbsorptionConfig& cfg) {
  constexpr float kFiringEps = 1e-8f;  // the calculator's EPS
  for (int m : main_feats)
    if (!(f[m] < kFiringEps)) return false;
  if (cos[top] < cfg.full_absorption_cos) return false;
  if (probe_proj < 0) return false;
  return double{proj[top]} / probe_proj >= cfg.projection_proportion;
}

}  // namespace

WordAbsorption word_absorption(const float* x, const float* f, const std::vector<float>& cos,
                               const std::vector<float>& probe_dir, const std::vector<int>& main_feats,
                               const AbsorptionConfig& cfg) {
  const int F = static_cast<int>(cos.size()), d = static_cast<int>(probe_dir.size());
  WordAbsorption out;
  float act_proj = 0.f;  // x · probe direction, float32 as torch
  for (int j = 0; j < d; ++j) act_proj += x[j] * probe_dir[j];
  out.probe_projection = act_proj;
  // Each latent's probe projection f_i cos_i [F].
  std::vector<float> proj(static_cast<size_t>(F));
  for (int i = 0; i < F; ++i) proj[i] = f[i] * cos[i];
  float main_proj = 0.f;
  std::vector<char> is_main(static_cast<size_t>(F), 0);
  for (int m : main_feats) {
    main_proj += proj[m];
    is_main[m] = 1;
  }
  // Potential absorbers: not main, cosine ≥ fraction_cos, positive projection; the top few summed.
  std::vector<int> candidates;
  for (int i = 0; i < F; ++i)
    if (!is_main[i] && cos[i] >= cfg.fraction_cos && proj[i] > 0) candidates.push_back(i);
  out.absorbers = top_indices(proj, candidates, cfg.max_absorbing_latents);
  float absorbers_proj = 0.f;
  for (int i : out.absorbers) absorbers_proj += proj[i];
  const double act = act_proj, main = main_proj, absorbed = absorbers_proj;
  // SAEBench divides by the probe projection (a Python float; 0 would raise there): a zero
  // projection counts as no absorption here.
  const double proportion = act != 0 ? absorbed / act : 0.0;
  if (main >= act || proportion < cfg.projection_proportion) {
    out.absorption_fraction = 0.0;
  } else if (main <= 0.0) {
    out.absorption_fraction = 1.0;
  } else {
    const double a = std::min(absorbed, act - main);
    out.absorption_fraction = std::clamp(a / (a + main), 0.0, 1.0);
  }
  if (out.absorption_fraction == 0.0) out.absorbers.clear();
  std::vector<int> all(static_cast<size_t>(F));
  std::iota(all.begin(), all.end(), 0);
  out.top_feats = top_indices(proj, all, cfg.topk_feats);
  out.full_absorption = full_absorption(act, f, proj, cos, main_feats, out.top_feats[0], cfg);
  return out;
}

}  // namespace saelab
