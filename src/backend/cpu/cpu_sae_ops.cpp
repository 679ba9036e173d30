// CPU implementations of the SAE ops of the backend interface. Loops over [N, F] are parallel
// over rows. Reductions over rows (col_sum, the encoder epilogue's statistics) sum in row order
// within fixed chunks of kEpilogueRows rows and add the chunks in order, so results do not depend
// on scheduling or the thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <queue>

#include "cpu_backend.hpp"

namespace saelab::cpu {

namespace {
// Column blocks for row reductions: wide enough to vectorise, enough of them to share out.
constexpr int64_t kColBlock = 256;

// fn(c0, c1) for column blocks [c0, c1) of [0, F), blocks shared out statically.
template <typename Fn>
void for_column_blocks(int64_t F, Fn fn) {
  const int64_t blocks = (F + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) fn(blk * kColBlock, std::min(F, (blk + 1) * kColBlock));
}

// Σ_i term(i) over [0, n) in fixed chunks summed in order: the same result for any thread count.
template <typename Term>
double chunked_sum(int64_t n, Term term) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += term(i);
    part[c] = s;
  }
  double total = 0;
  for (double v : part) total += v;
  return total;
}
}  // namespace

void sub_row(TensorView y, TensorView x, TensorView b) {
  const int64_t d = b.numel(), N = x.numel() / d;
  SAELAB_ASSERT(y.numel() == x.numel() && x.numel() == N * d, "sub_row shapes");
  const float* xp = x.f32();
  const float* bp = b.f32();
  float* yp = y.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < d; ++i) yp[n * d + i] = xp[n * d + i] - bp[i];
}

void add_row(TensorView y, TensorView b) {
  const int64_t d = b.numel(), N = y.numel() / d;
  SAELAB_ASSERT(y.numel() == N * d, "add_row shapes");
  const float* bp = b.f32();
  float* yp = y.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < d; ++i) yp[n * d + i] += bp[i];
}

namespace {

// Min-heap entries (value, -index): the top holds the weakest kept entry; ties keep the lower index.
using TopkEntry = std::pair<float, int64_t>;

// One row of top-k: row += b (when b is given), out = 0 except the k best allowed entries, which
// are max(row, 0). `heap` (reused across rows) holds the kept entries afterwards.
void topk_row(float* row, float* out, const float* b, const float* allowed, int64_t F, int k,
              std::vector<TopkEntry>& heap) {
  heap.clear();
  auto weaker = [](const TopkEntry& a, const TopkEntry& c) { return a > c; };  // min-heap on (value, -index)
  for (int64_t i = 0; i < F; ++i) {
    if (b) row[i] += b[i];
    out[i] = 0.f;
    if (allowed && allowed[i] == 0.f) continue;
    const TopkEntry e{row[i], -i};
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), weaker);
    } else if (k > 0 && e > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), weaker);
      heap.back() = e;
      std::push_heap(heap.begin(), heap.end(), weaker);
    }
  }
  for (const TopkEntry& e : heap) out[-e.second] = e.first > 0.f ? e.first : 0.f;
}

// relu_span's loop for one setting of `on` and the threshold: with either tested inside it, GCC
// left the loop scalar and branchy (measured: the epilogue was a third of the encoder GEMM's time
// on the sparse step).
template <bool kStats, bool kOn, bool kThreshold>
void relu_span_loop(float* __restrict f, float* __restrict pre, const float* __restrict b, int64_t n,
                    float* __restrict cnt, float* __restrict sum, const float* __restrict th) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = pre[i] + b[i];
    pre[i] = v;
    bool keep = kOn && v > 0.f;
    if constexpr (kThreshold) keep = keep & (v > th[i]);
    const float a = keep ? v : 0.f;
    f[i] = a;
    if constexpr (kStats && kOn) {  // off, a = 0 adds nothing (cnt and sum are never −0)
      cnt[i] += a > 0.f ? 1.f : 0.f;
      sum[i] += a;
    }
  }
}

