// Learnable α's bookkeeping across steps (method.md §2): the tangent u(t) = ∂ΔW(t)/∂α of the Adam
// update just taken, kept until the next step's ∇_W J is known, and the per-level inner product
// h_level(t) = ⟨∇_W J(t), u(t−1)⟩ restricted to the level's parameters (b_dec: its level share).
//
// Forward mode (hypergradient = "forward"): per level l the total derivative Z_l = dW/dα_l along the
// whole trajectory, with the Adam moments' tangents. Each step differentiates the training gradient
// g(W(α), α) completely: dg_l = H Z_l + g_α,l, the Hessian–vector product H Z_l by a finite
// difference of the training gradient at W + εZ_l on the same batch (one extra forward/backward per
// level). h_l = ⟨∇J, Z_l⟩ is then dJ/dα_l through every update so far — near the equilibrium of
// training, the implicit-function derivative of J at the end point that the manual sweep compares —
// where the one-step h only sees the last update.
#pragma once
#include <functional>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

// Every tangent is kept per level l: through the hierarchy's straight-through gate the children's
// α moves the parents' parameters too, so no level's tangent is confined to its own latents.
struct HyperState {
  SaeParams grad_J;               // ∇J(t)
  std::vector<SaeParams> g_alpha;  // [levels] g_α,l(t) = ∂g/∂α_l
  std::vector<SaeParams> u;        // [levels] one-step: dW/dα_l through the last update(s)
  SaeParams step_u;                // scratch: the tangent of this step alone
  bool have_u = false;
  // u ← decay·u + (this step's tangent): 0 is Baydin's one-step hypergradient; closer to 1 lets α
  // see how its effect accumulates over ~1/(1 − decay) updates (the Hessian term of the exact
  // forward-mode recursion is dropped).
  float decay = 0.f;
  // Forward mode, one entry per level.
  bool forward = false;
  std::vector<SaeParams> z, zm, zv;  // dW/dα_l and the tangents of Adam's m and v
  std::vector<SaeParams> dg;         // this step's dg/dα_l
  SaeParams shifted, grad_shifted;   // scratch: W + εZ_l and the training gradient there
  void init(const SaeConfig& c, Device device, size_t levels, bool forward_mode = false);
  // Parameters were re-initialised in part (children switched on, latents resampled): W jumped in
  // a way no tangent describes, so the tangents restart from zero and the next step takes no α step.
  void reset_tangents();
  // The tangents of W itself (u or z per level): what a projection applied to W must also map.
  std::vector<SaeParams*> parameter_tangents();
};

// The training gradient at other parameters (flat [P]) on the current batch with the current loss
// terms; provided by the trainer (it may be split across processes).
using GradientAt = std::function<void(TensorView params_flat, SaeParams& grad_out)>;

// Forward mode: h_l = ⟨∇J, Z_l⟩.
std::vector<double> forward_hypergradients(const Sae& sae, const HyperState& hs);
// Forward mode, after the backward of step t (g: its training gradient): dg_l = H Z_l + g_α,l.
void forward_gradient_tangents(const Sae& sae, HyperState& hs, const SaeParams& g, const GradientAt& gradient_at);
// Forward mode, after the Adam step t: Z_l, and the moments' tangents, advance through it.
void update_forward_tangents(const Sae& sae, HyperState& hs, const SaeParams& g, const SaeParams& m,
                             const SaeParams& v, float lr, float beta1, float beta2, float eps, int64_t t);

// One-step: h_l = ⟨∇J(t), u_l(t−1)⟩.
std::vector<double> level_hypergradients(const Sae& sae, const HyperState& hs);

// After the Adam step t: u_l = ∂ΔW/∂α_l from g (training gradient), g_α,l and the new moments.
void update_tangent(const Sae& sae, HyperState& hs, const SaeParams& grads, const SaeParams& m, const SaeParams& v,
                    float lr, float beta1, float beta2, float eps, int64_t t);

}  // namespace saelab
