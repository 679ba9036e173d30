// Causal grouped-query attention on the CPU as small GEMMs: per (sequence, query head) and per block
// of kBlock query rows, scores S = scale · Q_blk K[0:t1]ᵀ and out_blk = softmax(S) V[0:t1], each one
// single-threaded sgemm inside the OpenMP loop over (sequence, head). Keys past a block's last row
// are never multiplied, so the causal mask costs at most one block's triangle. A sliding window
// zeroes the weights of keys before it; the GEMMs still span them, since harvest contexts (a few
// hundred to 2k tokens) rarely reach real windows (4096).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_backend.hpp"
#include "cpu_math.hpp"

namespace saelab::cpu {

namespace {
constexpr int kBlock = 64;  // query rows per score block: S is at most [64, T]

// Row r of s (keys 0 .. n-1, the query at key position t) -> softmax over keys lo..t (lo > 0 under
// a sliding window), 0 elsewhere; scores soft-capped first when softcap > 0.
void causal_softmax_row(float* s, int n, int lo, int t, float softcap) {
  if (softcap > 0)
    for (int j = lo; j <= t; ++j) s[j] = softcap * std::tanh(s[j] / softcap);
  float mx = -INFINITY;
  for (int j = lo; j <= t; ++j) mx = std::max(mx, s[j]);
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int j = lo; j <= t; ++j) {
    s[j] = exp_simd(s[j] - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < lo; ++j) s[j] = 0.f;
  for (int j = lo; j <= t; ++j) s[j] *= inv;
  for (int j = t + 1; j < n; ++j) s[j] = 0.f;
}
}  // namespace

void causal_attention(TensorView out, TensorView q, TensorView k, TensorView v, int T, int H, int Hkv,
                      const AttentionOptions& opt) {
  const int64_t rows = q.dim(0), qw = q.dim(-1), kw = k.dim(-1);
  SAELAB_ASSERT(rows % T == 0 && qw % H == 0 && H % Hkv == 0 && kw == qw / H * Hkv && v.dim(-1) == kw &&
                    out.numel() == q.numel(),
                "attention shapes q {} k {} T={} H={} Hkv={}", q.shape_str(), k.shape_str(), T, H, Hkv);
  const int hd = static_cast<int>(qw / H);
  const int64_t B = rows / T;
  const int group = H / Hkv;
  const float scale = opt.scale > 0 ? opt.scale : 1.0f / std::sqrt(static_cast<float>(hd));
  SAELAB_ASSERT(opt.window >= 0 && opt.softcap >= 0, "attention options window {} softcap {}", opt.window, opt.softcap);
  const float* qp = q.f32();
  const float* kp = k.f32();
  const float* vp = v.f32();
  float* op = out.f32();
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(std::min(T, kBlock)) * T);  // [rows of a block, keys]
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) {
        const float* qh = qp + b * T * qw + h * hd;                  // [T, hd], row stride qw
        const float* kh = kp + b * T * kw + (h / group) * hd;        // [T, hd], row stride kw
        const float* vh = vp + b * T * kw + (h / group) * hd;        // [T, hd], row stride kw
        float* oh = op + b * T * qw + h * hd;                        // [T, hd], row stride qw
        for (int t0 = 0; t0 < T; t0 += kBlock) {
          const int m = std::min(kBlock, T - t0), n = t0 + m;  // query rows, keys they may see
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, hd, scale, qh + t0 * qw, (int)qw, kh, (int)kw,
                      0.f, s.data(), n);
          for (int r = 0; r < m; ++r) {
            const int t = t0 + r, lo = opt.window > 0 ? std::max(0, t - opt.window + 1) : 0;
            causal_softmax_row(s.data() + static_cast<size_t>(r) * n, n, lo, t, opt.softcap);
          }
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, n, 1.f, s.data(), n, vh, (int)kw, 0.f,
                      oh + t0 * qw, (int)qw);
        }
      }
    }
  }
}

}  // namespace saelab::cpu
