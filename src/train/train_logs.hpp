// The per-step CSV logs a run appends to (train_log.csv, alpha_log.csv) and the α summary read back
// from them at export.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace saelab {

inline constexpr const char* kLogHeader =
    "step,tokens,loss,mse,penalty,aux,l0,explained_variance,lr,l1_coefficient,dead_fraction,dense_fraction,tokens_per_s\n";
inline constexpr const char* kAlphaHeader = "step,level,alpha,theta,signal,J,lambda_J\n";

// Keeps the rows of a per-step CSV up to `step` (a resumed run rewrites what follows). The logs are
// appended as training goes, so a killed run may leave a torn last line: only whole rows (newline-
// terminated, the header's field count) survive.
void truncate_log(const std::string& path, int64_t step, const char* header);

// Convergence analysis of every level's α trajectory in alpha_log.csv (method.md §3).
nlohmann::json alpha_summary(const std::string& path, size_t levels);

}  // namespace saelab
