// The CPU backend: the oracle every other backend is compared to. CBLAS (OpenBLAS) for GEMMs,
// OpenMP for the rest; plain loops, no intrinsics.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cpu_backend.hpp"
#include "cpu_math.hpp"
#include "saelab/backend.hpp"

namespace saelab {
namespace {

void check_f32(const TensorView& v, const char* op, const char* arg) {
  SAELAB_ASSERT(v.dtype == DType::F32 && v.device == Device::CPU && v.is_contiguous(),
                "{}: {} must be a contiguous f32 CPU tensor (have {} on {})", op, arg, dtype_name(v.dtype),
                device_name(v.device));
}

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  const char* name() const override { return "cpu"; }
  // bench_train's crossover lines (standard SAE, N = 4096, L0 held by lr = 0, 2 idle cores, sgemm
  // 180–200 GFLOP/s at the step's shape in the same run): at d = 512, F = 4096 the dense step runs
  // 7.6–8.4k tokens/s and the sparse one 16.4k at L0/F = 5%, 11.5k at 10%, 7.9k at 15%, 6.1k at
  // 20%; at d = 576, F = 9216 dense 3.46k, sparse 5.15k at 5%, 3.98k at 10%, 2.41k at 15%. The two
  // meet between 10% and 15%; 10% keeps the sparse step faster at both shapes.
  double sparse_step_max_l0_fraction() const override { return 0.10; }

  void* alloc(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    SAELAB_ASSERT(p != nullptr, "out of host memory allocating {} bytes", bytes);
    std::memset(p, 0, rounded);
    return p;
  }
  void free(void* p) override { std::free(p); }
  // An empty tensor may come with a null host pointer (an empty vector's data()): nothing to copy.
  void upload(TensorView dst, const void* src) override {
    if (dst.nbytes()) std::memcpy(dst.data, src, dst.nbytes());
  }
  void download(void* dst, TensorView src) override {
    if (src.nbytes()) std::memcpy(dst, src.data, src.nbytes());
  }
  void copy(TensorView dst, TensorView src) override {
    SAELAB_ASSERT(dst.nbytes() == src.nbytes() && dst.is_contiguous() && src.is_contiguous(), "copy {} <- {}",
                  dst.shape_str(), src.shape_str());
    std::memcpy(dst.data, src.data, src.nbytes());
  }

  void gemm(TensorView c, TensorView a, bool trans_a, TensorView b, bool trans_b, float alpha,
            float beta) override {
    check_f32(c, "gemm", "c");
    check_f32(a, "gemm", "a");
    check_f32(b, "gemm", "b");
    SAELAB_ASSERT(a.ndim == 2 && b.ndim == 2 && c.ndim == 2, "gemm takes 2-d views");
    const int64_t M = trans_a ? a.shape[1] : a.shape[0];
    const int64_t K = trans_a ? a.shape[0] : a.shape[1];
    const int64_t Kb = trans_b ? b.shape[1] : b.shape[0];
    const int64_t N = trans_b ? b.shape[0] : b.shape[1];
    SAELAB_ASSERT(K == Kb && c.shape[0] == M && c.shape[1] == N, "gemm shapes: c {} a {}{} b {}{}", c.shape_str(),
                  a.shape_str(), trans_a ? "ᵀ" : "", b.shape_str(), trans_b ? "ᵀ" : "");
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                (int)N, (int)K, alpha, a.f32(), (int)a.shape[1], b.f32(), (int)b.shape[1], beta, c.f32(),
                (int)c.shape[1]);
  }

