// Planted activations with known ground truth, written as an activation directory that
// `saelab train` reads like a harvest: x = Σ_active a_i u_i (+ Gaussian noise), features with
// log-uniform firing probabilities and magnitudes; optionally two-level (children fire only
// together with their parent, with probability child_prob given it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace saelab {

struct SyntheticConfig {
  int d = 32;
  int n_features = 64;          // flat features, or parents when children_per_parent > 0
  int children_per_parent = 0;  // > 0: hierarchical planted data
  double freq_min = 0.01, freq_max = 0.2;  // log-uniform P(feature fires)
  double mag_min = 0.5, mag_max = 4.0;     // log-uniform mean magnitude; a = mag · U(0.5, 1.5)
  double child_prob_min = 0.2, child_prob_max = 0.6;  // log-uniform P(child | parent)
  double child_mag_min = 0, child_mag_max = 0;       // children's magnitudes (0: as mag_min/mag_max)
  double noise = 0.0;           // std of isotropic Gaussian noise per dimension
  std::vector<double> freqs, mags;  // explicit per-feature values (override the ranges when non-empty)
  int64_t n_tokens = 100000, shard_tokens = 65536;
  uint64_t seed = 1;         // the planted features
  uint64_t sample_seed = 0;  // the draws (0: seed); another value gives held-out data of the same features
};

struct SyntheticTruth {
  int d = 0;
  std::vector<float> directions;  // [n, d] unit vectors: flat features or parents first, then children
  std::vector<double> freqs, mags;
  std::vector<int> parent_of;     // -1 for parents / flat features
  int n() const { return static_cast<int>(parent_of.size()); }
};

// Writes <out_dir>/manifest.json + shards (npy, f32) and <out_dir>/truth.safetensors.
SyntheticTruth write_synthetic(const SyntheticConfig& cfg, const std::string& out_dir);

// max_j cos(truth_i, rows_j) for every truth direction i over decoder rows [F, d] in [row_begin, row_end).
std::vector<double> best_cosines(const std::vector<float>& truth, int n_truth, const std::vector<float>& rows,
                                 int row_begin, int row_end, int d);

}  // namespace saelab
