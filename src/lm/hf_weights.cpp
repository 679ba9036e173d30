// Where each of saelab's parameters lives in a Hugging Face checkpoint, per architecture, and how it
// is laid out there: transposed (GPT-2's Conv1D stores [in, out]), fused (GPT-2's c_attn holds Q, K
// and V side by side; GPT-NeoX's query_key_value interleaves them per head), or offset (Gemma's
// RMSNorm weights w are applied as 1 + w).
#include "hf_weights.hpp"

#include <fmt/format.h>

#include "saelab/error.hpp"

namespace saelab {

namespace {

using Present = std::function<bool(const std::string&)>;

struct Builder {
  const ModelConfig& c;
  std::vector<HfSource> out;
  // Whole-tensor sources: the stored shape is the parameter's shape (transposed for Conv1D).
  void plain(const std::string& param, const std::string& stored, std::vector<int64_t> shape, float add = 0.f,
             bool transpose = false) {
    if (transpose) std::swap(shape[0], shape[1]);
    out.push_back({param, stored, shape, transpose, add, 0, 0, 0});
  }
  void fused(const std::string& param, const std::string& stored, std::vector<int64_t> stored_shape, bool transpose,
             int64_t chunk, int64_t stride, int64_t offset) {
    out.push_back({param, stored, std::move(stored_shape), transpose, 0.f, chunk, stride, offset});
  }
};

// llama, mistral, qwen2, qwen3, gemma2, gemma3_text: model.layers.L.{self_attn,mlp}.*_proj.
void llama_family(Builder& b, const std::string& P, const Present& present) {
  const ModelConfig& c = b.c;
  const int64_t d = c.d_model, ff = c.d_ff, V = c.vocab_size, hd = c.head_dim;
  const int64_t qw = c.n_heads * hd, kw = c.n_kv_heads * hd;
  const bool gemma = c.post_norms;  // Gemma's norms are all (1 + w)
  const float one = gemma ? 1.f : 0.f;
  // Tied checkpoints often store the shared matrix once, as lm_head.weight.
  const std::string embed = P + "embed_tokens.weight";
  b.plain("embed.W_E", c.tied_embeddings && !present(embed) && present("lm_head.weight") ? "lm_head.weight" : embed,
          {V, d});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blocks.{}.", l), s = fmt::format("{}layers.{}.", P, l);
    b.plain(p + "ln1.w", s + "input_layernorm.weight", {d}, one);
    for (const char* m : {"q", "k", "v"}) {
      const int64_t rows = m[0] == 'q' ? qw : kw;
      const std::string M(1, static_cast<char>(m[0] - 'a' + 'A'));
      b.plain(p + "attn.W_" + M, s + "self_attn." + m + "_proj.weight", {rows, d});
      if (c.qkv_bias) b.plain(p + "attn.b_" + M, s + "self_attn." + m + "_proj.bias", {rows});
    }
    if (c.qk_norm) {
      b.plain(p + "attn.q_norm", s + "self_attn.q_norm.weight", {hd}, one);
      b.plain(p + "attn.k_norm", s + "self_attn.k_norm.weight", {hd}, one);
    }
    b.plain(p + "attn.W_O", s + "self_attn.o_proj.weight", {d, qw});
    if (c.o_bias) b.plain(p + "attn.b_O", s + "self_attn.o_proj.bias", {d});
    if (gemma) {
      b.plain(p + "ln1_post.w", s + "post_attention_layernorm.weight", {d}, one);
      b.plain(p + "ln2.w", s + "pre_feedforward_layernorm.weight", {d}, one);
      b.plain(p + "ln2_post.w", s + "post_feedforward_layernorm.weight", {d}, one);
    } else {
      b.plain(p + "ln2.w", s + "post_attention_layernorm.weight", {d});
    }
    b.plain(p + "mlp.W_gate", s + "mlp.gate_proj.weight", {ff, d});
    b.plain(p + "mlp.W_in", s + "mlp.up_proj.weight", {ff, d});
    b.plain(p + "mlp.W_out", s + "mlp.down_proj.weight", {d, ff});
  }
  b.plain("ln_final.w", P + "norm.weight", {d}, one);
  if (!c.tied_embeddings) b.plain("unembed.W_U", "lm_head.weight", {V, d});
}

// GPT-2: [transformer.]h.L.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, Conv1D
// weights [in, out]; c_attn's columns are Q | K | V.
void gpt2(Builder& b, const Present& present) {
  const ModelConfig& c = b.c;
  const int64_t d = c.d_model, ff = c.d_ff, V = c.vocab_size;
  // The original checkpoint names its tensors without "transformer."; save_pretrained adds it.
  const std::string P = present("transformer.wte.weight") ? "transformer." : "";
  b.plain("embed.W_E", P + "wte.weight", {V, d});
  b.plain("pos_embed.W_pos", P + "wpe.weight", {c.max_seq_len, d});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blocks.{}.", l), s = fmt::format("{}h.{}.", P, l);
    b.plain(p + "ln1.w", s + "ln_1.weight", {d});
    b.plain(p + "ln1.b", s + "ln_1.bias", {d});
    const char* qkv[] = {"Q", "K", "V"};
    for (int i = 0; i < 3; ++i) {
      b.fused(p + "attn.W_" + qkv[i], s + "attn.c_attn.weight", {d, 3 * d}, true, d, 3 * d, i * d);
      b.fused(p + "attn.b_" + qkv[i], s + "attn.c_attn.bias", {3 * d}, false, d, 3 * d, i * d);
    }
    b.plain(p + "attn.W_O", s + "attn.c_proj.weight", {d, d}, 0.f, true);
    b.plain(p + "attn.b_O", s + "attn.c_proj.bias", {d});
    b.plain(p + "ln2.w", s + "ln_2.weight", {d});
    b.plain(p + "ln2.b", s + "ln_2.bias", {d});
    b.plain(p + "mlp.W_in", s + "mlp.c_fc.weight", {ff, d}, 0.f, true);
    b.plain(p + "mlp.b_in", s + "mlp.c_fc.bias", {ff});
    b.plain(p + "mlp.W_out", s + "mlp.c_proj.weight", {d, ff}, 0.f, true);
    b.plain(p + "mlp.b_out", s + "mlp.c_proj.bias", {d});
  }
  b.plain("ln_final.w", P + "ln_f.weight", {d});
  b.plain("ln_final.b", P + "ln_f.bias", {d});
  if (!c.tied_embeddings) b.plain("unembed.W_U", "lm_head.weight", {V, d});
}

