// Language models: one decoder-only transformer forward whose per-architecture numerics are switches
// of ModelConfig (norm kind, positions, biases, q/k norms, soft-caps, sliding windows, post-norms,
// parallel residual, MLP activation). Loaded from a Hugging Face directory (config.json +
// model.safetensors[.index.json] + tokenizer.json; model_type llama, mistral, qwen2, qwen3, gemma2,
// gemma3_text, gpt2, gpt_neox), a GGUF file (llama.cpp's llama architecture; quantised weights
// dequantised to f32) or llama2.c's model.bin + tok{V}.bin.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "saelab/backend.hpp"
#include "saelab/hooks.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

enum class NormKind : uint8_t { Rms, Layer };

// One set of rotary frequencies: theta^(-2i/r) (r = rotary_dim), optionally rescaled as
// transformers' rope_type "linear" (all divided by factor) or "llama3" (Llama 3.1: low
// frequencies divided by factor, a smooth ramp between low_freq_factor and high_freq_factor).
struct RopeParams {
  double theta = 10000.0;
  std::string type = "default";  // "default", "linear" or "llama3"
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_positions = 0;  // llama3
};

struct ModelConfig {
  std::string name;           // e.g. "tinystories-656k" (the directory or file stem)
  std::string source_format;  // "hf", "gguf" or "llama2c"
  std::string architecture = "llama";  // HF model_type: llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gpt2, gpt_neox
  int d_model = 0, d_ff = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int vocab_size = 0, max_seq_len = 0;
  NormKind norm = NormKind::Rms;
  float norm_eps = 1e-5f;
  // Embedding and unembedding.
  float embed_scale = 1.f;         // the token embedding is multiplied by it (Gemma: √d)
  bool learned_positions = false;  // GPT-2: pos_embed.W_pos [max_seq_len, d] added to the embedding
  bool tied_embeddings = true;
  float final_softcap = 0.f;  // > 0: logits -> cap · tanh(logits / cap) (Gemma 2)
  // Attention.
  bool qkv_bias = false, o_bias = false;
  bool qk_norm = false;  // RMSNorm over each head of q and k before RoPE (Qwen3, Gemma 3)
  float attn_scale = 0.f;     // 0: 1/√head_dim (Gemma: query_pre_attn_scalar^-1/2)
  float attn_softcap = 0.f;   // > 0: scores soft-capped (Gemma 2)
  int rotary_dim = 0;         // rotated dimensions of each head (≤ head_dim, even); 0: no RoPE
  RopeStyle rope_style = RopeStyle::Half;
  RopeParams rope;        // layers with global attention
  RopeParams rope_local;  // sliding-window layers (Gemma 3: rope_local_base_freq; else = rope)
  std::vector<int> window;  // per layer: 0 global attention, > 0 a sliding window of that many keys
  // MLP and block.
  bool gated_mlp = true;  // act(x W_gate) * (x W_in) (SwiGLU, GeGLU) or act(x W_in + b_in)
  Activation act = Activation::Silu;
  bool mlp_bias = false;           // b_in, b_out (GPT-2, GPT-NeoX; ungated MLPs only)
  bool parallel_residual = false;  // GPT-NeoX: h + attn(ln1(h)) + mlp(ln2(h)); no hook_resid_mid
  bool post_norms = false;         // Gemma 2/3: each sub-block's output is normed before the residual add
};

// Parses a Hugging Face config.json (the pre-v5 keys real checkpoints carry, or transformers 5's
// rope_parameters / layer_types); throws Error naming the file for an architecture or option it
// cannot run, never falling back to another architecture's numerics.
ModelConfig parse_hf_config(const std::string& config_json_path);

// The inverse frequencies [rotary_dim / 2] of `p`, in f32 as transformers computes them.
std::vector<float> rope_inv_freq(const RopeParams& p, int rotary_dim);

struct LayerWeights {  // optional tensors are null views (data == nullptr) when the config lacks them
  TensorView ln1_w, ln1_b;                  // [d]
  TensorView W_Q, b_Q;                      // [H*hd, d], [H*hd]
  TensorView W_K, b_K, W_V, b_V;            // [Hkv*hd, d], [Hkv*hd]
  TensorView q_norm, k_norm;                // [hd]
  TensorView W_O, b_O;                      // [d, H*hd], [d]
  TensorView ln1_post;                      // [d]
  TensorView ln2_w, ln2_b;                  // [d]
  TensorView W_gate, W_in, b_in;            // [ff, d], [ff, d], [ff]
  TensorView W_out, b_out;                  // [d, ff], [d]
  TensorView ln2_post;                      // [d]
};

