// Forward + analytic backward of one batch. With e = x̂ − x, N tokens, n_i = ‖W_dec,i‖:
//   L = (1/N) Σ_n ‖e_n‖² + (λ/N) Σ_n Σ_i w_i f_ni n_i (+ aux-k term for topk)
//   ∂L/∂x̂ = (2/N) e                                  dx̂       [N, d]
//   ∂L/∂W_dec = fᵀ dx̂ + diag((λ/N) w_i Σ_n f_ni / n_i) W_dec    [F, d]
//   ∂L/∂b_dec = Σ_n dx̂_n − W_enc Σ_n dpre_n   (second term only with apply_b_dec_to_input)
//   ∂L/∂f = dx̂ W_decᵀ + (λ/N) w_i n_i,  dpre = ∂L/∂f · 1[f > 0]   [N, F]
//   ∂L/∂W_enc = (x − b_dec)ᵀ dpre,  ∂L/∂b_enc = Σ_n dpre_n
// Aux-k (topk family): dead latents reconstruct the detached residual r = x − x̂ from their top-k_aux
// pre-activations, ê = f_aux W_dec; L_aux = c·s·(1/N) Σ_n ‖ê_n − r_n‖², s = min(#dead / k_aux, 1).
// jumprelu, batchtopk and matryoshka: sae_threshold.cpp.
// Five GEMMs of 2·N·d·F FLOPs each (10·d·F per token); [F]-sized vectors are combined on the host.
// The sparse step (Sae::set_sparse) keeps only the encoder's forward GEMM: the other four products
// run over the non-zeros of f or of dpre (2·N·L0·d FLOPs each, plus O(N·F) scans).
#include "saelab/sae.hpp"

#include <algorithm>
#include <cmath>

