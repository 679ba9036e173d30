// The per-step state of the mission's method on top of the plain trainer: dual-adaptive penalty
// weights, the α controller (fixed / learned by hypergradient / naive), the hypergradient's tangent,
// and the optional target-L0 controller on λ. Everything here is saved in checkpoints so a resumed
// run continues bit-identically.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hypergradient.hpp"
#include "saelab/alpha.hpp"
#include "saelab/dual_adaptive.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/train.hpp"

namespace saelab {

class MethodState {
 public:
  MethodState(const TrainConfig& cfg, const Sae& sae);

  bool dual() const { return dual_; }
  AlphaMode alpha_mode() const { return alpha_.mode(); }
  std::vector<double> alphas() const { return alpha_.alphas(); }
  const AlphaController& alpha() const { return alpha_; }
  double lambda_scale() const { return lambda_scale_; }

  // The loss terms of this step: λ (warm-up × target-L0 controller), penalty weights w(α). Also
  // notes whether λ is still ramping up: the log controller and forward-mode α hold until it is not.
  SaeLossTerms terms(float l1_warm);
  // Non-null when this step computes hypergradient pieces (learned α with statistics available).
  SaeHyperRequest* hyper_request();
  // Forward-mode hypergradients need the training gradient at shifted parameters (gradient_at).
  bool needs_gradient_at() const { return hyper_.forward; }
  // After forward/backward (g: the training gradient): α updates (hypergradient with the tangent so
  // far, or naive); in forward mode also this step's gradient tangents.
  void after_backward(const SaeBatchStats& st, const SaeLossTerms& terms, const SaeParams& g,
                      const GradientAt& gradient_at);
  // The parameters were re-initialised in part (children switched on, resampling): tangents restart.
  void reset_tangents() { hyper_.reset_tangents(); }
  // After the Adam step: the tangent for the next hypergradient.
  void after_adam(const SaeParams& grads, const SaeParams& m, const SaeParams& v, float lr, float beta1, float beta2,
                  float eps, int64_t t);
  // After the Adam step, before the hierarchy's orthogonal-children projection of W_dec: the
  // tangents of W follow W through the projection (its derivative at the pre-projection point).
  void before_children_projection();
  // Dual-adaptive: the per-latent w_freq, w_mag and the weight w = α w_freq + (1 − α) w_mag now.
  void penalty_weights(std::vector<float>& w_freq, std::vector<float>& w_mag, std::vector<float>& w) const;
  // Starts α over at these values (per level); tests use it to vary one step's α.
  void set_alphas(const std::vector<double>& alphas);
  // After the step: statistics EMAs and the λ controller.
  void after_step(const SaeBatchStats& st);

  // Checkpoint I/O: host tensors named "method.*" and a JSON object.
  void save(std::vector<std::pair<std::string, std::vector<float>>>& tensors, nlohmann::json& meta) const;
  void load(const SafetensorsFile& f, const nlohmann::json& meta);

  double last_J() const { return last_J_; }
  double last_lambda_J() const { return last_lambda_J_; }  // J's price on the smooth L0 (0: J = MSE)

 private:
  const TrainConfig& cfg_;
  const Sae& sae_;
  std::vector<std::pair<int, int>> levels_;
  bool dual_ = false;
  DualAdaptiveWeights weights_;
  AlphaController alpha_;
  HyperState hyper_;
  SaeHyperRequest request_;
  bool requested_ = false;
  bool warming_ = false;  // this step's λ is still in its warm-up ramp (set by terms())
  double lambda_scale_ = 1.0;
  double last_J_ = 0, last_lambda_J_ = 0;
};

}  // namespace saelab
