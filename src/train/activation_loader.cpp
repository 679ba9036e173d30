#include "saelab/activation_loader.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace saelab {

ActivationLoader::ActivationLoader(ActivationManifest manifest, int64_t buffer_tokens, uint64_t seed, float scale)
    : manifest_(std::move(manifest)), buffer_tokens_(buffer_tokens), seed_(seed), scale_(scale), rng_(seed) {
  if (manifest_.shards.empty() || manifest_.n_tokens == 0)
    fail("activation directory '{}' holds no activations", manifest_.dir);
  if (buffer_tokens_ < 1) fail("buffer size must be positive, got {}", buffer_tokens_);
}

void ActivationLoader::refill() {
  const int d = manifest_.d_in;
  std::vector<float> shard;
  while (rows_ < buffer_tokens_) {
    if (next_shard_ >= order_.size()) {  // a new epoch: a fresh shard order
      order_.resize(manifest_.shards.size());
      std::iota(order_.begin(), order_.end(), size_t{0});
      std::mt19937_64 order_rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch_++));
      std::shuffle(order_.begin(), order_.end(), order_rng);
      next_shard_ = 0;
    }
    read_activation_shard(manifest_, order_[next_shard_++], shard);
    const int64_t n = static_cast<int64_t>(shard.size()) / d;
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

ActivationSample sample_activations(const ActivationManifest& m, int64_t max_tokens, int64_t max_rows) {
  ActivationSample s;
  const int d = m.d_in;
  const int64_t total = std::min(max_tokens, m.n_tokens);
  const int64_t stride = std::max<int64_t>(1, total / std::max<int64_t>(1, max_rows));
  std::vector<float> shard;
  int64_t seen = 0;
  double sq = 0;
  for (size_t i = 0; i < m.shards.size() && seen < total; ++i) {
    read_activation_shard(m, i, shard);
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