// pre[i] += b[i], f[i] = max(pre[i], 0) (0 everywhere when !on), and with kStats cnt/sum += the
// firings and activations, over one contiguous span of a row.
// With th (JumpReLU), f[i] = max(pre[i], 0)·1[pre[i] > th[i]] instead.
template <bool kStats>
void relu_span(float* f, float* pre, const float* b, int64_t n, bool on, float* cnt, float* sum, const float* th) {
  if (!on) relu_span_loop<kStats, false, false>(f, pre, b, n, cnt, sum, th);
  else if (th) relu_span_loop<kStats, true, true>(f, pre, b, n, cnt, sum, th);
  else relu_span_loop<kStats, true, false>(f, pre, b, n, cnt, sum, th);
}

// ReLU epilogue over rows [r0, r1) and one column group: plain columns [c0, c1) when P = 0, else
// parents [c0, c1) and their children (columns P + c0·m .. P + c1·m), so every gate reads a parent
// this call has just written. With kStats, cnt/sum (indexed by column) accumulate in row order.
template <bool kStats>
void relu_rows(float* f, float* pre, const float* b, int64_t F, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
               int64_t P, int64_t m, bool children_on, float* cnt, float* sum, const float* th) {
  // Without statistics cnt/sum are null and never offset (UBSan: offset applied to a null pointer).
  auto at = [](float* p, int64_t i) { return kStats ? p + i : nullptr; };
  for (int64_t n = r0; n < r1; ++n) {
    float* fr = f + n * F;
    float* pr = pre + n * F;
    relu_span<kStats>(fr + c0, pr + c0, b + c0, c1 - c0, true, at(cnt, c0), at(sum, c0), th ? th + c0 : nullptr);
    if (P == 0) continue;
    for (int64_t p = c0; p < c1; ++p) {
      const int64_t j = P + p * m;
      relu_span<kStats>(fr + j, pr + j, b + j, m, children_on && fr[p] > 0.f, at(cnt, j), at(sum, j), nullptr);
    }
  }
}

// Σ_c part[c·stride + i] over c = 0 .. chunks-1 in order: how per-chunk partials become one column's
// total, the same order as the CUDA combine kernel.
float sum_chunks(const float* part, int64_t stride, int64_t chunks, int64_t i) {
  float s = 0.f;
  for (int64_t c = 0; c < chunks; ++c) s += part[c * stride + i];
  return s;
}

// g = (g + pen) where the latent is active, else 0: ReLU's backward with the L1 penalty's gradient.
void relu_backward_row(float* __restrict g, const float* __restrict f, const float* __restrict pen, int64_t F) {
#pragma omp simd
  for (int64_t i = 0; i < F; ++i) {
    const float v = g[i] + pen[i];
    g[i] = f[i] > 0.f ? v : 0.f;
  }
}

}  // namespace