// Every parameter of the forward for `c`, in the order of the one allocation, under
// TransformerLens-style names (embed.W_E, blocks.3.attn.W_Q, blocks.3.mlp.W_out, ln_final.w, ...)
// with row-major shapes. Loaders map their files' names onto these and check shapes before
// anything is allocated.
std::vector<std::pair<std::string, std::vector<int64_t>>> model_param_specs(const ModelConfig& c);

class LanguageModel {
 public:
  // tok may be null for a forward-only model (benchmarks); tokenizer() must not be called then.
  LanguageModel(ModelConfig cfg, std::unique_ptr<Tokenizer> tok, Backend& be);

  const ModelConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  Backend& backend() const { return be_; }
  // The TransformerLens hook points of this architecture: hook_embed, hook_pos_embed (learned
  // positions only), then per block hook_resid_pre, hook_attn_out, hook_resid_mid (not with a
  // parallel residual), hook_mlp_out, hook_resid_post.
  std::vector<std::string> hook_names() const;
  // Throws Error naming the model and the valid points if `name` is not one of them.
  void check_hook(const std::string& name) const;
  int hook_layer(const std::string& name) const;  // L of blocks.L.*; -1 for hook_embed / hook_pos_embed

  // Host copy of every parameter, written by the loaders before upload(), which frees it.
  std::vector<float>& host_params() { return host_params_; }
  size_t param_offset(const std::string& name) const;
  const std::vector<std::pair<std::string, std::vector<int64_t>>>& param_specs() const { return param_specs_; }
  void upload();  // host_params -> the one device allocation; host_params is empty afterwards

  // tokens: host [B*T] (row = b*T + t). Runs all layers and returns logits [B*T, V] on the model's
  // device, or, with want_logits = false, stops after the last layer a hook subscribes to and
  // returns an empty tensor.
  Tensor forward(const std::vector<int32_t>& tokens, int B, int T, const Hooks* hooks = nullptr,
                 bool want_logits = true) const;

  // The direct effect on the logits of residual-stream directions dirs [R, d] (host, row-major):
  // each through the final norm's weight (LayerNorm also removes the row mean; the norm's data-
  // dependent scale is left out, as SAE dashboards do) and the unembedding. Host [R, V].
  std::vector<float> logit_effects(const std::vector<float>& dirs, int64_t R) const;

 private:
  struct Buffers;  // the forward's activations, sized for one call
  void attention(const Buffers& b, int l, int T) const;  // b.xn -> b.attn_out
  void mlp(const Buffers& b, int l, TensorView x, TensorView out) const;
  void norm(TensorView y, TensorView x, TensorView w, TensorView bias) const;
  TensorView view(const std::string& name) const;  // null view if the config has no such parameter

  ModelConfig cfg_;
  std::unique_ptr<Tokenizer> tok_;
  Backend& be_;
  // All parameters in one allocation, carved into named views (model_param_specs' order).
  std::vector<std::pair<std::string, std::vector<int64_t>>> param_specs_;
  std::vector<size_t> param_offsets_;
  std::vector<float> host_params_;
  Tensor params_;
  Tensor inv_freq_, inv_freq_local_;  // [rotary_dim / 2] each; empty without RoPE
  TensorView embed_, pos_embed_;          // [V, d], [max_seq_len, d]
  TensorView final_norm_w_, final_norm_b_;  // [d]
  TensorView unembed_;                    // [V, d]; aliases embed_ when tied
  std::vector<LayerWeights> layers_;
};

// A model directory (HF), a GGUF file (or a directory holding one .gguf), or a llama2.c .bin (or a directory holding one). Throws Error with the path
// and what was missing or wrong.
std::unique_ptr<LanguageModel> load_model(const std::string& path, Backend& be);

// Greedy decoding by repeated full forwards (no KV cache; these are test and demo paths). With
// stop_at_eog the sequence ends after the first end-of-generation token it emits (Tokenizer::eog_ids).
std::vector<int32_t> generate_greedy(const LanguageModel& m, std::vector<int32_t> prompt, int steps,
                                     bool stop_at_eog = false);

}  // namespace saelab
