// Sparse autoencoders: parameters, forward, analytic backward. One parameter layout for every
// architecture (SAELens' keys): W_enc [d, F], b_enc [F], W_dec [F, d], b_dec [d]
//   pre = (x − b_dec) W_enc + b_enc          (x − b_dec only with apply_b_dec_to_input)
//   standard: f = ReLU(pre)                   loss = ‖x − x̂‖² + λ Σ_i w_i f_i ‖W_dec,i‖
//   topk:     f = ReLU(top-k of pre)          loss = ‖x − x̂‖² + c_aux · aux-k loss
//   hierarchical: latents [0, P) are parents, [P, P + P·m) children (child j belongs to parent j / m);
//             f = ReLU(pre), then a child is zeroed where its parent is not active; loss as standard
//   batchtopk: training keeps the k·N largest ReLU(pre) of the whole batch (ties: lower flat index
//             n·F + i); loss = ‖x − x̂‖² + c_aux · aux-k loss (as topk). Inference (encode) is
//             JumpReLU with one global threshold θ, an EMA of the smallest kept activation
//             (SAELens' BatchTopKTrainingSAE); exported as SAELens' jumprelu with θ for every latent.
//   jumprelu: f = pre · 1[pre > θ_i], θ_i = exp(log_threshold_i); loss = ‖x − x̂‖² + λ Σ_i 1[pre_i > θ_i]
//             with the rectangle-kernel pseudo-derivative of bandwidth ε for ∂/∂θ (Gemma Scope; SAELens'
//             JumpReLUTrainingSAE, sparsity loss mode "step")
//   matryoshka_batchtopk: batchtopk's f; loss = Σ_m ‖x − x̂_m‖² + aux-k, x̂_m = f[:, :w_m] W_dec[:w_m] + b_dec
//             over the nested prefixes w_1 < … < w_M = F (SAELens' MatryoshkaBatchTopKTrainingSAE)
//   x̂ = f W_dec + b_dec
// ‖·‖² is summed over d and averaged over the N tokens of a batch (SAELens' convention); w_i are
// per-latent penalty weights (all 1 for the vanilla SAE).
#pragma once
#include <string>
#include <vector>

#include "saelab/backend.hpp"

