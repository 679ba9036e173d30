// Learnable α's bookkeeping across steps (method.md §2): the tangent u(t) = ∂ΔW(t)/∂α of the Adam
// update just taken, kept until the next step's ∇_W J is known, and the per-level inner product
// h_level(t) = ⟨∇_W J(t), u(t−1)⟩ restricted to the level's parameters (b_dec: its level share).
#pragma once
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

struct HyperState {
  SaeParams grad_J, g_alpha, u;            // ∇J(t), g_α(t), tangent of the last update(s)
  SaeParams step_u;                        // scratch: the tangent of this step alone
  std::vector<std::vector<float>> u_bdec;  // [levels][d] b_dec tangent per level
  bool have_u = false;
  // u ← decay·u + (this step's tangent): 0 is Baydin's one-step hypergradient; closer to 1 lets α
  // see how its effect accumulates over ~1/(1 − decay) updates (the Hessian term of the exact
  // forward-mode recursion is dropped).
  float decay = 0.f;
  void init(const SaeConfig& c, Device device, size_t levels);
};

// h per level from the current ∇J (hs.grad_J) and the previous tangent (hs.u).
std::vector<double> level_hypergradients(const Sae& sae, const HyperState& hs,
                                         const std::vector<std::pair<int, int>>& levels);

// After the Adam step t: u = ∂ΔW/∂α from g (training gradient), g_α and the new moments.
void update_tangent(const Sae& sae, HyperState& hs, const SaeParams& grads, const SaeParams& m, const SaeParams& v,
                    const std::vector<std::vector<float>>& g_alpha_bdec, float lr, float beta1, float beta2, float eps,
                    int64_t t);

}  // namespace saelab
