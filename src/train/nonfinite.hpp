// What the trainer reports when a step's loss or gradient is not finite.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "saelab/sae.hpp"

namespace saelab {

// Where a non-finite loss or gradient came from, for the fault report: the first parameter holding
// NaN/Inf (named with its latent), else the first non-finite latent activation, else the batch row
// whose reconstruction error is non-finite. `params_bad` tells whether skipping the batch can help.
// x: [N, d] the rows ws was computed on.
nlohmann::json diagnose_nonfinite(const Sae& sae, SaeWorkspace& ws, const float* x, int64_t N, bool& params_bad);

// One sentence for the error message from diagnose_nonfinite's report.
std::string describe_fault(const nlohmann::json& j);

}  // namespace saelab
