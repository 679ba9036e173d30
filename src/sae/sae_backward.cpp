// Forward + analytic backward of one batch. With e = x̂ − x, N tokens, n_i = ‖W_dec,i‖:
//   L = (1/N) Σ_n ‖e_n‖² + (λ/N) Σ_n Σ_i w_i f_ni n_i (+ aux-k term for topk)
//   ∂L/∂x̂ = (2/N) e                                  dx̂       [N, d]
//   ∂L/∂W_dec = fᵀ dx̂ + diag((λ/N) w_i Σ_n f_ni / n_i) W_dec    [F, d]
//   ∂L/∂b_dec = Σ_n dx̂_n − W_enc Σ_n dpre_n   (second term only with apply_b_dec_to_input)
//   ∂L/∂f = dx̂ W_decᵀ + (λ/N) w_i n_i,  dpre = ∂L/∂f · 1[f > 0]   [N, F]
//   ∂L/∂W_enc = (x − b_dec)ᵀ dpre,  ∂L/∂b_enc = Σ_n dpre_n
// Aux-k (topk): dead latents reconstruct the detached residual r = x − x̂ from their top-k_aux
// pre-activations, ê = f_aux W_dec; L_aux = c·s·(1/N) Σ_n ‖ê_n − r_n‖², s = min(#dead / k_aux, 1).
// Five GEMMs of 2·N·d·F FLOPs each (10·d·F per token); [F]-sized vectors are combined on the host.
#include "saelab/sae.hpp"

#include <algorithm>
#include <cmath>

