// Trainer state and checkpoints: <dir>/step_00000123/{state.safetensors, trainer.json}, written to
// a temp directory and renamed, so a checkpoint directory is complete or absent.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

struct TrainState {
  SaeParams adam_m, adam_v;                // same layout as the parameters
  std::vector<float> tokens_since_fired;   // [F]
  std::vector<float> freq_ema;             // [F] EMA of the per-batch firing frequency
  std::vector<double> density_fires;       // [F] firings counted for the exported density
  double density_tokens = 0;
  void init(const SaeConfig& c, Device device);
};

// `extra`: further host tensors (the method's state) stored beside the parameters. Returns its path.
std::string save_checkpoint(const std::string& dir, int64_t step, const Sae& sae, const TrainState& st,
                     const nlohmann::json& meta,
                     const std::vector<std::pair<std::string, std::vector<float>>>& extra = {});
// The checkpoint directory with the highest step below `below_step`, if any.
std::optional<std::string> latest_checkpoint(const std::string& dir, int64_t below_step);
nlohmann::json read_checkpoint_meta(const std::string& ck_dir);
// Restores parameters and state; returns the step.
int64_t load_checkpoint(const std::string& ck_dir, Sae& sae, TrainState& st);
// Complete checkpoint directories under `dir`, in step order.
std::vector<std::string> list_checkpoints(const std::string& dir);

}  // namespace saelab
