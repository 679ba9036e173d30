#include "saelab/dual_adaptive.hpp"

#include <algorithm>
#include <cmath>

#include "saelab/error.hpp"

namespace saelab {

DualAdaptiveWeights::DualAdaptiveWeights(std::vector<std::pair<int, int>> levels, int F, float gamma, float decay,
                                         float p_target)
    : p(static_cast<size_t>(F), 0.f), m(static_cast<size_t>(F), 0.f), levels_(std::move(levels)), gamma_(gamma),
      decay_(decay), p_target_(p_target) {
  SAELAB_ASSERT(!levels_.empty() && levels_.back().second == F, "levels must cover the {} latents", F);
}

void DualAdaptiveWeights::update(const std::vector<float>& fires, const std::vector<float>& fsum, int64_t N) {
  const size_t F = p.size();
  SAELAB_ASSERT(fires.size() == F && fsum.size() == F && N > 0, "dual-adaptive update shapes");
  for (size_t i = 0; i < F; ++i) {
    const float freq = fires[i] / static_cast<float>(N);
    p[i] = seen_ ? decay_ * p[i] + (1.f - decay_) * freq : freq;
    if (fires[i] > 0) {
      const float mag = fsum[i] / fires[i];
      m[i] = m[i] > 0 ? decay_ * m[i] + (1.f - decay_) * mag : mag;
    }
  }
  seen_ = true;
}

double DualAdaptiveWeights::typical_active_magnitude() const {
  double s = 0, rate = 0;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i] > 0) {
      s += static_cast<double>(p[i]) * m[i];
      rate += p[i];
    }
  return rate > 0 ? s / rate : 0.0;
}

void DualAdaptiveWeights::components(std::vector<float>& wf, std::vector<float>& wm) const {
  const size_t F = p.size();
  wf.assign(F, 1.f);
  wm.assign(F, 1.f);
  if (!seen_) return;
  for (const auto& [b, e] : levels_) {
    double mean_m = 0;
    int64_t known = 0;
    for (int i = b; i < e; ++i)
      if (m[i] > 0) {
        mean_m += m[i];
        ++known;
      }
    mean_m = known ? mean_m / static_cast<double>(known) : 1.0;
    double sf = 0, sm = 0;
    for (int i = b; i < e; ++i) {
      wf[i] = static_cast<float>(std::pow(std::max(static_cast<double>(p[i]), 1e-9) / p_target_, gamma_));
      const double ratio = m[i] > 0 ? std::clamp(m[i] / mean_m, 1e-3, 1e3) : 1.0;
      wm[i] = static_cast<float>(std::pow(ratio, -static_cast<double>(gamma_)));
      sf += wf[i];
      sm += wm[i];
    }
    const double n = static_cast<double>(e - b);
    for (int i = b; i < e; ++i) {
      wf[i] = static_cast<float>(wf[i] * n / sf);
      wm[i] = static_cast<float>(wm[i] * n / sm);
    }
  }
}

std::vector<float> DualAdaptiveWeights::weights(const std::vector<double>& alpha) const {
  SAELAB_ASSERT(alpha.size() == levels_.size(), "{} alphas for {} levels", alpha.size(), levels_.size());
  std::vector<float> wf, wm, w(p.size());
  components(wf, wm);
  for (size_t l = 0; l < levels_.size(); ++l)
    for (int i = levels_[l].first; i < levels_[l].second; ++i)
      w[i] = static_cast<float>(alpha[l] * wf[i] + (1.0 - alpha[l]) * wm[i]);
  return w;
}

}  // namespace saelab
