// Training batches from an activation directory: a shuffling buffer over shards. Shards are read in
// a seeded random order per epoch; the buffer is refilled to `buffer_tokens`, shuffled, and served
// until half-empty. The batch sequence is a pure function of (directory, seed, buffer_tokens), so
// a resumed run replays it (skip()) and sees exactly the batches an uninterrupted run would.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "saelab/activation_store.hpp"

namespace saelab {

class ActivationLoader {
 public:
  ActivationLoader(ActivationManifest manifest, int64_t buffer_tokens, uint64_t seed, float scale = 1.0f);
  int d() const { return manifest_.d_in; }
  int64_t n_tokens() const { return manifest_.n_tokens; }
  // Next N rows, each multiplied by `scale`, into out [N, d].
  void next(int64_t N, float* out);
  void skip(int64_t batches, int64_t N);

 private:
  void refill();
  ActivationManifest manifest_;
  int64_t buffer_tokens_;
  uint64_t seed_;
  float scale_;
  std::vector<size_t> order_;
  size_t next_shard_ = 0;
  int64_t epoch_ = 0;
  std::mt19937_64 rng_;
  std::vector<float> buf_;  // [rows, d]
  int64_t rows_ = 0;        // valid rows in buf_
};

// Mean ‖x‖² over the first `max_tokens` activations (shards in order) and a sample of rows
// (every stride-th) for statistics like the geometric median.
struct ActivationSample {
  double mean_sq_norm = 0;
  std::vector<float> rows;  // [n, d]
  int64_t n = 0;
};
ActivationSample sample_activations(const ActivationManifest& m, int64_t max_tokens, int64_t max_rows);

// Weiszfeld iterations for the geometric median of rows [n, d].
std::vector<float> geometric_median(const std::vector<float>& rows, int64_t n, int d, int iters = 100);

}  // namespace saelab
