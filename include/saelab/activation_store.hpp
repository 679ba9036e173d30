// Activation shards on disk, as written by `saelab harvest`:
//   <dir>/manifest.json        what was harvested and which shards are complete (see docs/formats.md)
//   <dir>/shard_00000.npy      activations [n, d] (f32 or f16)  + shard_00000.tokens.npy [n] i32
//   or <dir>/shard_00000.safetensors with tensors "activations" [n, d] and "tokens" [n]
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

constexpr int kActivationManifestVersion = 1;

struct ActivationShard {
  std::string file;         // activations (relative to the directory)
  std::string tokens_file;  // token ids (npy format; equals `file` for safetensors)
  int64_t n_tokens = 0;
};

struct ActivationManifest {
  std::string dir;
  nlohmann::json settings;  // model, hook_name, context_size, dtype, format, corpus, ... (compared on resume)
  std::string model_name, hook_name, format;
  DType dtype = DType::F32;
  int d_in = 0;
  int64_t n_tokens = 0;       // activations stored in complete shards
  int64_t contexts_done = 0;  // contexts whose activations are all in complete shards
  bool complete = false;
  std::vector<ActivationShard> shards;
};

// Throws Error naming the file for a missing or malformed manifest.
ActivationManifest read_activation_manifest(const std::string& dir);
void write_activation_manifest(const ActivationManifest& m);  // atomic
// Reads shard i as f32 [n, d] (and its token ids when `tokens` is not null).
void read_activation_shard(const ActivationManifest& m, size_t i, std::vector<float>& acts,
                           std::vector<int32_t>* tokens = nullptr);

}  // namespace saelab
