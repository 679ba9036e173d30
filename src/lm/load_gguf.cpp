// A GGUF model file (llama.cpp's format): the `llama` architecture's hyper-parameters from the
// `llama.*` metadata, its tokenizer from `tokenizer.ggml.*`, and every weight dequantised to f32
// into the model's one parameter allocation.
//
// GGUF weights differ from Hugging Face's in one way that matters: llama.cpp's converter permuted
// the rows of Q and K so that RoPE rotates adjacent pairs (x[2i], x[2i+1]) (ggml rope mode 0), where
// HF rotates (i, i + hd/2). So a GGUF llama runs with RopeStyle::Interleaved on its stored rows.
#include <algorithm>
#include <unordered_set>
#include <fmt/ranges.h>

#include "load_model_impl.hpp"
#include "saelab/gguf.hpp"
#include "saelab/tokenizer_gguf.hpp"

namespace saelab {


namespace {

// Architectures whose GGUF tensors and numerics are the Llama forward (Mistral GGUFs use "llama").
constexpr const char* kSupportedArchs = "llama";

int positive_int(const GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0 || v > (int64_t{1} << 30))
    fail("'{}': metadata '{}' is {}, expected a positive integer of at most 2^30", f.path(), key, v);
  return static_cast<int>(v);
}

ModelConfig gguf_llama_config(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama")
    fail("'{}': GGUF architecture '{}' is not supported (supported: {})", f.path(), arch, kSupportedArchs);
  const std::string p = arch + ".";
  ModelConfig c;
  c.source_format = "gguf";
  c.architecture = "llama";
  c.d_model = positive_int(f, p + "embedding_length");
  c.d_ff = positive_int(f, p + "feed_forward_length");
  c.n_layers = positive_int(f, p + "block_count");
  // 9 tensors a block: more blocks than that cannot all be present (checked before anything is sized by it).
  if (static_cast<size_t>(c.n_layers) > f.tensors().size() / 9)
    fail("'{}': block_count is {}, but the file holds only {} tensors (9 per block)", f.path(), c.n_layers,
         f.tensors().size());
  c.n_heads = positive_int(f, p + "attention.head_count");
  c.n_kv_heads = f.has(p + "attention.head_count_kv") ? positive_int(f, p + "attention.head_count_kv") : c.n_heads;
  c.max_seq_len = f.has(p + "context_length") ? positive_int(f, p + "context_length") : 2048;
  if (f.has(p + "attention.key_length")) {
    c.head_dim = positive_int(f, p + "attention.key_length");
  } else {
    if (c.d_model % c.n_heads != 0)
      fail("'{}': embedding_length {} is not a multiple of head_count {}", f.path(), c.d_model, c.n_heads);
    c.head_dim = c.d_model / c.n_heads;
  }
  if (f.has(p + "rope.dimension_count") && f.get_int(p + "rope.dimension_count") != c.head_dim)
    fail("'{}': rope.dimension_count {} differs from the head dimension {} (partial rotary is not supported for "
         "llama)",
         f.path(), f.get_int(p + "rope.dimension_count"), c.head_dim);
  const double eps = f.has(p + "attention.layer_norm_rms_epsilon") ? f.get_float(p + "attention.layer_norm_rms_epsilon")
                                                                   : 1e-5;
  const double theta = f.has(p + "rope.freq_base") ? f.get_float(p + "rope.freq_base") : 10000.0;
  if (!(eps > 0 && eps < 1) || !(theta > 0 && theta < 1e30))
    fail("'{}': layer_norm_rms_epsilon {} must be in (0, 1) and rope.freq_base {} positive", f.path(), eps, theta);
  c.norm_eps = static_cast<float>(eps);
  c.rope.theta = theta;
  c.rope_local = c.rope;
  c.rotary_dim = c.head_dim;
  c.rope_style = RopeStyle::Interleaved;
  for (const char* key : {"rope.scaling.type", "rope.scaling.factor"}) {
    if (!f.has(p + key)) continue;
    const auto& v = f.metadata().at(p + key);
    const bool none = (v.is_string() && (v == "none" || v == "")) || (v.is_number() && v.get<double>() == 1.0);
    if (!none) fail("'{}': RoPE scaling ({} = {}) is not supported", f.path(), p + key, v.dump());
  }
  if (f.find("rope_freqs.weight"))
    fail("'{}': tensor 'rope_freqs.weight' (Llama 3.1 RoPE frequency scaling) is not supported", f.path());
  if (c.n_heads % c.n_kv_heads != 0 || c.head_dim % 2 != 0)
    fail("'{}': head_count {} must be a multiple of head_count_kv {} and the head dimension {} even", f.path(),
         c.n_heads, c.n_kv_heads, c.head_dim);
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  if (emb.ne.size() != 2 || emb.ne[0] != c.d_model)
    fail("'{}': tensor 'token_embd.weight' has ne {}, expected [{}, vocab]", f.path(), fmt::join(emb.ne, ", "),
         c.d_model);
  c.vocab_size = static_cast<int>(emb.ne[1]);
  c.tied_embeddings = f.find("output.weight") == nullptr;
  return c;
}

// saelab's parameter name -> the GGUF tensor that holds it.
std::string gguf_name(const std::string& name) {
  static const std::pair<const char*, const char*> kLayer[] = {
      {"ln1.w", "attn_norm.weight"},      {"attn.W_Q", "attn_q.weight"},   {"attn.W_K", "attn_k.weight"},
      {"attn.W_V", "attn_v.weight"},      {"attn.W_O", "attn_output.weight"}, {"ln2.w", "ffn_norm.weight"},
      {"mlp.W_gate", "ffn_gate.weight"},  {"mlp.W_in", "ffn_up.weight"},   {"mlp.W_out", "ffn_down.weight"}};
  if (name == "embed.W_E") return "token_embd.weight";
  if (name == "ln_final.w") return "output_norm.weight";
  if (name == "unembed.W_U") return "output.weight";
  const std::string prefix = "blocks.";
  SAELAB_ASSERT(name.rfind(prefix, 0) == 0, "unmapped parameter {}", name);
  const size_t dot = name.find('.', prefix.size());
  const std::string layer = name.substr(prefix.size(), dot - prefix.size()), rest = name.substr(dot + 1);
  for (const auto& [ours, gg] : kLayer)
    if (rest == ours) return "blk." + layer + "." + gg;
  SAELAB_ASSERT(false, "unmapped parameter {}", name);
}

// Every tensor the metadata implies, with its shape and a type we decode, before the model (sized by
// the metadata) is allocated; and no tensor the forward would silently ignore (biases, q/k norms,
// MoE experts).
void check_tensors(const GgufFile& f, const std::vector<std::pair<std::string, std::vector<int64_t>>>& params) {
  std::unordered_set<std::string> used;
  for (const auto& [name, shape] : params) {
    const GgufTensorInfo& t = f.tensor(gguf_name(name));
    if (t.shape() != shape)
      fail("'{}': tensor '{}' has shape [{}] (ggml ne [{}]), but the metadata implies [{}]", f.path(), t.name,
           fmt::join(t.shape(), ", "), fmt::join(t.ne, ", "), fmt::join(shape, ", "));
    if (!ggml_type_supported(t.type))
      fail("'{}': tensor '{}' has type {}, which saelab cannot dequantise (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 "
           "Q5_0 Q5_1 Q4_K Q5_K Q6_K)",
           f.path(), t.name, ggml_type_name(t.type));
    used.insert(t.name);
  }
  for (const auto& t : f.tensors())
    if (!used.count(t.name))
      fail("'{}': tensor '{}' is not part of the llama forward saelab runs (biases, norms or experts it would "
           "ignore); this model is not supported",
           f.path(), t.name);
}

}  // namespace

std::unique_ptr<LanguageModel> load_gguf_model(const std::string& path, const std::string& name, Backend& be) {
  GgufFile f(path);
  ModelConfig cfg = gguf_llama_config(f);
  cfg.name = name;
  auto tok = make_gguf_tokenizer(read_gguf_vocab(f));
  if (tok->vocab_size() > cfg.vocab_size)
    fail("'{}': the tokenizer has {} tokens but token_embd.weight has {} rows", path, tok->vocab_size(), cfg.vocab_size);
  const auto params = model_param_specs(cfg);
  check_tensors(f, params);
  auto model = std::make_unique<LanguageModel>(cfg, std::move(tok), be);
  for (const auto& [name, shape] : params)
    f.dequantize(f.tensor(gguf_name(name)), model->host_params().data() + model->param_offset(name));
  model->upload();
  return model;
}

}  // namespace saelab
