// Language models: the Llama architecture (RMSNorm, RoPE, grouped-query attention, SwiGLU, optional
// tied embeddings) loaded from a Hugging Face directory (config.json + model.safetensors[.index.json]
// + tokenizer.json), a GGUF file (llama.cpp; quantised weights dequantised to f32) or llama2.c's
// model.bin + tok{V}.bin.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "saelab/backend.hpp"
#include "saelab/hooks.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

struct LlamaConfig {
  std::string name;  // e.g. "tinystories-656k" (the directory or file stem)
  std::string source_format;  // "hf", "gguf" or "llama2c"
  int d_model = 0, d_ff = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int vocab_size = 0, max_seq_len = 0;
  float rms_eps = 1e-5f, rope_theta = 10000.f;
  RopeStyle rope_style = RopeStyle::Half;
  bool tied_embeddings = true;
};

// Parses a Hugging Face config.json; throws Error for an architecture or option it cannot run.
LlamaConfig parse_hf_llama_config(const std::string& config_json_path);

struct LlamaLayerWeights {
  TensorView attn_norm;  // [d]
  TensorView wq;         // [H*hd, d]
  TensorView wk;         // [Hkv*hd, d]
  TensorView wv;         // [Hkv*hd, d]
  TensorView wo;         // [d, H*hd]
  TensorView mlp_norm;   // [d]
  TensorView w_gate;     // [ff, d]
  TensorView w_up;       // [ff, d]
  TensorView w_down;     // [d, ff]
};

// Every parameter of the Llama forward for `c`, in the order of the one allocation: HF names
// (model.layers.3.mlp.up_proj.weight) and row-major shapes. Loaders check files against it before
// anything is allocated.
std::vector<std::pair<std::string, std::vector<int64_t>>> llama_param_specs(const LlamaConfig& c);

class LlamaModel {
 public:
  LlamaModel(LlamaConfig cfg, std::unique_ptr<Tokenizer> tok, Backend& be);

  const LlamaConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  Backend& backend() const { return be_; }
  std::vector<std::string> hook_names() const;
  // Throws Error naming the model and the valid points if `name` is not one of them.
  void check_hook(const std::string& name) const;
  int hook_layer(const std::string& name) const;  // L of blocks.L.*

  // Host copy of every parameter, written by the loaders before upload().
  std::vector<float>& host_params() { return host_params_; }
  size_t param_offset(const std::string& name) const;
  // Every parameter (HF names, e.g. model.layers.3.mlp.up_proj.weight) and its row-major shape.
  const std::vector<std::pair<std::string, std::vector<int64_t>>>& param_specs() const { return param_specs_; }
  void upload();  // host_params -> the one device allocation

  // tokens: host [B*T] (row = b*T + t). Runs all layers and returns logits [B*T, V] on the model's
  // device, or, with want_logits = false, stops after the last layer a hook subscribes to and
  // returns an empty tensor.
  Tensor forward(const std::vector<int32_t>& tokens, int B, int T, const Hooks* hooks = nullptr,
                 bool want_logits = true) const;

 private:
  LlamaConfig cfg_;
  std::unique_ptr<Tokenizer> tok_;
  Backend& be_;
  // All parameters in one allocation, carved into named views (see the constructor for the order).
  std::vector<std::pair<std::string, std::vector<int64_t>>> param_specs_;
  std::vector<size_t> param_offsets_;
  std::vector<float> host_params_;
  Tensor params_;
  TensorView embed_;       // [V, d]
  TensorView final_norm_;  // [d]
  TensorView lm_head_;     // [V, d]; aliases embed_ when tied
  std::vector<LlamaLayerWeights> layers_;
};

// A model directory (HF), a GGUF file (or a directory holding one .gguf), or a llama2.c .bin (or a directory holding one). Throws Error with the path
// and what was missing or wrong.
std::unique_ptr<LlamaModel> load_model(const std::string& path, Backend& be);

// Greedy decoding by repeated full forwards (no KV cache; these are test and demo paths). With
// stop_at_eog the sequence ends after the first end-of-generation token it emits (Tokenizer::eog_ids).
std::vector<int32_t> generate_greedy(const LlamaModel& m, std::vector<int32_t> prompt, int steps,
                                     bool stop_at_eog = false);

}  // namespace saelab
