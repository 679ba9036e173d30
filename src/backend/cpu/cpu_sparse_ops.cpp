// CPU sparse top-k decode: the decoder's three products when each row of f [N, F] has at most k
// non-zeros, at N·k·d multiply-adds each instead of the dense GEMM's N·F·d (plus an O(N·F) scan
// for the non-zeros); and the encoder's backward over the non-zeros of ∂L/∂pre. Every output is summed in a fixed order (rows in order, latents in order),
// so results do not depend on the thread count. The inner loops over d are `omp simd`: at -O2
// GCC's cheap vectoriser leaves them scalar (measured 3× slower).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../sparse_decode_shape.hpp"
#include "cpu_backend.hpp"

namespace saelab::cpu {

namespace {
// Latents per task of the ∇W reduction: the block's rows of gW stay in cache while all N rows of
// f are scanned, and F / kLatentBlock tasks share out across threads.
constexpr int64_t kLatentBlock = 32;

// fn(i, v) for the non-zeros v = row[i] of row[0, n), in index order. The scan tests four floats
// at a time as two 64-bit words: with k of F non-zero most groups are all zero (+0.0 has no bits
// set; a −0.0 takes the slow path and is skipped there), and the branch per float is what a plain
// scan spends its time on.
template <typename Fn>
inline void for_nonzeros(const float* row, int64_t n, Fn fn) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint64_t lo, hi;
    std::memcpy(&lo, row + i, sizeof lo);
    std::memcpy(&hi, row + i + 2, sizeof hi);
    if ((lo | hi) == 0) continue;
    for (int64_t t = i; t < i + 4; ++t)
      if (row[t] != 0.f) fn(t, row[t]);
  }
  for (; i < n; ++i)
    if (row[i] != 0.f) fn(i, row[i]);
}
}  // namespace

void sparse_decode(TensorView out, TensorView f, TensorView W) {
  const SparseDecodeShape s = sparse_decode_shape(f, W, out, "sparse_decode");
  const float* fp = f.f32();
  const float* wp = W.f32();
  float* op = out.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < s.N; ++n) {
    float* __restrict o = op + n * s.d;
    std::fill(o, o + s.d, 0.f);
    for_nonzeros(fp + n * s.F, s.F, [&](int64_t i, float v) {
      const float* __restrict w = wp + i * s.d;
#pragma omp simd
      for (int64_t j = 0; j < s.d; ++j) o[j] += v * w[j];
    });
  }
}

void sparse_decode_grad_w(TensorView gW, TensorView f, TensorView dx, float alpha, float beta) {
  const SparseDecodeShape s = sparse_decode_shape(f, gW, dx, "sparse_decode_grad_w");
  const float* fp = f.f32();
  const float* xp = dx.f32();
  float* gp = gW.f32();
  const int64_t blocks = (s.F + kLatentBlock - 1) / kLatentBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * kLatentBlock, i1 = std::min(s.F, i0 + kLatentBlock);
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < s.d; ++j) gp[i * s.d + j] = beta == 0.f ? 0.f : beta * gp[i * s.d + j];
    for (int64_t n = 0; n < s.N; ++n)
      for_nonzeros(fp + n * s.F + i0, i1 - i0, [&](int64_t t, float v) {
        const float c = alpha * v;
        const float* __restrict x = xp + n * s.d;
        float* __restrict g = gp + (i0 + t) * s.d;
#pragma omp simd
        for (int64_t j = 0; j < s.d; ++j) g[j] += c * x[j];
      });
  }
}

void sparse_decode_grad_f(TensorView df, TensorView f, TensorView dx, TensorView W) {
  const SparseDecodeShape s = sparse_decode_shape(f, W, dx, "sparse_decode_grad_f");
  SAELAB_ASSERT(df.numel() == s.N * s.F, "sparse_decode_grad_f: df [N, F]");
  const float* fp = f.f32();
  const float* xp = dx.f32();
  const float* wp = W.f32();
  float* gp = df.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < s.N; ++n) {
    std::fill(gp + n * s.F, gp + (n + 1) * s.F, 0.f);
    for_nonzeros(fp + n * s.F, s.F, [&](int64_t i, float) {
      const float* __restrict x = xp + n * s.d;
      const float* __restrict w = wp + i * s.d;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < s.d; ++j) acc += x[j] * w[j];
      gp[n * s.F + i] = acc;
    });
  }
}

// ∇W_enc [d, F] is column-strided per latent, so each task accumulates its block of latents row by
// row into a [kLatentBlock, d] scratch (contiguous axpys over d, in cache) and writes it
// transposed into the block's columns of gW at the end. Each entry sums its rows in order.
void sparse_encode_grad_w(TensorView gW, TensorView gb, TensorView dpre, TensorView x) {
  const SparseDecodeShape s = sparse_encode_shape(gW, gb, dpre, x);
  const float* dp = dpre.f32();
  const float* xp = x.f32();
  float* gp = gW.f32();
  float* bp = gb.data ? gb.f32() : nullptr;
  const int64_t blocks = (s.F + kLatentBlock - 1) / kLatentBlock;
#pragma omp parallel
  {
    std::vector<float> acc(static_cast<size_t>(kLatentBlock * s.d));  // [kLatentBlock, d]
    float bsum[kLatentBlock];
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kLatentBlock, w = std::min(s.F, i0 + kLatentBlock) - i0;
      std::fill(acc.begin(), acc.begin() + w * s.d, 0.f);
      std::fill(bsum, bsum + w, 0.f);
      for (int64_t n = 0; n < s.N; ++n)
        for_nonzeros(dp + n * s.F + i0, w, [&](int64_t t, float v) {
          const float* __restrict xr = xp + n * s.d;
          float* __restrict a = acc.data() + t * s.d;
#pragma omp simd
          for (int64_t j = 0; j < s.d; ++j) a[j] += v * xr[j];
          bsum[t] += v;
        });
      for (int64_t j = 0; j < s.d; ++j) {
        float* __restrict g = gp + j * s.F + i0;
        for (int64_t t = 0; t < w; ++t) g[t] = acc[t * s.d + j];
      }
      if (bp) std::copy(bsum, bsum + w, bp + i0);
    }
  }
}

void hierarchy_grad_mask(TensorView mask, TensorView f, TensorView pre, int n_parents, int children_per_parent,
                         float width) {
  const int64_t P = n_parents, m = children_per_parent, F = P + P * m;
  SAELAB_ASSERT(F > 0 && f.numel() % F == 0 && mask.numel() == f.numel() && pre.numel() == f.numel(),
                "hierarchy_grad_mask shapes: mask {}, f {}, pre {} for P = {}, m = {}", mask.shape_str(),
                f.shape_str(), pre.shape_str(), P, m);
  const int64_t N = f.numel() / F;
  float* mp = mask.f32();
  const float* fp = f.f32();
  const float* pp = pre.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* mk = mp + n * F;
    const float* fr = fp + n * F;
    const float* pr = pp + n * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) mk[i] = fr[i] > 0.f ? 1.f : 0.f;
    if (width <= 0.f) continue;
    for (int64_t p = 0; p < P; ++p) {
      if (!(std::abs(pr[p]) < 0.5f * width)) continue;  // as hierarchy_backward's band test
      for (int64_t c = 0; c < m; ++c) {
        const int64_t j = P + p * m + c;
        if (pr[j] > 0.f) mk[j] = 1.f;
      }
    }
  }
}

}  // namespace saelab::cpu