namespace saelab {

SaeBatchStats Sae::forward_backward(TensorView x, const SaeLossTerms& terms, SaeParams& g, SaeWorkspace& ws,
                                    SaeHyperRequest* hyper) const {
  const int64_t N = x.dim(0), F = cfg_.d_sae, d = cfg_.d_in;
  SAELAB_ASSERT(N > 0, "empty batch");
  Tensor fires({F}, DType::F32, be_.device());
  if (sae_is_batch_topk(cfg_.architecture)) encode_batch_topk(x, ws, fires, ws.vec_F);
  else encode(x, ws, fires, ws.vec_F);
  decode(ws, N);
  TensorView f = ws.f.view().rows(0, N), xhat = ws.xhat.view().rows(0, N);
  TensorView dxhat = ws.dxhat.view().rows(0, N), df = ws.df.view().rows(0, N);
  const float invN = 1.0f / static_cast<float>(N);

  SaeBatchStats st;
  st.n = N;
  st.min_kept = ws.min_kept;
  be_.scaled_diff(dxhat, xhat, x, 2.0f * invN);
  st.sse = be_.sum_squares(dxhat) / (4.0 * invN * invN);

  // Per-latent vectors on the host: fires, Σ_n f, decoder norms, penalty and norm-gradient factors.
  st.fires = to_host_f32(be_, fires);
  st.fsum = to_host_f32(be_, ws.vec_F);
  const std::vector<float>& fsum = st.fsum;
  for (float c : st.fires) st.l0 += c;
  std::vector<float> pen(static_cast<size_t>(F), 0.f), norm_grad(static_cast<size_t>(F), 0.f);
  const bool penalised =
      cfg_.architecture == SaeArchitecture::Standard || cfg_.architecture == SaeArchitecture::Hierarchical;
  const bool l1 = penalised && terms.l1_coefficient != 0.f;
  // jumprelu's L0 penalty λ Σ_n Σ_i 1[pre_ni > θ_i]: f > 0 exactly where pre > θ (θ > 0).
  if (cfg_.architecture == SaeArchitecture::JumpReLU) st.penalty = static_cast<double>(terms.l1_coefficient) * st.l0;
  if (penalised) {
    be_.row_norms(ws.vec_F, params_.W_dec);
    st.dec_norms = to_host_f32(be_, ws.vec_F);
  }
  if (l1) {
    const std::vector<float>& norms = st.dec_norms;
    for (int64_t i = 0; i < F; ++i) {
      const float w = terms.penalty_weights.empty() ? 1.f : terms.penalty_weights[i];
      pen[i] = terms.l1_coefficient * invN * w * norms[i];
      norm_grad[i] = norms[i] > 0 ? terms.l1_coefficient * invN * w * fsum[i] / norms[i] : 0.f;
      st.penalty += static_cast<double>(terms.l1_coefficient) * w * norms[i] * fsum[i];
    }
  }

  if (cfg_.architecture == SaeArchitecture::MatryoshkaBatchTopK) {
    matryoshka_backward(x, g, ws, st);  // decoder, b_dec's decoder term and raw ∂L/∂f over every prefix
  } else {
    // Decoder and its bias.
    if (sparse_) be_.sparse_decode_grad_w(g.W_dec, f, dxhat, 1.f, 0.f);
    else be_.gemm(g.W_dec, f, true, dxhat, false, 1.f, 0.f);  // [F, N] x [N, d]
    if (l1) {
      be_.copy(ws.dec_tmp, params_.W_dec);
      be_.upload(ws.vec_F.view(), norm_grad.data());
      be_.scale_rows(ws.dec_tmp, ws.vec_F);
      be_.axpy(g.W_dec, ws.dec_tmp, 1.f);
    }
    be_.col_sum(g.b_dec, dxhat, 1.f, 0.f);
    latent_grad(ws, N);  // back into the latents
  }
  // J's ∂/∂pre reads the raw ∂MSE/∂f, which the activation backward below overwrites.
  std::vector<float> j_norm_row;
  if (hyper) j_norm_row = hyper_dpre_J(ws, N, st, *hyper);
  if (cfg_.architecture == SaeArchitecture::JumpReLU) {
    jumprelu_backward(g, ws, terms.l1_coefficient, N);
  } else {
    be_.upload(ws.pen.view(), pen.data());
    activation_backward(df, ws, N);
  }
  if (g.threshold.data) {  // the inference threshold is set, never trained; log θ only by jumprelu
    be_.scale(g.threshold, 0.f);
    if (cfg_.architecture != SaeArchitecture::JumpReLU) be_.scale(g.log_threshold, 0.f);
  }

  // Aux-k: dead latents model the residual the live ones leave.
  if (sae_is_topk_family(cfg_.architecture)) aux_k(terms, g, ws, st);

  encoder_grad(g.W_enc, g.b_enc, df, ws);
  if (cfg_.apply_b_dec_to_input) {
    // b_dec also enters through x − b_dec: ∂/∂b_dec −= W_enc Σ_n dpre_n.
    be_.gemm(g.b_dec.reshape({d, 1}), params_.W_enc, false, g.b_enc.reshape({F, 1}), false, -1.f, 1.f);
  }
  if (hyper) {
    hyper_grad_J(terms, j_norm_row, g, ws, st, *hyper);
    hyper_g_alpha(terms, ws, st, *hyper);  // ws.df is free now
  }
  return st;
}

// Raw ∂L/∂f and the encoder's gradients, dense or on the sparse step (Sae::set_sparse).
void Sae::latent_grad(SaeWorkspace& ws, int64_t N) const {
  TensorView f = ws.f.view().rows(0, N), dxhat = ws.dxhat.view().rows(0, N), df = ws.df.view().rows(0, N);
  if (!sparse_) {
    be_.gemm(df, dxhat, false, params_.W_dec, true, 1.f, 0.f);  // [N, d] x [d, F]
    return;
  }
  // The ReLU / top-k backward keeps ∂L/∂f where f ≠ 0 only; the hierarchy's gate also reads it at
  // children with pre > 0 of parents in its band, which the mask adds.
  const bool gate = cfg_.architecture == SaeArchitecture::Hierarchical && cfg_.gate_ste_width > 0.f;
  if (!gate) {
    be_.sparse_decode_grad_f(df, f, dxhat, params_.W_dec);
    return;
  }
  if (ws.grad_mask.empty()) ws.grad_mask = Tensor({ws.capacity, cfg_.d_sae}, DType::F32, be_.device());
  TensorView mask = ws.grad_mask.view().rows(0, N);
  be_.hierarchy_grad_mask(mask, f, ws.pre.view().rows(0, N), cfg_.n_parents, cfg_.children_per_parent,
                          cfg_.gate_ste_width);
  be_.sparse_decode_grad_f(df, mask, dxhat, params_.W_dec);
}

void Sae::encoder_grad(TensorView gW, TensorView gb, TensorView dpre, SaeWorkspace& ws) const {
  TensorView xc = ws.xc.view().rows(0, dpre.dim(0));
  if (sparse_) {
    be_.sparse_encode_grad_w(gW, gb, dpre, xc);
    return;
  }
  be_.gemm(gW, xc, true, dpre, false, 1.f, 0.f);  // [d, N] x [N, F]
  be_.col_sum(gb, dpre, 1.f, 0.f);
}

// Aux-k (topk family): dead latents reconstruct the residual r = x − x̂ from their top-k_aux
// pre-activations; adds its gradient to g.W_dec and ∂L/∂pre (ws.df) and its loss to st.aux.
void Sae::aux_k(const SaeLossTerms& terms, SaeParams& g, SaeWorkspace& ws, SaeBatchStats& st) const {
  if (terms.dead.empty() || cfg_.aux_coefficient <= 0.f) return;
  const int64_t N = st.n;
  int64_t n_dead = 0;
  for (float v : terms.dead) n_dead += v != 0.f;
  if (n_dead == 0) return;
  const float invN = 1.0f / static_cast<float>(N);
  const float scale = std::min(1.0f, static_cast<float>(n_dead) / static_cast<float>(cfg_.k_aux));
  const float c = cfg_.aux_coefficient * scale;
  TensorView f_aux = ws.f_aux.view().rows(0, N), ehat = ws.ehat.view().rows(0, N), pre = ws.pre.view().rows(0, N);
  TensorView dxhat = ws.dxhat.view().rows(0, N), df = ws.df.view().rows(0, N);
  be_.upload(ws.vec_F.view(), terms.dead.data());
  be_.topk_rows(f_aux, pre, TensorView{}, static_cast<int>(std::min<int64_t>(cfg_.k_aux, n_dead)), ws.vec_F);
  be_.gemm(ehat, f_aux, false, params_.W_dec, false, 1.f, 0.f);  // ê [N, d]
  // ê − r = ê − (x − x̂) = ê + (N/2)·dx̂;   dê = c·(2/N)(ê − r)
  be_.axpy(ehat, dxhat, 0.5f * static_cast<float>(N));
  st.aux = static_cast<double>(c) * be_.sum_squares(ehat);
  be_.scale(ehat, c * 2.0f * invN);
  be_.gemm(g.W_dec, f_aux, true, ehat, false, 1.f, 1.f);  // += f_auxᵀ dê
  // ∂L_aux/∂pre lands in ws.pre (no longer needed) and is added to dpre.
  be_.gemm(pre, ehat, false, params_.W_dec, true, 1.f, 0.f);
  std::vector<float> zero(static_cast<size_t>(cfg_.d_sae), 0.f);
  be_.upload(ws.pen.view(), zero.data());
  be_.relu_backward(pre, f_aux, ws.pen);
  be_.axpy(df, pre, 1.f);
}

// ∂L/∂f → ∂L/∂pre in place on d [N, F] with the per-latent penalty ws.pen: ReLU, and for the
// hierarchy its gate with the straight-through term. Training and g_α share it, so g_α is the
// derivative of the update training takes.
void Sae::activation_backward(TensorView d, SaeWorkspace& ws, int64_t N) const {
  TensorView f = ws.f.view().rows(0, N);
  if (cfg_.architecture == SaeArchitecture::Hierarchical)
    be_.hierarchy_backward(d, f, ws.pre.view().rows(0, N), ws.pen, cfg_.n_parents, cfg_.children_per_parent,
                           cfg_.gate_ste_width);
  else
    be_.relu_backward(d, f, ws.pen);
}

// J's ∂/∂pre into ws.dpre_J from the raw ∂MSE/∂f in ws.df, with a_i = ‖W_dec,i‖/ε (folded
// activations) and c = λ_J/N:  dpre_J = (df + c·a_i·sech²(a_i f))·1[f > 0]. Also J itself (into
// h.J, without the MSE, which hyper_grad_J adds) and, returned, J's decoder-norm factor per latent:
//   ∂/∂W_dec,i (λ_J/N) Σ_n tanh(f_ni‖W_dec,i‖/ε) = (c/ε) Σ_n sech²(·) f_ni · W_dec,i/‖W_dec,i‖
std::vector<float> Sae::hyper_dpre_J(SaeWorkspace& ws, int64_t N, const SaeBatchStats& st,
                                     SaeHyperRequest& h) const {
  SAELAB_ASSERT(cfg_.architecture == SaeArchitecture::Standard || cfg_.architecture == SaeArchitecture::Hierarchical,
                "hypergradients need an L1-penalised SAE");
  SAELAB_ASSERT(h.grad_J && h.g_alpha && h.g_alpha->size() == h.levels.size() &&
                    static_cast<int>(h.dw.size()) == cfg_.d_sae && h.eps > 0,
                "hyper request incomplete");
  const int64_t F = cfg_.d_sae;
  if (ws.dpre_J.empty()) {
    ws.dpre_J = Tensor({ws.capacity, F}, DType::F32, be_.device());
    ws.j_scale = Tensor({F}, DType::F32, be_.device());
    ws.j_sech = Tensor({F}, DType::F32, be_.device());
  }
  const float c = h.smooth_l0 ? h.lambda_J / static_cast<float>(N) : 0.f;
  std::vector<float> a(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i) a[i] = st.dec_norms[i] / h.eps;
  be_.upload(ws.j_scale.view(), a.data());
  TensorView f = ws.f.view().rows(0, N);
  be_.smooth_l0_grad(ws.dpre_J.view().rows(0, N), ws.df.view().rows(0, N), f, ws.j_scale, c, ws.j_sech);
  h.J = c != 0.f ? static_cast<double>(c) * be_.sum_tanh(f, ws.j_scale) : 0.0;
  std::vector<float> row = to_host_f32(be_, ws.j_sech);
  for (int64_t i = 0; i < F; ++i) row[i] = st.dec_norms[i] > 0 ? c / h.eps * row[i] / st.dec_norms[i] : 0.f;
  return row;
}

// ∇J from ws.dpre_J and the batch's reconstruction gradients:
//   ∇J_W_dec = fᵀ dx̂ + diag(j_norm_row) W_dec   (fᵀ dx̂ = ∇L_W_dec minus the penalty's norm term)
//   ∇J_W_enc = (x − b_dec)ᵀ dpre_J,  ∇J_b_enc = Σ_n dpre_J,  ∇J_b_dec = Σ_n dx̂ − W_enc Σ_n dpre_J
void Sae::hyper_grad_J(const SaeLossTerms& terms, const std::vector<float>& j_norm_row, const SaeParams& g,
                       SaeWorkspace& ws, const SaeBatchStats& st, SaeHyperRequest& h) const {
  const int64_t N = st.n, F = cfg_.d_sae, d = cfg_.d_in;
  TensorView dxhat = ws.dxhat.view().rows(0, N), dpre_J = ws.dpre_J.view().rows(0, N);
  SaeParams& gJ = *h.grad_J;
  // ws.dec_tmp holds diag(norm_grad) W_dec when λ ≠ 0 (the penalty's norm term of ∇L_W_dec).
  if (terms.l1_coefficient != 0.f) be_.scaled_diff(gJ.W_dec, g.W_dec, ws.dec_tmp, 1.f);
  else be_.copy(gJ.W_dec, g.W_dec);
  if (h.smooth_l0) {
    be_.copy(ws.dec_tmp, params_.W_dec);
    be_.upload(ws.vec_F.view(), j_norm_row.data());
    be_.scale_rows(ws.dec_tmp, ws.vec_F);
    be_.axpy(gJ.W_dec, ws.dec_tmp, 1.f);
  }
  encoder_grad(gJ.W_enc, gJ.b_enc, dpre_J, ws);
  be_.col_sum(gJ.b_dec, dxhat, 1.f, 0.f);
  if (cfg_.apply_b_dec_to_input)
    be_.gemm(gJ.b_dec.reshape({d, 1}), params_.W_enc, false, gJ.b_enc.reshape({F, 1}), false, -1.f, 1.f);
  h.J += st.sse / static_cast<double>(N);
}

// g_α per level: the training backward of the penalty alone with level l's ∂pen/∂α_l, through the
// same activation backward as training (the hierarchy's straight-through gate passes the children's
// part to their parents):
//   pen_α,i = (λ/N) dw_i ‖W_dec,i‖ (i in level l, else 0);  dpre_α = backward(0; pen_α)
//   g_α,W_enc = (x − b_dec)ᵀ dpre_α,  g_α,b_enc = Σ_n dpre_α,  g_α,b_dec = −W_enc Σ_n dpre_α
//   g_α,W_dec = diag((λ/N) dw_i Σ_n f_ni / ‖W_dec,i‖) W_dec   (level l's rows)
// One GEMM (or sparse product) per level; ws.df is the scratch.
void Sae::hyper_g_alpha(const SaeLossTerms& terms, SaeWorkspace& ws, const SaeBatchStats& st,
                        SaeHyperRequest& h) const {
  const int64_t N = st.n, F = cfg_.d_sae, d = cfg_.d_in;
  const float invN = 1.0f / static_cast<float>(N);
  TensorView work = ws.df.view().rows(0, N);
  for (size_t l = 0; l < h.levels.size(); ++l) {
    SaeParams& ga = (*h.g_alpha)[l];
    std::vector<float> pen_a(static_cast<size_t>(F), 0.f), row_a(static_cast<size_t>(F), 0.f);
    for (int i = h.levels[l].first; i < h.levels[l].second; ++i) {
      const float n = st.dec_norms[i];
      pen_a[i] = terms.l1_coefficient * invN * h.dw[i] * n;
      row_a[i] = n > 0 ? terms.l1_coefficient * invN * h.dw[i] * st.fsum[i] / n : 0.f;
    }
    be_.scale(work, 0.f);
    be_.upload(ws.pen.view(), pen_a.data());
    activation_backward(work, ws, N);
    encoder_grad(ga.W_enc, ga.b_enc, work, ws);  // support: f > 0 and the gate's in-band parents
    be_.copy(ga.W_dec, params_.W_dec);
    be_.upload(ws.vec_F.view(), row_a.data());
    be_.scale_rows(ga.W_dec, ws.vec_F);
    if (cfg_.apply_b_dec_to_input)
      be_.gemm(ga.b_dec.reshape({d, 1}), params_.W_enc, false, ga.b_enc.reshape({F, 1}), false, -1.f, 0.f);
    else
      be_.scale(ga.b_dec, 0.f);
  }
}

}  // namespace saelab