void encode_epilogue(TensorView f, TensorView pre, TensorView b, const EncoderActivation& act, TensorView fires,
                     TensorView mass) {
  const int64_t F = b.numel(), N = pre.numel() / F, P = act.n_parents, m = act.children_per_parent;
  SAELAB_ASSERT(f.numel() == pre.numel() && pre.numel() == N * F, "encode_epilogue shapes");
  SAELAB_ASSERT(act.k >= 0 && (P == 0 || (act.k == 0 && P + P * m == F)),
                "encode_epilogue: k {} with {} parents x {} children for F = {}", act.k, P, m, F);
  SAELAB_ASSERT(!act.threshold.data || (act.k == 0 && P == 0 && act.threshold.numel() == F),
                "encode_epilogue: a JumpReLU threshold [F] goes without top-k or hierarchy");
  const float* th = act.threshold.data ? act.threshold.f32() : nullptr;
  const bool stats = fires.data != nullptr;
  SAELAB_ASSERT(!stats || (fires.numel() == F && mass.numel() == F), "encode_epilogue: stats [F]");
  const float* bp = b.f32();
  float* pp = pre.f32();
  float* fp = f.f32();
  // Statistics per chunk of rows: part [chunks][2][F] (fires, then mass); one chunk writes the
  // outputs directly. Each (chunk, column) is written by one task only. Without statistics nothing
  // is counted or allocated.
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  std::vector<float> part(stats && chunks > 1 ? static_cast<size_t>(chunks * 2 * F) : 0, 0.f);
  auto cnt_of = [&](int64_t c) -> float* {
    if (!stats) return nullptr;
    return chunks == 1 ? fires.f32() : part.data() + c * 2 * F;
  };
  auto sum_of = [&](int64_t c) -> float* {
    if (!stats) return nullptr;
    return chunks == 1 ? mass.f32() : part.data() + c * 2 * F + F;
  };
  if (stats && chunks == 1) {
    std::fill(fires.f32(), fires.f32() + F, 0.f);
    std::fill(mass.f32(), mass.f32() + F, 0.f);
  }

  if (act.k > 0) {
#pragma omp parallel
    {
      std::vector<TopkEntry> heap;
      heap.reserve(static_cast<size_t>(act.k) + 1);
#pragma omp for schedule(static)
      for (int64_t c = 0; c < chunks; ++c) {
        float* cnt = cnt_of(c);
        float* sum = sum_of(c);
        for (int64_t n = c * kEpilogueRows; n < std::min(N, (c + 1) * kEpilogueRows); ++n) {
          topk_row(pp + n * F, fp + n * F, bp, nullptr, F, act.k, heap);
          if (!stats) continue;
          for (const TopkEntry& e : heap) {  // a column gets at most one entry a row: row order holds
            const float a = fp[n * F - e.second];
            cnt[-e.second] += a > 0.f ? 1.f : 0.f;
            sum[-e.second] += a;
          }
        }
      }
    }
  } else {
    // Column groups: kColBlock plain columns, or whole families of about kColBlock columns.
    const int64_t group = P == 0 ? kColBlock : std::max<int64_t>(1, kColBlock / (1 + m));
    const int64_t cols = P == 0 ? F : P;
    const int64_t groups = (cols + group - 1) / group;
    const auto rows = stats ? relu_rows<true> : relu_rows<false>;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t g = 0; g < groups; ++g)
        rows(fp, pp, bp, F, c * kEpilogueRows, std::min(N, (c + 1) * kEpilogueRows), g * group,
             std::min(cols, (g + 1) * group), P, m, act.children_on, cnt_of(c), sum_of(c), th);
  }

  if (stats && chunks > 1) {
    float* cp = fires.f32();
    float* mp = mass.f32();
    for_column_blocks(F, [&](int64_t c0, int64_t c1) {
      for (int64_t i = c0; i < c1; ++i) {
        cp[i] = sum_chunks(part.data(), 2 * F, chunks, i);
        mp[i] = sum_chunks(part.data() + F, 2 * F, chunks, i);
      }
    });
  }
}

void topk_rows(TensorView f, TensorView pre, TensorView b, int k, TensorView allowed) {
  const int64_t F = pre.dim(-1), N = pre.numel() / F;
  SAELAB_ASSERT(f.numel() == pre.numel() && k >= 0, "topk_rows shapes");
  const bool biased = allowed.data == nullptr;
  SAELAB_ASSERT(!biased || b.numel() == F, "topk_rows needs b[F] when no mask is given");
  const float* bp = biased ? b.f32() : nullptr;
  const float* ap = biased ? nullptr : allowed.f32();
  float* pp = pre.f32();
  float* fp = f.f32();
#pragma omp parallel
  {
    std::vector<TopkEntry> heap;
    heap.reserve(static_cast<size_t>(k) + 1);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) topk_row(pp + n * F, fp + n * F, bp, ap, F, k, heap);
  }
}

