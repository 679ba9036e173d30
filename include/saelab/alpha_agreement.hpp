// Agreement of learned α with the best α of a manual sweep (method.md §3), on held-out activations.
// One meta-objective for every run, in the held-out data's own normalisation (E‖x·s‖² = d):
//   J = MSE + λ_J (1/N) Σ_n Σ_i tanh(f̃_ni / ε),  λ_J = λ·m̄,  ε = 0.1·m̄,
// on folded activations f̃_ni = f_ni‖W_dec,i‖ (what training prices; raw f drifts along the
// (f·c, W_dec/c) symmetry), m̄ the mean active folded value over all runs, in the common scale.
// λ must be the same in every run (it is the sparsity the sweep is at).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace saelab {

struct AlphaAgreementConfig {
  std::string heldout;            // activation directory not used for training
  std::vector<std::string> runs;  // run directories (fixed-α sweep + learned and/or naive)
  int64_t max_tokens = 100000;
  double grid_step = 0.25;        // "within one grid step"
};

// Returns {"runs": [...], "best_manual_alpha" (its first level), "best_manual_alpha_per_level",
// "best_manual_J", "learned": {...}, "naive": {...}}. The sweep may vary α per level
// (alpha_per_level); a learned run agrees when every level is within grid_step of the best run's.
// A run with another number of levels than the best manual run is refused.
nlohmann::json alpha_agreement(const AlphaAgreementConfig& cfg);

}  // namespace saelab
