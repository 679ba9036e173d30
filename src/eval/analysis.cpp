#include "saelab/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "saelab/atomic_file.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

using json = nlohmann::json;
namespace fs = std::filesystem;

json composition_quality(const Sae& sae, const std::vector<float>& x, int64_t n) {
  const SaeConfig& c = sae.config();
  if (c.architecture != SaeArchitecture::Hierarchical) fail("composition quality needs a hierarchical SAE");
  const int64_t d = c.d_in, F = c.d_sae, P = c.n_parents, m = c.children_per_parent;
  if (n < 1 || static_cast<int64_t>(x.size()) != n * d)
    fail("composition quality: the activations have width {} but the SAE's d_in is {}",
         n > 0 ? static_cast<int64_t>(x.size()) / n : 0, d);
  Backend& be = sae.backend();
  SaeWorkspace ws(c, n, be.device());
  sae.encode(to_device(be, {n, d}, x.data()), ws);
  std::vector<float> f = to_host_f32(be, ws.f.view().rows(0, n));
  const std::vector<float> W = to_host_f32(be, sae.params().W_dec), bd = to_host_f32(be, sae.params().b_dec);
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < d; ++j) mean[j] += x[r * d + j] / static_cast<double>(n);
  double var = 0, sse_full = 0, sse_par = 0;
  std::vector<double> fires(static_cast<size_t>(F), 0.0), both(static_cast<size_t>(P * m), 0.0);
  std::vector<double> xp(static_cast<size_t>(d)), xf(static_cast<size_t>(d));
  // Σ x̂ and Σ x̂² per dimension, for the reconstructions' variances in one pass.
  std::vector<double> sum_p(static_cast<size_t>(d), 0.0), sum_f(static_cast<size_t>(d), 0.0), sq_p(sum_p), sq_f(sum_p);
  for (int64_t r = 0; r < n; ++r) {
    const float* fr = f.data() + r * F;
    for (int64_t j = 0; j < d; ++j) xp[j] = xf[j] = bd[j];
    for (int64_t i = 0; i < F; ++i) {
      if (fr[i] == 0.f) continue;
      fires[i] += 1;
      for (int64_t j = 0; j < d; ++j) {
        const double v = fr[i] * W[i * d + j];
        xf[j] += v;
        if (i < P) xp[j] += v;
      }
    }
    for (int64_t k = 0; k < P * m; ++k)
      if (fr[P + k] != 0.f && fr[k / m] != 0.f) both[k] += 1;
    for (int64_t j = 0; j < d; ++j) {
      const double xv = x[r * d + j];
      var += (xv - mean[j]) * (xv - mean[j]);
      sse_full += (xv - xf[j]) * (xv - xf[j]);
      sse_par += (xv - xp[j]) * (xv - xp[j]);
      sum_p[j] += xp[j];
      sum_f[j] += xf[j];
      sq_p[j] += xp[j] * xp[j];
      sq_f[j] += xf[j] * xf[j];
    }
  }
  double var_par = 0, var_full = 0;
  for (int64_t j = 0; j < d; ++j) {
    var_par += sq_p[j] - sum_p[j] * sum_p[j] / static_cast<double>(n);
    var_full += sq_f[j] - sum_f[j] * sum_f[j] / static_cast<double>(n);
  }
  double cos_sum = 0, cond_sum = 0;
  int64_t cond_n = 0, dead_p = 0, dead_c = 0;
  for (int64_t k = 0; k < P * m; ++k) {
    const float* a = W.data() + (P + k) * d;
    const float* b = W.data() + (k / m) * d;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < d; ++j) {
      ab += double(a[j]) * b[j];
      aa += double(a[j]) * a[j];
      bb += double(b[j]) * b[j];
    }
    cos_sum += aa > 0 && bb > 0 ? std::abs(ab) / std::sqrt(aa * bb) : 0.0;
    if (fires[k / m] > 0) {
      cond_sum += both[k] / fires[k / m];
      ++cond_n;
    }
  }
  for (int64_t i = 0; i < F; ++i) (i < P ? dead_p : dead_c) += fires[i] == 0;
  return {{"tokens", n},
          {"n_parents", P},
          {"children_per_parent", m},
          {"explained_variance_parents_only", 1.0 - sse_par / var},
          {"explained_variance_parents_and_children", 1.0 - sse_full / var},
          {"parent_share_of_reconstruction_variance", var_full > 0 ? var_par / var_full : 0.0},
          {"mean_abs_cos_child_parent_decoder", P * m > 0 ? cos_sum / static_cast<double>(P * m) : 0.0},
          {"parents_dead_fraction", static_cast<double>(dead_p) / static_cast<double>(P)},
          {"children_dead_fraction", static_cast<double>(dead_c) / static_cast<double>(P * m)},
          {"p_child_fires_given_parent", cond_n ? cond_sum / static_cast<double>(cond_n) : 0.0}};
}

