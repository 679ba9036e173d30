// CPU ops of the thresholded SAEs: the batch top-k of BatchTopK / Matryoshka SAEs, JumpReLU's
// backward, and the column mask of Matryoshka's groups. The batch top-k is a radix select on the
// f32 bit patterns of the positive activations: a positive float's bits, read as an unsigned
// integer, order as the float does, so two 16-bit histogram passes find the exact key of the
// keep-th largest value. Histograms are integer counts (exact in any order) and ties are ranked by
// flat index with a row prefix sum, so the kept set does not depend on the thread count and is the
// one the CUDA kernels keep.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_backend.hpp"

namespace saelab::cpu {

namespace {

constexpr int64_t kBins = 1 << 16;

// The radix key of an activation: its bits when positive, 0 (not a candidate) otherwise.
inline uint32_t key_of(float v) {
  uint32_t k;
  std::memcpy(&k, &v, sizeof k);
  return v > 0.f ? k : 0u;
}

// hist[bin] = #{keys ≠ 0 with (key >> shift) & 0xFFFF == bin and key >> 16 == hi (when shift = 0)}
// over x [n], summed from per-thread histograms (integers: exact in any order).
std::vector<int64_t> key_histogram(const float* x, int64_t n, int shift, uint32_t hi) {
  const int threads = omp_get_max_threads();
  std::vector<int64_t> per(static_cast<size_t>(threads) * kBins, 0);
#pragma omp parallel num_threads(threads)
  {
    int64_t* h = per.data() + static_cast<int64_t>(omp_get_thread_num()) * kBins;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = key_of(x[i]);
      if (k == 0 || (shift == 0 && (k >> 16) != hi)) continue;
      ++h[(k >> shift) & 0xFFFFu];
    }
  }
  std::vector<int64_t> hist(static_cast<size_t>(kBins), 0);
  for (int t = 0; t < threads; ++t)
    for (int64_t b = 0; b < kBins; ++b) hist[b] += per[static_cast<size_t>(t) * kBins + b];
  return hist;
}

// Scanning bins from the top: the bin where the count of keys above reaches `take`; `above` gets
// the count in the bins above it.
uint32_t crossing_bin(const std::vector<int64_t>& hist, int64_t take, int64_t& above) {
  int64_t cum = 0;
  for (int64_t b = kBins - 1; b >= 0; --b) {
    if (cum + hist[b] >= take) {
      above = cum;
      return static_cast<uint32_t>(b);
    }
    cum += hist[b];
  }
  SAELAB_ASSERT(false, "batch_topk: {} keys requested of {}", take, cum);
}

// fires[F] = #{n: f > 0}, mass[F] = Σ_n f over chunks of kEpilogueRows rows added in order (as
// encode_epilogue's statistics).
void chunked_column_stats(const float* f, int64_t N, int64_t F, float* fires, float* mass) {
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  std::vector<float> part(static_cast<size_t>(std::max<int64_t>(chunks, 1) * 2 * F), 0.f);  // [chunks][2][F]
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    float* cnt = part.data() + c * 2 * F;
    float* sum = cnt + F;
    for (int64_t n = c * kEpilogueRows; n < std::min(N, (c + 1) * kEpilogueRows); ++n)
      for (int64_t i = 0; i < F; ++i) {
        const float a = f[n * F + i];
        cnt[i] += a > 0.f ? 1.f : 0.f;
        sum[i] += a;
      }
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < F; ++i) {
    float c = 0.f, s = 0.f;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      c += part[ch * 2 * F + i];
      s += part[ch * 2 * F + F + i];
    }
    fires[i] = c;
    mass[i] = s;
  }
}

}  // namespace