// Sums over fixed chunks of kEpilogueRows rows, the chunks added in order (as the epilogue's
// statistics, and as on CUDA): parallel over chunks × column blocks, so any F keeps every core busy.
void col_sum(TensorView out, TensorView x, float alpha, float beta) {
  const int64_t F = out.numel(), N = x.numel() / F;
  SAELAB_ASSERT(x.numel() == N * F, "col_sum shapes {} -> {}", x.shape_str(), out.shape_str());
  const float* xp = x.f32();
  float* op = out.f32();
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows, blocks = (F + kColBlock - 1) / kColBlock;
  std::vector<float> part(static_cast<size_t>(chunks * F));  // [chunks, F]
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kColBlock, c1 = std::min(F, c0 + kColBlock);
      float* acc = part.data() + c * F;
      std::fill(acc + c0, acc + c1, 0.f);
      for (int64_t n = c * kEpilogueRows; n < std::min(N, (c + 1) * kEpilogueRows); ++n) {
        const float* row = xp + n * F;
#pragma omp simd
        for (int64_t i = c0; i < c1; ++i) acc[i] += row[i];
      }
    }
  for_column_blocks(F, [&](int64_t c0, int64_t c1) {
    for (int64_t i = c0; i < c1; ++i) {
      const float s = sum_chunks(part.data(), F, chunks, i);
      op[i] = alpha * s + (beta == 0.f ? 0.f : beta * op[i]);
    }
  });
}

void row_norms(TensorView out, TensorView W) {
  const int64_t F = out.numel(), d = W.numel() / F;
  SAELAB_ASSERT(W.numel() == F * d, "row_norms shapes");
  const float* wp = W.f32();
  float* op = out.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < F; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(wp[i * d + j]) * wp[i * d + j];
    op[i] = static_cast<float>(std::sqrt(ss));
  }
}

void scale_rows(TensorView W, TensorView s) {
  const int64_t F = s.numel(), d = W.numel() / F;
  SAELAB_ASSERT(W.numel() == F * d, "scale_rows shapes");
  float* wp = W.f32();
  const float* sp = s.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < F; ++i)
    for (int64_t j = 0; j < d; ++j) wp[i * d + j] *= sp[i];
}

void project_out_rows(TensorView g, TensorView W) {
  SAELAB_ASSERT(g.numel() == W.numel() && W.ndim == 2, "project_out_rows shapes");
  const int64_t F = W.dim(0), d = W.dim(1);
  float* gp = g.f32();
  const float* wp = W.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < F; ++i) {
    float dot = 0.f;
    for (int64_t j = 0; j < d; ++j) dot += gp[i * d + j] * wp[i * d + j];
    for (int64_t j = 0; j < d; ++j) gp[i * d + j] -= dot * wp[i * d + j];
  }
}

void relu_backward(TensorView g, TensorView f, TensorView pen) {
  const int64_t F = pen.numel(), N = g.numel() / F;
  SAELAB_ASSERT(f.numel() == g.numel() && g.numel() == N * F, "relu_backward shapes");
  float* gp = g.f32();
  const float* fp = f.f32();
  const float* pp = pen.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) relu_backward_row(gp + n * F, fp + n * F, pp, F);
}

void scaled_diff(TensorView y, TensorView a, TensorView b, float alpha) {
  SAELAB_ASSERT(y.numel() == a.numel() && a.numel() == b.numel(), "scaled_diff shapes");
  const int64_t n = y.numel();
  float* yp = y.f32();
  const float* ap = a.f32();
  const float* bp = b.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) yp[i] = alpha * (ap[i] - bp[i]);
}

double sum_squares(TensorView x) {
  const float* xp = x.f32();
  return chunked_sum(x.numel(), [xp](int64_t i) { return static_cast<double>(xp[i]) * xp[i]; });
}

void axpy(TensorView y, TensorView x, float alpha) {
  SAELAB_ASSERT(y.numel() == x.numel(), "axpy shapes");
  const int64_t n = y.numel();
  float* yp = y.f32();
  const float* xp = x.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) yp[i] += alpha * xp[i];
}

void scale(TensorView y, float alpha) {
  const int64_t n = y.numel();
  float* yp = y.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) yp[i] *= alpha;
}

