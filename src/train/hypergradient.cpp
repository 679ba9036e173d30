#include "hypergradient.hpp"

#include <cmath>

namespace saelab {

void HyperState::init(const SaeConfig& c, Device device, size_t levels, bool forward_mode) {
  grad_J = SaeParams(c, device);
  g_alpha = SaeParams(c, device);
  u = SaeParams(c, device);
  step_u = SaeParams(c, device);
  u_bdec.assign(levels, std::vector<float>(static_cast<size_t>(c.d_in), 0.f));
  have_u = false;
  forward = forward_mode;
  z.clear(), zm.clear(), zv.clear(), dg.clear();
  if (!forward) return;
  for (size_t l = 0; l < levels; ++l) {
    z.emplace_back(c, device);
    zm.emplace_back(c, device);
    zv.emplace_back(c, device);
    dg.emplace_back(c, device);
  }
  shifted = SaeParams(c, device);
  grad_shifted = SaeParams(c, device);
}

void HyperState::reset_tangents() {
  if (!forward) return;
  for (size_t l = 0; l < z.size(); ++l) {
    Backend& be = backend_for(z[l].flat.view().device);
    be.scale(z[l].flat, 0.f), be.scale(zm[l].flat, 0.f), be.scale(zv[l].flat, 0.f);
  }
}

namespace {

double dot(Backend& be, const Tensor& a, const Tensor& b) {
  Tensor out({1}, DType::F32, be.device());
  const int64_t P = a.numel();
  be.row_dot(out, a.view().reshape({1, P}), b.view().reshape({1, P}));
  return to_host_f32(be, out)[0];
}

// g_α restricted to level l: its latents' encoder columns, biases and decoder rows, and the
// level's share of b_dec (the only parameter the levels share).
void level_part(const Sae& sae, const SaeParams& g_alpha, const std::vector<float>& bdec_l, std::pair<int, int> range,
                bool only_level, SaeParams& out) {
  Backend& be = sae.backend();
  const int64_t d = sae.config().d_in, F = sae.config().d_sae;
  be.copy(out.flat, g_alpha.flat);
  be.upload(out.b_dec, bdec_l.data());
  if (only_level) return;
  std::vector<float> W_enc = to_host_f32(be, out.W_enc), b_enc = to_host_f32(be, out.b_enc),
                     W_dec = to_host_f32(be, out.W_dec);
  for (int64_t i = 0; i < F; ++i) {
    if (i >= range.first && i < range.second) continue;
    for (int64_t j = 0; j < d; ++j) W_enc[j * F + i] = 0.f, W_dec[i * d + j] = 0.f;
    b_enc[i] = 0.f;
  }
  be.upload(out.W_enc, W_enc.data());
  be.upload(out.b_enc, b_enc.data());
  be.upload(out.W_dec, W_dec.data());
}

}  // namespace

std::vector<double> forward_hypergradients(const Sae& sae, const HyperState& hs) {
  std::vector<double> h;
  for (const SaeParams& z : hs.z) h.push_back(dot(sae.backend(), hs.grad_J.flat, z.flat));
  return h;
}

void forward_gradient_tangents(const Sae& sae, HyperState& hs, const SaeParams& g,
                               const std::vector<std::pair<int, int>>& levels,
                               const std::vector<std::vector<float>>& g_alpha_bdec, const GradientAt& gradient_at) {
  Backend& be = sae.backend();
  const double w_norm = std::sqrt(be.sum_squares(sae.params().flat));
  for (size_t l = 0; l < levels.size(); ++l) {
    level_part(sae, hs.g_alpha, g_alpha_bdec[l], levels[l], levels.size() == 1, hs.dg[l]);
    const double z_norm = std::sqrt(be.sum_squares(hs.z[l].flat));
    if (!(z_norm > 0) || !(w_norm > 0)) continue;  // no history yet: dg = g_α
    // A step of 1e-3 of ‖W‖ along Z: large against f32 rounding of the gradient, small against
    // the curvature's changes (ReLU switches of a few tokens).
    const float eps = static_cast<float>(1e-3 * w_norm / z_norm);
    be.copy(hs.shifted.flat, sae.params().flat);
    be.axpy(hs.shifted.flat, hs.z[l].flat, eps);
    gradient_at(hs.shifted.flat, hs.grad_shifted);
    be.scaled_diff(hs.grad_shifted.flat, hs.grad_shifted.flat, g.flat, 1.0f / eps);  // H Z_l
    be.axpy(hs.dg[l].flat, hs.grad_shifted.flat, 1.f);
  }
}

void update_forward_tangents(const Sae& sae, HyperState& hs, const SaeParams& g, const SaeParams& m,
                             const SaeParams& v, float lr, float beta1, float beta2, float eps, int64_t t) {
  Backend& be = sae.backend();
  const double wn = std::sqrt(be.sum_squares(sae.params().flat));
  for (size_t l = 0; l < hs.z.size(); ++l) {
    if (hs.decay > 0.f) {  // truncation: older updates fade with this factor per step
      be.scale(hs.z[l].flat, hs.decay), be.scale(hs.zm[l].flat, hs.decay), be.scale(hs.zv[l].flat, hs.decay);
    }
    be.adam_forward_tangent(hs.z[l].flat, hs.zm[l].flat, hs.zv[l].flat, g.flat, hs.dg[l].flat, m.flat, v.flat, lr,
                            beta1, beta2, eps, t);
    // Training is chaotic over long horizons: the linearised dynamics can grow Z exponentially
    // (measured: h ~ 1e12 within 1000 steps under the linear L0 controller even with decay .99).
    // A tangent with ‖Z‖ > ‖W‖ claims a unit change of α moves W by more than its whole norm, far
    // outside where the linearisation means anything: such a Z is scaled back to ‖W‖ (with its
    // moments' tangents), keeping its direction.
    const double zn = std::sqrt(be.sum_squares(hs.z[l].flat));
    if (zn > wn && wn > 0) {
      const float s = static_cast<float>(wn / zn);
      be.scale(hs.z[l].flat, s), be.scale(hs.zm[l].flat, s), be.scale(hs.zv[l].flat, s);
    }
  }
  hs.have_u = true;
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
