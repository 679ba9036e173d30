#include "method_state.hpp"

#include <algorithm>
#include <cmath>

namespace saelab {

using json = nlohmann::json;

MethodState::MethodState(const TrainConfig& cfg, const Sae& sae)
    : cfg_(cfg),
      sae_(sae),
      levels_(sae.levels()),
      dual_(cfg.penalty == "dual_adaptive"),
      alpha_(alpha_mode_from_name(cfg.alpha_mode),
             cfg.alpha_per_level.empty() ? std::vector<double>(levels_.size(), cfg.alpha) : cfg.alpha_per_level,
             cfg.alpha_lr, cfg.alpha_optimizer == "adam") {
  SAELAB_ASSERT(alpha_.theta.size() == levels_.size(), "alpha_per_level checked against the architecture");
  if (dual_) weights_ = DualAdaptiveWeights(levels_, sae.config().d_sae, cfg.gamma, cfg.stats_decay, cfg.p_target);
  if (alpha_.mode() == AlphaMode::Learned) {
    hyper_.init(sae.config(), sae.backend().device(), levels_.size(), cfg.hypergradient == "forward");
    hyper_.decay = static_cast<float>(cfg.hyper_horizon_decay);
  }
}

SaeLossTerms MethodState::terms(float l1_warm) {
  SaeLossTerms t;
  t.l1_coefficient = static_cast<float>(l1_warm * lambda_scale_);
  warming_ = l1_warm < penalty_coefficient(cfg_);
  if (dual_) t.penalty_weights = weights_.weights(alpha_.alphas());
  return t;
}

void MethodState::penalty_weights(std::vector<float>& w_freq, std::vector<float>& w_mag, std::vector<float>& w) const {
  SAELAB_ASSERT(dual_, "penalty weights of a run without dual-adaptive penalties");
  weights_.components(w_freq, w_mag);
  w = weights_.weights(alpha_.alphas());
}

SaeHyperRequest* MethodState::hyper_request() {
  requested_ = false;
  if (alpha_.mode() != AlphaMode::Learned || !weights_.ready()) return nullptr;
  const double mean_m = weights_.typical_active_magnitude();
  if (mean_m <= 0) return nullptr;
  std::vector<float> wf, wm;
  weights_.components(wf, wm);
  request_.dw.resize(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) request_.dw[i] = wf[i] - wm[i];
  // method.md §2: ε ≈ 0.1 of the typical active magnitude, λ_J = λ·(that magnitude).
  request_.eps = static_cast<float>(cfg_.smooth_l0_eps_factor * mean_m);
  request_.lambda_J = static_cast<float>(cfg_.l1_coefficient * lambda_scale_ * mean_m);
  request_.smooth_l0 = cfg_.meta_objective == "mse_smooth_l0";
  request_.levels = levels_;
  request_.grad_J = &hyper_.grad_J;
  request_.g_alpha = &hyper_.g_alpha;
  requested_ = true;
  return &request_;
}

void MethodState::after_backward(const SaeBatchStats& st, const SaeLossTerms& terms, const SaeParams& g,
                                 const GradientAt& gradient_at) {
  if (alpha_.mode() == AlphaMode::Learned && requested_) {
    last_J_ = request_.J;
    last_lambda_J_ = request_.smooth_l0 ? request_.lambda_J : 0.0;
    if (hyper_.forward) {
      // α holds while λ ramps up: the trajectory so far says how α moves a warm-up, not training.
      if (hyper_.have_u && !warming_) alpha_.hyper_step(forward_hypergradients(sae_, hyper_));
      forward_gradient_tangents(sae_, hyper_, g, gradient_at);
    } else if (hyper_.have_u) {
      alpha_.hyper_step(level_hypergradients(sae_, hyper_));
    }
  } else if (alpha_.mode() == AlphaMode::Naive && dual_ && weights_.ready() && !st.dec_norms.empty()) {
    // ∂L/∂α_level = (λ/N) Σ_{i ∈ level} (w_freq,i − w_mag,i) ‖W_dec,i‖ Σ_n f_ni
    std::vector<float> wf, wm;
    weights_.components(wf, wm);
    std::vector<double> g(levels_.size(), 0.0);
    for (size_t l = 0; l < levels_.size(); ++l)
      for (int i = levels_[l].first; i < levels_[l].second; ++i)
        g[l] += static_cast<double>(terms.l1_coefficient) / static_cast<double>(st.n) * (wf[i] - wm[i]) *
                st.dec_norms[i] * st.fsum[i];
    alpha_.naive_step(g);
  }
}

void MethodState::after_adam(const SaeParams& grads, const SaeParams& m, const SaeParams& v, float lr, float beta1,
                             float beta2, float eps, int64_t t) {
  if (alpha_.mode() != AlphaMode::Learned || !requested_) return;
  if (hyper_.forward) update_forward_tangents(sae_, hyper_, grads, m, v, lr, beta1, beta2, eps, t);
  else update_tangent(sae_, hyper_, grads, m, v, lr, beta1, beta2, eps, t);
}

void MethodState::before_children_projection() {
  if (alpha_.mode() != AlphaMode::Learned || !hyper_.have_u) return;
  std::vector<TensorView> tangents;
  for (SaeParams* t : hyper_.parameter_tangents()) tangents.push_back(t->W_dec);
  sae_.orthogonalize_children_tangents(tangents);
}

void MethodState::set_alphas(const std::vector<double>& alphas) {
  SAELAB_ASSERT(alphas.size() == levels_.size(), "{} alphas for {} levels", alphas.size(), levels_.size());
  const bool learned = alpha_.mode() == AlphaMode::Learned;
  for (size_t l = 0; l < alphas.size(); ++l)
    alpha_.theta[l] = learned ? std::log(alphas[l] / (1.0 - alphas[l])) : alphas[l];
}

void MethodState::after_step(const SaeBatchStats& st) {
  if (dual_) {
    // Magnitudes of the folded activations f_i‖W_dec,i‖ (method.md §1): raw f drifts along the
    // (f·c, W_dec/c) symmetry, which the decoder-norm-weighted penalty does not see.
    SAELAB_ASSERT(st.dec_norms.size() == st.fsum.size(), "dual-adaptive statistics need the decoder norms");
    std::vector<float> folded(st.fsum.size());
    for (size_t i = 0; i < folded.size(); ++i) folded[i] = st.fsum[i] * st.dec_norms[i];
    weights_.update(st.fires, folded, st.n);
  }
  if (cfg_.target_l0 > 0) {
    // Multiplicative controller: λ grows while L0 is above target and shrinks below it.
    const double l0 = st.l0 / static_cast<double>(st.n);
    if (cfg_.l0_controller == "linear")
      lambda_scale_ *= std::exp(cfg_.l0_controller_rate * (l0 - cfg_.target_l0) / cfg_.target_l0);
    else if (!warming_)  // log: symmetric in L0/target, and no integration while λ ramps up
      lambda_scale_ *= std::exp(cfg_.l0_controller_rate * std::log(std::max(l0, 1e-3) / cfg_.target_l0));
  }
}

void MethodState::save(std::vector<std::pair<std::string, std::vector<float>>>& tensors, json& meta) const {
  json m;
  m["lambda_scale"] = lambda_scale_;
  m["alpha_theta"] = alpha_.theta;
  m["alpha_adam_m"] = alpha_.adam_m;
  m["alpha_adam_v"] = alpha_.adam_v;
  m["alpha_naive_t"] = alpha_.naive_t;
  m["last_J"] = last_J_;
  m["last_lambda_J"] = last_lambda_J_;
  if (dual_) {
    m["dual_seen"] = weights_.ready();
    tensors.push_back({"method.p", weights_.p});
    tensors.push_back({"method.m", weights_.m});
  }
  if (alpha_.mode() == AlphaMode::Learned) {
    m["have_u"] = hyper_.have_u;
    Backend& be = sae_.backend();
    for (size_t l = 0; l < hyper_.u.size(); ++l)
      tensors.push_back({"method.u." + std::to_string(l), to_host_f32(be, hyper_.u[l].flat)});
    for (size_t l = 0; l < hyper_.z.size(); ++l) {
      const std::string s = std::to_string(l);
      tensors.push_back({"method.z." + s, to_host_f32(be, hyper_.z[l].flat)});
      tensors.push_back({"method.zm." + s, to_host_f32(be, hyper_.zm[l].flat)});
      tensors.push_back({"method.zv." + s, to_host_f32(be, hyper_.zv[l].flat)});
    }
  }
  meta["method"] = m;
}

void MethodState::load(const SafetensorsFile& f, const json& meta) {
  if (!meta.contains("method")) return;
  const json& m = meta["method"];
  lambda_scale_ = m.value("lambda_scale", 1.0);
  alpha_.theta = m.at("alpha_theta").get<std::vector<double>>();
  alpha_.adam_m = m.at("alpha_adam_m").get<std::vector<double>>();
  alpha_.adam_v = m.at("alpha_adam_v").get<std::vector<double>>();
  alpha_.naive_t = m.at("alpha_naive_t").get<int64_t>();
  last_J_ = m.value("last_J", 0.0);
  last_lambda_J_ = m.value("last_lambda_J", 0.0);
  if (dual_) {
    weights_.p = f.read_f32("method.p");
    weights_.m = f.read_f32("method.m");
    weights_.set_seen(m.value("dual_seen", false));
  }
  if (alpha_.mode() == AlphaMode::Learned) {
    hyper_.have_u = m.value("have_u", false);
    Backend& be = sae_.backend();
    const int64_t P = hyper_.grad_J.flat.numel();
    for (size_t l = 0; l < hyper_.u.size(); ++l)
      be.upload(hyper_.u[l].flat.view(), f.read_f32("method.u." + std::to_string(l), {P}).data());
    for (size_t l = 0; l < hyper_.z.size(); ++l) {
      const std::string s = std::to_string(l);
      be.upload(hyper_.z[l].flat.view(), f.read_f32("method.z." + s, {P}).data());
      be.upload(hyper_.zm[l].flat.view(), f.read_f32("method.zm." + s, {P}).data());
      be.upload(hyper_.zv[l].flat.view(), f.read_f32("method.zv." + s, {P}).data());
    }
  }
}

}  // namespace saelab
