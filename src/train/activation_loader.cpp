#include "saelab/activation_loader.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace saelab {

NonFiniteRow find_nonfinite_row(const float* rows, int64_t n, int d) {
  for (int64_t r = 0; r < n; ++r)
    for (int j = 0; j < d; ++j)
      if (!std::isfinite(rows[r * d + j])) return {r, j, rows[r * d + j]};
  return {};
}

namespace {

// Token index of shard i's first row within the directory.
int64_t shard_first_token(const ActivationManifest& m, size_t i) {
  int64_t t = 0;
  for (size_t s = 0; s < i; ++s) t += m.shards[s].n_tokens;
  return t;
}

// Checks shard i's rows [n, d]; throws, or compacts away the non-finite rows and returns how many.
int64_t screen_shard(const ActivationManifest& m, size_t i, std::vector<float>& shard, bool drop) {
  const int d = m.d_in;
  int64_t n = static_cast<int64_t>(shard.size()) / d, dropped = 0;
  NonFiniteRow bad = find_nonfinite_row(shard.data(), n, d);
  if (bad.row < 0) return 0;
  if (!drop)
    fail("activation shard '{}/{}' holds {} at row {} (token {} of the directory), column {}; re-harvest the "
         "activations, or set on_nonfinite = \"skip_batch\" to leave such rows out",
         m.dir, m.shards[i].file, bad.value, bad.row, shard_first_token(m, i) + bad.row, bad.column);
  int64_t kept = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (find_nonfinite_row(shard.data() + r * d, 1, d).row >= 0) {
      ++dropped;
      continue;
    }
    if (kept != r) std::memmove(shard.data() + kept * d, shard.data() + r * d, d * sizeof(float));
    ++kept;
  }
  shard.resize(static_cast<size_t>(kept * d));
  return dropped;
}

// An activation directory's shards as a RowSource: a chunk is one shard (screened for non-finite
// rows); each epoch reads the shards in a fresh seeded order (index order without shuffle).
class ShardRowSource : public RowSource {
 public:
  ShardRowSource(const ActivationManifest& m, uint64_t seed, bool drop_nonfinite, std::vector<size_t> shards,
                 bool shuffle)
      : manifest_(m), seed_(seed), drop_nonfinite_(drop_nonfinite), shuffle_(shuffle) {
    if (manifest_.shards.empty() || manifest_.n_tokens == 0)
      fail("activation directory '{}' holds no activations", manifest_.dir);
    if (shards.empty()) {
      shards_.resize(manifest_.shards.size());
      std::iota(shards_.begin(), shards_.end(), size_t{0});
    } else {
      shards_ = std::move(shards);
      for (size_t s : shards_) SAELAB_ASSERT(s < manifest_.shards.size(), "shard {} of {}", s, manifest_.shards.size());
    }
  }
  int d() const override { return manifest_.d_in; }
  int64_t dropped_rows() const override { return dropped_rows_; }

  void next_chunk(std::vector<float>& rows) override {
    do {
      if (next_shard_ >= order_.size()) {  // a new epoch: a fresh shard order
        if (epoch_ > 0 && rows_this_epoch_ == 0)
          fail("activation directory '{}' has no finite rows left to train on", manifest_.dir);
        rows_this_epoch_ = 0;
        order_ = shards_;
        std::mt19937_64 order_rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch_++));
        if (shuffle_) std::shuffle(order_.begin(), order_.end(), order_rng);
        next_shard_ = 0;
      }
      const size_t si = order_[next_shard_++];
      read_activation_shard(manifest_, si, rows);
      dropped_rows_ += screen_shard(manifest_, si, rows, drop_nonfinite_);
      rows_this_epoch_ += static_cast<int64_t>(rows.size()) / manifest_.d_in;
    } while (rows.empty());  // a shard of nothing but non-finite rows
  }

 private:
  ActivationManifest manifest_;
  uint64_t seed_;
  bool drop_nonfinite_, shuffle_;
  int64_t dropped_rows_ = 0, rows_this_epoch_ = 0, epoch_ = 0;
  std::vector<size_t> shards_;  // the shards read, in index order
  std::vector<size_t> order_;   // this epoch's order
  size_t next_shard_ = 0;
};

}  // namespace

