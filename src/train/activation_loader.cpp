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

}  // namespace

ActivationLoader::ActivationLoader(ActivationManifest manifest, int64_t buffer_tokens, uint64_t seed, float scale,
                                   bool drop_nonfinite, std::vector<size_t> shards)
    : manifest_(std::move(manifest)),
      buffer_tokens_(buffer_tokens),
      seed_(seed),
      scale_(scale),
      drop_nonfinite_(drop_nonfinite),
      rng_(seed) {
  if (manifest_.shards.empty() || manifest_.n_tokens == 0)
    fail("activation directory '{}' holds no activations", manifest_.dir);
  if (shards.empty()) {
    shards_.resize(manifest_.shards.size());
    std::iota(shards_.begin(), shards_.end(), size_t{0});
  } else {
    shards_ = std::move(shards);
    for (size_t s : shards_) SAELAB_ASSERT(s < manifest_.shards.size(), "shard {} of {}", s, manifest_.shards.size());
  }
  if (buffer_tokens_ < 1) fail("buffer size must be positive, got {}", buffer_tokens_);
}

void ActivationLoader::refill() {
  const int d = manifest_.d_in;
  std::vector<float> shard;
  while (rows_ < buffer_tokens_) {
    if (next_shard_ >= order_.size()) {  // a new epoch: a fresh shard order
      if (epoch_ > 0 && rows_this_epoch_ == 0)
        fail("activation directory '{}' has no finite rows left to train on", manifest_.dir);
      rows_this_epoch_ = 0;
      order_ = shards_;
      std::mt19937_64 order_rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch_++));
      std::shuffle(order_.begin(), order_.end(), order_rng);
      next_shard_ = 0;
    }
    const size_t si = order_[next_shard_++];
    read_activation_shard(manifest_, si, shard);
    dropped_rows_ += screen_shard(manifest_, si, shard, drop_nonfinite_);
    const int64_t n = static_cast<int64_t>(shard.size()) / d;
    rows_this_epoch_ += n;
    buf_.resize(static_cast<size_t>((rows_ + n) * d));
    std::memcpy(buf_.data() + rows_ * d, shard.data(), shard.size() * sizeof(float));
    rows_ += n;
  }
  // Fisher–Yates over rows with our own draws (std::uniform_int_distribution is not portable).
  std::vector<float> tmp(static_cast<size_t>(d));
  for (int64_t i = rows_ - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng_() % static_cast<uint64_t>(i + 1));
    if (i == j) continue;
    std::memcpy(tmp.data(), buf_.data() + i * d, d * sizeof(float));
    std::memcpy(buf_.data() + i * d, buf_.data() + j * d, d * sizeof(float));
    std::memcpy(buf_.data() + j * d, tmp.data(), d * sizeof(float));
  }
}

void ActivationLoader::next(int64_t N, float* out) {
  const int d = manifest_.d_in;
  int64_t done = 0;
  while (done < N) {
    if (rows_ <= buffer_tokens_ / 2) refill();  // afterwards rows_ >= buffer_tokens_ > buffer_tokens_ / 2
    const int64_t take = std::min(N - done, rows_ - buffer_tokens_ / 2);
    // Serve from the end: the rows just shuffled in are spread over the whole buffer.
    const float* src = buf_.data() + (rows_ - take) * d;
    if (out) {
      for (int64_t i = 0; i < take * d; ++i) out[done * d + i] = src[i] * scale_;
    }
    rows_ -= take;
    done += take;
  }
}

void ActivationLoader::skip(int64_t batches, int64_t N) {
  for (int64_t b = 0; b < batches; ++b) next(N, nullptr);
}

ActivationSample sample_activations(const ActivationManifest& m, int64_t max_tokens, int64_t max_rows,
                                    bool drop_nonfinite) {
  ActivationSample s;
  const int d = m.d_in;
  const int64_t total = std::min(max_tokens, m.n_tokens);
  const int64_t stride = std::max<int64_t>(1, total / std::max<int64_t>(1, max_rows));
  std::vector<float> shard;
  int64_t seen = 0;
  double sq = 0;
  for (size_t i = 0; i < m.shards.size() && seen < total; ++i) {
    read_activation_shard(m, i, shard);
    screen_shard(m, i, shard, drop_nonfinite);
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(shard.size()) / d, total - seen);
    for (int64_t r = 0; r < n; ++r) {
      const float* row = shard.data() + r * d;
      double rs = 0;
      for (int j = 0; j < d; ++j) rs += static_cast<double>(row[j]) * row[j];
      sq += rs;
      if ((seen + r) % stride == 0 && s.n < max_rows) {
        s.rows.insert(s.rows.end(), row, row + d);
        ++s.n;
      }
    }
    seen += n;
  }
  s.mean_sq_norm = seen ? sq / static_cast<double>(seen) : 0.0;
  return s;
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