namespace saelab {

enum class SaeArchitecture : uint8_t { Standard, TopK, Hierarchical, BatchTopK, JumpReLU, MatryoshkaBatchTopK };
// "standard", "topk", "hierarchical", "batchtopk", "jumprelu", "matryoshka_batchtopk" (SAELens' names)
const char* sae_architecture_name(SaeArchitecture a);
SaeArchitecture sae_architecture_from_name(const std::string& s);  // throws Error
// batchtopk and matryoshka_batchtopk: top-k over the whole batch in training.
bool sae_is_batch_topk(SaeArchitecture a);
// Architectures whose inference is JumpReLU (batchtopk, jumprelu, matryoshka_batchtopk): they carry
// the threshold views of SaeParams.
bool sae_has_threshold(SaeArchitecture a);
// Architectures with aux-k on dead latents and unit-norm decoder rows (topk and the batch top-k ones).
bool sae_is_topk_family(SaeArchitecture a);

struct SaeConfig {
  SaeArchitecture architecture = SaeArchitecture::Standard;
  int d_in = 0, d_sae = 0;
  int k = 32;                  // topk: active latents per token; batchtopk: k·N kept per batch of N
  int k_aux = 0;               // topk: aux-k latents (0: d_in / 2)
  float aux_coefficient = 1.0f / 32.0f;
  bool apply_b_dec_to_input = true;
  bool unit_norm_decoder = false;  // keep ‖W_dec,i‖ = 1 (topk); the standard SAE puts the norm in its penalty
  int n_parents = 0, children_per_parent = 0;  // hierarchical: d_sae = n_parents · (1 + children_per_parent)
  // Hierarchical: width of the straight-through estimate of the gate's gradient (0: exact gradient,
  // where the gate is a step and parents never learn what turning off costs their children).
  float gate_ste_width = 0.f;
  // The sparse step (the initial value of Sae::set_sparse): every product of forward_backward but
  // the encoder's forward GEMM runs over non-zeros only: x̂ = f W_dec, ∇W_dec = fᵀ dx̂ and ∂L/∂f
  // over the non-zeros of f (Backend::sparse_decode*), ∇W_enc = xcᵀ dpre and ∇b_enc over those of
  // ∂L/∂pre (Backend::sparse_encode_grad_w): N·L0·d multiply-adds each instead of N·F·d. Every
  // architecture but jumprelu, whose threshold gradient reads ∂L/∂f just below the threshold,
  // where f = 0. The hierarchy's straight-through gate reads ∂L/∂f of children its in-band parents
  // switched off: the sparse step computes ∂L/∂f there too (Backend::hierarchy_grad_mask).
  bool sparse_decode = false;
  // JumpReLU: the rectangle kernel's width ε and the initial threshold (SAELens' jumprelu_bandwidth,
  // jumprelu_init_threshold).
  float jumprelu_bandwidth = 0.05f;
  float jumprelu_init_threshold = 0.01f;
  // Matryoshka: the nested prefix widths, strictly increasing, the last = d_sae.
  std::vector<int> matryoshka_widths;
  // Provenance for the SAELens cfg.json.
  std::string model_name, hook_name;
  int hook_layer = 0, context_size = 128;
  bool prepend_bos = true;
  std::string dataset_path;
  // Activations are multiplied by act_scale before the SAE (E‖x·s‖² = d); exports fold it back.
  float act_scale = 1.0f;
};

// Parameters, gradients and optimizer moments: each one flat allocation with the same named views.
struct SaeParams {
  SaeParams() = default;
  SaeParams(const SaeConfig& c, Device device);
  Tensor flat;       // [P]
  TensorView W_enc;  // [d, F]
  TensorView b_enc;  // [F]
  TensorView W_dec;  // [F, d]
  TensorView b_dec;  // [d]
  // Thresholded architectures (sae_has_threshold) only, after b_dec:
  //   log_threshold [F]  jumprelu: the trained parameter (SAELens' training SAE); unused (0) otherwise
  //   threshold [F]      the inference threshold SAELens' jumprelu stores: exp(log_threshold) for
  //                      jumprelu (refreshed after every update, so an export and its reload compare
  //                      against the same floats), the global EMA in every entry for batchtopk.
  // Neither is ever given a gradient through threshold, so Adam leaves it as it is (m = v = 0).
  TensorView log_threshold, threshold;
  std::vector<std::pair<std::string, TensorView>> named() const;
};

// Scratch for batches of up to N tokens.
struct SaeWorkspace {
  SaeWorkspace(const SaeConfig& c, int64_t N, Device device);
  int64_t capacity;
  Tensor xc, xhat, dxhat, ehat;  // [N, d]
  Tensor pre, f, df, f_aux;      // [N, F]
  Tensor vec_F, pen;             // [F]
  Tensor dpre_J;                 // [N, F] ∂J/∂pre, allocated by the first hypergradient request
  Tensor j_scale, j_sech;        // [F] J's a_i = ‖W_dec,i‖/ε and Σ_n sech²(a_i f_ni) f_ni, allocated with dpre_J
  Tensor dec_tmp;                // [F, d]
  Tensor grad_col;               // [d]
  Tensor lvl_x, lvl_d;           // [N, d] matryoshka: the prefix reconstruction and Σ_{m ≥ j} ∂L/∂x̂_m
  Tensor f_group;                // [N, F] matryoshka: f restricted to one group of latents
  Tensor grad_mask;              // [N, F] hierarchical sparse step: where ∂L/∂f is needed (first use allocates)
  float min_kept = 0.f;          // batch top-k: the smallest positive activation kept by the last batch
};

struct SaeBatchStats {
  int64_t n = 0;
  std::vector<float> fires, fsum;  // [F] per latent: #tokens with f > 0, Σ_n f
  std::vector<float> dec_norms;    // [F] ‖W_dec,i‖ (standard/hierarchical with λ ≠ 0)
  double sse = 0;       // Σ_n ‖x_n − x̂_n‖²
  double penalty = 0;   // Σ_n λ Σ_i w_i f_ni ‖W_dec,i‖   (standard)
  double aux = 0;       // Σ_n c_aux·scale·‖e_n − ê_n‖²   (topk with dead latents)
  double l0 = 0;        // Σ_n #{i: f_ni > 0}
  double prefix_sse = 0;  // matryoshka: Σ_{m < M} Σ_n ‖x_n − x̂_m,n‖² (the inner prefixes' losses)
  float min_kept = 0.f;   // batch top-k: smallest positive kept activation (min over parts)
  double loss() const { return n ? (sse + penalty + aux + prefix_sse) / static_cast<double>(n) : 0.0; }
};

// What a training step adds to the SAE's own loss.
struct SaeLossTerms {
  float l1_coefficient = 0.f;  // λ: the L1 coefficient, or jumprelu's L0 coefficient
  std::vector<float> penalty_weights;  // w_i [F]; empty = all 1
  std::vector<float> dead;             // [F] 1 where latent i is dead (topk aux-k); empty = none
};

// The pieces learnable α needs from a batch (method.md §2), computed in the same pass. J reads the
// decoder-norm-folded activations f̃_ni = f_ni‖W_dec,i‖, so (f_i·c, W_dec,i/c), the same SAE, has
// the same J:
//   J = (1/N) Σ_n ‖x_n − x̂_n‖² + (λ_J/N) Σ_n Σ_i tanh(f̃_ni / ε)   (smooth_l0 = false: MSE only)
//   grad_J = ∇_W J, the hierarchy's gate held where it is: J's gradient wherever it has one (the
//            gate is a step), which finite differences of J check. The straight-through term is a
//            device of training's update, and lives in g_alpha.
//   g_alpha[l] = ∂g/∂α_l, the derivative of the training gradient g that the update uses
//            (straight-through gate included) with respect to level l's α: the penalty weights
//            w_i = α_l w_freq,i + (1 − α_l) w_mag,i of level l's latents move by dw_i = w_freq,i − w_mag,i.
//            Through the gate, the children's α also moves the parents' gradient.
struct SaeHyperRequest {
  float lambda_J = 0.f, eps = 1.f;
  bool smooth_l0 = true;
  std::vector<float> dw;                    // [F]
  std::vector<std::pair<int, int>> levels;  // latent ranges [begin, end)
  SaeParams* grad_J = nullptr;              // outputs
  std::vector<SaeParams>* g_alpha = nullptr;  // [levels], sized by the caller
  double J = 0;
};

class Sae {
 public:
  Sae(SaeConfig cfg, Backend& be);
  const SaeConfig& config() const { return cfg_; }
  Backend& backend() const { return be_; }
  SaeParams& params() { return params_; }
  const SaeParams& params() const { return params_; }