MixingBuffer::MixingBuffer(std::unique_ptr<RowSource> source, int64_t buffer_tokens, uint64_t seed, float scale,
                           bool shuffle, int64_t rows_wanted)
    : source_(std::move(source)),
      d_(source_->d()),
      buffer_tokens_(buffer_tokens),
      rows_wanted_(rows_wanted),
      scale_(scale),
      shuffle_(shuffle),
      rng_(seed) {
  if (buffer_tokens_ < 1) fail("buffer size must be positive, got {}", buffer_tokens_);
}

void MixingBuffer::refill() {
  const int d = d_;
  if (head_ > 0) {  // first in, first out: the unserved rows move to the front
    if (!dry_)
      std::memmove(buf_.data(), buf_.data() + head_ * d, static_cast<size_t>((rows_ - head_) * d) * sizeof(float));
    std::copy(ids_.begin() + head_, ids_.begin() + rows_, ids_.begin());
    rows_ -= head_;
    head_ = 0;
  }
  while (rows_ < buffer_tokens_ && (rows_wanted_ <= 0 || next_id_ < rows_wanted_)) {
    int64_t n;
    if (dry_) {
      n = source_->skip_chunk();
      chunk_ends_.push_back(next_id_ + n);
    } else {
      source_->next_chunk(chunk_);
      n = static_cast<int64_t>(chunk_.size()) / d;
      buf_.resize(static_cast<size_t>((rows_ + n) * d));
      std::memcpy(buf_.data() + rows_ * d, chunk_.data(), chunk_.size() * sizeof(float));
    }
    ids_.resize(static_cast<size_t>(rows_ + n));
    std::iota(ids_.begin() + rows_, ids_.end(), next_id_);
    next_id_ += n;
    rows_ += n;
  }
  if (!shuffle_) return;
  // Fisher–Yates over rows with our own draws (std::uniform_int_distribution is not portable).
  std::vector<float> tmp(static_cast<size_t>(d));
  for (int64_t i = rows_ - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng_() % static_cast<uint64_t>(i + 1));
    if (i == j) continue;
    std::swap(ids_[i], ids_[j]);
    if (dry_) continue;
    std::memcpy(tmp.data(), buf_.data() + i * d, d * sizeof(float));
    std::memcpy(buf_.data() + i * d, buf_.data() + j * d, d * sizeof(float));
    std::memcpy(buf_.data() + j * d, tmp.data(), d * sizeof(float));
  }
}

void MixingBuffer::next(int64_t N, float* out) {
  const int d = d_;
  int64_t done = 0;
  while (done < N) {
    // Refilled when half-empty (afterwards rows_ - head_ >= buffer_tokens_), unless the source has
    // given every row wanted: then the rest is served down to empty.
    const int64_t keep = rows_wanted_ > 0 && next_id_ >= rows_wanted_ ? 0 : buffer_tokens_ / 2;
    if (rows_ - head_ <= keep) {
      SAELAB_ASSERT(keep > 0, "more than rows_wanted = {} rows asked for", rows_wanted_);
      refill();
    }
    const int64_t take = std::min(N - done, rows_ - head_ - (rows_wanted_ > 0 && next_id_ >= rows_wanted_ ? 0 : keep));
    // Shuffled: served from the end, where the rows just shuffled in are spread over the whole
    // buffer. In order: from the front.
    const int64_t from = shuffle_ ? rows_ - take : head_;
    if (out) {
      SAELAB_ASSERT(!dry_, "rows asked for during a dry replay");
      const float* src = buf_.data() + from * d;
      for (int64_t i = 0; i < take * d; ++i) out[done * d + i] = src[i] * scale_;
    }
    if (shuffle_) rows_ -= take;
    else head_ += take;
    done += take;
  }
}

void MixingBuffer::skip(int64_t batches, int64_t N) {
  if (batches <= 0) return;
  if (!source_->replayable() || next_id_ != 0) {  // replay by recomputing every row
    for (int64_t b = 0; b < batches; ++b) next(N, nullptr);
    return;
  }
  dry_ = true;
  chunk_ends_.clear();
  for (int64_t b = 0; b < batches; ++b) next(N, nullptr);
  dry_ = false;
  recompute_held_rows();
}

