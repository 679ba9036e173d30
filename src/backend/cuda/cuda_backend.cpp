// The CUDA backend: cuBLAS for GEMMs, the kernels of cuda_kernels.cu for the rest, one stream.
// Parameters and optimizer state stay f32 (the master weights); SAELAB_CUDA_GEMM = fp32 (default),
// tf32 or bf16 picks cuBLAS' compute type for the GEMMs only (f32 in and out, tensor cores inside).
// Built only with -DSAELAB_CUDA=ON; registered through cuda_backend_if_present().
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../sparse_decode_shape.hpp"
#include "cuda_kernels.cuh"
#include "saelab/backend.hpp"

namespace saelab {
namespace {

#define SAELAB_CUDA_CHECK(expr)                                                                \
  do {                                                                                        \
    const cudaError_t err_ = (expr);                                                          \
    SAELAB_ASSERT(err_ == cudaSuccess, "{} failed: {}", #expr, cudaGetErrorString(err_)); \
  } while (0)
#define SAELAB_CUBLAS_CHECK(expr)                                                                 \
  do {                                                                                            \
    const cublasStatus_t st_ = (expr);                                                            \
    SAELAB_ASSERT(st_ == CUBLAS_STATUS_SUCCESS, "{} failed: {}", #expr, cublasGetStatusString(st_)); \
  } while (0)

void check_f32(const TensorView& v, const char* op, const char* arg) {
  SAELAB_ASSERT(v.dtype == DType::F32 && v.device == Device::CUDA && v.is_contiguous(),
                "{}: {} must be a contiguous f32 CUDA tensor (have {} on {})", op, arg, dtype_name(v.dtype),
                device_name(v.device));
}

cublasComputeType_t gemm_compute_type() {
  const char* env = std::getenv("SAELAB_CUDA_GEMM");
  const std::string mode = env ? env : "fp32";
  if (mode == "tf32") return CUBLAS_COMPUTE_32F_FAST_TF32;
  if (mode == "bf16") return CUBLAS_COMPUTE_32F_FAST_16BF;
  if (mode != "fp32") fail("SAELAB_CUDA_GEMM must be fp32, tf32 or bf16, got '{}'", mode);
  return CUBLAS_COMPUTE_32F;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend() {
    SAELAB_CUDA_CHECK(cudaStreamCreate(&stream_));
    SAELAB_CUBLAS_CHECK(cublasCreate(&blas_));
    SAELAB_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
    compute_ = gemm_compute_type();
    SAELAB_CUDA_CHECK(cudaMalloc(&partials_, cuda::kReducePartials * sizeof(double)));
  }
  ~CudaBackend() override {
    cudaFree(scratch_);
    cudaFree(partials_);
    cublasDestroy(blas_);
    cudaStreamDestroy(stream_);
  }
  Device device() const override { return Device::CUDA; }
  const char* name() const override { return "cuda"; }
  // Not measured on a GPU yet (bench_train's crossover lines will tell): the CPU's first, conservative
  // crossover. cuBLAS's dense GEMMs run nearer their roofline than the gathers do, so the GPU's
  // crossover is unlikely to be higher than the CPU's.
  double sparse_step_max_l0_fraction() const override { return 0.05; }

  void* alloc(size_t bytes) override {
    void* p = nullptr;
    SAELAB_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 1)));
    SAELAB_CUDA_CHECK(cudaMemsetAsync(p, 0, std::max<size_t>(bytes, 1), stream_));
    SAELAB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return p;
  }
  void free(void* p) override {
    cudaStreamSynchronize(stream_);
    cudaFree(p);
  }
  void upload(TensorView dst, const void* src) override {
    SAELAB_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
    SAELAB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void download(void* dst, TensorView src) override {
    SAELAB_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_));
    SAELAB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy(TensorView dst, TensorView src) override {
    SAELAB_ASSERT(dst.nbytes() == src.nbytes() && dst.is_contiguous() && src.is_contiguous(), "copy {} <- {}",
                  dst.shape_str(), src.shape_str());
    SAELAB_CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, src.nbytes(), cudaMemcpyDeviceToDevice, stream_));
  }
  void synchronize() override { SAELAB_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands.
  void gemm(TensorView c, TensorView a, bool trans_a, TensorView b, bool trans_b, float alpha, float beta) override {
    check_f32(c, "gemm", "c"), check_f32(a, "gemm", "a"), check_f32(b, "gemm", "b");
    SAELAB_ASSERT(a.ndim == 2 && b.ndim == 2 && c.ndim == 2, "gemm takes 2-d views");
    const int64_t M = trans_a ? a.shape[1] : a.shape[0], K = trans_a ? a.shape[0] : a.shape[1];
    const int64_t Kb = trans_b ? b.shape[1] : b.shape[0], N = trans_b ? b.shape[0] : b.shape[1];
    SAELAB_ASSERT(K == Kb && c.shape[0] == M && c.shape[1] == N, "gemm shapes: c {} a {} b {}", c.shape_str(),
                  a.shape_str(), b.shape_str());
    if (M == 0 || N == 0) return;
    if (K == 0) {  // cuBLAS leaves C untouched for K = 0; the contract is C = β C
      scale(c, beta);
      return;
    }
    SAELAB_CUBLAS_CHECK(cublasGemmEx(blas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, b.data,
                                     CUDA_R_32F, static_cast<int>(b.shape[1]), a.data, CUDA_R_32F,
                                     static_cast<int>(a.shape[1]), &beta, c.data, CUDA_R_32F,
                                     static_cast<int>(c.shape[1]), compute_, CUBLAS_GEMM_DEFAULT));
  }
  void rmsnorm(TensorView y, TensorView x, TensorView w, float eps) override {
    check_f32(y, "rmsnorm", "y"), check_f32(x, "rmsnorm", "x"), check_f32(w, "rmsnorm", "w");
    const int64_t d = x.dim(-1), N = x.numel() / d;
    SAELAB_ASSERT(y.numel() == x.numel() && w.numel() == d, "rmsnorm shapes");
    cuda::rmsnorm(stream_, y.f32(), x.f32(), w.f32(), N, d, eps);
  }
  void layernorm(TensorView y, TensorView x, TensorView w, TensorView b, float eps) override {
    check_f32(y, "layernorm", "y"), check_f32(x, "layernorm", "x"), check_f32(w, "layernorm", "w");
    check_f32(b, "layernorm", "b");
    const int64_t d = x.dim(-1), N = x.numel() / d;
    SAELAB_ASSERT(y.numel() == x.numel() && w.numel() == d && b.numel() == d, "layernorm shapes");
    cuda::layernorm(stream_, y.f32(), x.f32(), w.f32(), b.f32(), N, d, eps);
  }
  void rope(TensorView x, int T, int H, TensorView inv_freq, RopeStyle style) override {
    check_f32(x, "rope", "x"), check_f32(inv_freq, "rope", "inv_freq");
    const int64_t rows = x.dim(0), width = x.dim(-1);
    const int half = static_cast<int>(inv_freq.numel());
    SAELAB_ASSERT(width % H == 0 && 2 * half <= width / H && rows % T == 0, "rope shapes {} T={} H={} r={}",
                  x.shape_str(), T, H, 2 * half);
    cuda::rope(stream_, x.f32(), rows, T, H, static_cast<int>(width / H), inv_freq.f32(), half,
               style == RopeStyle::Interleaved);
  }
  void causal_attention(TensorView out, TensorView q, TensorView k, TensorView v, int T, int H, int Hkv,
                        const AttentionOptions& opt) override {
    check_f32(out, "attention", "out"), check_f32(q, "attention", "q"), check_f32(k, "attention", "k");
    check_f32(v, "attention", "v");
    const int64_t rows = q.dim(0), qw = q.dim(-1), kw = k.dim(-1);
    SAELAB_ASSERT(rows % T == 0 && qw % H == 0 && H % Hkv == 0 && kw == qw / H * Hkv && v.dim(-1) == kw &&
                      out.numel() == q.numel() && opt.window >= 0 && opt.softcap >= 0,
                  "attention shapes q {} k {} T={} H={} Hkv={}", q.shape_str(), k.shape_str(), T, H, Hkv);
    const int hd = static_cast<int>(qw / H);
    const float scale = opt.scale > 0 ? opt.scale : 1.0f / std::sqrt(static_cast<float>(hd));
    cuda::causal_attention(stream_, out.f32(), q.f32(), k.f32(), v.f32(), rows / T, T, H, Hkv, hd, scale, opt.softcap,
                           opt.window);
  }
  void activation(TensorView out, TensorView x, TensorView up, Activation act) override {
    check_f32(out, "activation", "out"), check_f32(x, "activation", "x");
    const bool gated = up.data != nullptr;
    if (gated) check_f32(up, "activation", "up");
    SAELAB_ASSERT(out.numel() == x.numel() && (!gated || up.numel() == x.numel()), "activation shapes");
    cuda::activation(stream_, out.f32(), x.f32(), gated ? up.f32() : nullptr, static_cast<int>(act), out.numel());
  }
  void softcap(TensorView x, float cap) override {
    check_f32(x, "softcap", "x");
    SAELAB_ASSERT(cap > 0, "softcap {}", cap);
    cuda::softcap(stream_, x.f32(), cap, x.numel());
  }
  void add_inplace(TensorView y, TensorView x) override {
    check_f32(y, "add_inplace", "y"), check_f32(x, "add_inplace", "x");
    SAELAB_ASSERT(y.numel() == x.numel(), "add_inplace shapes");
    cuda::add_inplace(stream_, y.f32(), x.f32(), y.numel());
  }
  void embedding(TensorView out, TensorView table, TensorView ids) override {
    check_f32(out, "embedding", "out"), check_f32(table, "embedding", "table");
    const int64_t N = ids.numel(), d = table.dim(1), V = table.dim(0);
    SAELAB_ASSERT(out.numel() == N * d && ids.dtype == DType::I32, "embedding shapes");
    // Ids are checked on the host (an out-of-range id is an internal error, as on the CPU).
    std::vector<int32_t> host(static_cast<size_t>(N));
    download(host.data(), ids);
    for (int32_t id : host) SAELAB_ASSERT(id >= 0 && id < V, "token id {} outside vocabulary of {}", id, V);
    cuda::embedding(stream_, out.f32(), table.f32(), ids.i32(), N, d);
  }
  void cross_entropy(TensorView out, TensorView logits, TensorView targets) override {
    check_f32(out, "cross_entropy", "out"), check_f32(logits, "cross_entropy", "logits");
    const int64_t N = logits.dim(0), V = logits.dim(1);
    SAELAB_ASSERT(out.numel() == N && targets.numel() == N, "cross_entropy shapes");
    std::vector<int32_t> host(static_cast<size_t>(N));
    download(host.data(), targets);
    for (int32_t t : host) SAELAB_ASSERT(t >= 0 && t < V, "target {} outside vocabulary of {}", t, V);
    cuda::cross_entropy(stream_, out.f32(), logits.f32(), targets.i32(), N, V);
  }

  void sub_row(TensorView y, TensorView x, TensorView b) override {
    check_f32(y, "sub_row", "y"), check_f32(x, "sub_row", "x"), check_f32(b, "sub_row", "b");
    const int64_t d = b.numel();
    SAELAB_ASSERT(y.numel() == x.numel() && x.numel() % d == 0, "sub_row shapes");
    cuda::sub_row(stream_, y.f32(), x.f32(), b.f32(), x.numel() / d, d);
  }
  void add_row(TensorView y, TensorView b) override {
    check_f32(y, "add_row", "y"), check_f32(b, "add_row", "b");
    const int64_t d = b.numel();
    SAELAB_ASSERT(y.numel() % d == 0, "add_row shapes");
    cuda::add_row(stream_, y.f32(), b.f32(), y.numel() / d, d);
  }
  void encode_epilogue(TensorView f, TensorView pre, TensorView b, const EncoderActivation& act, TensorView fires,
                       TensorView mass) override {
    check_f32(f, "encode_epilogue", "f"), check_f32(pre, "encode_epilogue", "pre"), check_f32(b, "encode_epilogue", "b");
    const int64_t F = b.numel(), N = F ? pre.numel() / F : 0, P = act.n_parents, m = act.children_per_parent;
    SAELAB_ASSERT(f.numel() == pre.numel() && pre.numel() == N * F, "encode_epilogue shapes");
    SAELAB_ASSERT(act.k >= 0 && (P == 0 || (act.k == 0 && P + P * m == F)),
                  "encode_epilogue: k {} with {} parents x {} children for F = {}", act.k, P, m, F);
    const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
    SAELAB_ASSERT(chunks <= 65535, "encode_epilogue: {} rows exceed the grid's {} chunks", N, 65535);
    float* scratch = nullptr;
    if (fires.data) {
      check_f32(fires, "encode_epilogue", "fires"), check_f32(mass, "encode_epilogue", "mass");
      SAELAB_ASSERT(fires.numel() == F && mass.numel() == F, "encode_epilogue: stats [F]");
      if (chunks > 1) scratch = scratch_floats(static_cast<size_t>(2 * chunks * F));
    }
    SAELAB_ASSERT(!act.threshold.data || (act.k == 0 && P == 0 && act.threshold.numel() == F),
                  "encode_epilogue: a JumpReLU threshold [F] goes without top-k or hierarchy");
    if (act.threshold.data) check_f32(act.threshold, "encode_epilogue", "threshold");
    cuda::encode_epilogue(stream_, f.f32(), pre.f32(), b.f32(), act.k, P, m, act.children_on,
                          act.threshold.data ? act.threshold.f32() : nullptr, fires.data ? fires.f32() : nullptr,
                          fires.data ? mass.f32() : nullptr, scratch, N, F);
  }
  float batch_topk(TensorView f, TensorView pre, TensorView b, int64_t keep, TensorView fires,
                   TensorView mass) override {
    check_f32(f, "batch_topk", "f"), check_f32(pre, "batch_topk", "pre"), check_f32(b, "batch_topk", "b");
    const int64_t F = b.numel(), N = F ? pre.numel() / F : 0, chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
    SAELAB_ASSERT(f.numel() == pre.numel() && pre.numel() == N * F && keep >= 0, "batch_topk shapes");
    SAELAB_ASSERT(chunks <= 65535, "batch_topk: {} rows exceed the grid's {} chunks", N, 65535);
    if (fires.data) {
      check_f32(fires, "batch_topk", "fires"), check_f32(mass, "batch_topk", "mass");
      SAELAB_ASSERT(fires.numel() == F && mass.numel() == F, "batch_topk: stats [F]");
    }
    // One scratch: the selection's work area, then the statistics' per-chunk partials.
    const int64_t work = cuda::batch_topk_work_floats(N);
    float* scratch = scratch_floats(static_cast<size_t>(work + 2 * std::max<int64_t>(chunks, 1) * F));
    return cuda::batch_topk(stream_, f.f32(), pre.f32(), b.f32(), keep, fires.data ? fires.f32() : nullptr,
                            fires.data ? mass.f32() : nullptr, scratch, scratch + work, N, F);
  }
  void jumprelu_backward(TensorView dlog_threshold, TensorView df, TensorView f, TensorView pre, TensorView threshold,
                         float bandwidth, float c) override {
    check_f32(dlog_threshold, "jumprelu_backward", "dlog_threshold"), check_f32(df, "jumprelu_backward", "df");
    check_f32(f, "jumprelu_backward", "f"), check_f32(pre, "jumprelu_backward", "pre");
    check_f32(threshold, "jumprelu_backward", "threshold");
    const int64_t F = threshold.numel(), N = F ? df.numel() / F : 0, chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
    SAELAB_ASSERT(df.numel() == N * F && f.numel() == df.numel() && pre.numel() == df.numel() &&
                      dlog_threshold.numel() == F && bandwidth > 0.f,
                  "jumprelu_backward shapes");
    SAELAB_ASSERT(chunks <= 65535, "jumprelu_backward: {} rows exceed the grid's {} chunks", N, 65535);
    cuda::jumprelu_backward(stream_, dlog_threshold.f32(), df.f32(), f.f32(), pre.f32(), threshold.f32(), bandwidth,
                            c, scratch_floats(static_cast<size_t>(std::max<int64_t>(chunks, 1) * F)), N, F);
  }
  void keep_columns(TensorView y, TensorView x, int64_t c0, int64_t c1) override {
    check_f32(y, "keep_columns", "y"), check_f32(x, "keep_columns", "x");
    const int64_t F = x.dim(-1), N = F ? x.numel() / F : 0;
    SAELAB_ASSERT(y.numel() == x.numel() && 0 <= c0 && c0 <= c1 && c1 <= F, "keep_columns [{}, {}) of {}", c0, c1, F);
    cuda::keep_columns(stream_, y.f32(), x.f32(), c0, c1, N, F);
  }
  void topk_rows(TensorView f, TensorView pre, TensorView b, int k, TensorView allowed) override {
    check_f32(f, "topk_rows", "f"), check_f32(pre, "topk_rows", "pre");
    const int64_t F = pre.dim(-1), N = pre.numel() / F;
    SAELAB_ASSERT(f.numel() == pre.numel() && k >= 0, "topk_rows shapes");
    if (allowed.data) {
      check_f32(allowed, "topk_rows", "allowed");
    } else {
      check_f32(b, "topk_rows", "b");
      SAELAB_ASSERT(b.numel() == F, "topk_rows needs b[F] when no mask is given");
    }
    cuda::topk_rows(stream_, f.f32(), pre.f32(), allowed.data ? nullptr : b.f32(),
                    allowed.data ? allowed.f32() : nullptr, N, F, k);
  }
  void col_sum(TensorView out, TensorView x, float alpha, float beta) override {
    check_f32(out, "col_sum", "out"), check_f32(x, "col_sum", "x");
    const int64_t F = out.numel();
    SAELAB_ASSERT(x.numel() % F == 0, "col_sum shapes {} -> {}", x.shape_str(), out.shape_str());
    const int64_t N = x.numel() / F, chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
    SAELAB_ASSERT(chunks <= 65535, "col_sum: {} rows exceed the grid's {} chunks", N, 65535);
    cuda::col_sum(stream_, out.f32(), x.f32(), N, F, alpha, beta,
                  scratch_floats(static_cast<size_t>(std::max<int64_t>(chunks, 1) * F)));
  }
  void sparse_decode(TensorView out, TensorView f, TensorView W) override {
    check_f32(out, "sparse_decode", "out"), check_f32(f, "sparse_decode", "f"), check_f32(W, "sparse_decode", "W");
    const auto [N, F, d] = sparse_decode_shape(f, W, out, "sparse_decode");
    cuda::sparse_decode(stream_, out.f32(), f.f32(), W.f32(), N, F, d);
  }
  void sparse_decode_grad_w(TensorView gW, TensorView f, TensorView dx, float alpha, float beta) override {
    check_f32(gW, "sparse_decode_grad_w", "gW"), check_f32(f, "sparse_decode_grad_w", "f");
    check_f32(dx, "sparse_decode_grad_w", "dx");
    const auto [N, F, d] = sparse_decode_shape(f, gW, dx, "sparse_decode_grad_w");
    cuda::sparse_decode_grad_w(stream_, gW.f32(), f.f32(), dx.f32(), N, F, d, alpha, beta);
  }
  void sparse_decode_grad_f(TensorView df, TensorView f, TensorView dx, TensorView W) override {
    check_f32(df, "sparse_decode_grad_f", "df"), check_f32(f, "sparse_decode_grad_f", "f");
    check_f32(dx, "sparse_decode_grad_f", "dx"), check_f32(W, "sparse_decode_grad_f", "W");
    const auto [N, F, d] = sparse_decode_shape(f, W, dx, "sparse_decode_grad_f");
    SAELAB_ASSERT(df.numel() == N * F, "sparse_decode_grad_f: df [N, F]");
    cuda::sparse_decode_grad_f(stream_, df.f32(), f.f32(), dx.f32(), W.f32(), N, F, d);
  }
  void sparse_encode_grad_w(TensorView gW, TensorView gb, TensorView dpre, TensorView x) override {
    check_f32(gW, "sparse_encode_grad_w", "gW"), check_f32(dpre, "sparse_encode_grad_w", "dpre");
    check_f32(x, "sparse_encode_grad_w", "x");
    if (gb.data) check_f32(gb, "sparse_encode_grad_w", "gb");
    const auto [N, F, d] = sparse_encode_shape(gW, gb, dpre, x);
    const int64_t chunks = std::max<int64_t>((N + kEpilogueRows - 1) / kEpilogueRows, 1);
    SAELAB_ASSERT(chunks <= 65535, "sparse_encode_grad_w: {} rows exceed the grid's {} chunks", N, 65535);
    cuda::sparse_encode_grad_w(stream_, gW.f32(), gb.data ? gb.f32() : nullptr, dpre.f32(), x.f32(), N, F, d,
                               scratch_floats(static_cast<size_t>(F * d + chunks * F)));
  }
  void hierarchy_grad_mask(TensorView mask, TensorView f, TensorView pre, int n_parents, int children_per_parent,
                           float width) override {
    check_f32(mask, "hierarchy_grad_mask", "mask"), check_f32(f, "hierarchy_grad_mask", "f");
    check_f32(pre, "hierarchy_grad_mask", "pre");
    const int64_t P = n_parents, m = children_per_parent, F = P + P * m;
    SAELAB_ASSERT(F > 0 && f.numel() % F == 0 && mask.numel() == f.numel() && pre.numel() == f.numel(),
                  "hierarchy_grad_mask shapes");
    cuda::hierarchy_grad_mask(stream_, mask.f32(), f.f32(), pre.f32(), f.numel() / F, P, m, width);
  }
  void row_norms(TensorView out, TensorView W) override {
    check_f32(out, "row_norms", "out"), check_f32(W, "row_norms", "W");
    const int64_t F = out.numel();
    SAELAB_ASSERT(W.numel() % F == 0, "row_norms shapes");
    cuda::row_norms(stream_, out.f32(), W.f32(), F, W.numel() / F);
  }
  void scale_rows(TensorView W, TensorView s) override {
    check_f32(W, "scale_rows", "W"), check_f32(s, "scale_rows", "s");
    const int64_t F = s.numel();
    SAELAB_ASSERT(W.numel() % F == 0, "scale_rows shapes");
    cuda::scale_rows(stream_, W.f32(), s.f32(), F, W.numel() / F);
  }
  void project_out_rows(TensorView g, TensorView W) override {
    check_f32(g, "project_out_rows", "g"), check_f32(W, "project_out_rows", "W");
    SAELAB_ASSERT(g.numel() == W.numel() && W.ndim == 2, "project_out_rows shapes");
    cuda::project_out_rows(stream_, g.f32(), W.f32(), W.dim(0), W.dim(1));
  }
  void relu_backward(TensorView g, TensorView f, TensorView pen) override {
    check_f32(g, "relu_backward", "g"), check_f32(f, "relu_backward", "f"), check_f32(pen, "relu_backward", "pen");
    const int64_t F = pen.numel();
    SAELAB_ASSERT(f.numel() == g.numel() && g.numel() % F == 0, "relu_backward shapes");
    cuda::relu_backward(stream_, g.f32(), f.f32(), pen.f32(), g.numel() / F, F);
  }
  void scaled_diff(TensorView y, TensorView a, TensorView b, float alpha) override {
    check_f32(y, "scaled_diff", "y"), check_f32(a, "scaled_diff", "a"), check_f32(b, "scaled_diff", "b");
    SAELAB_ASSERT(y.numel() == a.numel() && a.numel() == b.numel(), "scaled_diff shapes");
    cuda::scaled_diff(stream_, y.f32(), a.f32(), b.f32(), alpha, y.numel());
  }
  double sum_squares(TensorView x) override {
    check_f32(x, "sum_squares", "x");
    return cuda::sum_squares(stream_, x.f32(), x.numel(), partials_);
  }
  void axpy(TensorView y, TensorView x, float alpha) override {
    check_f32(y, "axpy", "y"), check_f32(x, "axpy", "x");
    SAELAB_ASSERT(y.numel() == x.numel(), "axpy shapes");
    cuda::axpy(stream_, y.f32(), x.f32(), alpha, y.numel());
  }
  void scale(TensorView y, float alpha) override {
    check_f32(y, "scale", "y");
    cuda::scale(stream_, y.f32(), alpha, y.numel());
  }
  void hierarchy_backward(TensorView df, TensorView f, TensorView pre, TensorView pen, int n_parents,
                          int children_per_parent, float width) override {
    check_f32(df, "hierarchy_backward", "df"), check_f32(f, "hierarchy_backward", "f");
    check_f32(pre, "hierarchy_backward", "pre"), check_f32(pen, "hierarchy_backward", "pen");
    const int64_t F = pen.numel(), P = n_parents, m = children_per_parent;
    SAELAB_ASSERT(P + P * m == F && df.numel() == f.numel() && pre.numel() == f.numel() && f.numel() % F == 0,
                  "hierarchy_backward shapes");
    cuda::hierarchy_backward(stream_, df.f32(), f.f32(), pre.f32(), pen.f32(), f.numel() / F, P, m, width);
  }
  void smooth_l0_grad(TensorView out, TensorView df, TensorView f, TensorView a, float c, TensorView sech_f) override {
    check_f32(out, "smooth_l0_grad", "out"), check_f32(df, "smooth_l0_grad", "df");
    check_f32(f, "smooth_l0_grad", "f"), check_f32(a, "smooth_l0_grad", "a");
    check_f32(sech_f, "smooth_l0_grad", "sech_f");
    const int64_t F = a.numel();
    SAELAB_ASSERT(out.numel() == f.numel() && df.numel() == f.numel() && f.numel() % F == 0 && sech_f.numel() == F,
                  "smooth_l0_grad shapes");
    cuda::smooth_l0_grad(stream_, out.f32(), df.f32(), f.f32(), a.f32(), f.numel() / F, F, c, sech_f.f32());
  }
  double sum_tanh(TensorView f, TensorView a) override {
    check_f32(f, "sum_tanh", "f"), check_f32(a, "sum_tanh", "a");
    SAELAB_ASSERT(f.numel() % a.numel() == 0, "sum_tanh shapes");
    return cuda::sum_tanh(stream_, f.f32(), f.numel(), a.f32(), a.numel(), partials_);
  }
  void col_dot(TensorView out, TensorView A, TensorView B) override {
    check_f32(out, "col_dot", "out"), check_f32(A, "col_dot", "A"), check_f32(B, "col_dot", "B");
    const int64_t F = out.numel();
    SAELAB_ASSERT(A.numel() == B.numel() && A.numel() % F == 0, "col_dot shapes");
    cuda::col_dot(stream_, out.f32(), A.f32(), B.f32(), A.numel() / F, F);
  }
  void row_dot(TensorView out, TensorView A, TensorView B) override {
    check_f32(out, "row_dot", "out"), check_f32(A, "row_dot", "A"), check_f32(B, "row_dot", "B");
    const int64_t F = out.numel();
    SAELAB_ASSERT(A.numel() == B.numel() && A.numel() % F == 0, "row_dot shapes");
    cuda::row_dot(stream_, out.f32(), A.f32(), B.f32(), F, A.numel() / F);
  }
  void adam_tangent(TensorView u, TensorView g, TensorView g_alpha, TensorView m, TensorView v, float lr, float beta1,
                    float beta2, float eps, int64_t t) override {
    check_f32(u, "adam_tangent", "u"), check_f32(g, "adam_tangent", "g"), check_f32(g_alpha, "adam_tangent", "g_alpha");
    check_f32(m, "adam_tangent", "m"), check_f32(v, "adam_tangent", "v");
    SAELAB_ASSERT(u.numel() == g.numel() && g.numel() == g_alpha.numel() && g.numel() == m.numel() &&
                      m.numel() == v.numel() && t >= 1,
                  "adam_tangent shapes");
    cuda::adam_tangent(stream_, u.f32(), g.f32(), g_alpha.f32(), m.f32(), v.f32(), u.numel(), lr, beta1, beta2, eps, t);
  }
  void adam_forward_tangent(TensorView z, TensorView zm, TensorView zv, TensorView g, TensorView dg, TensorView m,
                            TensorView v, float lr, float beta1, float beta2, float eps, int64_t t) override {
    check_f32(z, "adam_forward_tangent", "z"), check_f32(zm, "adam_forward_tangent", "zm");
    check_f32(zv, "adam_forward_tangent", "zv"), check_f32(g, "adam_forward_tangent", "g");
    check_f32(dg, "adam_forward_tangent", "dg"), check_f32(m, "adam_forward_tangent", "m");
    check_f32(v, "adam_forward_tangent", "v");
    const int64_t n = z.numel();
    SAELAB_ASSERT(zm.numel() == n && zv.numel() == n && g.numel() == n && dg.numel() == n && m.numel() == n &&
                      v.numel() == n && t >= 1,
                  "adam_forward_tangent shapes");
    cuda::adam_forward_tangent(stream_, z.f32(), zm.f32(), zv.f32(), g.f32(), dg.f32(), m.f32(), v.f32(), n, lr, beta1,
                               beta2, eps, t);
  }
  void adam(TensorView p, TensorView g, TensorView m, TensorView v, float lr, float beta1, float beta2, float eps,
            int64_t t) override {
    check_f32(p, "adam", "p"), check_f32(g, "adam", "g"), check_f32(m, "adam", "m"), check_f32(v, "adam", "v");
    SAELAB_ASSERT(p.numel() == g.numel() && g.numel() == m.numel() && m.numel() == v.numel() && t >= 1, "adam shapes");
    cuda::adam(stream_, p.f32(), g.f32(), m.f32(), v.f32(), p.numel(), lr, beta1, beta2, eps, t);
  }

 private:
  // Device scratch of at least n floats, grown (never shrunk) as ops ask for more.
  float* scratch_floats(size_t n) {
    if (n > scratch_n_) {
      SAELAB_CUDA_CHECK(cudaStreamSynchronize(stream_));  // earlier kernels may still read it
      cudaFree(scratch_);
      SAELAB_CUDA_CHECK(cudaMalloc(&scratch_, n * sizeof(float)));
      scratch_n_ = n;
    }
    return scratch_;
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cublasComputeType_t compute_ = CUBLAS_COMPUTE_32F;
  double* partials_ = nullptr;  // [kReducePartials] scratch of the deterministic reductions
  float* scratch_ = nullptr;    // [scratch_n_]: encode_epilogue's per-chunk statistics
  size_t scratch_n_ = 0;
};

}  // namespace

// nullptr when no GPU is usable: the build has the backend but this machine cannot run it.
Backend* cuda_backend_if_present() {
  static Backend* be = [] () -> Backend* {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
      cudaGetLastError();  // clear the sticky "no device" error
      return nullptr;
    }
    // One GPU a process in a multi-process job: the launcher's local rank picks it.
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
      if (const char* r = std::getenv(v)) {
        SAELAB_CUDA_CHECK(cudaSetDevice(std::atoi(r) % n));
        break;
      }
    return new CudaBackend();  // lives until exit: tensors may be freed during static destruction
  }();
  return be;
}

}  // namespace saelab
