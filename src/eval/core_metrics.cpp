// SAEBench core's metric arithmetic (sae_bench/evals/core/main.py, sae-bench 0.6.0) on host tensors:
// CE/KL sums of get_recons_loss + get_downstream_reconstruction_metrics, the sums of
// get_sparsity_and_variance_metrics, calculate_misc_metrics and calculate_max_cosine_sim.
// test_eval_core compares each with goldens SAEBench's own functions produced (tests/data/saebench_core).
#include <algorithm>
#include <cmath>
#include <limits>

#include "saelab/backend.hpp"
#include "saelab/eval_core.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

bool is_ignored_token(const Tokenizer& tok, int32_t id) {
  return id == tok.bos_id() || id == tok.eos_id() || tok.is_special(id);
}

namespace {

// log Σ_i exp(l_i) over one row of V logits, in double, shifted by the row's max.
double log_sum_exp(const float* l, int64_t V) {
  double mx = l[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(l[i]));
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(l[i] - mx);
  return mx + std::log(s);
}

}  // namespace

// Rows in parallel; each row's arithmetic is the serial one, so results do not depend on threads.
CleanLogits clean_logits(const std::vector<float>& logits, int64_t rows, int64_t V) {
  CleanLogits c;
  c.lp.resize(static_cast<size_t>(rows * V));
  c.p.resize(c.lp.size());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = logits.data() + r * V;
    const double lse = log_sum_exp(l, V);
    for (int64_t i = 0; i < V; ++i) {
      c.lp[r * V + i] = l[i] - lse;
      c.p[r * V + i] = std::exp(c.lp[r * V + i]);
    }
  }
  return c;
}

// Per position (in parallel, into per-position slots) then summed serially in row order, so the sums
// are those of one serial loop. KL(clean ‖ run) = Σ_v p_clean (log p_clean − log p_run), at every t;
// CE = −log p_run(token t+1), at t < T−1 (TransformerLens' loss_per_token drops the last position).
void add_ce_kl(CeKlSums& s, const CleanLogits& clean, const std::vector<float>* logits,
               const std::vector<int32_t>& tokens, const std::vector<uint8_t>& keep, int B, int T, int64_t V) {
  const int64_t rows = static_cast<int64_t>(B) * T;
  SAELAB_ASSERT(static_cast<int64_t>(tokens.size()) == rows && static_cast<int64_t>(keep.size()) == rows,
                "tokens and keep hold B·T entries");
  std::vector<double> ce(static_cast<size_t>(rows), 0.0), kl(static_cast<size_t>(rows), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    if (!keep[row]) continue;
    const double* lc = clean.lp.data() + row * V;
    const bool has_next = row % T + 1 < T;
    if (!logits) {
      if (has_next) ce[row] = -lc[tokens[row + 1]];
      continue;
    }
    const float* l = logits->data() + row * V;
    const double lse = log_sum_exp(l, V);
    const double* pc = clean.p.data() + row * V;
    double k = 0;
    for (int64_t i = 0; i < V; ++i) k += pc[i] * (lc[i] - (l[i] - lse));
    kl[row] = k;
    if (has_next) ce[row] = lse - l[tokens[row + 1]];
  }
  for (int64_t row = 0; row < rows; ++row) {
    if (!keep[row]) continue;
    if (row % T + 1 < T) {
      s.ce += ce[row];
      ++s.ce_n;
    }
    s.kl += kl[row];
    ++s.kl_n;
  }
}

ReconSums recon_sums(int d, int F) {
  ReconSums s;
  s.d = d;
  s.F = F;
  s.sum_x.assign(static_cast<size_t>(d), 0.0);
  s.fires.assign(static_cast<size_t>(std::max(F, 0)), 0.0);
  return s;
}

void add_recon_batch(ReconSums& s, const float* x, const float* xhat, const float* lat, int64_t n) {
  if (n == 0) return;  // SAEBench's per-batch ratios would be 0/0; a batch without counted rows adds nothing
  const int d = s.d, F = s.F;
  std::vector<double> mean(static_cast<size_t>(d), 0.0);  // [d] the batch mean (legacy explained variance)
  for (int64_t k = 0; k < n; ++k)
    for (int j = 0; j < d; ++j) mean[j] += x[k * d + j];
  for (int j = 0; j < d; ++j) {
    s.sum_x[j] += mean[j];
    mean[j] /= static_cast<double>(n);
  }
  double b_sq = 0, b_resid = 0, b_yy = 0, b_xy = 0;  // this batch's sums of ‖x‖², ‖r‖², ‖x̂‖², ⟨x, x̂⟩
  std::vector<double> resid(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    double e = 0, x2 = 0, y2 = 0, xy = 0, c2 = 0;
    for (int j = 0; j < d; ++j) {
      const double xv = x[k * d + j], yv = xhat[k * d + j];
      e += (xv - yv) * (xv - yv);
      x2 += xv * xv;
      y2 += yv * yv;
      xy += xv * yv;
      c2 += (xv - mean[j]) * (xv - mean[j]);
    }
    resid[k] = e;
    const double nx = std::sqrt(x2), ny = std::sqrt(y2);
    s.l2_in += nx;
    s.l2_out += ny;
    s.l2_ratio += ny / (nx < 1e-4 ? 1.0 : nx);
    // A zero-norm x or x̂ makes SAEBench's cosine NaN (written as −1); it counts 0 here.
    s.cossim += (nx > 0 && ny > 0) ? xy / (nx * ny) : 0.0;
    s.ev_legacy += 1.0 - e / c2;
    b_sq += x2;
    b_resid += e;
    b_yy += y2;
    b_xy += xy;
    for (int i = 0; i < F; ++i) {
      const float v = lat[k * F + i];
      s.l0 += v != 0.f;
      s.l1 += v;
      s.fires[i] += v > 0.f;
    }
  }
  for (int64_t k = 0; k < n; ++k) s.mse += resid[k] / static_cast<double>(n);
  s.rrb += (b_yy / n) / (b_xy / n);
  s.mean_sq += b_sq / n;
  s.mean_resid += b_resid / n;
  s.sse += b_resid;
  s.sum_sq += b_sq;
  s.n += n;
  ++s.batches;
}

