// CPU sparse products: the decoder's three when each row of f [N, F] has few non-zeros, at
// N·L0·d multiply-adds each instead of the dense GEMM's N·F·d, and the encoder's backward over the
// non-zeros of ∂L/∂pre. Each op scans its dense [N, F] input once into lists (cpu_sparse_lists.hpp).
// The three that sum rows (decode, ∇W_dec, ∇W_enc) repack the matrix they gather rows of into
// 16-float panels: one panel of every row (F·64 B or N·64 B) stays in L2 while all lists are
// walked, where a 2 KB row per non-zero came from L3 before. The inner loops are SIMD clones
// (AVX-512 / AVX2 / baseline, the same bits). Every output sums its terms in a fixed order (rows in
// order, latents in order, a row's 16-float chunks in order), so results do not depend on the
// thread count; decode, ∇W_dec and ∇W_enc sum exactly as the per-row loops they replace did.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../sparse_decode_shape.hpp"
#include "cpu_backend.hpp"
#include "cpu_sparse_lists.hpp"

namespace saelab::cpu {

namespace {
// Lists per task: enough tasks (× panels) to share out, few enough that each keeps its panel.
constexpr int64_t kListBlock = 256;
// Latents per tile of ∇W_enc's transposed store: [kPanel, kTile] floats written as kPanel runs.
constexpr int64_t kTile = 64;

// Σ_e alpha·val[e] · panel row idx[e] over list r, starting from acc.
inline PanelVec gather_list(ListView L, int64_t r, const float* panel, float alpha, PanelVec acc) {
  for (int64_t e = L.start[r]; e < L.start[r + 1]; ++e)
    acc += (alpha * L.val[e]) * load_panel(panel + static_cast<int64_t>(L.idx[e]) * kPanel);
  return acc;
}

// Columns [0, w) of a panel-wide vector from / to memory (w < kPanel at the last panel).
inline PanelVec load_cols(const float* src, int64_t w) {
  PanelVec v = {};
  __builtin_memcpy(&v, src, static_cast<size_t>(w) * sizeof(float));
  return v;
}
inline void store_cols(float* dst, PanelVec v, int64_t w) {
  __builtin_memcpy(dst, &v, static_cast<size_t>(w) * sizeof(float));
}

// Σ of the 16 lanes in a fixed tree (halves added, then quarters, ...), the same on every ISA.
inline float lane_sum(PanelVec v) {
  typedef float Half __attribute__((vector_size(8 * sizeof(float))));
  typedef float Quarter __attribute__((vector_size(4 * sizeof(float))));
  const Half h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const Quarter q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// out[r·ld + (0, w)] = beta·out[..] + Σ_e alpha·val[e]·panel[idx[e]] for lists r in [r0, r1)
// (beta = 0 does not read out).
SAELAB_SIMD_CLONES
void gather_rows(float* out, int64_t ld, ListView L, int64_t r0, int64_t r1, const float* panel, float alpha,
                 float beta, int64_t w) {
  for (int64_t r = r0; r < r1; ++r) {
    float* o = out + r * ld;
    const PanelVec init = beta == 0.f ? PanelVec{} : beta * load_cols(o, w);
    store_cols(o, gather_list(L, r, panel, alpha, init), w);
  }
}

// dot[e] = x[r, :] · W[idx[e], :] for the entries e of lists r in [r0, r1), x [., d] and W [., d]
// row-major: 16 lanes accumulate over the row's 16-float chunks in order, then one lane sum.
SAELAB_SIMD_CLONES
void dot_rows_full(float* dot, const float* x, ListView L, int64_t r0, int64_t r1, const float* W, int64_t d) {
  const int64_t full = d / kPanel * kPanel;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * d;
    for (int64_t e = L.start[r]; e < L.start[r + 1]; ++e) {
      const float* wr = W + static_cast<int64_t>(L.idx[e]) * d;
      PanelVec acc = {};
      for (int64_t j = 0; j < full; j += kPanel) acc += load_panel(xr + j) * load_panel(wr + j);
      if (full < d) acc += load_cols(xr + full, d - full) * load_cols(wr + full, d - full);
      dot[e] = lane_sum(acc);
    }
  }
}

// Each op's lists and panels, reused across calls (thread-local: ops may run on several host
// threads). Ops take a reference before their parallel loops: a thread_local named inside one
// would be the worker thread's own, empty, instance.
struct Scratch {
  SparseLists rows, cols;
  Panels panels;
  std::vector<float> dot;
};
Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

// fn(p, r0, r1) over panels × blocks of kListBlock lists, panel-major: a thread's tasks share
// panels, so its panel stays in L2.
template <typename Fn>
void for_panel_blocks(int64_t panels, int64_t R, Fn fn) {
  const int64_t blocks = (R + kListBlock - 1) / kListBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t b = 0; b < blocks; ++b) fn(p, b * kListBlock, std::min(R, (b + 1) * kListBlock));
}

// What ∇W_dec and ∇W_enc gather from: sc.cols, the per-latent lists of a's non-zeros (a [N, F]),
// and sc.panels, x [N, d] in panels.
void latent_lists_and_panels(Scratch& sc, const float* a, const float* x, const SparseDecodeShape& s) {
  rows_of(sc.rows, a, s.N, s.F);
  cols_of(sc.cols, sc.rows, s.F);
  pack_panels(sc.panels, x, s.N, s.d);
}
}  // namespace

