// Dual-adaptive per-latent penalty weights (method.md §1): from stop-gradient EMA statistics
//   p_i = EMA of P(f_i > 0),  m_i = EMA of E[f_i | f_i > 0]   (decay ~0.99)
//   w_freq,i = (p_i / p_target)^γ,  w_mag,i = (m_i / mean(m))^(−γ),  each renormalised to mean 1 per level
//   w_i = α_level · w_freq,i + (1 − α_level) · w_mag,i
// so the total penalty scale does not depend on α. Latents that never fired have no magnitude
// yet: they take the level's mean magnitude (w_mag = 1 before renormalisation).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace saelab {

class DualAdaptiveWeights {
 public:
  DualAdaptiveWeights() = default;
  DualAdaptiveWeights(std::vector<std::pair<int, int>> levels, int F, float gamma, float decay, float p_target);
  // Folds one batch's per-latent firing counts and activation sums (N tokens) into the EMAs.
  void update(const std::vector<float>& fires, const std::vector<float>& fsum, int64_t N);
  bool ready() const { return seen_; }
  // w_freq and w_mag, each mean 1 over every level.
  void components(std::vector<float>& w_freq, std::vector<float>& w_mag) const;
  // α per level -> w [F].
  std::vector<float> weights(const std::vector<double>& alpha) const;
  // The typical active magnitude E[f | f > 0] over all activations: Σ p_i m_i / Σ p_i. Weighted by
  // firing rate, not a plain mean over latents: rare latents are many and small (on the planted
  // α-sweep data the plain mean was ~4× below it), and J's λ_J = λ·this is meant to put the smooth L0
  // on the L1 penalty's scale (method.md §2), which is a sum over activations.
  double typical_active_magnitude() const;
  const std::vector<std::pair<int, int>>& levels() const { return levels_; }

  std::vector<float> p, m;  // the EMAs [F]; m_i = 0 until latent i first fires

 private:
  std::vector<std::pair<int, int>> levels_;
  float gamma_ = 0.5f, decay_ = 0.99f, p_target_ = 0.01f;
  bool seen_ = false;

 public:
  void set_seen(bool s) { seen_ = s; }
};

}  // namespace saelab