float batch_topk(TensorView f, TensorView pre, TensorView b, int64_t keep, TensorView fires, TensorView mass) {
  const int64_t F = b.numel(), N = F ? pre.numel() / F : 0, n = N * F;
  SAELAB_ASSERT(f.numel() == pre.numel() && pre.numel() == n && keep >= 0, "batch_topk shapes");
  SAELAB_ASSERT(!fires.data || (fires.numel() == F && mass.numel() == F), "batch_topk: stats [F]");
  float* pp = pre.f32();
  float* fp = f.f32();
  const float* bp = b.f32();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r)
    for (int64_t i = 0; i < F; ++i) pp[r * F + i] += bp[i];

  const std::vector<int64_t> high = key_histogram(pp, n, 16, 0);
  int64_t positives = 0;
  for (int64_t c : high) positives += c;
  const int64_t take = std::min(keep, positives);
  uint32_t T = 0;  // the key of the smallest kept value
  int64_t need = 0;  // how many keys equal to T are kept (the first ones in flat order)
  if (take > 0) {
    int64_t above_hi = 0, above_lo = 0;
    const uint32_t hi = crossing_bin(high, take, above_hi);
    const uint32_t lo = crossing_bin(key_histogram(pp, n, 0, hi), take - above_hi, above_lo);
    T = (hi << 16) | lo;
    need = take - above_hi - above_lo;
  }
  // Ties at T are kept in flat order: each row starts at the count of ties in the rows before it.
  std::vector<int64_t> start(static_cast<size_t>(N) + 1, 0);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    int64_t c = 0;
    for (int64_t i = 0; i < F; ++i) c += take > 0 && key_of(pp[r * F + i]) == T;
    start[r + 1] = c;
  }
  for (int64_t r = 0; r < N; ++r) start[r + 1] += start[r];
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    int64_t rank = start[r];
    for (int64_t i = 0; i < F; ++i) {
      const float v = pp[r * F + i];
      const uint32_t k = key_of(v);
      bool kept = take > 0 && k > T;
      if (take > 0 && k == T) kept = rank++ < need;
      fp[r * F + i] = kept ? v : 0.f;
    }
  }
  if (fires.data) chunked_column_stats(fp, N, F, fires.f32(), mass.f32());
  float t = 0.f;
  std::memcpy(&t, &T, sizeof t);
  return take > 0 ? t : 0.f;
}

void jumprelu_backward(TensorView dlog_threshold, TensorView df, TensorView f, TensorView pre, TensorView threshold,
                       float bandwidth, float c) {
  const int64_t F = threshold.numel(), N = F ? df.numel() / F : 0;
  SAELAB_ASSERT(df.numel() == N * F && f.numel() == df.numel() && pre.numel() == df.numel() &&
                    dlog_threshold.numel() == F && bandwidth > 0.f,
                "jumprelu_backward shapes");
  float* dp = df.f32();
  const float* fp = f.f32();
  const float* pp = pre.f32();
  const float* th = threshold.f32();
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  std::vector<float> part(static_cast<size_t>(std::max<int64_t>(chunks, 1) * F), 0.f);  // [chunks, F]
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    float* acc = part.data() + ch * F;
    for (int64_t r = ch * kEpilogueRows; r < std::min(N, (ch + 1) * kEpilogueRows); ++r)
      for (int64_t i = 0; i < F; ++i) {
        const int64_t e = r * F + i;
        const float u = (pp[e] - th[i]) / bandwidth;
        if (u > -0.5f && u < 0.5f) acc[i] += th[i] * dp[e] + c;
        dp[e] = fp[e] > 0.f ? dp[e] : 0.f;
      }
  }
  float* out = dlog_threshold.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < F; ++i) {
    float s = 0.f;
    for (int64_t ch = 0; ch < chunks; ++ch) s += part[ch * F + i];
    out[i] = -(th[i] / bandwidth) * s;
  }
}

void keep_columns(TensorView y, TensorView x, int64_t c0, int64_t c1) {
  const int64_t F = x.dim(-1), N = F ? x.numel() / F : 0;
  SAELAB_ASSERT(y.numel() == x.numel() && 0 <= c0 && c0 <= c1 && c1 <= F, "keep_columns [{}, {}) of {}", c0, c1, F);
  float* yp = y.f32();
  const float* xp = x.f32();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r)
    for (int64_t i = 0; i < F; ++i) yp[r * F + i] = i >= c0 && i < c1 ? xp[r * F + i] : 0.f;
}

}  // namespace saelab::cpu
