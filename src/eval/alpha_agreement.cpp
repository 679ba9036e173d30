#include "saelab/alpha_agreement.hpp"

#include <cmath>

#include "saelab/activation_loader.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/sae_io.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

struct RunEval {
  std::string dir, mode;
  std::vector<double> alpha;
  double lambda = 0;
  double mse = 0, ev = 0, l0 = 0, J = 0;
  std::vector<float> f;  // [N, F] latents on the held-out rows, in the common scale
};

std::vector<float> decoder_row_norms(const Sae& sae) {
  Backend& be = sae.backend();
  Tensor n({sae.config().d_sae}, DType::F32, be.device());
  be.row_norms(n, sae.params().W_dec);
  return to_host_f32(be, n);
}

}  // namespace

json alpha_agreement(const AlphaAgreementConfig& cfg) {
  if (cfg.runs.empty()) fail("alpha-agreement needs run directories");
  const ActivationManifest m = read_activation_manifest(cfg.heldout);
  const ActivationSample s = sample_activations(m, cfg.max_tokens, cfg.max_tokens);
  const int64_t N = s.n, d = m.d_in;
  const double s_ref = std::sqrt(static_cast<double>(d) / std::max(s.mean_sq_norm, 1e-30));
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < d; ++j) mean[j] += s.rows[r * d + j] / static_cast<double>(N);
  double var = 0;
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < d; ++j) var += (s.rows[r * d + j] - mean[j]) * (s.rows[r * d + j] - mean[j]);

  Backend& be = cpu_backend();
  std::vector<RunEval> evals;
  double m_sum = 0;
  int64_t m_count = 0;
  for (const auto& dir : cfg.runs) {
    RunEval e;
    e.dir = dir;
    const json summary = json::parse(read_file(dir + "/training_summary.json"));
    const json config = json::parse(read_file(dir + "/config.json"));
    e.mode = summary.value("alpha_mode", "fixed");
    if (config.value("penalty", "l1") != "dual_adaptive")
      fail("run '{}' is not a dual-adaptive run (penalty = {})", dir, config.value("penalty", "l1"));
    e.alpha = summary.at("final_alpha").get<std::vector<double>>();
    e.lambda = config.at("l1_coefficient").get<double>();
    Sae sae = load_saelens(dir + "/sae", be);
    if (sae.config().d_in != d) fail("run '{}' has d_in {} but '{}' has {}", dir, sae.config().d_in, cfg.heldout, d);
    const int64_t F = sae.config().d_sae;
    SaeWorkspace ws(sae.config(), N, be.device());
    Tensor X = to_device(be, {N, d}, s.rows.data());
    sae.encode(X, ws);
    sae.decode(ws, N);
    const std::vector<float> xh = to_host_f32(be, ws.xhat.view().rows(0, N));
    e.f = to_host_f32(be, ws.f.view().rows(0, N));
    double sse = 0;
    for (int64_t i = 0; i < N * d; ++i) sse += (xh[i] - s.rows[i]) * (xh[i] - s.rows[i]);
    e.ev = 1.0 - sse / var;
    e.mse = sse * s_ref * s_ref / static_cast<double>(N);
    // J prices folded activations f_i‖W_dec,i‖ (method.md §1), which do not drift along the
    // (f·c, W_dec/c) symmetry. The export's decoder takes raw activations: × s_ref puts every run's
    // folded latents in the common scale.
    const std::vector<float> norms = decoder_row_norms(sae);
    for (int64_t r = 0; r < N; ++r)
      for (int64_t i = 0; i < F; ++i) {
        float& v = e.f[r * F + i];
        v = static_cast<float>(v * norms[i] * s_ref);
        if (v <= 0) continue;
        e.l0 += 1.0 / static_cast<double>(N);
        m_sum += v;
        ++m_count;
      }
    evals.push_back(std::move(e));
  }
  const double mbar = m_count ? m_sum / static_cast<double>(m_count) : 1.0;
  const double eps = 0.1 * mbar;
  const double lambda = evals.front().lambda;
  for (const auto& e : evals)
    if (e.lambda != lambda) fail("runs differ in l1_coefficient ({} vs {}): the sweep must share λ", e.lambda, lambda);
  const double lambda_J = lambda * mbar;
  json runs = json::array();
  double best_J = INFINITY;
  std::vector<double> best;  // the best fixed run's α per level
  for (auto& e : evals) {
    double st = 0;
    for (float v : e.f)
      if (v > 0) st += std::tanh(v / eps);
    e.J = e.mse + lambda_J * st / static_cast<double>(N);
    runs.push_back({{"run", e.dir}, {"alpha_mode", e.mode}, {"final_alpha", e.alpha}, {"J", e.J}, {"mse", e.mse},
                    {"explained_variance", e.ev}, {"l0", e.l0}});
    if (e.mode == "fixed" && e.J < best_J) {
      best_J = e.J;
      best = e.alpha;
    }
  }
  json out = {{"heldout", cfg.heldout}, {"tokens", N}, {"lambda_J", lambda_J}, {"eps", eps}, {"runs", runs},
              {"best_manual_alpha", best.empty() ? json(nullptr) : json(best.front())},
              {"best_manual_alpha_per_level", best.empty() ? json(nullptr) : json(best)},
              {"best_manual_J", best.empty() ? json(nullptr) : json(best_J)}, {"grid_step", cfg.grid_step}};
  for (const auto& e : evals) {
    if (e.mode == "fixed" || best.empty()) continue;
    if (e.alpha.size() != best.size())
      fail("run '{}' has {} α levels but the best manual run has {}", e.dir, e.alpha.size(), best.size());
    double worst = 0;
    for (size_t l = 0; l < e.alpha.size(); ++l) worst = std::max(worst, std::abs(e.alpha[l] - best[l]));
    out[e.mode] = {{"run", e.dir},
                   {"final_alpha", e.alpha},
                   {"distance_to_best_manual", worst},
                   {"agrees", worst <= cfg.grid_step + 1e-12},
                   {"J_gap", e.J - best_J}};
  }
  return out;
}

}  // namespace saelab