  void rmsnorm(TensorView y, TensorView x, TensorView w, float eps) override {
    check_f32(y, "rmsnorm", "y");
    check_f32(x, "rmsnorm", "x");
    check_f32(w, "rmsnorm", "w");
    const int64_t N = x.dim(0), d = x.dim(-1);
    SAELAB_ASSERT(y.numel() == x.numel() && w.numel() == d, "rmsnorm shapes");
    const float* xp = x.f32();
    const float* wp = w.f32();
    float* yp = y.f32();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = xp + n * d;
      float ss = 0.f;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) yp[n * d + i] = xr[i] * inv * wp[i];
    }
  }

  void layernorm(TensorView y, TensorView x, TensorView w, TensorView b, float eps) override {
    check_f32(y, "layernorm", "y");
    check_f32(x, "layernorm", "x");
    check_f32(w, "layernorm", "w");
    check_f32(b, "layernorm", "b");
    const int64_t N = x.dim(0), d = x.dim(-1);
    SAELAB_ASSERT(y.numel() == x.numel() && w.numel() == d && b.numel() == d, "layernorm shapes");
    const float* xp = x.f32();
    const float* wp = w.f32();
    const float* bp = b.f32();
    float* yp = y.f32();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = xp + n * d;
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < d; ++i) sum += xr[i];
      const float mean = sum / static_cast<float>(d);
      float ss = 0.f;  // two passes: E[(x-mean)²] keeps its precision when |mean| >> std
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < d; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) yp[n * d + i] = (xr[i] - mean) * inv * wp[i] + bp[i];
    }
  }

  void rope(TensorView x, int T, int H, TensorView inv_freq, RopeStyle style) override {
    check_f32(x, "rope", "x");
    check_f32(inv_freq, "rope", "inv_freq");
    const int64_t rows = x.dim(0), width = x.dim(-1);
    const int half = static_cast<int>(inv_freq.numel());
    SAELAB_ASSERT(width % H == 0 && 2 * half <= width / H && rows % T == 0, "rope shapes {} T={} H={} r={}",
                  x.shape_str(), T, H, 2 * half);
    const int hd = static_cast<int>(width / H);
    // cos/sin of pos · inv_freq[i] (the angle in f32 as transformers forms it), once per call: [T, r/2]
    std::vector<float> cos_t(static_cast<size_t>(T) * half), sin_t(cos_t.size());
    const float* f = inv_freq.f32();
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < half; ++i) {
        const float ang = static_cast<float>(t) * f[i];
        cos_t[static_cast<size_t>(t) * half + i] = static_cast<float>(std::cos(static_cast<double>(ang)));
        sin_t[static_cast<size_t>(t) * half + i] = static_cast<float>(std::sin(static_cast<double>(ang)));
      }
    float* xp = x.f32();
    const int step = style == RopeStyle::Interleaved ? 2 : 1;     // stride between pair starts
    const int partner = style == RopeStyle::Interleaved ? 1 : half;  // offset of the second element
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* c = cos_t.data() + (r % T) * half;
      const float* sn = sin_t.data() + (r % T) * half;
      for (int h = 0; h < H; ++h) {
        float* v = xp + r * width + h * hd;
        for (int i = 0; i < half; ++i) {
          const float a = v[i * step], b = v[i * step + partner];
          v[i * step] = a * c[i] - b * sn[i];
          v[i * step + partner] = a * sn[i] + b * c[i];
        }
      }
    }
  }

  void causal_attention(TensorView out, TensorView q, TensorView k, TensorView v, int T, int H, int Hkv,
                        const AttentionOptions& opt) override {
    check_f32(out, "attention", "out");
    check_f32(q, "attention", "q");
    check_f32(k, "attention", "k");
    check_f32(v, "attention", "v");
    cpu::causal_attention(out, q, k, v, T, H, Hkv, opt);
  }

  void activation(TensorView out, TensorView x, TensorView up, Activation act) override {
    check_f32(out, "activation", "out");
    check_f32(x, "activation", "x");
    const bool gated = up.data != nullptr;
    if (gated) check_f32(up, "activation", "up");
    SAELAB_ASSERT(out.numel() == x.numel() && (!gated || up.numel() == x.numel()), "activation shapes");
    const int64_t n = out.numel();
    const float* g = x.f32();
    const float* u = gated ? up.f32() : nullptr;
    float* o = out.f32();
    switch (act) {
      case Activation::Silu:
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + cpu::exp_simd(-g[i])) * (u ? u[i] : 1.0f);
        break;
      case Activation::GeluTanh:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) o[i] = cpu::gelu_tanh(g[i]) * (u ? u[i] : 1.0f);
        break;
      case Activation::GeluErf:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) o[i] = 0.5f * g[i] * (1.0f + std::erf(g[i] * 0.70710678118654752f)) * (u ? u[i] : 1.0f);
        break;
    }
  }

  void softcap(TensorView x, float cap) override {
    check_f32(x, "softcap", "x");
    SAELAB_ASSERT(cap > 0, "softcap {}", cap);
    const int64_t n = x.numel();
    float* p = x.f32();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = cap * std::tanh(p[i] / cap);
  }

  void add_inplace(TensorView y, TensorView x) override {
    check_f32(y, "add_inplace", "y");
    check_f32(x, "add_inplace", "x");
    SAELAB_ASSERT(y.numel() == x.numel(), "add_inplace shapes {} {}", y.shape_str(), x.shape_str());
    const int64_t n = y.numel();
    float* yp = y.f32();
    const float* xp = x.f32();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) yp[i] += xp[i];
  }

  void embedding(TensorView out, TensorView table, TensorView ids) override {
    check_f32(out, "embedding", "out");
    check_f32(table, "embedding", "table");
    const int64_t N = ids.numel(), d = table.dim(1), V = table.dim(0);
    SAELAB_ASSERT(out.numel() == N * d, "embedding shapes");
    const int32_t* idp = ids.i32();
    for (int64_t n = 0; n < N; ++n) {
      SAELAB_ASSERT(idp[n] >= 0 && idp[n] < V, "token id {} outside vocabulary of {}", idp[n], V);
      std::memcpy(out.f32() + n * d, table.f32() + idp[n] * d, d * sizeof(float));
    }
  }

  void cross_entropy(TensorView out, TensorView logits, TensorView targets) override {
    check_f32(out, "cross_entropy", "out");
    check_f32(logits, "cross_entropy", "logits");
    const int64_t N = logits.dim(0), V = logits.dim(1);
    SAELAB_ASSERT(out.numel() == N && targets.numel() == N, "cross_entropy shapes");
    const float* lp = logits.f32();
    const int32_t* tp = targets.i32();
    float* op = out.f32();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* row = lp + n * V;
      float mx = row[0];
      for (int64_t i = 1; i < V; ++i) mx = std::max(mx, row[i]);
      double sum = 0.0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i] - mx));
      SAELAB_ASSERT(tp[n] >= 0 && tp[n] < V, "target {} outside vocabulary of {}", tp[n], V);
      op[n] = static_cast<float>(std::log(sum) + mx - row[tp[n]]);
    }
  }

  // SAE ops: contiguity/dtype checked here, loops in cpu_sae_ops.cpp.
  void sub_row(TensorView y, TensorView x, TensorView b) override {
    check_f32(y, "sub_row", "y"), check_f32(x, "sub_row", "x"), check_f32(b, "sub_row", "b");
    cpu::sub_row(y, x, b);
  }
  void add_row(TensorView y, TensorView b) override {
    check_f32(y, "add_row", "y"), check_f32(b, "add_row", "b");
    cpu::add_row(y, b);
  }
  void encode_epilogue(TensorView f, TensorView pre, TensorView b, const EncoderActivation& act, TensorView fires,
                       TensorView mass) override {
    check_f32(f, "encode_epilogue", "f"), check_f32(pre, "encode_epilogue", "pre"), check_f32(b, "encode_epilogue", "b");
    if (fires.data) check_f32(fires, "encode_epilogue", "fires"), check_f32(mass, "encode_epilogue", "mass");
    cpu::encode_epilogue(f, pre, b, act, fires, mass);
  }
  void topk_rows(TensorView f, TensorView pre, TensorView b, int k, TensorView allowed) override {
    check_f32(f, "topk_rows", "f"), check_f32(pre, "topk_rows", "pre");
    if (b.data) check_f32(b, "topk_rows", "b");
    if (allowed.data) check_f32(allowed, "topk_rows", "allowed");
    cpu::topk_rows(f, pre, b, k, allowed);
  }
  void col_sum(TensorView out, TensorView x, float alpha, float beta) override {
    check_f32(out, "col_sum", "out"), check_f32(x, "col_sum", "x");
    cpu::col_sum(out, x, alpha, beta);
  }
  float batch_topk(TensorView f, TensorView pre, TensorView b, int64_t keep, TensorView fires,
                   TensorView mass) override {
    check_f32(f, "batch_topk", "f"), check_f32(pre, "batch_topk", "pre"), check_f32(b, "batch_topk", "b");
    if (fires.data) check_f32(fires, "batch_topk", "fires"), check_f32(mass, "batch_topk", "mass");
    return cpu::batch_topk(f, pre, b, keep, fires, mass);
  }
  void jumprelu_backward(TensorView dlog_threshold, TensorView df, TensorView f, TensorView pre, TensorView threshold,
                         float bandwidth, float c) override {
    check_f32(dlog_threshold, "jumprelu_backward", "dlog_threshold"), check_f32(df, "jumprelu_backward", "df");
    check_f32(f, "jumprelu_backward", "f"), check_f32(pre, "jumprelu_backward", "pre");
    check_f32(threshold, "jumprelu_backward", "threshold");
    cpu::jumprelu_backward(dlog_threshold, df, f, pre, threshold, bandwidth, c);
  }
  void keep_columns(TensorView y, TensorView x, int64_t c0, int64_t c1) override {
    check_f32(y, "keep_columns", "y"), check_f32(x, "keep_columns", "x");
    cpu::keep_columns(y, x, c0, c1);
  }
  void sparse_decode(TensorView out, TensorView f, TensorView W) override {
    check_f32(out, "sparse_decode", "out"), check_f32(f, "sparse_decode", "f"), check_f32(W, "sparse_decode", "W");
    cpu::sparse_decode(out, f, W);
  }
  void sparse_decode_grad_w(TensorView gW, TensorView f, TensorView dx, float alpha, float beta) override {
    check_f32(gW, "sparse_decode_grad_w", "gW"), check_f32(f, "sparse_decode_grad_w", "f");
    check_f32(dx, "sparse_decode_grad_w", "dx");
    cpu::sparse_decode_grad_w(gW, f, dx, alpha, beta);
  }
  void sparse_decode_grad_f(TensorView df, TensorView f, TensorView dx, TensorView W) override {
    check_f32(df, "sparse_decode_grad_f", "df"), check_f32(f, "sparse_decode_grad_f", "f");
    check_f32(dx, "sparse_decode_grad_f", "dx"), check_f32(W, "sparse_decode_grad_f", "W");
    cpu::sparse_decode_grad_f(df, f, dx, W);
  }
  void sparse_encode_grad_w(TensorView gW, TensorView gb, TensorView dpre, TensorView x) override {
    check_f32(gW, "sparse_encode_grad_w", "gW"), check_f32(dpre, "sparse_encode_grad_w", "dpre");
    check_f32(x, "sparse_encode_grad_w", "x");
    if (gb.data) check_f32(gb, "sparse_encode_grad_w", "gb");
    cpu::sparse_encode_grad_w(gW, gb, dpre, x);
  }
  void hierarchy_grad_mask(TensorView mask, TensorView f, TensorView pre, int n_parents, int children_per_parent,
                           float width) override {
    check_f32(mask, "hierarchy_grad_mask", "mask"), check_f32(f, "hierarchy_grad_mask", "f");
    check_f32(pre, "hierarchy_grad_mask", "pre");
    cpu::hierarchy_grad_mask(mask, f, pre, n_parents, children_per_parent, width);
  }
  void row_norms(TensorView out, TensorView W) override {
    check_f32(out, "row_norms", "out"), check_f32(W, "row_norms", "W");
    cpu::row_norms(out, W);
  }
  void scale_rows(TensorView W, TensorView s) override {
    check_f32(W, "scale_rows", "W"), check_f32(s, "scale_rows", "s");
    cpu::scale_rows(W, s);
  }
  void project_out_rows(TensorView g, TensorView W) override {
    check_f32(g, "project_out_rows", "g"), check_f32(W, "project_out_rows", "W");
    cpu::project_out_rows(g, W);
  }
  void relu_backward(TensorView g, TensorView f, TensorView pen) override {
    check_f32(g, "relu_backward", "g"), check_f32(f, "relu_backward", "f"), check_f32(pen, "relu_backward", "pen");
    cpu::relu_backward(g, f, pen);
  }
  void scaled_diff(TensorView y, TensorView a, TensorView b, float alpha) override {
    check_f32(y, "scaled_diff", "y"), check_f32(a, "scaled_diff", "a"), check_f32(b, "scaled_diff", "b");
    cpu::scaled_diff(y, a, b, alpha);
  }
  double sum_squares(TensorView x) override {
    check_f32(x, "sum_squares", "x");
    return cpu::sum_squares(x);
  }
  void axpy(TensorView y, TensorView x, float alpha) override {
    check_f32(y, "axpy", "y"), check_f32(x, "axpy", "x");
    cpu::axpy(y, x, alpha);
  }
  void scale(TensorView y, float alpha) override {
    check_f32(y, "scale", "y");
    cpu::scale(y, alpha);
  }
  void hierarchy_backward(TensorView df, TensorView f, TensorView pre, TensorView pen, int n_parents,
                          int children_per_parent, float width) override {
    check_f32(df, "hierarchy_backward", "df"), check_f32(f, "hierarchy_backward", "f");
    check_f32(pre, "hierarchy_backward", "pre"), check_f32(pen, "hierarchy_backward", "pen");
    cpu::hierarchy_backward(df, f, pre, pen, n_parents, children_per_parent, width);
  }
  void smooth_l0_grad(TensorView out, TensorView df, TensorView f, TensorView a, float c, TensorView sech_f) override {
    check_f32(out, "smooth_l0_grad", "out"), check_f32(df, "smooth_l0_grad", "df"), check_f32(f, "smooth_l0_grad", "f");
    check_f32(a, "smooth_l0_grad", "a"), check_f32(sech_f, "smooth_l0_grad", "sech_f");
    cpu::smooth_l0_grad(out, df, f, a, c, sech_f);
  }
  double sum_tanh(TensorView f, TensorView a) override {
    check_f32(f, "sum_tanh", "f"), check_f32(a, "sum_tanh", "a");
    return cpu::sum_tanh(f, a);
  }
  void col_dot(TensorView out, TensorView A, TensorView B) override {
    check_f32(out, "col_dot", "out"), check_f32(A, "col_dot", "A"), check_f32(B, "col_dot", "B");
    cpu::col_dot(out, A, B);
  }
  void row_dot(TensorView out, TensorView A, TensorView B) override {
    check_f32(out, "row_dot", "out"), check_f32(A, "row_dot", "A"), check_f32(B, "row_dot", "B");
    cpu::row_dot(out, A, B);
  }
  void adam_tangent(TensorView u, TensorView g, TensorView g_alpha, TensorView m, TensorView v, float lr, float beta1,
                    float beta2, float eps, int64_t t) override {
    check_f32(u, "adam_tangent", "u"), check_f32(g, "adam_tangent", "g"), check_f32(g_alpha, "adam_tangent", "g_alpha");
    check_f32(m, "adam_tangent", "m"), check_f32(v, "adam_tangent", "v");
    cpu::adam_tangent(u, g, g_alpha, m, v, lr, beta1, beta2, eps, t);
  }
  void adam_forward_tangent(TensorView z, TensorView zm, TensorView zv, TensorView g, TensorView dg, TensorView m,
                            TensorView v, float lr, float beta1, float beta2, float eps, int64_t t) override {
    check_f32(z, "adam_forward_tangent", "z"), check_f32(zm, "adam_forward_tangent", "zm");
    check_f32(zv, "adam_forward_tangent", "zv"), check_f32(g, "adam_forward_tangent", "g");
    check_f32(dg, "adam_forward_tangent", "dg"), check_f32(m, "adam_forward_tangent", "m");
    check_f32(v, "adam_forward_tangent", "v");
    cpu::adam_forward_tangent(z, zm, zv, g, dg, m, v, lr, beta1, beta2, eps, t);
  }
  void adam(TensorView p, TensorView g, TensorView m, TensorView v, float lr, float beta1, float beta2, float eps,
            int64_t t) override {
    check_f32(p, "adam", "p"), check_f32(g, "adam", "g"), check_f32(m, "adam", "m"), check_f32(v, "adam", "v");
    cpu::adam(p, g, m, v, lr, beta1, beta2, eps, t);
  }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend be;
  return be;
}

std::string blas_kernel_warning() {
  // OpenBLAS picks its kernels from the CPU model; one newer than the library (0.3.21 does not know
  // Sapphire/Emerald Rapids) gets the SSE3 "Prescott" kernels, ~4x slower on an AVX-512 machine.
  const std::string core = openblas_get_corename();
  const bool generic = core == "Prescott" || core == "Nehalem" || core == "Core2" || core == "Penryn" ||
                       core == "Dunnington" || core == "Atom" || core == "Katmai" || core == "Coppermine";
  if (!generic) return "";
  const char* better = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : "";
  if (!*better) return "";
  return fmt::format("OpenBLAS chose its generic '{}' kernels for this CPU, which supports {}: matrix products run "
                     "several times slower. Set OPENBLAS_CORETYPE={} in the environment to use its {} kernels.",
                     core, __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2", better, better);
}

}  // namespace saelab
