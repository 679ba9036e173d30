// Edits of a training SAE's latents between steps, with their Adam moments: resampling dead
// latents, and initialising the hierarchy's children from their parents when they switch on.
#pragma once
#include <cstdint>
#include <vector>

#include "checkpoint.hpp"
#include "saelab/sae.hpp"

namespace saelab {

// Dead latents get a fresh direction: the normalised residual of a batch row drawn with
// probability ∝ its squared error; the encoder column is that direction at 0.2× the mean live
// encoder norm; b_enc and their Adam moments reset (Anthropic's 2023 resampling, per batch).
// x, xhat: [N, d] the batch and its reconstruction. Returns how many latents were resampled.
int64_t resample_dead(Sae& sae, TrainState& st, const std::vector<float>& x, const std::vector<float>& xhat,
                      int64_t N, int64_t dead_window, uint64_t seed);

// When children switch on (parents-first training), every child starts as a noisy copy of its
// parent's encoder, so it fires where its parent fires and specialises from there, and with a small
// random decoder; their Adam moments restart.
void init_children_from_parents(Sae& sae, TrainState& st, uint64_t seed);

}  // namespace saelab