void hierarchy_backward(TensorView df, TensorView f, TensorView pre, TensorView pen, int n_parents,
                        int children_per_parent, float width) {
  const int64_t F = pen.numel(), N = f.numel() / F, P = n_parents, m = children_per_parent;
  SAELAB_ASSERT(P + P * m == F && df.numel() == f.numel() && pre.numel() == f.numel(), "hierarchy_backward shapes");
  float* dp = df.f32();
  const float* fp = f.f32();
  const float* pp = pre.f32();
  const float* pn = pen.f32();
#pragma omp parallel
  {
    std::vector<float> G(static_cast<size_t>(P));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      float* d = dp + n * F;
      const float* fr = fp + n * F;
      const float* pr = pp + n * F;
      if (width > 0.f) {
        for (int64_t p = 0; p < P; ++p) {
          float g = 0.f;
          for (int64_t c = 0; c < m; ++c) {  // branch-free: an inactive child adds (d + pen)·0
            const int64_t j = P + p * m + c;
            const float a = pr[j] > 0.f ? pr[j] : 0.f;
            g += (d[j] + pn[j]) * a;
          }
          G[p] = g;
        }
      }
      relu_backward_row(d, fr, pn, F);
      if (width > 0.f)
#pragma omp simd
        for (int64_t p = 0; p < P; ++p) {
          const float with_gate = d[p] + G[p] / width;
          d[p] = std::abs(pr[p]) < 0.5f * width ? with_gate : d[p];
        }
    }
  }
}

void smooth_l0_grad(TensorView out, TensorView df, TensorView f, TensorView a, float c, TensorView sech_f) {
  const int64_t F = a.numel(), N = f.numel() / F;
  SAELAB_ASSERT(out.numel() == f.numel() && df.numel() == f.numel() && f.numel() == N * F && sech_f.numel() == F,
                "smooth_l0_grad shapes");
  float* op = out.f32();
  float* sp = sech_f.f32();
  const float* dp = df.f32();
  const float* fp = f.f32();
  const float* ap = a.f32();
  // Per-thread column sums added in thread order: the same result on every run (resumed runs are
  // bit-identical).
  std::vector<std::vector<double>> partial(static_cast<size_t>(omp_get_max_threads()));
#pragma omp parallel
  {
    std::vector<double>& mine = partial[static_cast<size_t>(omp_get_thread_num())];
    mine.assign(static_cast<size_t>(F), 0.0);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < F; ++i) {
        const int64_t k = n * F + i;
        if (fp[k] > 0.f) {
          const float th = std::tanh(ap[i] * fp[k]);
          const float sech2 = 1.0f - th * th;
          op[k] = dp[k] + c * ap[i] * sech2;
          mine[i] += static_cast<double>(sech2) * fp[k];
        } else {
          op[k] = 0.f;
        }
      }
  }
  for (int64_t i = 0; i < F; ++i) {
    double t = 0.0;
    for (const auto& part : partial)
      if (!part.empty()) t += part[i];
    sp[i] = static_cast<float>(t);
  }
}

double sum_tanh(TensorView f, TensorView a) {
  const int64_t F = a.numel();
  SAELAB_ASSERT(f.numel() % F == 0, "sum_tanh shapes");
  const float* fp = f.f32();
  const float* ap = a.f32();
  return chunked_sum(f.numel(), [fp, ap, F](int64_t k) {
    return fp[k] != 0.f ? std::tanh(static_cast<double>(ap[k % F]) * fp[k]) : 0.0;
  });
}

void col_dot(TensorView out, TensorView A, TensorView B) {
  const int64_t F = out.numel(), R = A.numel() / F;
  SAELAB_ASSERT(A.numel() == B.numel() && A.numel() == R * F, "col_dot shapes");
  const float* ap = A.f32();
  const float* bp = B.f32();
  float* op = out.f32();
  for_column_blocks(F, [&](int64_t c0, int64_t c1) {
    double acc[kColBlock] = {};
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = c0; i < c1; ++i) acc[i - c0] += static_cast<double>(ap[r * F + i]) * bp[r * F + i];
    for (int64_t i = c0; i < c1; ++i) op[i] = static_cast<float>(acc[i - c0]);
  });
}

