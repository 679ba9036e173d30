// `saelab harvest`: model + corpus + hook -> activation shards (see activation_store.hpp).
// Streams the corpus (one document in memory at a time), forwards batches of contexts up to the
// hook's layer, and commits a shard (temp + rename, then the manifest) every ~shard_tokens
// activations. Re-running with the same settings resumes after the last committed shard.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

class LanguageModel;

struct HarvestConfig {
  std::string model_path;
  std::vector<std::string> corpus;  // files and directories
  std::string hook_name = "blocks.0.hook_resid_post";
  std::string out_dir;
  int context_size = 128;
  int batch_size = 32;            // contexts per forward
  int64_t max_tokens = 0;         // activations to store; 0 = the whole corpus
  int64_t shard_tokens = 1 << 16;  // a shard is committed once it holds at least this many
  DType dtype = DType::F32;        // stored dtype: f32 or f16
  std::string format = "npy";      // "npy" or "safetensors"
  bool exclude_special = true;     // BOS/EOS positions are attention sinks, not text: not stored
  std::string device = "cpu";      // where the LM runs: cpu | cuda
  bool progress = true;
};

struct HarvestResult {
  int64_t n_tokens = 0;      // stored in total
  int64_t new_tokens = 0;    // stored by this call
  int64_t contexts = 0;      // forwarded by this call
  double seconds = 0;        // wall time of this call after the model was loaded
  bool resumed = false;
  bool already_complete = false;
};

// `model` may be passed in when already loaded (it must be the one at cfg.model_path).
HarvestResult harvest(const HarvestConfig& cfg, const LanguageModel* model = nullptr);

}  // namespace saelab
