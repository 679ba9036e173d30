// What a latent's decoder row says without data: its direct logit effect (top promoted and
// suppressed tokens), its nearest latents in the same SAE, and its best match in each other SAE on
// the same hook, by cosine of decoder rows. Products run in row chunks so memory stays
// O(chunk · max(V, F)).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "dashboard_internal.hpp"

namespace saelab {

namespace {

constexpr int64_t kChunk = 256;  // decoder rows per product

// Decoder rows w [F, d], each scaled to unit norm (zero rows stay zero).
std::vector<float> unit_rows(std::vector<float> w, int64_t F, int64_t d) {
  for (int64_t i = 0; i < F; ++i) {
    float* r = w.data() + i * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += double(r[j]) * r[j];
    const float inv = ss > 0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.f;
    for (int64_t j = 0; j < d; ++j) r[j] *= inv;
  }
  return w;
}

// The n largest values of row[0, len) (skipping `skip`), as (index, value), largest first; with
// `lowest`, the n smallest, smallest first.
std::vector<std::pair<int32_t, float>> extremes(const float* row, int64_t len, int n, bool lowest, int64_t skip = -1) {
  std::vector<int32_t> idx(static_cast<size_t>(len));
  std::iota(idx.begin(), idx.end(), 0);
  if (skip >= 0 && skip < len) idx.erase(idx.begin() + skip);
  const size_t k = std::min(idx.size(), static_cast<size_t>(std::max(n, 0)));
  auto better = [&](int32_t a, int32_t b) {
    return lowest ? (row[a] != row[b] ? row[a] < row[b] : a < b) : (row[a] != row[b] ? row[a] > row[b] : a < b);
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  std::vector<std::pair<int32_t, float>> out;
  for (size_t i = 0; i < k; ++i) out.emplace_back(idx[i], row[idx[i]]);
  return out;
}

// w: the decoder rows [F, d] on the host.
void logit_effects(const LanguageModel& model, const std::vector<float>& w, int64_t F, int64_t d, SaeDashboard& out,
                   int n) {
  const int64_t V = model.config().vocab_size;
  for (int64_t c0 = 0; c0 < F; c0 += kChunk) {
    const int64_t R = std::min(kChunk, F - c0);
    const std::vector<float> rows(w.begin() + c0 * d, w.begin() + (c0 + R) * d);
    const std::vector<float> eff = model.logit_effects(rows, R);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      LatentDirection& dir = out.directions[c0 + r];
      dir.promoted = extremes(eff.data() + r * V, V, n, false);
      dir.suppressed = extremes(eff.data() + r * V, V, n, true);
    }
  }
}

// For every row of a (unit rows [Fa, d]): the n best rows of b (unit rows [Fb, d]) by cosine,
// skipping the row itself when a and b are the same SAE.
std::vector<std::vector<std::pair<int32_t, float>>> best_cosines(Backend& be, const std::vector<float>& a, int64_t Fa,
                                                                 const std::vector<float>& b, int64_t Fb, int64_t d,
                                                                 int n, bool same) {
  std::vector<std::vector<std::pair<int32_t, float>>> out(static_cast<size_t>(Fa));
  const Tensor B = to_device(be, {Fb, d}, b.data());
  for (int64_t c0 = 0; c0 < Fa; c0 += kChunk) {
    const int64_t R = std::min(kChunk, Fa - c0);
    const Tensor A = to_device(be, {R, d}, a.data() + c0 * d);
    Tensor G({R, Fb}, DType::F32, be.device());
    be.gemm(G, A, false, B, true, 1.f, 0.f);
    const std::vector<float> g = to_host_f32(be, G);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; ++r) out[c0 + r] = extremes(g.data() + r * Fb, Fb, n, false, same ? c0 + r : -1);
  }
  return out;
}

}  // namespace

void add_latent_directions(const LanguageModel& model, const std::vector<Sae>& saes, DashboardData& out,
                           const DashboardConfig& cfg) {
  std::vector<std::vector<float>> w, unit;  // each SAE's decoder rows, downloaded once
  for (const Sae& s : saes) {
    w.push_back(to_host_f32(s.backend(), s.params().W_dec));
    unit.push_back(unit_rows(w.back(), s.config().d_sae, s.config().d_in));
  }
  for (size_t s = 0; s < saes.size(); ++s) {
    SaeDashboard& dash = out.saes[s];
    const int64_t F = saes[s].config().d_sae, d = saes[s].config().d_in;
    dash.directions.assign(static_cast<size_t>(F), LatentDirection{});
    logit_effects(model, w[s], F, d, dash, cfg.n_logits);
    const auto near = best_cosines(saes[s].backend(), unit[s], F, unit[s], F, d, cfg.n_neighbours, true);
    for (int64_t i = 0; i < F; ++i) dash.directions[i].neighbours = near[i];
    for (size_t t = 0; t < saes.size(); ++t) {  // matches[j]: the j-th other SAE, in order
      if (t == s) continue;
      const auto best = best_cosines(saes[s].backend(), unit[s], F, unit[t], saes[t].config().d_sae, d, 1, false);
      for (int64_t i = 0; i < F; ++i) dash.directions[i].matches.push_back(best[i].at(0));
    }
  }
}

}  // namespace saelab