// The rows a dry replay left in the buffer, ids_[head_, rows_), come from chunks of the stream that
// are recomputed (the oldest held row's chunk onwards, skipping chunks none of whose rows are held);
// afterwards the source stands where the replay left it.
void MixingBuffer::recompute_held_rows() {
  const int d = d_;
  buf_.assign(static_cast<size_t>(rows_ * d), 0.f);
  if (rows_ == head_) return;
  const int64_t first_held = *std::min_element(ids_.begin() + head_, ids_.begin() + rows_);
  std::vector<int64_t> slot(static_cast<size_t>(next_id_ - first_held), -1);  // stream row - first_held -> buffer row
  for (int64_t p = head_; p < rows_; ++p) slot[ids_[p] - first_held] = p;
  source_->rewind();
  int64_t begin = 0;
  for (const int64_t end : chunk_ends_) {
    bool held = false;
    for (int64_t id = std::max(begin, first_held); id < end && !held; ++id) held = slot[id - first_held] >= 0;
    if (!held) {
      const int64_t n = source_->skip_chunk();
      SAELAB_ASSERT(n == end - begin, "replayed chunk has {} rows, expected {}", n, end - begin);
    } else {
      source_->next_chunk(chunk_);
      SAELAB_ASSERT(static_cast<int64_t>(chunk_.size()) == (end - begin) * d, "recomputed chunk has {} values, expected {}",
                    chunk_.size(), (end - begin) * d);
      for (int64_t id = std::max(begin, first_held); id < end; ++id)
        if (const int64_t p = slot[id - first_held]; p >= 0)
          std::memcpy(buf_.data() + p * d, chunk_.data() + (id - begin) * d, d * sizeof(float));
    }
    begin = end;
  }
  chunk_ends_.clear();
}

ActivationLoader::ActivationLoader(const ActivationManifest& manifest, int64_t buffer_tokens, uint64_t seed,
                                   float scale, bool drop_nonfinite, std::vector<size_t> shards, bool shuffle)
    : MixingBuffer(std::make_unique<ShardRowSource>(manifest, seed, drop_nonfinite, std::move(shards), shuffle),
                   buffer_tokens, seed, scale, shuffle),
      n_tokens_(manifest.n_tokens) {}

ActivationSampler::ActivationSampler(int d, int64_t total, int64_t max_rows)
    : d_(d), total_(std::max<int64_t>(0, total)), max_rows_(max_rows),
      stride_(std::max<int64_t>(1, total_ / std::max<int64_t>(1, max_rows))) {}

void ActivationSampler::add(const float* rows, int64_t n) {
  n = std::min(n, total_ - seen_);
  for (int64_t r = 0; r < n; ++r) {
    const float* row = rows + r * d_;
    double rs = 0;
    for (int j = 0; j < d_; ++j) rs += static_cast<double>(row[j]) * row[j];
    sq_ += rs;
    if ((seen_ + r) % stride_ == 0 && s_.n < max_rows_) {
      s_.rows.insert(s_.rows.end(), row, row + d_);
      ++s_.n;
    }
  }
  seen_ += std::max<int64_t>(n, 0);
}

ActivationSample ActivationSampler::finish() const {
  ActivationSample s = s_;
  s.mean_sq_norm = seen_ ? sq_ / static_cast<double>(seen_) : 0.0;
  return s;
}

ActivationSample sample_activations(const ActivationManifest& m, int64_t max_tokens, int64_t max_rows,
                                    bool drop_nonfinite) {
  ActivationSampler sampler(m.d_in, std::min(max_tokens, m.n_tokens), max_rows);
  std::vector<float> shard;
  for (size_t i = 0; i < m.shards.size() && !sampler.done(); ++i) {
    read_activation_shard(m, i, shard);
    screen_shard(m, i, shard, drop_nonfinite);
    sampler.add(shard.data(), static_cast<int64_t>(shard.size()) / m.d_in);
  }
  return sampler.finish();
}

std::vector<float> geometric_median(const std::vector<float>& rows, int64_t n, int d, int iters) {
  std::vector<double> y(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int j = 0; j < d; ++j) y[j] += rows[r * d + j] / static_cast<double>(n);
  for (int it = 0; it < iters; ++it) {
    std::vector<double> num(static_cast<size_t>(d), 0.0);
    double den = 0;
    for (int64_t r = 0; r < n; ++r) {
      double dist = 0;
      for (int j = 0; j < d; ++j) dist += (rows[r * d + j] - y[j]) * (rows[r * d + j] - y[j]);
      const double w = 1.0 / std::max(std::sqrt(dist), 1e-8);
      for (int j = 0; j < d; ++j) num[j] += w * rows[r * d + j];
      den += w;
    }
    double move = 0;
    for (int j = 0; j < d; ++j) {
      const double ny = num[j] / den;
      move += (ny - y[j]) * (ny - y[j]);
      y[j] = ny;
    }
    if (move < 1e-12) break;
  }
  return {y.begin(), y.end()};
}

}  // namespace saelab
