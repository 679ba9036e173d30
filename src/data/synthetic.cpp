#include "saelab/synthetic.hpp"

#include <cmath>
#include <filesystem>
#include <random>

#include "saelab/activation_store.hpp"
#include "saelab/npy.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

namespace fs = std::filesystem;

namespace {
double log_uniform(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(rng));
}
}  // namespace

SyntheticTruth write_synthetic(const SyntheticConfig& c, const std::string& out_dir) {
  if (c.d < 1 || c.n_features < 1 || c.n_tokens < 1) fail("synthetic data needs d, n_features and n_tokens > 0");
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  SyntheticTruth t;
  t.d = c.d;
  const int P = c.n_features, m = c.children_per_parent, n = P + P * m;
  for (int i = 0; i < n; ++i) t.parent_of.push_back(i < P ? -1 : (i - P) / m);
  for (int i = 0; i < n; ++i) {
    std::vector<double> v(static_cast<size_t>(c.d));
    double ss = 0;
    for (auto& x : v) {
      x = normal(rng);
      ss += x * x;
    }
    for (auto& x : v) t.directions.push_back(static_cast<float>(x / std::sqrt(ss)));
    const bool child = i >= P;
    const double f = !child && i < static_cast<int>(c.freqs.size()) ? c.freqs[i]
                     : child ? log_uniform(rng, c.child_prob_min, c.child_prob_max)
                             : log_uniform(rng, c.freq_min, c.freq_max);
    const bool own_range = child && c.child_mag_max > 0;
    const double mg = i < static_cast<int>(c.mags.size()) ? c.mags[i]
                      : own_range ? log_uniform(rng, c.child_mag_min, c.child_mag_max)
                                  : log_uniform(rng, c.mag_min, c.mag_max);
    t.freqs.push_back(f);
    t.mags.push_back(mg);
  }

  if (c.sample_seed != 0) rng.seed(c.sample_seed);
  fs::create_directories(out_dir);
  ActivationManifest man;
  man.dir = out_dir;
  man.model_name = "synthetic";
  man.hook_name = "synthetic";
  man.format = "npy";
  man.dtype = DType::F32;
  man.d_in = c.d;
  man.settings = {{"model_name", "synthetic"}, {"hook_name", "synthetic"}, {"context_size", 1}, {"dtype", "f32"},
                  {"format", "npy"}, {"seed", c.seed}, {"sample_seed", c.sample_seed}, {"n_features", P}, {"children_per_parent", m}};
  int64_t done = 0;
  std::vector<float> acts;
  std::vector<int32_t> ids;
  std::vector<char> active(static_cast<size_t>(n));
  while (done < c.n_tokens) {
    const int64_t rows = std::min(c.shard_tokens, c.n_tokens - done);
    acts.assign(static_cast<size_t>(rows * c.d), 0.f);
    ids.assign(static_cast<size_t>(rows), 0);
    for (int64_t r = 0; r < rows; ++r) {
      float* x = acts.data() + r * c.d;
      for (int i = 0; i < n; ++i) {
        const int p = t.parent_of[i];
        active[i] = (p < 0 || active[p]) && unif(rng) < t.freqs[i];
        if (!active[i]) continue;
        const double a = t.mags[i] * (0.5 + unif(rng));
        for (int j = 0; j < c.d; ++j) x[j] += static_cast<float>(a * t.directions[static_cast<size_t>(i) * c.d + j]);
      }
      if (c.noise > 0)
        for (int j = 0; j < c.d; ++j) x[j] += static_cast<float>(c.noise * normal(rng));
    }
    ActivationShard s;
    s.file = fmt::format("shard_{:05d}.npy", man.shards.size());
    s.tokens_file = fmt::format("shard_{:05d}.tokens.npy", man.shards.size());
    s.n_tokens = rows;
    write_npy(out_dir + "/" + s.tokens_file, DType::I32, {rows}, ids.data());
    write_npy(out_dir + "/" + s.file, DType::F32, {rows, c.d}, acts.data());
    man.shards.push_back(s);
    man.n_tokens += rows;
    man.contexts_done += rows;
    done += rows;
  }
  man.complete = true;
  write_activation_manifest(man);
  std::vector<float> fr(t.freqs.begin(), t.freqs.end()), mg(t.mags.begin(), t.mags.end());
  std::vector<int32_t> par(t.parent_of.begin(), t.parent_of.end());
  write_safetensors(out_dir + "/truth.safetensors", {{"directions", DType::F32, {n, c.d}, t.directions.data()},
                                                     {"freqs", DType::F32, {n}, fr.data()},
                                                     {"mags", DType::F32, {n}, mg.data()},
                                                     {"parent_of", DType::I32, {n}, par.data()}});
  return t;
}

std::vector<double> best_cosines(const std::vector<float>& truth, int n_truth, const std::vector<float>& rows,
                                 int row_begin, int row_end, int d) {
  std::vector<double> best(static_cast<size_t>(n_truth), -1.0);
  for (int r = row_begin; r < row_end; ++r) {
    double rn = 0;
    for (int j = 0; j < d; ++j) rn += double(rows[static_cast<size_t>(r) * d + j]) * rows[static_cast<size_t>(r) * d + j];
    rn = std::sqrt(rn);
    if (rn == 0) continue;
    for (int i = 0; i < n_truth; ++i) {
      double dot = 0, tn = 0;
      for (int j = 0; j < d; ++j) {
        const double tv = truth[static_cast<size_t>(i) * d + j];
        dot += tv * rows[static_cast<size_t>(r) * d + j];
        tn += tv * tv;
      }
      best[i] = std::max(best[i], dot / (rn * std::sqrt(tn)));
    }
  }
  return best;
}

}  // namespace saelab