void finish_recon(const ReconSums& s, double dense_threshold, CoreEvalResult& r) {
  const double N = static_cast<double>(s.n), nb = static_cast<double>(s.batches), d = s.d;
  r.tokens = s.n;
  r.l2_norm_in = s.l2_in / N;
  r.l2_norm_out = s.l2_out / N;
  r.l2_ratio = s.l2_ratio / N;
  r.relative_reconstruction_bias = s.rrb / nb;
  r.l0 = s.l0 / N;
  r.l1 = s.l1 / N;
  r.mse = s.mse / N;
  r.cossim = s.cossim / N;
  r.explained_variance_legacy = s.ev_legacy / N;
  const double A = s.mean_sq / nb;
  r.explained_variance = 1.0 - (s.mean_resid / nb) / (A - (A / d) * (A / d));
  r.mse_per_element = s.sse / (N * d);
  double msq = 0;
  for (double m : s.sum_x) msq += (m / N) * (m / N);
  const double var = s.sum_sq - N * msq;
  r.explained_variance_centered = var > 0 ? 1.0 - s.sse / var : 0.0;
  // calculate_misc_metrics on the densities, with saelab's dead/dense fractions beside.
  const size_t F = s.fires.size();
  r.density.resize(F);
  double total = 0, over1 = 0, over10 = 0, sum1 = 0, sum10 = 0, alive = 0, dense = 0;
  for (size_t i = 0; i < F; ++i) {
    const double p = s.fires[i] / N;
    r.density[i] = static_cast<float>(p);
    total += p;
    alive += p > 0;
    over1 += p > 0.01;
    over10 += p > 0.1;
    sum1 += p > 0.01 ? p : 0.0;
    sum10 += p > 0.1 ? p : 0.0;
    dense += p > dense_threshold;
  }
  if (F == 0) return;
  r.frac_alive = alive / F;
  r.dead_fraction = 1.0 - r.frac_alive;
  r.dense_fraction = dense / F;
  r.freq_over_1_percent = over1 / F;
  r.freq_over_10_percent = over10 / F;
  r.normalized_freq_over_1_percent = total > 0 ? sum1 / total : 0.0;
  r.normalized_freq_over_10_percent = total > 0 ? sum10 / total : 0.0;
}

// Unit rows, then cosines of chunks of 256 rows against all F (no F×F matrix), self excluded.
double average_max_cosine_sim(const std::vector<float>& rows, int64_t F, int d) {
  SAELAB_ASSERT(static_cast<int64_t>(rows.size()) == F * d, "rows hold F·d values");
  if (F < 2) return 0.0;
  std::vector<float> u(rows);  // [F, d] unit rows
  for (int64_t i = 0; i < F; ++i) {
    double n2 = 0;
    for (int j = 0; j < d; ++j) n2 += static_cast<double>(u[i * d + j]) * u[i * d + j];
    const float inv = n2 > 0 ? static_cast<float>(1.0 / std::max(std::sqrt(n2), 1e-12)) : 0.f;
    for (int j = 0; j < d; ++j) u[i * d + j] *= inv;
  }
  Backend& be = cpu_backend();
  const Tensor all = to_device(be, {F, d}, u.data());
  constexpr int64_t kChunk = 256;
  double sum = 0;
  for (int64_t c0 = 0; c0 < F; c0 += kChunk) {
    const int64_t c1 = std::min(F, c0 + kChunk);
    Tensor sims({c1 - c0, F}, DType::F32, be.device());  // [chunk, F]
    be.gemm(sims.view(), all.view().rows(c0, c1), false, all.view(), true, 1.f, 0.f);
    const std::vector<float> h = to_host_f32(be, sims.view());
    for (int64_t i = c0; i < c1; ++i) {
      float best = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < F; ++j)
        if (j != i) best = std::max(best, h[(i - c0) * F + j]);
      sum += best;
    }
  }
  return sum / static_cast<double>(F);
}

}  // namespace saelab
