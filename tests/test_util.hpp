// Shared test helpers: fixture paths, temp directories, tolerances, running the CLI.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "saelab/experiment.hpp"
#include "saelab/npy.hpp"
#include "saelab/train.hpp"

namespace saelab::test {

// Named tolerances (relative error), per dtype and per kind of comparison.
constexpr double kTolF32Op = 1e-5;       // one f32 op vs the f64 reference
constexpr double kTolF32Model = 2e-4;    // a whole f32 forward vs PyTorch (different summation order)
constexpr double kTolF16Storage = 1e-3;  // values stored as f16

std::string shared_root();  // $SAELAB_SHARED or the compile-time default ../shared
std::string test_data(const std::string& name);
std::string make_temp_dir(const std::string& tag);  // fresh, removed at process exit
void write_text(const std::string& path, const std::string& s);

// ‖a − b‖ / max(‖b‖, tiny); NaN anywhere gives +inf so comparisons fail.
double rel_error(const std::vector<float>& a, const std::vector<double>& b);
double rel_error(const std::vector<float>& a, const std::vector<float>& b);

// The planted two-level data of the method's hierarchy tests: 12 parents × 3 children in d = 64,
// children as refinements (smaller magnitudes), firing only with their parent.
void write_planted_hierarchy(const std::string& out_dir, int64_t tokens, uint64_t seed);
// The hierarchical SAE the planted-hierarchy tests train: 12 parents × 4 children, λ = 0.5.
TrainConfig planted_hierarchy_training(const std::string& activations, const std::string& out_dir,
                                       int64_t total_tokens);

// A three-run experiment (vanilla, dual-adaptive at α = 0.25, learnable-dual) on 60k tokens of one
// book, without probing: the fixture of the experiment and report tests.
ExperimentConfig small_experiment(const std::string& out_dir);

// The bytes of the SAE weights a training run exported (<run>/sae/sae_weights.safetensors).
std::string exported_sae_weights(const std::string& run);
// Leaves a finished run's directory as a kill just after its penultimate checkpoint would: its last
// checkpoint, its export and its training summary removed. Returns how many checkpoints it had.
size_t rewind_to_penultimate_checkpoint(const std::string& run);

// The message of the saelab::Error that f throws, or "<no error>" (any other exception propagates).
std::string error_of(const std::function<void()>& f);

struct CliResult {
  int exit_code;
  std::string out, err;
};
CliResult run_cli(const std::string& args);  // runs the saelab binary with `args` (shell-quoted by caller)

// The elements of a golden .npy file as T (its dtype's size must be T's), and its shape.
template <typename T>
std::vector<T> load_npy(const std::string& path, std::vector<int64_t>* shape = nullptr) {
  const NpyArray a = read_npy(path);
  if (a.bytes.size() % sizeof(T) != 0) throw std::runtime_error(path + ": size is not a multiple of the element");
  std::vector<T> v(a.bytes.size() / sizeof(T));
  std::memcpy(v.data(), a.bytes.data(), a.bytes.size());
  if (shape) *shape = a.shape;
  return v;
}

}  // namespace saelab::test