// out [N, d] = f W: list n of f's rows gathers rows of W [F, d].
void sparse_decode(TensorView out, TensorView f, TensorView W) {
  const SparseDecodeShape s = sparse_decode_shape(f, W, out, "sparse_decode");
  Scratch& sc = scratch();
  SparseLists& rows = sc.rows;
  Panels& Wp = sc.panels;
  rows_of(rows, f.f32(), s.N, s.F);
  pack_panels(Wp, W.f32(), s.F, s.d);
  float* op = out.f32();
  for_panel_blocks(Wp.count, s.N, [&](int64_t p, int64_t n0, int64_t n1) {
    gather_rows(op + p * kPanel, s.d, view_of(rows), n0, n1, Wp.panel(p), 1.f, 0.f,
                std::min(kPanel, s.d - p * kPanel));
  });
}

// gW [F, d] = alpha fᵀ dx + beta gW: list i of f's columns gathers rows of dx [N, d], after beta·gW.
void sparse_decode_grad_w(TensorView gW, TensorView f, TensorView dx, float alpha, float beta) {
  const SparseDecodeShape s = sparse_decode_shape(f, gW, dx, "sparse_decode_grad_w");
  Scratch& sc = scratch();
  latent_lists_and_panels(sc, f.f32(), dx.f32(), s);
  SparseLists& cols = sc.cols;
  Panels& Xp = sc.panels;
  float* gp = gW.f32();
  for_panel_blocks(Xp.count, s.F, [&](int64_t p, int64_t i0, int64_t i1) {
    gather_rows(gp + p * kPanel, s.d, view_of(cols), i0, i1, Xp.panel(p), alpha, beta,
                std::min(kPanel, s.d - p * kPanel));
  });
}

// df [N, F] = (dx Wᵀ) at the non-zeros of f, 0 elsewhere. Each dot reads a whole row of W, not
// panels: a panel per entry would need a 16-lane sum per panel (measured 2× slower). A block's dots
// gather in `dot` (aligned with the lists) and are scattered into its zeroed rows of df at the end.
void sparse_decode_grad_f(TensorView df, TensorView f, TensorView dx, TensorView W) {
  const SparseDecodeShape s = sparse_decode_shape(f, W, dx, "sparse_decode_grad_f");
  SAELAB_ASSERT(df.numel() == s.N * s.F, "sparse_decode_grad_f: df [N, F]");
  Scratch& sc = scratch();
  SparseLists& rows = sc.rows;
  std::vector<float>& dot = sc.dot;
  rows_of(rows, f.f32(), s.N, s.F);
  dot.resize(rows.idx.size());
  const float* xp = dx.f32();
  const float* wp = W.f32();
  float* gp = df.f32();
  const int64_t blocks = (s.N + kListBlock - 1) / kListBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t n0 = b * kListBlock, n1 = std::min(s.N, n0 + kListBlock);
    dot_rows_full(dot.data(), xp, view_of(rows), n0, n1, wp, s.d);
    for (int64_t n = n0; n < n1; ++n) {
      std::fill(gp + n * s.F, gp + (n + 1) * s.F, 0.f);
      for (int64_t e = rows.start[n]; e < rows.start[n + 1]; ++e) gp[n * s.F + rows.idx[e]] = dot[e];
    }
  }
}

// ∇W_enc [d, F] = xᵀ dpre, ∇b_enc = Σ_n dpre: list i of dpre's columns gathers rows of x [N, d].
// ∇W_enc is column-strided per latent, so a task's kTile latents of one panel go through a
// [kPanel, kTile] tile and leave as kPanel contiguous runs.
void sparse_encode_grad_w(TensorView gW, TensorView gb, TensorView dpre, TensorView x) {
  const SparseDecodeShape s = sparse_encode_shape(gW, gb, dpre, x);
  Scratch& sc = scratch();
  latent_lists_and_panels(sc, dpre.f32(), x.f32(), s);
  SparseLists& cols = sc.cols;
  Panels& Xp = sc.panels;
  float* gp = gW.f32();
  for_panel_blocks(Xp.count, s.F, [&](int64_t p, int64_t i0, int64_t i1) {
    const int64_t w = std::min(kPanel, s.d - p * kPanel);
    for (int64_t t0 = i0; t0 < i1; t0 += kTile) {
      const int64_t nt = std::min(kTile, i1 - t0);
      float tile[kTile * kPanel];  // [nt, kPanel]: latent t0 + t's panel at t·kPanel
      ListView from_t0 = view_of(cols);  // lists t0 .. t0 + nt as 0 .. nt
      from_t0.start += t0;
      gather_rows(tile, kPanel, from_t0, 0, nt, Xp.panel(p), 1.f, 0.f, kPanel);
      for (int64_t j = 0; j < w; ++j)
        for (int64_t t = 0; t < nt; ++t) gp[(p * kPanel + j) * s.F + t0 + t] = tile[t * kPanel + j];
    }
  });
  if (!gb.data) return;
  float* bp = gb.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < s.F; ++i) {
    float sum = 0.f;
    for (int64_t e = cols.start[i]; e < cols.start[i + 1]; ++e) sum += cols.val[e];
    bp[i] = sum;
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
