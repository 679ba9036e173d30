// Hugging Face config.json -> ModelConfig, per model_type. Reads the keys real checkpoints carry
// (rope_theta / rope_scaling, rotary_pct, sliding_window_pattern, ...) and transformers 5's
// (rope_parameters, layer_types, partial_rotary_factor). Absent keys take the transformers class
// defaults; options that would change the numerics and that the forward does not run are refused
// by name, so no model silently runs another architecture's numerics.
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/lm.hpp"
#include "util/json_file.hpp"
#include "util/json_number.hpp"

namespace saelab {

namespace {

using json = nlohmann::json;

constexpr const char* kSupported = "llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gpt2, gpt_neox";

// Typed reads of one config.json, every error naming the file and the key.
class ConfigReader {
 public:
  ConfigReader(json j, std::string path) : j_(std::move(j)), path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  const json& at(const char* key) const { return j_.at(key); }
  // Sizes are read as 64-bit integers: a value past int's range must not wrap into a valid one.
  int size(const char* key) const {
    const std::optional<int64_t> v = has(key) ? json_integer<int64_t>(j_[key]) : std::nullopt;
    if (!v || *v <= 0 || *v > (int64_t{1} << 30))
      fail("'{}': expected a positive integer '{}' (at most 2^30), found {}", path_, key,
           j_.contains(key) ? j_[key].dump() : "nothing");
    return static_cast<int>(*v);
  }
  int size_or(const char* key, int def) const { return has(key) ? size(key) : def; }
  double number(const char* key, double def) const {
    if (!has(key)) return def;
    if (!j_[key].is_number()) fail("'{}': '{}' must be a number, found {}", path_, key, j_[key].dump());
    return j_[key].get<double>();
  }
  // A positive finite number below `max`, or 0 when absent / null (Gemma's optional soft-caps).
  double positive_or_zero(const char* key, double def, double max = 1e30) const {
    const double v = number(key, def);
    if (has(key) && !(v > 0 && v < max)) fail("'{}': '{}' must be in (0, {}), found {}", path_, key, max, v);
    return v;
  }
  bool flag(const char* key, bool def) const {
    if (!has(key)) return def;
    if (!j_[key].is_boolean()) fail("'{}': '{}' must be true or false, found {}", path_, key, j_[key].dump());
    return j_[key].get<bool>();
  }
  std::string str(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    if (!j_[key].is_string()) fail("'{}': '{}' must be a string, found {}", path_, key, j_[key].dump());
    return j_[key].get<std::string>();
  }

