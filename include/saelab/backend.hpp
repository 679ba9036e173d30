// The one backend interface. Model and SAE code call these ops on TensorViews and never ask which
// backend runs them. Every op has a case in tests/test_backend_equivalence.cpp, which runs it on
// every available backend against a plain double-precision reference.
// All float ops take f32, contiguous views on the backend's device.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

// How RoPE pairs the rotated dimensions of a head: llama2.c and GGUF rotate adjacent pairs
// (2i, 2i+1); Hugging Face rotates (i, i + r/2) ("rotate_half") over the first r rotated dimensions.
enum class RopeStyle : uint8_t { Interleaved, Half };

// The elementwise nonlinearity of an MLP: SiLU (Llama, Qwen, Mistral), GELU with the tanh
// approximation (GPT-2's gelu_new, Gemma's gelu_pytorch_tanh) or exact GELU with erf (GPT-NeoX).
enum class Activation : uint8_t { Silu, GeluTanh, GeluErf };

// Options of causal attention beyond plain softmax(q kᵀ / √hd):
struct AttentionOptions {
  float scale = 0.f;    // multiplies q·k; 0 means 1/√hd (Gemma: query_pre_attn_scalar^-1/2)
  float softcap = 0.f;  // > 0: scores -> softcap · tanh(scores / softcap) after scaling (Gemma 2)
  int window = 0;       // > 0: the query at t sees keys t-window+1 .. t only (sliding window)
};

// The encoder's activation, applied by Backend::encode_epilogue to pre = (x − b_dec) W_enc + b_enc.
struct EncoderActivation {
  // > 0: per row keep the k largest pre (ties: lower index) as max(pre, 0), zero elsewhere
  // (as topk_rows). 0: ReLU, f = max(pre, 0).
  int k = 0;
  // Two-level hierarchy (ReLU only): latents [0, P) are parents, [P, P + P·m) children; child j
  // (column P + j) is zeroed where its parent j / m is not active, f[n, P+j] *= 1[f[n, j/m] > 0];
  // children_on = false zeroes every child (parents-first training). P = 0: no hierarchy.
  int n_parents = 0, children_per_parent = 0;
  bool children_on = true;
  // JumpReLU (with k = 0 and no hierarchy): threshold [F] given, f = max(pre, 0)·1[pre > threshold_i]
  // (SAELens' JumpReLUSAE.encode).
  TensorView threshold;
};

