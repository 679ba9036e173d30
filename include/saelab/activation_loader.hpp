// Training batches from activation rows: a MixingBuffer over any RowSource (row_source.hpp), and
// ActivationLoader, the MixingBuffer over an activation directory's shards. Shards are read in a
// seeded random order per epoch; the buffer is refilled to `buffer_tokens`, shuffled, and served
// until half-empty. The batch sequence is a pure function of (the source's rows, seed, buffer_tokens),
// so a resumed run replays it (skip()) and sees exactly the batches an uninterrupted run would.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "saelab/activation_store.hpp"
#include "saelab/row_source.hpp"

namespace saelab {

// A row holding NaN or Inf is a fault in the data, never something to train on: by default the
// loader throws an Error naming the shard file, row, global token index and column; with
// drop_nonfinite such rows are left out (and counted) instead.
struct NonFiniteRow {
  int64_t row = -1, column = -1;  // row within the block; -1: none
  float value = 0;
};
NonFiniteRow find_nonfinite_row(const float* rows, int64_t n, int d);

// The mixing buffer: refilled with whole chunks of the source to at least `buffer_tokens` rows,
// shuffled by a Fisher–Yates with mt19937_64(seed), served from its end until half-empty. With
// shuffle = false it serves rows in the source's order instead (first in, first out), so two sources
// with the same row stream give the same batches whatever their chunk sizes. rows_wanted > 0: the
// consumer takes at most that many rows in all, so once the source has given that many (an LM's rows
// cost a forward each) there are no more refills and the buffer is served down to empty.
class MixingBuffer {
 public:
  MixingBuffer(std::unique_ptr<RowSource> source, int64_t buffer_tokens, uint64_t seed, float scale = 1.0f,
               bool shuffle = true, int64_t rows_wanted = 0);
  // Virtual: training_data.cpp owns ActivationLoaders through unique_ptr<MixingBuffer>.
  virtual ~MixingBuffer() = default;
  MixingBuffer(MixingBuffer&&) = default;
  MixingBuffer& operator=(MixingBuffer&&) = default;
  int d() const { return d_; }
  // Next N rows, each multiplied by `scale`, into out [N, d]; out == nullptr drops them.
  void next(int64_t N, float* out);
  // Drops `batches` batches of N from a fresh buffer: the state next() would leave. A replayable
  // source (row_source.hpp) is replayed on row ids alone, then only the chunks whose rows the buffer
  // still holds are recomputed.
  void skip(int64_t batches, int64_t N);
  int64_t dropped_rows() const { return source_->dropped_rows(); }  // non-finite rows left out so far

 private:
  void refill();
  void recompute_held_rows();  // after a dry replay: buf_ from the chunks that hold ids_[head_, rows_)
  std::unique_ptr<RowSource> source_;
  int d_;
  int64_t buffer_tokens_, rows_wanted_;
  float scale_;
  bool shuffle_;
  std::mt19937_64 rng_;
  std::vector<float> buf_;    // [rows_, d]; rows [head_, rows_) are still to be served
  std::vector<float> chunk_;  // [n, d] the source's latest chunk
  std::vector<int64_t> ids_;  // [rows_] each buffer row's index in the source's row stream
  int64_t rows_ = 0, head_ = 0, next_id_ = 0;
  bool dry_ = false;                 // replaying on ids only (skip): buf_ untouched
  std::vector<int64_t> chunk_ends_;  // during a dry replay: each chunk's end in the row stream
};

class ActivationLoader : public MixingBuffer {
 public:
  // `shards`: the shard indices this loader reads (a data-parallel partition); empty: all of them.
  // shuffle = false: shards in index order and rows in harvest order (no mixing at all).
  ActivationLoader(const ActivationManifest& manifest, int64_t buffer_tokens, uint64_t seed, float scale = 1.0f,
                   bool drop_nonfinite = false, std::vector<size_t> shards = {}, bool shuffle = true);
  int64_t n_tokens() const { return n_tokens_; }

 private:
  int64_t n_tokens_;
};

// Mean ‖x‖² over the first `max_tokens` activations (shards in order) and a sample of rows
// (every stride-th) for statistics like the geometric median.
struct ActivationSample {
  double mean_sq_norm = 0;
  std::vector<float> rows;  // [n, d]
  int64_t n = 0;
};
// The same statistics fed rows in stream order (any chunking gives the same result): the first
// `total` rows, every (total / max_rows)-th of them kept.
class ActivationSampler {
 public:
  ActivationSampler(int d, int64_t total, int64_t max_rows);
  void add(const float* rows, int64_t n);  // rows [n, d]; those past `total` are ignored
  bool done() const { return seen_ >= total_; }
  ActivationSample finish() const;

 private:
  int d_;
  int64_t total_, max_rows_, stride_, seen_ = 0;
  double sq_ = 0;
  ActivationSample s_;
};
// Non-finite rows throw (as in the loader) unless drop_nonfinite, when they are left out.
ActivationSample sample_activations(const ActivationManifest& m, int64_t max_tokens, int64_t max_rows,
                                    bool drop_nonfinite = false);

// Weiszfeld iterations for the geometric median of rows [n, d].
std::vector<float> geometric_median(const std::vector<float>& rows, int64_t n, int d, int iters = 100);

}  // namespace saelab
