// The thresholded SAEs' own pieces of the forward and backward (sae.hpp): batchtopk's batch top-k
// and its global threshold, jumprelu's threshold and its pseudo-gradient, matryoshka's prefixes.
#include <cmath>

#include "saelab/sae.hpp"

namespace saelab {

void check_matryoshka_widths(const std::vector<int>& widths, int d_sae) {
  auto list = [&] {
    std::string s;
    for (int w : widths) s += (s.empty() ? "" : ", ") + std::to_string(w);
    return "[" + s + "]";
  };
  if (widths.empty() || widths.back() != d_sae)
    fail("matryoshka_widths must end at d_sae = {} (the whole dictionary is the last prefix), found {}", d_sae, list());
  for (size_t j = 0; j < widths.size(); ++j)
    if (widths[j] <= 0 || (j > 0 && widths[j] <= widths[j - 1]))
      fail("matryoshka_widths must be positive and strictly increasing, found {}", list());
}

void Sae::refresh_threshold() {
  SAELAB_ASSERT(cfg_.architecture == SaeArchitecture::JumpReLU, "refresh_threshold of a {} SAE",
                sae_architecture_name(cfg_.architecture));
  std::vector<float> t = to_host_f32(be_, params_.log_threshold);
  for (float& v : t) v = std::exp(v);
  be_.upload(params_.threshold, t.data());
}

void Sae::update_batch_threshold(float min_kept, double rate) {
  SAELAB_ASSERT(sae_is_batch_topk(cfg_.architecture), "update_batch_threshold of a {} SAE",
                sae_architecture_name(cfg_.architecture));
  if (!(min_kept > 0.f)) return;  // SAELens: no update when nothing positive was kept
  const double old = to_host_f32(be_, params_.threshold.rows(0, 1))[0];
  const float now = static_cast<float>((1.0 - rate) * old + rate * static_cast<double>(min_kept));
  std::vector<float> t(static_cast<size_t>(cfg_.d_sae), now);
  be_.upload(params_.threshold, t.data());
}

// Training's encoder of batchtopk and matryoshka: the k·N largest ReLU(pre) of the batch.
void Sae::encode_batch_topk(TensorView x, SaeWorkspace& ws, TensorView fires, TensorView mass) const {
  const int64_t N = x.dim(0);
  encoder_gemm(x, ws);
  TensorView pre = ws.pre.view().rows(0, N), f = ws.f.view().rows(0, N);
  ws.min_kept = be_.batch_topk(f, pre, params_.b_enc, static_cast<int64_t>(cfg_.k) * N, fires, mass);
}

// ∂L/∂f → ∂L/∂pre in place on ws.df, and ∂L/∂log θ into g.log_threshold (Backend::jumprelu_backward
// with c = λ/N: the L0 penalty is λ/N Σ_n Σ_i step(pre_ni − θ_i)).
void Sae::jumprelu_backward(SaeParams& g, SaeWorkspace& ws, float l0_coefficient, int64_t N) const {
  be_.jumprelu_backward(g.log_threshold, ws.df.view().rows(0, N), ws.f.view().rows(0, N), ws.pre.view().rows(0, N),
                        params_.threshold, cfg_.jumprelu_bandwidth, l0_coefficient / static_cast<float>(N));
}

// Matryoshka over groups G_j = [w_{j−1}, w_j) of latents (w_0 = 0), prefix m reconstructing
// x̂_m = b_dec + Σ_{j ≤ m} f_{G_j} W_dec,G_j with loss (1/N)‖x − x̂_m‖² for every m (the last, m = M,
// is the full x̂ whose dx̂ forward_backward already holds). Group j's latents serve every prefix
// m ≥ j, so with D_j = Σ_{m ≥ j} dx̂_m (dx̂_m = (2/N)(x̂_m − x)):
//   ∂L/∂W_dec,G_j = f_G_jᵀ D_j,   ∂L/∂f_G_j = D_j W_dec,G_jᵀ,   ∂L/∂b_dec = Σ_n D_1
// Walking the groups from the last, x̂_{j−1} = x̂_j − f_G_j W_dec,G_j and D grows by one dx̂ a group.
// Leaves the raw ∂L/∂f in ws.df (group by group: only each group's own columns), g.W_dec, and
// the decoder's part of g.b_dec; adds the inner prefixes' squared errors to st.prefix_sse.
void Sae::matryoshka_backward(TensorView x, SaeParams& g, SaeWorkspace& ws, SaeBatchStats& st) const {
  const int64_t N = st.n;
  const float invN = 1.0f / static_cast<float>(N);
  TensorView f = ws.f.view().rows(0, N), df = ws.df.view().rows(0, N), cur = ws.lvl_x.view().rows(0, N);
  TensorView D = ws.lvl_d.view().rows(0, N), tmp = ws.ehat.view().rows(0, N);
  TensorView fg = ws.f_group.view().rows(0, N), dfg = ws.f_aux.view().rows(0, N);  // f_aux: free until aux-k
  be_.copy(cur, ws.xhat.view().rows(0, N));
  be_.copy(D, ws.dxhat.view().rows(0, N));
  const std::vector<int>& w = cfg_.matryoshka_widths;
  for (int64_t j = static_cast<int64_t>(w.size()) - 1; j >= 0; --j) {
    const int64_t c0 = j == 0 ? 0 : w[j - 1], c1 = w[j];
    if (j + 1 < static_cast<int64_t>(w.size())) {  // an inner prefix: cur holds x̂_j
      be_.scaled_diff(tmp, cur, x, 2.0f * invN);
      st.prefix_sse += be_.sum_squares(tmp) / (4.0 * invN * invN);
      be_.axpy(D, tmp, 1.f);
    }
    be_.keep_columns(fg, f, c0, c1);
    const float beta = j + 1 == static_cast<int64_t>(w.size()) ? 0.f : 1.f;  // rows outside G_j get + 0
    if (sparse_) {
      be_.sparse_decode_grad_w(g.W_dec, fg, D, 1.f, beta);
      be_.sparse_decode_grad_f(dfg, fg, D, params_.W_dec);  // non-zero only in G_j
    } else {
      be_.gemm(g.W_dec, fg, true, D, false, 1.f, beta);         // [F, N] x [N, d]
      be_.gemm(dfg, D, false, params_.W_dec, true, 1.f, 0.f);   // [N, d] x [d, F]
      be_.keep_columns(dfg, dfg, c0, c1);
    }
    if (beta == 0.f) be_.copy(df, dfg);
    else be_.axpy(df, dfg, 1.f);
    if (j == 0) break;
    if (sparse_) be_.sparse_decode(tmp, fg, params_.W_dec);
    else be_.gemm(tmp, fg, false, params_.W_dec, false, 1.f, 0.f);  // f_G_j W_dec,G_j [N, d]
    be_.axpy(cur, tmp, -1.f);
  }
  be_.col_sum(g.b_dec, D, 1.f, 0.f);
}

}  // namespace saelab