namespace saelab {

SaeBatchStats Sae::forward_backward(TensorView x, const SaeLossTerms& terms, SaeParams& g, SaeWorkspace& ws,
                                    SaeHyperRequest* hyper) const {
  const int64_t N = x.dim(0), F = cfg_.d_sae, d = cfg_.d_in;
  SAELAB_ASSERT(N > 0, "empty batch");
  Tensor fires({F}, DType::F32, be_.device());
  encode(x, ws, fires, ws.vec_F);
  decode(ws, N);
  TensorView xc = ws.xc.view().rows(0, N), f = ws.f.view().rows(0, N), xhat = ws.xhat.view().rows(0, N);
  TensorView dxhat = ws.dxhat.view().rows(0, N), df = ws.df.view().rows(0, N);
  const float invN = 1.0f / static_cast<float>(N);

  SaeBatchStats st;
  st.n = N;
  be_.scaled_diff(dxhat, xhat, x, 2.0f * invN);
  st.sse = be_.sum_squares(dxhat) / (4.0 * invN * invN);

  // Per-latent vectors on the host: fires, Σ_n f, decoder norms, penalty and norm-gradient factors.
  st.fires = to_host_f32(be_, fires);
  st.fsum = to_host_f32(be_, ws.vec_F);
  const std::vector<float>& fsum = st.fsum;
  for (float c : st.fires) st.l0 += c;
  std::vector<float> pen(static_cast<size_t>(F), 0.f), norm_grad(static_cast<size_t>(F), 0.f);
  const bool penalised = cfg_.architecture != SaeArchitecture::TopK;
  const bool l1 = penalised && terms.l1_coefficient != 0.f;
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

  // Decoder and its bias.
  if (cfg_.sparse_decode) be_.sparse_decode_grad_w(g.W_dec, f, dxhat, 1.f, 0.f);
  else be_.gemm(g.W_dec, f, true, dxhat, false, 1.f, 0.f);  // [F, N] x [N, d]
  if (l1) {
    be_.copy(ws.dec_tmp, params_.W_dec);
    be_.upload(ws.vec_F.view(), norm_grad.data());
    be_.scale_rows(ws.dec_tmp, ws.vec_F);
    be_.axpy(g.W_dec, ws.dec_tmp, 1.f);
  }
  be_.col_sum(g.b_dec, dxhat, 1.f, 0.f);

  // Back into the latents.
  // Sparse: only where f ≠ 0, which is all the ReLU / top-k backward below keeps.
  if (cfg_.sparse_decode) be_.sparse_decode_grad_f(df, f, dxhat, params_.W_dec);
  else be_.gemm(df, dxhat, false, params_.W_dec, true, 1.f, 0.f);  // [N, d] x [d, F]
  be_.upload(ws.pen.view(), pen.data());
  if (cfg_.architecture == SaeArchitecture::Hierarchical)
    be_.hierarchy_backward(df, f, ws.pre.view().rows(0, N), ws.pen, cfg_.n_parents, cfg_.children_per_parent,
                           cfg_.gate_ste_width);
  else
    be_.relu_backward(df, f, ws.pen);

  // Aux-k: dead latents model the residual the live ones leave.
  if (cfg_.architecture == SaeArchitecture::TopK && !terms.dead.empty()) {
    int64_t n_dead = 0;
    for (float v : terms.dead) n_dead += v != 0.f;
    if (n_dead > 0 && cfg_.aux_coefficient > 0.f) {
      const float scale = std::min(1.0f, static_cast<float>(n_dead) / static_cast<float>(cfg_.k_aux));
      const float c = cfg_.aux_coefficient * scale;
      TensorView f_aux = ws.f_aux.view().rows(0, N), ehat = ws.ehat.view().rows(0, N), pre = ws.pre.view().rows(0, N);
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
      std::fill(pen.begin(), pen.end(), 0.f);
      be_.upload(ws.pen.view(), pen.data());
      be_.relu_backward(pre, f_aux, ws.pen);
      be_.axpy(df, pre, 1.f);
    }
  }

  // Encoder.
  be_.gemm(g.W_enc, xc, true, df, false, 1.f, 0.f);  // [d, N] x [N, F]
  be_.col_sum(g.b_enc, df, 1.f, 0.f);
  if (cfg_.apply_b_dec_to_input) {
    // b_dec also enters through x − b_dec: ∂/∂b_dec −= W_enc Σ_n dpre_n.
    be_.gemm(g.b_dec.reshape({d, 1}), params_.W_enc, false, g.b_enc.reshape({F, 1}), false, -1.f, 1.f);
  }
  if (hyper) hyper_terms(x, terms, pen, g, ws, st, *hyper);
  return st;
}

// ∇J and g_α reuse the batch's forward and the training gradients (see the header):
//   dpre_J = dpre + (λ_J/(Nε) sech²(f/ε) − pen_i)·1[f > 0],  ∇J_W_dec = ∇L_W_dec − (norm term)
//   dpre_α = (λ/N) dw_i ‖W_dec,i‖ · 1[f > 0],  g_α,W_dec = diag((λ/N) dw_i Σ_n f_ni / ‖W_dec,i‖) W_dec
// Two extra GEMMs ((x − b_dec)ᵀ dpre_J and (x − b_dec)ᵀ dpre_α); the rest is elementwise.
void Sae::hyper_terms(TensorView x, const SaeLossTerms& terms, const std::vector<float>& pen, const SaeParams& g,
                      SaeWorkspace& ws, const SaeBatchStats& st, SaeHyperRequest& h) const {
  SAELAB_ASSERT(cfg_.architecture != SaeArchitecture::TopK, "hypergradients need a penalised SAE");
  SAELAB_ASSERT(h.grad_J && h.g_alpha && static_cast<int>(h.dw.size()) == cfg_.d_sae, "hyper request incomplete");
  const int64_t N = x.dim(0), F = cfg_.d_sae, d = cfg_.d_in;
  const float invN = 1.0f / static_cast<float>(N);
  TensorView xc = ws.xc.view().rows(0, N), f = ws.f.view().rows(0, N), dxhat = ws.dxhat.view().rows(0, N);
  TensorView dpre = ws.df.view().rows(0, N), work = ws.pre.view().rows(0, N);
  SaeParams& gJ = *h.grad_J;
  SaeParams& ga = *h.g_alpha;

  // ∇J. ws.dec_tmp holds diag(norm_grad) W_dec when λ ≠ 0 (the norm term of ∇L_W_dec).
  const bool l1 = terms.l1_coefficient != 0.f;
  if (l1) be_.scaled_diff(gJ.W_dec, g.W_dec, ws.dec_tmp, 1.f);
  else be_.copy(gJ.W_dec, g.W_dec);
  const float c = h.smooth_l0 ? h.lambda_J * invN / h.eps : 0.f;
  be_.upload(ws.pen.view(), pen.data());
  be_.smooth_l0_grad(work, dpre, f, ws.pen, c, h.eps);
  be_.gemm(gJ.W_enc, xc, true, work, false, 1.f, 0.f);
  be_.col_sum(gJ.b_enc, work, 1.f, 0.f);
  be_.col_sum(gJ.b_dec, dxhat, 1.f, 0.f);
  if (cfg_.apply_b_dec_to_input)
    be_.gemm(gJ.b_dec.reshape({d, 1}), params_.W_enc, false, gJ.b_enc.reshape({F, 1}), false, -1.f, 1.f);
  h.J = st.sse * invN + (h.smooth_l0 ? static_cast<double>(h.lambda_J) * invN * be_.sum_tanh(f, h.eps) : 0.0);

  // g_α.
  std::vector<float> pen_a(static_cast<size_t>(F)), row_a(static_cast<size_t>(F)), benc_a(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i) {
    const float n = st.dec_norms[i];
    pen_a[i] = terms.l1_coefficient * invN * h.dw[i] * n;
    row_a[i] = n > 0 ? terms.l1_coefficient * invN * h.dw[i] * st.fsum[i] / n : 0.f;
    benc_a[i] = pen_a[i] * st.fires[i];  // Σ_n dpre_α[n, i]
  }
  be_.scale(work, 0.f);
  be_.upload(ws.pen.view(), pen_a.data());
  be_.relu_backward(work, f, ws.pen);
  be_.gemm(ga.W_enc, xc, true, work, false, 1.f, 0.f);
  be_.upload(ga.b_enc, benc_a.data());
  be_.copy(ga.W_dec, params_.W_dec);
  be_.upload(ws.vec_F.view(), row_a.data());
  be_.scale_rows(ga.W_dec, ws.vec_F);
  // b_dec: −W_enc Σ_n dpre_α, split by level (a GEMV on the level's entries of Σ_n dpre_α).
  h.g_alpha_bdec.assign(h.levels.size(), std::vector<float>(static_cast<size_t>(d), 0.f));
  std::vector<float> total(static_cast<size_t>(d), 0.f);
  Tensor part({d}, DType::F32, be_.device());
  for (size_t l = 0; l < h.levels.size(); ++l) {
    if (!cfg_.apply_b_dec_to_input) continue;
    std::vector<float> masked(static_cast<size_t>(F), 0.f);
    for (int i = h.levels[l].first; i < h.levels[l].second; ++i) masked[i] = benc_a[i];
    be_.upload(ws.vec_F.view(), masked.data());
    be_.gemm(part.view().reshape({d, 1}), params_.W_enc, false, ws.vec_F.view().reshape({F, 1}), false, -1.f, 0.f);
    h.g_alpha_bdec[l] = to_host_f32(be_, part);
    for (int64_t j = 0; j < d; ++j) total[j] += h.g_alpha_bdec[l][j];
  }
  be_.upload(ga.b_dec, total.data());
}

}  // namespace saelab
