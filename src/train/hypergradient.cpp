#include "hypergradient.hpp"

namespace saelab {

void HyperState::init(const SaeConfig& c, Device device, size_t levels) {
  grad_J = SaeParams(c, device);
  g_alpha = SaeParams(c, device);
  u = SaeParams(c, device);
  step_u = SaeParams(c, device);
  u_bdec.assign(levels, std::vector<float>(static_cast<size_t>(c.d_in), 0.f));
  have_u = false;
}

std::vector<double> level_hypergradients(const Sae& sae, const HyperState& hs,
                                         const std::vector<std::pair<int, int>>& levels) {
  Backend& be = sae.backend();
  const int64_t F = sae.config().d_sae;
  Tensor col({F}, DType::F32, be.device()), row({F}, DType::F32, be.device());
  be.col_dot(col, hs.grad_J.W_enc, hs.u.W_enc);
  be.row_dot(row, hs.grad_J.W_dec, hs.u.W_dec);
  const std::vector<float> c = to_host_f32(be, col), r = to_host_f32(be, row);
  const std::vector<float> gb = to_host_f32(be, hs.grad_J.b_enc), ub = to_host_f32(be, hs.u.b_enc);
  const std::vector<float> gbd = to_host_f32(be, hs.grad_J.b_dec);
  std::vector<double> h(levels.size(), 0.0);
  for (size_t l = 0; l < levels.size(); ++l) {
    for (int i = levels[l].first; i < levels[l].second; ++i)
      h[l] += static_cast<double>(c[i]) + static_cast<double>(gb[i]) * ub[i] + static_cast<double>(r[i]);
    for (size_t j = 0; j < gbd.size(); ++j) h[l] += static_cast<double>(gbd[j]) * hs.u_bdec[l][j];
  }
  return h;
}

void update_tangent(const Sae& sae, HyperState& hs, const SaeParams& grads, const SaeParams& m, const SaeParams& v,
                    const std::vector<std::vector<float>>& g_alpha_bdec, float lr, float beta1, float beta2, float eps,
                    int64_t t) {
  Backend& be = sae.backend();
  if (hs.decay > 0.f && hs.have_u) {
    be.adam_tangent(hs.step_u.flat, grads.flat, hs.g_alpha.flat, m.flat, v.flat, lr, beta1, beta2, eps, t);
    be.scale(hs.u.flat, hs.decay);
    be.axpy(hs.u.flat, hs.step_u.flat, 1.f);
  } else {
    be.adam_tangent(hs.u.flat, grads.flat, hs.g_alpha.flat, m.flat, v.flat, lr, beta1, beta2, eps, t);
  }
  // The tangent is linear in g_α, so b_dec's per-level shares are tangents of the per-level g_α.
  Tensor ga({sae.config().d_in}, DType::F32, be.device()), u({sae.config().d_in}, DType::F32, be.device());
  for (size_t l = 0; l < g_alpha_bdec.size(); ++l) {
    be.upload(ga.view(), g_alpha_bdec[l].data());
    be.adam_tangent(u, grads.b_dec, ga, m.b_dec, v.b_dec, lr, beta1, beta2, eps, t);
    const std::vector<float> step = to_host_f32(be, u);
    const float keep = hs.have_u ? hs.decay : 0.f;
    for (size_t j = 0; j < step.size(); ++j) hs.u_bdec[l][j] = keep * hs.u_bdec[l][j] + step[j];
  }
  hs.have_u = true;
}

}  // namespace saelab