// GPT-NeoX (Pythia): query_key_value rows are [H, 3, hd] (per head: q, k, v).
void gpt_neox(Builder& b) {
  const ModelConfig& c = b.c;
  const int64_t d = c.d_model, ff = c.d_ff, V = c.vocab_size, hd = c.head_dim, qw = c.n_heads * hd;
  b.plain("embed.W_E", "gpt_neox.embed_in.weight", {V, d});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blocks.{}.", l), s = fmt::format("gpt_neox.layers.{}.", l);
    b.plain(p + "ln1.w", s + "input_layernorm.weight", {d});
    b.plain(p + "ln1.b", s + "input_layernorm.bias", {d});
    const char* qkv[] = {"Q", "K", "V"};
    for (int i = 0; i < 3; ++i) {
      b.fused(p + "attn.W_" + qkv[i], s + "attention.query_key_value.weight", {3 * qw, d}, false, hd, 3 * hd, i * hd);
      if (c.qkv_bias)
        b.fused(p + "attn.b_" + qkv[i], s + "attention.query_key_value.bias", {3 * qw}, false, hd, 3 * hd, i * hd);
    }
    b.plain(p + "attn.W_O", s + "attention.dense.weight", {d, qw});
    if (c.o_bias) b.plain(p + "attn.b_O", s + "attention.dense.bias", {d});
    b.plain(p + "ln2.w", s + "post_attention_layernorm.weight", {d});
    b.plain(p + "ln2.b", s + "post_attention_layernorm.bias", {d});
    b.plain(p + "mlp.W_in", s + "mlp.dense_h_to_4h.weight", {ff, d});
    b.plain(p + "mlp.b_in", s + "mlp.dense_h_to_4h.bias", {ff});
    b.plain(p + "mlp.W_out", s + "mlp.dense_4h_to_h.weight", {d, ff});
    b.plain(p + "mlp.b_out", s + "mlp.dense_4h_to_h.bias", {d});
  }
  b.plain("ln_final.w", "gpt_neox.final_layer_norm.weight", {d});
  b.plain("ln_final.b", "gpt_neox.final_layer_norm.bias", {d});
  if (!c.tied_embeddings) b.plain("unembed.W_U", "embed_out.weight", {V, d});
}

}  // namespace

std::vector<HfSource> hf_sources(const ModelConfig& c, const Present& present) {
  Builder b{c, {}};
  if (c.architecture == "gpt2")
    gpt2(b, present);
  else if (c.architecture == "gpt_neox")
    gpt_neox(b);
  else
    llama_family(b, "model.", present);
  return b.out;
}

bool hf_ignorable(const std::string& name, const ModelConfig& c) {
  // Buffers older checkpoints saved beside the weights: causal masks (GPT-2's h.L.attn.bias,
  // GPT-NeoX's layers.L.attention.bias; their real biases are c_attn.bias, query_key_value.bias, ...)
  // and RoPE tables; and a tied model's duplicate head.
  for (const char* suffix : {".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias",
                             ".rotary_emb.inv_freq"}) {
    const std::string s(suffix);
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  }
  return c.tied_embeddings && name == "lm_head.weight";
}

void apply_source(const HfSource& s, const std::vector<float>& stored, const std::vector<int64_t>& param_shape,
                  float* dst) {
  const int64_t R = param_shape[0], C = param_shape.size() > 1 ? param_shape[1] : 1;
  // The stored tensor as a row-major [rows, C] matrix, transposed first for Conv1D.
  std::vector<float> t;
  const std::vector<float>* src = &stored;
  if (s.transpose) {
    const int64_t a = s.stored_shape[0], bcols = s.stored_shape[1];
    t.resize(stored.size());
    for (int64_t i = 0; i < a; ++i)
      for (int64_t j = 0; j < bcols; ++j) t[j * a + i] = stored[i * bcols + j];
    src = &t;
  }
  if (s.chunk == 0) {
    SAELAB_ASSERT(static_cast<int64_t>(src->size()) == R * C, "source {} size", s.stored);
    for (int64_t i = 0; i < R * C; ++i) dst[i] = (*src)[i] + s.add;
    return;
  }
  SAELAB_ASSERT(R % s.chunk == 0, "fused source {}: {} rows in chunks of {}", s.stored, R, s.chunk);
  for (int64_t blk = 0; blk < R / s.chunk; ++blk)
    for (int64_t r = 0; r < s.chunk; ++r) {
      const int64_t from = blk * s.stride + s.offset + r, to = blk * s.chunk + r;
      SAELAB_ASSERT((from + 1) * C <= static_cast<int64_t>(src->size()), "fused source {} row {}", s.stored, from);
      for (int64_t j = 0; j < C; ++j) dst[to * C + j] = (*src)[from * C + j] + s.add;
    }
}

}  // namespace saelab