 private:
  json j_;
  std::string path_;
};

Activation activation_named(const ConfigReader& r, const char* key, const std::string& def) {
  const std::string a = r.str(key, def);
  if (a == "silu" || a == "swish") return Activation::Silu;
  if (a == "gelu_new" || a == "gelu_pytorch_tanh") return Activation::GeluTanh;
  if (a == "gelu") return Activation::GeluErf;
  fail("'{}': {} '{}' is not supported (supported: silu, gelu (erf), gelu_new / gelu_pytorch_tanh (tanh))", r.path(),
       key, a);
}

// One rope_scaling / rope_parameters object (pre-v5 "type" or v5 "rope_type").
RopeParams rope_from(const ConfigReader& r, const json& s, double theta) {
  RopeParams p;
  p.theta = theta;
  if (s.is_null()) return p;
  if (!s.is_object()) fail("'{}': rope scaling {} is not an object", r.path(), s.dump());
  if (s.contains("rope_theta") && s["rope_theta"].is_number()) p.theta = s["rope_theta"].get<double>();
  p.type = s.value("rope_type", s.value("type", std::string("default")));
  auto num = [&](const char* k, double def) {
    if (!s.contains(k) || s[k].is_null()) return def;
    if (!s[k].is_number() || !(s[k].get<double>() > 0)) fail("'{}': rope {} must be a positive number, found {}", r.path(), k, s[k].dump());
    return s[k].get<double>();
  };
  if (p.type == "linear" || p.type == "llama3") p.factor = num("factor", 1.0);
  if (p.type == "llama3") {
    p.low_freq_factor = num("low_freq_factor", 1.0);
    p.high_freq_factor = num("high_freq_factor", 4.0);
    p.original_max_positions = static_cast<int>(num("original_max_position_embeddings", 8192));
    if (!(p.high_freq_factor > p.low_freq_factor))
      fail("'{}': llama3 rope high_freq_factor {} must exceed low_freq_factor {}", r.path(), p.high_freq_factor,
           p.low_freq_factor);
  }
  if (p.type != "default" && p.type != "linear" && p.type != "llama3")
    fail("'{}': rope scaling type '{}' is not supported (supported: default, linear, llama3)", r.path(), p.type);
  if (!(p.theta > 0 && p.theta < 1e30)) fail("'{}': rope theta {} must be positive", r.path(), p.theta);
  return p;
}

// The RoPE of global and sliding layers: v5's rope_parameters (flat, or keyed by layer type), else
// rope_theta + rope_scaling (+ Gemma 3's rope_local_base_freq, unscaled).
void read_rope(const ConfigReader& r, ModelConfig& c, const char* theta_key, double default_theta) {
  if (r.has("rope_parameters")) {
    const json& rp = r.at("rope_parameters");
    if (rp.is_object() && rp.contains("full_attention")) {
      c.rope = rope_from(r, rp["full_attention"], default_theta);
      c.rope_local = rp.contains("sliding_attention") ? rope_from(r, rp["sliding_attention"], default_theta) : c.rope;
    } else {
      c.rope = c.rope_local = rope_from(r, rp, default_theta);
    }
    return;
  }
  const double theta = r.number(theta_key, default_theta);
  c.rope = rope_from(r, r.has("rope_scaling") ? r.at("rope_scaling") : json(), theta);
  c.rope_local = c.rope;
  if (r.has("rope_local_base_freq")) c.rope_local = rope_from(r, json(), r.number("rope_local_base_freq", 10000.0));
}

// Per-layer attention windows: v5's layer_types, else each family's rule.
void read_windows(const ConfigReader& r, ModelConfig& c, const std::function<bool(int)>& sliding_by_family) {
  const int w = r.has("sliding_window") ? r.size("sliding_window") : 0;
  c.window.assign(c.n_layers, 0);
  if (r.has("layer_types")) {
    const json& lt = r.at("layer_types");
    if (!lt.is_array() || static_cast<int>(lt.size()) != c.n_layers)
      fail("'{}': layer_types must list {} layer types, found {}", r.path(), c.n_layers, lt.dump());
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string t = lt[l].is_string() ? lt[l].get<std::string>() : lt[l].dump();
      if (t != "full_attention" && t != "sliding_attention")
        fail("'{}': layer_types[{}] is '{}' (supported: full_attention, sliding_attention)", r.path(), l, t);
      if (t == "sliding_attention") {
        if (w == 0) fail("'{}': layer {} uses sliding attention but sliding_window is not set", r.path(), l);
        c.window[l] = w;
      }
    }
    return;
  }
  if (w > 0)
    for (int l = 0; l < c.n_layers; ++l) c.window[l] = sliding_by_family(l) ? w : 0;
}

// hidden_size, heads, layers, vocabulary and positions under the Llama-family key names.
void read_llama_sizes(const ConfigReader& r, ModelConfig& c) {
  c.d_model = r.size("hidden_size");
  c.d_ff = r.size("intermediate_size");
  c.n_layers = r.size("num_hidden_layers");
  c.n_heads = r.size("num_attention_heads");
  c.n_kv_heads = r.size_or("num_key_value_heads", c.n_heads);
  c.vocab_size = r.size("vocab_size");
  c.max_seq_len = r.size_or("max_position_embeddings", 2048);
  if (r.has("head_dim")) {
    c.head_dim = r.size("head_dim");
  } else {
    if (c.d_model % c.n_heads != 0)
      fail("'{}': hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim is given)", r.path(),
           c.d_model, c.n_heads);
    c.head_dim = c.d_model / c.n_heads;
  }
  c.rotary_dim = c.head_dim;
}

void read_llama_family(const ConfigReader& r, ModelConfig& c, const std::string& type) {
  read_llama_sizes(r, c);
  c.norm_eps = static_cast<float>(r.number("rms_norm_eps", 1e-6));
  c.tied_embeddings = r.flag("tie_word_embeddings", false);
  read_rope(r, c, "rope_theta", type == "qwen2" || type == "qwen3" ? 1000000.0 : 10000.0);
  c.act = activation_named(r, "hidden_act", "silu");
  if (type == "qwen2") c.qkv_bias = true;
  if (type == "llama" || type == "qwen3") c.qkv_bias = c.o_bias = r.flag("attention_bias", false);
  if (type == "qwen3") c.qk_norm = true;
  if (r.flag("mlp_bias", false)) fail("'{}': mlp_bias (biases in a gated MLP) is not supported", r.path());
  if (type == "mistral") {
    read_windows(r, c, [](int) { return true; });
  } else if (type == "qwen2" || type == "qwen3") {
    const bool on = r.flag("use_sliding_window", false);
    const int from = r.size_or("max_window_layers", c.n_layers);
    read_windows(r, c, [&](int l) { return on && l >= from; });
  } else if (r.has("layer_types")) {
    read_windows(r, c, [](int) { return false; });
  }
}

void read_gemma(const ConfigReader& r, ModelConfig& c, const std::string& type) {
  read_llama_sizes(r, c);
  const bool g3 = type == "gemma3_text";
  c.norm_eps = static_cast<float>(r.number("rms_norm_eps", 1e-6));
  c.tied_embeddings = r.flag("tie_word_embeddings", true);
  c.embed_scale = static_cast<float>(std::sqrt(static_cast<double>(c.d_model)));
  c.post_norms = true;
  c.qk_norm = g3;
  c.act = activation_named(r, "hidden_activation", "gelu_pytorch_tanh");
  c.attn_scale = static_cast<float>(1.0 / std::sqrt(r.positive_or_zero("query_pre_attn_scalar", 256.0)));
  // Gemma 3 has the key but transformers' Gemma 3 attention never applies it; neither do we.
  c.attn_softcap = g3 ? 0.f : static_cast<float>(r.positive_or_zero("attn_logit_softcapping", 50.0));
  c.final_softcap = static_cast<float>(r.positive_or_zero("final_logit_softcapping", g3 ? 0.0 : 30.0));
  if (r.flag("attention_bias", false)) fail("'{}': attention_bias is not supported for {}", r.path(), type);
  if (r.flag("use_bidirectional_attention", false))
    fail("'{}': use_bidirectional_attention (an encoder, e.g. EmbeddingGemma) is not supported", r.path());
  read_rope(r, c, "rope_theta", g3 ? 1000000.0 : 10000.0);
  if (g3) {
    const int pattern = r.size_or("sliding_window_pattern", r.size_or("_sliding_window_pattern", 6));
    read_windows(r, c, [pattern](int l) { return (l + 1) % pattern != 0; });
  } else {
    read_windows(r, c, [](int l) { return l % 2 == 0; });
  }
}

void read_gpt2(const ConfigReader& r, ModelConfig& c) {
  c.d_model = r.size("n_embd");
  c.n_layers = r.size("n_layer");
  c.n_heads = c.n_kv_heads = r.size("n_head");
  c.d_ff = r.size_or("n_inner", 4 * c.d_model);
  c.vocab_size = r.size("vocab_size");
  c.max_seq_len = r.size("n_positions");
  if (c.d_model % c.n_heads != 0)
    fail("'{}': n_embd {} is not a multiple of n_head {}", r.path(), c.d_model, c.n_heads);
  c.head_dim = c.d_model / c.n_heads;
  c.norm = NormKind::Layer;
  c.norm_eps = static_cast<float>(r.number("layer_norm_epsilon", 1e-5));
  c.learned_positions = true;
  c.tied_embeddings = r.flag("tie_word_embeddings", true);
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.gated_mlp = false;
  c.act = activation_named(r, "activation_function", "gelu_new");
  if (!r.flag("scale_attn_weights", true)) fail("'{}': scale_attn_weights = false is not supported", r.path());
  for (const char* k : {"scale_attn_by_inverse_layer_idx", "add_cross_attention"})
    if (r.flag(k, false)) fail("'{}': {} is not supported", r.path(), k);
}

void read_gpt_neox(const ConfigReader& r, ModelConfig& c) {
  read_llama_sizes(r, c);
  c.n_kv_heads = c.n_heads;
  c.norm = NormKind::Layer;
  c.norm_eps = static_cast<float>(r.number("layer_norm_eps", 1e-5));
  c.tied_embeddings = r.flag("tie_word_embeddings", false);
  c.parallel_residual = r.flag("use_parallel_residual", true);
  c.qkv_bias = c.o_bias = r.flag("attention_bias", true);
  c.mlp_bias = true;
  c.gated_mlp = false;
  c.act = activation_named(r, "hidden_act", "gelu");
  read_rope(r, c, "rotary_emb_base", 10000.0);
  double pct = r.number("rotary_pct", 0.25);
  if (r.has("rope_parameters") && r.at("rope_parameters").contains("partial_rotary_factor"))
    pct = r.at("rope_parameters")["partial_rotary_factor"].get<double>();
  if (r.has("partial_rotary_factor")) pct = r.number("partial_rotary_factor", pct);
  if (!(pct > 0 && pct <= 1)) fail("'{}': rotary_pct {} must be in (0, 1]", r.path(), pct);
  c.rotary_dim = static_cast<int>(c.head_dim * pct);  // int(), as transformers truncates
  if (c.rotary_dim < 2 || c.rotary_dim % 2 != 0)
    fail("'{}': rotary_pct {} of head size {} gives {} rotary dimensions, which must be even and at least 2",
         r.path(), pct, c.head_dim, c.rotary_dim);
}

void check_consistent(const ConfigReader& r, const ModelConfig& c) {
  if (!(c.norm_eps > 0 && c.norm_eps < 1)) fail("'{}': the norm epsilon {} must be in (0, 1)", r.path(), c.norm_eps);
  if (c.n_heads % c.n_kv_heads != 0)
    fail("'{}': the number of attention heads {} must be a multiple of the key/value heads {}", r.path(), c.n_heads,
         c.n_kv_heads);
  if (c.rotary_dim > 0 && (c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim))
    fail("'{}': head_dim {} must be even for RoPE", r.path(), c.head_dim);
  if (r.has("quantization_config"))
    fail("'{}': quantized checkpoints (quantization_config) are not supported; use the unquantized model or a GGUF "
         "file",
         r.path());
}

}  // namespace

ModelConfig parse_hf_config(const std::string& path) {
  const ConfigReader r(read_json_object(path), path);
  ModelConfig c;
  c.source_format = "hf";
  try {
    const std::string type = r.str("model_type", "");
    c.architecture = type;
    if (type == "llama" || type == "mistral" || type == "qwen2" || type == "qwen3")
      read_llama_family(r, c, type);
    else if (type == "gemma2" || type == "gemma3_text")
      read_gemma(r, c, type);
    else if (type == "gpt2")
      read_gpt2(r, c);
    else if (type == "gpt_neox")
      read_gpt_neox(r, c);
    else if (type == "gemma3")
      fail("'{}': model_type 'gemma3' is the multimodal Gemma 3 checkpoint; saelab runs the text model "
           "(model_type gemma3_text, e.g. gemma-3-1b or gemma-3-270m)",
           path);
    else
      fail("'{}': model_type '{}' is not supported (supported: {})", path, type.empty() ? "<missing>" : type,
           kSupported);
  } catch (const json::exception& e) {
    fail("'{}': a setting has the wrong type: {}", path, e.what());
  }
  check_consistent(r, c);
  return c;
}

}  // namespace saelab
