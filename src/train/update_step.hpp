// One training step's update after its forward/backward, in the order the trainer runs it and the
// hypergradient's tests replay it: α's step (hypergradient or naive) and this step's gradient
// tangents; Adam; the update's tangent; the architecture's projections of W (unit-norm decoder rows
// for the top-k family, children orthogonal to their parents for the hierarchy) with the tangents of
// W carried through them; the inference thresholds (jumprelu: exp(log θ); batchtopk: the EMA of the
// smallest kept activation); then the statistics EMAs and the λ controller.
#pragma once
#include "method_state.hpp"
#include "saelab/sae.hpp"
#include "saelab/train.hpp"

namespace saelab {

struct UpdateInputs {
  const SaeBatchStats& stats;
  const SaeLossTerms& terms;
  const GradientAt& gradient_at;  // forward-mode hypergradients only
  float lr;
  int64_t t;  // Adam's step count, from 1
};

void apply_update(Sae& sae, SaeParams& grads, SaeParams& adam_m, SaeParams& adam_v, MethodState& method,
                  const TrainConfig& cfg, const UpdateInputs& in);

}  // namespace saelab
