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

SaeBatchStats Sae::forward_backward(TensorView x, const SaeLossTerms& terms, SaeParams& g, SaeWorkspace& ws) const {
  const int64_t N = x.dim(0), F = cfg_.d_sae, d = cfg_.d_in;
  SAELAB_ASSERT(N > 0, "empty batch");
  encode(x, ws);
  decode(ws, N);
  TensorView xc = ws.xc.view().rows(0, N), f = ws.f.view().rows(0, N), xhat = ws.xhat.view().rows(0, N);
  TensorView dxhat = ws.dxhat.view().rows(0, N), df = ws.df.view().rows(0, N);
  const float invN = 1.0f / static_cast<float>(N);

  SaeBatchStats st;
  st.n = N;
  be_.scaled_diff(dxhat, xhat, x, 2.0f * invN);
  st.sse = be_.sum_squares(dxhat) / (4.0 * invN * invN);

  // Per-latent vectors on the host: fires, Σ_n f, decoder norms, penalty and norm-gradient factors.
  Tensor fires({F}, DType::F32, be_.device());
  be_.latent_stats(fires, ws.vec_F, f);
  const std::vector<float> nfire = to_host_f32(be_, fires), fsum = to_host_f32(be_, ws.vec_F);
  for (float c : nfire) st.l0 += c;
  std::vector<float> pen(static_cast<size_t>(F), 0.f), norm_grad(static_cast<size_t>(F), 0.f);
  const bool l1 = cfg_.architecture == SaeArchitecture::Standard && terms.l1_coefficient != 0.f;
  if (l1) {
    be_.row_norms(ws.vec_F, params_.W_dec);
    const std::vector<float> norms = to_host_f32(be_, ws.vec_F);
    for (int64_t i = 0; i < F; ++i) {
      const float w = terms.penalty_weights.empty() ? 1.f : terms.penalty_weights[i];
      pen[i] = terms.l1_coefficient * invN * w * norms[i];
      norm_grad[i] = norms[i] > 0 ? terms.l1_coefficient * invN * w * fsum[i] / norms[i] : 0.f;
      st.penalty += static_cast<double>(terms.l1_coefficient) * w * norms[i] * fsum[i];
    }
  }

  // Decoder and its bias.
  be_.gemm(g.W_dec, f, true, dxhat, false, 1.f, 0.f);  // [F, N] x [N, d]
  if (l1) {
    be_.copy(ws.dec_tmp, params_.W_dec);
    be_.upload(ws.vec_F.view(), norm_grad.data());
    be_.scale_rows(ws.dec_tmp, ws.vec_F);
    be_.axpy(g.W_dec, ws.dec_tmp, 1.f);
  }
  be_.col_sum(g.b_dec, dxhat, 1.f, 0.f);

  // Back into the latents.
  be_.gemm(df, dxhat, false, params_.W_dec, true, 1.f, 0.f);  // [N, d] x [d, F]
  be_.upload(ws.pen.view(), pen.data());
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
  return st;
}

}  // namespace saelab