  // f = encode(x) into ws.f (rows [0, N)); ws.pre holds the (biased) pre-activations. With fires
  // and mass [F] given, the same pass counts each latent's firings and sums its activations.
  // Inference semantics: batchtopk and matryoshka encode with their threshold (JumpReLU), as their
  // SAELens export does; forward_backward encodes with the batch top-k.
  void encode(TensorView x, SaeWorkspace& ws, TensorView fires = {}, TensorView mass = {}) const;
  // x̂ = decode(f) into ws.xhat.
  void decode(SaeWorkspace& ws, int64_t N) const;
  // Forward + analytic backward of the batch loss; writes every gradient into `grads` (overwrites).
  // With `hyper`, also fills its outputs (standard and hierarchical only).
  SaeBatchStats forward_backward(TensorView x, const SaeLossTerms& terms, SaeParams& grads, SaeWorkspace& ws,
                                 SaeHyperRequest* hyper = nullptr) const;
  // Latent ranges of the levels: {[0, F)} or {[0, P), [P, F)} for hierarchical.
  std::vector<std::pair<int, int>> levels() const;

  // Initialisation: W_dec rows random directions of norm `dec_norm`, W_enc = W_decᵀ, b_enc = 0,
  // b_dec = `b_dec_init` [d] (mean or geometric median of the data, or zeros).
  void init(uint64_t seed, float dec_norm, const std::vector<float>& b_dec_init);
  void normalize_decoder_rows();  // ‖W_dec,i‖ = 1
  // jumprelu: threshold = exp(log_threshold), after every update of log_threshold.
  void refresh_threshold();
  // batchtopk: θ ← (1 − rate)·θ + rate·min_kept in every entry of threshold (SAELens'
  // topk_threshold_lr; no update while no activation was kept).
  void update_batch_threshold(float min_kept, double rate);
  // Hierarchical: children off (all zero) during a parents-first phase of training.
  void set_children_on(bool on) { children_on_ = on; }
  // The sparse step (SaeConfig::sparse_decode) on or off from the next call on: the trainer's
  // decode = "auto" chooses per step. Not for jumprelu (an internal error).
  void set_sparse(bool on);
  bool sparse() const { return sparse_; }
  // Hierarchical: removes from every child's decoder row its component along its parent's row, so a
  // child refines its parent instead of duplicating it.
  void orthogonalize_children();
  // The derivative of that projection at the current parameters, applied to tangents of W_dec
  // ([F, d] each, in place): the tangents of the projected decoder. Call before
  // orthogonalize_children.
  void orthogonalize_children_tangents(const std::vector<TensorView>& dW_dec) const;

