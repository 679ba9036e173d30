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

// A row holding NaN or Inf is a fault in the data, never something to train on: by default the
// loader throws an Error naming the shard file, row, global token index and column; with
// drop_nonfinite such rows are left out (and counted) instead.
struct NonFiniteRow {
  int64_t row = -1, column = -1;  // row within the block; -1: none
  float value = 0;
};
NonFiniteRow find_nonfinite_row(const float* rows, int64_t n, int d);

class ActivationLoader {
 public:
  // `shards`: the shard indices this loader reads (a data-parallel partition); empty: all of them.
  ActivationLoader(ActivationManifest manifest, int64_t buffer_tokens, uint64_t seed, float scale = 1.0f,
                   bool drop_nonfinite = false, std::vector<size_t> shards = {});
  int d() const { return manifest_.d_in; }
  int64_t n_tokens() const { return manifest_.n_tokens; }
  // Next N rows, each multiplied by `scale`, into out [N, d].
  void next(int64_t N, float* out);
  void skip(int64_t batches, int64_t N);
  int64_t dropped_rows() const { return dropped_rows_; }  // non-finite rows left out so far

 private:
  void refill();
  ActivationManifest manifest_;
  int64_t buffer_tokens_;
  uint64_t seed_;
  float scale_;
  bool drop_nonfinite_;
  int64_t dropped_rows_ = 0;
  int64_t rows_this_epoch_ = 0;
  std::vector<size_t> shards_;  // the shards read, in index order
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
// Non-finite rows throw (as in the loader) unless drop_nonfinite, when they are left out.
ActivationSample sample_activations(const ActivationManifest& m, int64_t max_tokens, int64_t max_rows,
                                    bool drop_nonfinite = false);

// Weiszfeld iterations for the geometric median of rows [n, d].
std::vector<float> geometric_median(const std::vector<float>& rows, int64_t n, int d, int iters = 100);

}  // namespace saelab
