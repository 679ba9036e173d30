// Pieces of collect_dashboard shared between its files.
#pragma once
#include <vector>

#include "saelab/dashboard.hpp"
#include "saelab/lm.hpp"

namespace saelab {

// Fills every SaeDashboard's directions: logit effects through `model`'s unembedding, nearest
// latents of the same SAE and best matches in every other SAE, by decoder cosine.
void add_latent_directions(const LanguageModel& model, const std::vector<Sae>& saes, DashboardData& out,
                           const DashboardConfig& cfg);

}  // namespace saelab