 private:
  void activation_backward(TensorView d, SaeWorkspace& ws, int64_t N) const;
  // Raw ∂L/∂f = dx̂ W_decᵀ into ws.df: dense, or on the sparse step where the activation backward
  // reads it (f ≠ 0, and the hierarchy's gated children in the band).
  void latent_grad(SaeWorkspace& ws, int64_t N) const;
  // gW = xcᵀ dpre and gb = Σ_n dpre (dpre [N, F], rows [0, N) of ws.xc): a GEMM and a column sum,
  // or on the sparse step over the non-zeros of dpre.
  void encoder_grad(TensorView gW, TensorView gb, TensorView dpre, SaeWorkspace& ws) const;
  // ws.pre rows [0, N) = (x − b_dec) W_enc, b_enc not yet added (each encoder's epilogue adds it).
  void encoder_gemm(TensorView x, SaeWorkspace& ws) const;
  void encode_batch_topk(TensorView x, SaeWorkspace& ws, TensorView fires, TensorView mass) const;
  void jumprelu_backward(SaeParams& g, SaeWorkspace& ws, float l0_coefficient, int64_t N) const;
  void matryoshka_backward(TensorView x, SaeParams& g, SaeWorkspace& ws, SaeBatchStats& st) const;
  void aux_k(const SaeLossTerms& terms, SaeParams& g, SaeWorkspace& ws, SaeBatchStats& st) const;
  std::vector<float> hyper_dpre_J(SaeWorkspace& ws, int64_t N, const SaeBatchStats& st, SaeHyperRequest& h) const;
  void hyper_grad_J(const SaeLossTerms& terms, const std::vector<float>& j_norm_row, const SaeParams& g,
                    SaeWorkspace& ws, const SaeBatchStats& st, SaeHyperRequest& h) const;
  void hyper_g_alpha(const SaeLossTerms& terms, SaeWorkspace& ws, const SaeBatchStats& st, SaeHyperRequest& h) const;
  SaeConfig cfg_;
  Backend& be_;
  SaeParams params_;
  bool children_on_ = true;
  bool sparse_ = false;
};

// Matryoshka prefix widths: strictly increasing, positive, the last = d_sae; throws Error naming
// matryoshka_widths with what was expected and found.
void check_matryoshka_widths(const std::vector<int>& widths, int d_sae);

// Refuses to apply an SAE at a hook other than the one it was trained on (its cfg's hook_name; an
// empty hook_name accepts any), naming both.
void check_sae_hook(const Sae& sae, const std::string& hook);

}  // namespace saelab