void row_dot(TensorView out, TensorView A, TensorView B) {
  const int64_t F = out.numel(), d = A.numel() / F;
  SAELAB_ASSERT(A.numel() == B.numel() && A.numel() == F * d, "row_dot shapes");
  const float* ap = A.f32();
  const float* bp = B.f32();
  float* op = out.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < F; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += static_cast<double>(ap[i * d + j]) * bp[i * d + j];
    op[i] = static_cast<float>(s);
  }
}

// Δp = −(lr / bc1) m / (sqrt(v / bc2) + eps), m = β1 m' + (1−β1) g, v = β2 v' + (1−β2) g²:
// ∂Δp/∂α = −(lr / bc1) [ (1−β1) g_α / D − m (1−β2) g g_α / (bc2 · sqrt(v / bc2) · D²) ],
// D = sqrt(v / bc2) + eps.
void adam_tangent(TensorView u, TensorView g, TensorView g_alpha, TensorView m, TensorView v, float lr, float beta1,
                  float beta2, float eps, int64_t t) {
  SAELAB_ASSERT(u.numel() == g.numel() && g.numel() == g_alpha.numel() && g.numel() == m.numel() &&
                    m.numel() == v.numel() && t >= 1,
                "adam_tangent shapes");
  const int64_t n = u.numel();
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
  const double step = lr / bc1;
  float* up = u.f32();
  const float* gp = g.f32();
  const float* ga = g_alpha.f32();
  const float* mp = m.f32();
  const float* vp = v.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::sqrt(static_cast<double>(vp[i]) / bc2);
    const double D = s + eps;
    double dv_term = 0.0;
    if (s > 0) dv_term = static_cast<double>(mp[i]) * (1.0 - beta2) * gp[i] * ga[i] / (bc2 * s * D * D);
    up[i] = static_cast<float>(-step * ((1.0 - beta1) * ga[i] / D - dv_term));
  }
}

void adam_forward_tangent(TensorView z, TensorView zm, TensorView zv, TensorView g, TensorView dg, TensorView m,
                          TensorView v, float lr, float beta1, float beta2, float eps, int64_t t) {
  const int64_t n = z.numel();
  SAELAB_ASSERT(zm.numel() == n && zv.numel() == n && g.numel() == n && dg.numel() == n && m.numel() == n &&
                    v.numel() == n && t >= 1,
                "adam_forward_tangent shapes");
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(t));
  const double step = lr / bc1;
  float* zp = z.f32();
  float* zmp = zm.f32();
  float* zvp = zv.f32();
  const float* gp = g.f32();
  const float* dgp = dg.f32();
  const float* mp = m.f32();
  const float* vp = v.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double zmi = beta1 * static_cast<double>(zmp[i]) + (1.0 - beta1) * dgp[i];
    const double zvi = beta2 * static_cast<double>(zvp[i]) + 2.0 * (1.0 - beta2) * gp[i] * dgp[i];
    const double s = std::sqrt(static_cast<double>(vp[i]) / bc2);
    const double D = s + eps;
    const double dv_term = s > 0 ? static_cast<double>(mp[i]) * zvi / (2.0 * bc2 * s * D * D) : 0.0;
    zmp[i] = static_cast<float>(zmi);
    zvp[i] = static_cast<float>(zvi);
    zp[i] = static_cast<float>(zp[i] - step * (zmi / D - dv_term));
  }
}

void adam(TensorView p, TensorView g, TensorView m, TensorView v, float lr, float beta1, float beta2, float eps,
          int64_t t) {
  SAELAB_ASSERT(p.numel() == g.numel() && g.numel() == m.numel() && m.numel() == v.numel() && t >= 1, "adam shapes");
  const int64_t n = p.numel();
  const float bc1 = 1.0f - static_cast<float>(std::pow(beta1, static_cast<double>(t)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(beta2, static_cast<double>(t)));
  const float step = lr / bc1, inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
  float* pp = p.f32();
  const float* gp = g.f32();
  float* mp = m.f32();
  float* vp = v.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    mp[i] = beta1 * mp[i] + (1.f - beta1) * gp[i];
    vp[i] = beta2 * vp[i] + (1.f - beta2) * gp[i] * gp[i];
    pp[i] -= step * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace saelab::cpu