std::vector<float> unit_rows(std::vector<float> W, int64_t F, int64_t d) {
  for (int64_t i = 0; i < F; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(W[i * d + j]) * W[i * d + j];
    const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.f;
    for (int64_t j = 0; j < d; ++j) W[i * d + j] *= inv;
  }
  return W;
}

MatchStats match_decoders(Backend& be, const std::vector<float>& A, int64_t FA, const std::vector<float>& B, int64_t FB,
                          int d) {
  const std::vector<float> a = unit_rows(A, FA, d), b = unit_rows(B, FB, d);
  Tensor TA = to_device(be, {FA, d}, a.data()), TB = to_device(be, {FB, d}, b.data());
  MatchStats s;
  s.best.assign(static_cast<size_t>(FA), -1.f);
  // cos [FA, FB] in row blocks of A to bound memory.
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(FB, 1));
  for (int64_t r0 = 0; r0 < FA; r0 += block) {
    const int64_t r1 = std::min(FA, r0 + block);
    Tensor C({r1 - r0, FB}, DType::F32, be.device());
    be.gemm(C, TA.view().rows(r0, r1), false, TB, true, 1.f, 0.f);
    const std::vector<float> c = to_host_f32(be, C);
    for (int64_t i = r0; i < r1; ++i)
      s.best[i] = *std::max_element(c.begin() + (i - r0) * FB, c.begin() + (i - r0 + 1) * FB);
  }
  for (float v : s.best) {
    s.frac_above_09 += v > 0.9f;
    s.frac_above_07 += v > 0.7f;
    s.mean_best += v;
  }
  s.frac_above_09 /= static_cast<double>(FA);
  s.frac_above_07 /= static_cast<double>(FA);
  s.mean_best /= static_cast<double>(FA);
  return s;
}

json concept_stability(const std::string& run_dir) {
  const std::string ck_dir = run_dir + "/checkpoints";
  std::vector<std::pair<double, std::string>> cks;
  if (dir_exists(ck_dir))
    for (const auto& e : fs::directory_iterator(ck_dir)) {
      const std::string n = e.path().filename().string();
      if (!e.is_directory() || n.rfind("step_", 0) != 0 || n.find(".tmp") != std::string::npos) continue;
      const json meta = json::parse(read_file(e.path().string() + "/trainer.json"));
      cks.emplace_back(meta.value("fraction", 0.0), e.path().string());
    }
  if (cks.size() < 2) fail("'{}' has {} checkpoints; concept stability needs at least two", run_dir, cks.size());
  std::sort(cks.begin(), cks.end());
  std::vector<std::vector<float>> dec;
  int64_t F = 0;
  int d = 0;
  for (const auto& [frac, path] : cks) {
    SafetensorsFile f(path + "/state.safetensors");
    const auto& e = f.entry("W_dec");
    F = e.shape.at(0);
    d = static_cast<int>(e.shape.at(1));
    dec.push_back(f.read_f32("W_dec", {F, d}));
  }
  Backend& be = cpu_backend();
  json phases = json::array();
  for (size_t i = 0; i < cks.size(); ++i) {
    json p = {{"fraction", cks[i].first}, {"checkpoint", fs::path(cks[i].second).filename().string()}};
    if (i > 0) {
      const MatchStats s = match_decoders(be, dec[i], F, dec[i - 1], F, d);
      p["vs_previous"] = {{"frac_matched_above_0.9", s.frac_above_09},
                          {"frac_matched_above_0.7", s.frac_above_07},
                          {"mean_best_cos", s.mean_best}};
    }
    const MatchStats f = match_decoders(be, dec[i], F, dec.back(), F, d);
    p["vs_final"] = {{"frac_matched_above_0.9", f.frac_above_09},
                     {"frac_matched_above_0.7", f.frac_above_07},
                     {"mean_best_cos", f.mean_best}};
    phases.push_back(p);
  }
  return {{"run", run_dir}, {"d_sae", F}, {"matching", "greedy max decoder cosine (each latent's best match)"},
          {"phases", phases}};
}

}  // namespace saelab