// Rows a chunk of encode_epilogue's statistics (both backends).
constexpr int64_t kEpilogueRows = 64;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;
  // decode = "auto" runs the sparse SAE step while L0/F is at most this (L0 active latents of F),
  // the L0/F below which this backend's sparse step is faster than its dense one.
  virtual double sparse_step_max_l0_fraction() const = 0;

  // Memory. alloc returns zeroed memory aligned to 64 bytes.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void upload(TensorView dst, const void* host_src) = 0;   // dst.nbytes() bytes
  virtual void download(void* host_dst, TensorView src) = 0;       // src.nbytes() bytes
  virtual void copy(TensorView dst, TensorView src) = 0;           // same device, same shape
  virtual void synchronize() {}

  // c[M,N] = alpha * op(a) @ op(b) + beta * c, op(x) = x or xᵀ. Row-major.
  virtual void gemm(TensorView c, TensorView a, bool trans_a, TensorView b, bool trans_b, float alpha,
                    float beta) = 0;
  // y[N,d] = x / sqrt(mean(x²) + eps) * w[d]; y may alias x
  virtual void rmsnorm(TensorView y, TensorView x, TensorView w, float eps) = 0;
  // y[N,d] = (x - mean) / sqrt(var + eps) * w[d] + b[d], mean and (biased) variance per row
  virtual void layernorm(TensorView y, TensorView x, TensorView w, TensorView b, float eps) = 0;
  // x[B*T, H*hd] rotated in place; the position of row r is r % T. inv_freq [r/2]: the first r
  // dimensions of each head rotate, pair i by angle pos · inv_freq[i] (the product in f32, as
  // transformers computes it); dimensions r .. hd-1 pass through (partial rotary, GPT-NeoX).
  virtual void rope(TensorView x, int T, int H, TensorView inv_freq, RopeStyle style) = 0;
  // out[B*T, H*hd] = softmax(opt(q kᵀ), causal) v, q [B*T, H*hd], k,v [B*T, Hkv*hd],
  // query head h reads key/value head h / (H / Hkv) (grouped-query attention).
  virtual void causal_attention(TensorView out, TensorView q, TensorView k, TensorView v, int T, int H, int Hkv,
                                const AttentionOptions& opt) = 0;
  // out = act(x) * up elementwise (gated MLPs: SwiGLU, GeGLU), or act(x) when up is a null view
  // (TensorView{}). out may alias x.
  virtual void activation(TensorView out, TensorView x, TensorView up, Activation act) = 0;
  // x = cap · tanh(x / cap), elementwise (Gemma 2's final-logit soft-capping)
  virtual void softcap(TensorView x, float cap) = 0;
  // y += x, elementwise
  virtual void add_inplace(TensorView y, TensorView x) = 0;
  // out[N,d] = table[ids[n], :]; ids i32 [N]; ids outside [0, V) are an internal error.
  virtual void embedding(TensorView out, TensorView table, TensorView ids) = 0;
  // out[N] = logsumexp(logits[n,:]) - logits[n, target[n]]; targets i32 [N].
  virtual void cross_entropy(TensorView out, TensorView logits, TensorView targets) = 0;

  // ---- SAE ops (N tokens, d width, F latents). Reductions are deterministic for a given
  // thread count: fixed partitions, combined in a fixed order.
  // y[N,d] = x - b[d] (row broadcast); y may alias x.
  virtual void sub_row(TensorView y, TensorView x, TensorView b) = 0;
  // y[N,d] += b[d]
  virtual void add_row(TensorView y, TensorView b) = 0;
  // The encoder's epilogue, fused: one pass over pre [N, F] that adds the bias, applies the
  // activation and gathers the per-latent statistics every training step needs.
  //   pre += b[F]; f = act(pre), act as in EncoderActivation;
  //   fires[F] = #{n: f[n,i] > 0}, mass[F] = Σ_n f[n,i]  (skipped when fires is empty)
  // mass prices the L1 penalty (Σ_i pen_i mass_i) and feeds the frequency and magnitude EMAs.
  // Statistics are summed over chunks of kEpilogueRows rows, the chunks added in order, so they do
  // not depend on the thread count.
  virtual void encode_epilogue(TensorView f, TensorView pre, TensorView b, const EncoderActivation& act,
                               TensorView fires, TensorView mass) = 0;
  // pre[N,F] += b[F]; per row keep the k largest pre (ties: lower index) and write
  // f = max(pre, 0) there, 0 elsewhere. When `allowed` [F] (0/1) is given, only allowed latents
  // compete (aux-k over dead latents) and pre is not biased again (b may be empty).
  virtual void topk_rows(TensorView f, TensorView pre, TensorView b, int k, TensorView allowed) = 0;
  // Batch top-k (BatchTopK SAEs): pre[N,F] += b[F]; keep the `keep` largest values of max(pre, 0)
  // over the whole batch, ties broken by the lower flat index n·F + i, as f = max(pre, 0) there and
  // 0 elsewhere (kept zeros stay 0). Statistics as encode_epilogue (skipped when fires is empty).
  // Returns the smallest positive kept value, 0 when none is positive. Selection is exact (a radix
  // select on the f32 bit patterns with integer counts), so every backend keeps the same entries.
  virtual float batch_topk(TensorView f, TensorView pre, TensorView b, int64_t keep, TensorView fires,
                           TensorView mass) = 0;
  // JumpReLU backward (SAELens' JumpReLU and Step autograd functions, rect(u) = 1[|u| < 1/2]), in
  // place on df [N,F] (raw ∂L/∂f in, ∂L/∂pre out) with θ = threshold [F], bandwidth ε and the L0
  // penalty's per-token coefficient c = λ/N:
  //   dlog_threshold[i] = θ_i · Σ_n −(1/ε)·rect((pre[n,i] − θ_i)/ε)·(θ_i·df[n,i] + c)
  //   df[n,i] = df[n,i]·1[f[n,i] > 0]   (no straight-through term to pre)
  // The column sums run over chunks of kEpilogueRows rows added in order.
  virtual void jumprelu_backward(TensorView dlog_threshold, TensorView df, TensorView f, TensorView pre,
                                 TensorView threshold, float bandwidth, float c) = 0;
  // y[N,F] = x on columns [c0, c1), 0 elsewhere (one group of a Matryoshka SAE's latents).
  virtual void keep_columns(TensorView y, TensorView x, int64_t c0, int64_t c1) = 0;
  // Sparse decode: the decoder's products over the non-zeros of f [N, F] only (top-k latents: at
  // most k per row), N·k·d multiply-adds instead of N·F·d. Sums run over latents in index order
  // (out) and rows in order (gW).
  //   out[N,d] = f W            (W [F, d])
  //   gW[F,d] = alpha·fᵀ dx + beta·gW
  //   df[N,F] = dx Wᵀ where f ≠ 0, 0 elsewhere (all a top-k / ReLU backward keeps)
  virtual void sparse_decode(TensorView out, TensorView f, TensorView W) = 0;
  virtual void sparse_decode_grad_w(TensorView gW, TensorView f, TensorView dx, float alpha, float beta) = 0;
  virtual void sparse_decode_grad_f(TensorView df, TensorView f, TensorView dx, TensorView W) = 0;
  // Sparse encoder backward: the encoder's weight and bias gradients over the non-zeros of
  // dpre [N, F] only (∂L/∂pre vanishes wherever the ReLU / top-k is off), nnz·d multiply-adds
  // instead of N·F·d. Overwrites:
  //   gW[d,F] = xᵀ dpre            (x [N, d]: the centred input)
  //   gb[F]   = Σ_n dpre[n, :]     (skipped when gb is empty)
  // Every entry sums its rows in order, so results do not depend on the thread count.
  virtual void sparse_encode_grad_w(TensorView gW, TensorView gb, TensorView dpre, TensorView x) = 0;
  // Where the hierarchy's backward reads ∂L/∂f (hierarchy_backward): mask[N,F] = 1 where f > 0 or
  // where child j (column ≥ P) has pre > 0 and its parent p = (j − P)/m lies in the gate's band
  // |pre[n,p]| < width/2; 0 elsewhere. sparse_decode_grad_f(df, mask, dx, W) then gives every ∂L/∂f
  // the hierarchy's backward uses, the straight-through gate's included.
  virtual void hierarchy_grad_mask(TensorView mask, TensorView f, TensorView pre, int n_parents,
                                   int children_per_parent, float width) = 0;
  // out[F] = alpha * sum_n x[n, :] + beta * out
  virtual void col_sum(TensorView out, TensorView x, float alpha, float beta) = 0;
  // out[F] = ||W[i, :]||
  virtual void row_norms(TensorView out, TensorView W) = 0;
  // W[i, :] *= s[i]
  virtual void scale_rows(TensorView W, TensorView s) = 0;
  // g[i, :] -= (g[i, :] . W[i, :]) W[i, :]   (W rows unit norm: removes the radial component)
  virtual void project_out_rows(TensorView g, TensorView W) = 0;
  // g[N,F] = (g + pen[F]) * 1[f > 0]   (ReLU backward with a per-latent L1 term)
  virtual void relu_backward(TensorView g, TensorView f, TensorView pen) = 0;
  // y = alpha * (a - b), elementwise
  virtual void scaled_diff(TensorView y, TensorView a, TensorView b, float alpha) = 0;
  // sum of squares of x (double accumulation)
  virtual double sum_squares(TensorView x) = 0;
  // y += alpha * x, elementwise
  virtual void axpy(TensorView y, TensorView x, float alpha) = 0;
  // y *= alpha, elementwise
  virtual void scale(TensorView y, float alpha) = 0;
  // ReLU backward for the hierarchy, in place on df [N,F] (raw ∂L/∂f in, ∂L/∂pre out):
  //   all latents: df = (df + pen_i)·1[f > 0]
  //   parents, with a straight-through gate (width > 0): df[n,p] += G_np · 1[|pre[n,p]| < width/2] / width,
  //   G_np = Σ_{children j of p} (raw df[n,j] + pen_j)·max(pre[n,j], 0)  (∂L/∂gate_p)
  virtual void hierarchy_backward(TensorView df, TensorView f, TensorView pre, TensorView pen, int n_parents,
                                  int children_per_parent, float width) = 0;
  // ∂J/∂pre of the meta-objective J = MSE + λ_J/N Σ tanh(a_i f) (a_i = ‖W_dec,i‖/ε: J reads
  // decoder-norm-folded activations) from the raw ∂MSE/∂f [N,F], with the gate held (no
  // straight-through term), and the per-latent sums its decoder-norm gradient needs:
  //   out[n,i] = (df[n,i] + c·a_i·sech²(a_i f[n,i]))·1[f[n,i] > 0],  c = λ_J/N
  //   sech_f[i] = Σ_n sech²(a_i f[n,i])·f[n,i]
  virtual void smooth_l0_grad(TensorView out, TensorView df, TensorView f, TensorView a, float c,
                              TensorView sech_f) = 0;
  // Σ_n Σ_i tanh(a_i f[n,i]) for f [N,F], a [F] (double accumulation)
  virtual double sum_tanh(TensorView f, TensorView a) = 0;
  // out[i] = Σ_r A[r, i] B[r, i] for A, B [R, F]  /  out[i] = Σ_j A[i, j] B[i, j] for A, B [F, d]
  virtual void col_dot(TensorView out, TensorView A, TensorView B) = 0;
  virtual void row_dot(TensorView out, TensorView A, TensorView B) = 0;
  // Exact derivative of one Adam step's update Δp w.r.t. a scalar α, given the gradient g used,
  // its derivative g_alpha = ∂g/∂α, and the moments m, v after the step (same t, lr as adam()).
  virtual void adam_tangent(TensorView u, TensorView g, TensorView g_alpha, TensorView m, TensorView v, float lr,
                            float beta1, float beta2, float eps, int64_t t) = 0;
  // Forward-mode tangent of one Adam step along a scalar α, through the moments' history:
  //   zm ← β1 zm + (1−β1) dg,  zv ← β2 zv + 2(1−β2) g dg,  z += ∂Δp/∂α
  //   ∂Δp/∂α = −(lr/bc1) [zm / D − m zv / (2 bc2 s D²)],  s = sqrt(v / bc2), D = s + eps
  // where dg = dg/dα (total: Hessian term included), m, v the moments after the step (same t, lr).
  virtual void adam_forward_tangent(TensorView z, TensorView zm, TensorView zv, TensorView g, TensorView dg,
                                    TensorView m, TensorView v, float lr, float beta1, float beta2, float eps,
                                    int64_t t) = 0;
  // Adam with bias correction at step t (1-based), elementwise over flat buffers.
  virtual void adam(TensorView p, TensorView g, TensorView m, TensorView v, float lr, float beta1, float beta2,
                    float eps, int64_t t) = 0;
};

Backend& cpu_backend();
// Non-empty when the BLAS library runs generic kernels on a CPU with wider vector units (an
// OpenBLAS that does not know the CPU model): the one line to show the user, with the fix.
std::string blas_kernel_warning();
// The backend owning memory of `device`; throws Error if this build has no such backend.
Backend& backend_for(Device device);
// "cpu" or "cuda" (a user's setting); throws Error saying why a CUDA backend is not available.
Backend& backend_named(const std::string& name);
// CPU always; CUDA when built with -DSAELAB_CUDA=ON and a GPU is present.
std::vector<Backend*> available_backends();

// Convenience: a host f32 vector into a new tensor on `be`, and back.
Tensor to_device(Backend& be, const std::vector<int64_t>& shape, const float* host);
std::vector<float> to_host_f32(Backend& be, TensorView v);

}  // namespace saelab
