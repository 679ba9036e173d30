// Analyses of trained runs (method.md §4): composition quality of hierarchical SAEs and concept
// stability across training checkpoints.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

// Composition of a hierarchical SAE on activations x [n, d] (raw, as the SAE export takes them):
//   explained variance of parents alone (children zeroed) and of parents + children; the share of
//   the reconstruction's variance the parents carry; mean |cos| between a child's decoder row and
//   its parent's; dead fractions per level (on these rows); P(child fires | parent fires).
nlohmann::json composition_quality(const Sae& sae, const std::vector<float>& x, int64_t n);

// Rows of W [F, d] scaled to unit norm (zero rows stay zero).
std::vector<float> unit_rows(std::vector<float> W, int64_t F, int64_t d);

// Decoder-row matching between two SAEs' W_dec [F, d] (rows compared after normalisation): for
// every latent of A its best cosine in B (greedy max), and the fractions above 0.9 and 0.7.
struct MatchStats {
  std::vector<float> best;  // [F_A]
  double frac_above_09 = 0, frac_above_07 = 0, mean_best = 0;
};
MatchStats match_decoders(Backend& be, const std::vector<float>& A, int64_t FA, const std::vector<float>& B, int64_t FB,
                          int d);

// Concept stability of a run directory: checkpoints at their training fractions, matched
// consecutively and against the final checkpoint.
nlohmann::json concept_stability(const std::string& run_dir);

}  // namespace saelab
