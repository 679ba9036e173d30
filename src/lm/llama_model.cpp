// The Llama forward, written once over the backend interface. Activations are [B*T, width] with
// row = b*T + t; every hook point is a named view of the residual stream or a block output.
#include <algorithm>
#include <cstring>

#include "saelab/lm.hpp"

namespace saelab {

namespace {
// Per block, in the order the forward reaches them (TransformerLens names).
const char* const kHookPoints[] = {"hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out",
                                   "hook_resid_post"};
const char* const kEmbedHook = "hook_embed";  // the token embedding, before block 0
}

std::vector<std::pair<std::string, std::vector<int64_t>>> llama_param_specs(const LlamaConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff, V = c.vocab_size;
  const int64_t qw = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kw = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> specs;
  auto add = [&](std::string name, std::vector<int64_t> shape) { specs.emplace_back(std::move(name), shape); };
  add("model.embed_tokens.weight", {V, d});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    add(p + "input_layernorm.weight", {d});
    add(p + "self_attn.q_proj.weight", {qw, d});
    add(p + "self_attn.k_proj.weight", {kw, d});
    add(p + "self_attn.v_proj.weight", {kw, d});
    add(p + "self_attn.o_proj.weight", {d, qw});
    add(p + "post_attention_layernorm.weight", {d});
    add(p + "mlp.gate_proj.weight", {ff, d});
    add(p + "mlp.up_proj.weight", {ff, d});
    add(p + "mlp.down_proj.weight", {d, ff});
  }
  add("model.norm.weight", {d});
  if (!c.tied_embeddings) add("lm_head.weight", {V, d});
  return specs;
}

LlamaModel::LlamaModel(LlamaConfig cfg, std::unique_ptr<Tokenizer> tok, Backend& be)
    : cfg_(std::move(cfg)), tok_(std::move(tok)), be_(be), param_specs_(llama_param_specs(cfg_)) {
  size_t total = 0;
  for (const auto& [name, shape] : param_specs_) {
    param_offsets_.push_back(total);
    size_t n = 1;
    for (auto s : shape) n *= static_cast<size_t>(s);
    total += n;
  }
  host_params_.assign(total, 0.f);
  params_ = Tensor({static_cast<int64_t>(total)}, DType::F32, be_.device());
  auto view = [&](const std::string& name) {
    for (size_t i = 0; i < param_specs_.size(); ++i)
      if (param_specs_[i].first == name)
        return TensorView::make(params_.f32() + param_offsets_[i], param_specs_[i].second, DType::F32, be_.device());
    SAELAB_ASSERT(false, "no parameter {}", name);
  };
  embed_ = view("model.embed_tokens.weight");
  final_norm_ = view("model.norm.weight");
  lm_head_ = cfg_.tied_embeddings ? embed_ : view("lm_head.weight");
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    layers_.push_back({view(p + "input_layernorm.weight"), view(p + "self_attn.q_proj.weight"),
                       view(p + "self_attn.k_proj.weight"), view(p + "self_attn.v_proj.weight"),
                       view(p + "self_attn.o_proj.weight"), view(p + "post_attention_layernorm.weight"),
                       view(p + "mlp.gate_proj.weight"), view(p + "mlp.up_proj.weight"),
                       view(p + "mlp.down_proj.weight")});
  }
}

size_t LlamaModel::param_offset(const std::string& name) const {
  for (size_t i = 0; i < param_specs_.size(); ++i)
    if (param_specs_[i].first == name) return param_offsets_[i];
  SAELAB_ASSERT(false, "no parameter {}", name);
}

void LlamaModel::upload() { be_.upload(params_.view(), host_params_.data()); }

std::vector<std::string> LlamaModel::hook_names() const {
  std::vector<std::string> out{kEmbedHook};
  for (int l = 0; l < cfg_.n_layers; ++l)
    for (const char* p : kHookPoints) out.push_back(hook_name(l, p));
  return out;
}

void LlamaModel::check_hook(const std::string& name) const {
  const auto names = hook_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  fail("hook '{}' is not in model '{}' (valid: hook_embed, blocks.{{0..{}}}.{{hook_resid_pre, hook_attn_out, "
       "hook_resid_mid, hook_mlp_out, hook_resid_post}})",
       name, cfg_.name, cfg_.n_layers - 1);
}

int LlamaModel::hook_layer(const std::string& name) const {
  check_hook(name);
  if (name == kEmbedHook) return -1;
  return std::stoi(name.substr(7, name.find('.', 7) - 7));
}

Tensor LlamaModel::forward(const std::vector<int32_t>& tokens, int B, int T, const Hooks* hooks,
                           bool want_logits) const {
  const int64_t N = static_cast<int64_t>(B) * T, d = cfg_.d_model, ff = cfg_.d_ff;
  const int64_t qw = static_cast<int64_t>(cfg_.n_heads) * cfg_.head_dim;
  const int64_t kw = static_cast<int64_t>(cfg_.n_kv_heads) * cfg_.head_dim;
  SAELAB_ASSERT(static_cast<int64_t>(tokens.size()) == N, "forward: {} tokens for B={} T={}", tokens.size(), B, T);
  if (T > cfg_.max_seq_len) fail("sequence length {} exceeds the model's maximum {}", T, cfg_.max_seq_len);
  for (int32_t t : tokens)
    if (t < 0 || t >= cfg_.vocab_size) fail("token id {} is outside the vocabulary of {} ({})", t, cfg_.vocab_size, cfg_.name);

  int last_layer = cfg_.n_layers - 1;
  if (!want_logits) {
    last_layer = -1;
    if (hooks)
      for (const auto& n : hooks->names()) last_layer = std::max(last_layer, hook_layer(n));
  } else if (hooks) {
    for (const auto& n : hooks->names()) check_hook(n);
  }

  Tensor ids({N}, DType::I32, be_.device());
  be_.upload(ids.view(), tokens.data());
  Tensor h({N, d}, DType::F32, be_.device());        // the residual stream
  Tensor xn({N, d}, DType::F32, be_.device());       // normalised input of a sub-block
  Tensor q({N, qw}, DType::F32, be_.device());
  Tensor k({N, kw}, DType::F32, be_.device());
  Tensor v({N, kw}, DType::F32, be_.device());
  Tensor att({N, qw}, DType::F32, be_.device());
  Tensor block_out({N, d}, DType::F32, be_.device());  // attn_out, then mlp_out
  Tensor gate({N, ff}, DType::F32, be_.device());
  Tensor up({N, ff}, DType::F32, be_.device());
  auto fire = [&](int l, const char* point, const Tensor& t) {
    if (hooks) hooks->fire(hook_name(l, point), t.view());
  };

  be_.embedding(h, embed_, ids);
  if (hooks) hooks->fire(kEmbedHook, h.view());
  for (int l = 0; l <= last_layer; ++l) {
    const LlamaLayerWeights& w = layers_[l];
    fire(l, "hook_resid_pre", h);
    be_.rmsnorm(xn, h, w.attn_norm, cfg_.rms_eps);
    be_.gemm(q, xn, false, w.wq, true, 1.f, 0.f);
    be_.gemm(k, xn, false, w.wk, true, 1.f, 0.f);
    be_.gemm(v, xn, false, w.wv, true, 1.f, 0.f);
    be_.rope(q, T, cfg_.n_heads, cfg_.rope_theta, cfg_.rope_style);
    be_.rope(k, T, cfg_.n_kv_heads, cfg_.rope_theta, cfg_.rope_style);
    be_.causal_attention(att, q, k, v, T, cfg_.n_heads, cfg_.n_kv_heads);
    be_.gemm(block_out, att, false, w.wo, true, 1.f, 0.f);
    fire(l, "hook_attn_out", block_out);
    be_.add_inplace(h, block_out);
    fire(l, "hook_resid_mid", h);
    be_.rmsnorm(xn, h, w.mlp_norm, cfg_.rms_eps);
    be_.gemm(gate, xn, false, w.w_gate, true, 1.f, 0.f);
    be_.gemm(up, xn, false, w.w_up, true, 1.f, 0.f);
    be_.swiglu(gate, gate, up);
    be_.gemm(block_out, gate, false, w.w_down, true, 1.f, 0.f);
    fire(l, "hook_mlp_out", block_out);
    be_.add_inplace(h, block_out);
    fire(l, "hook_resid_post", h);
  }
  if (!want_logits) return Tensor();
  Tensor logits({N, static_cast<int64_t>(cfg_.vocab_size)}, DType::F32, be_.device());
  be_.rmsnorm(xn, h, final_norm_, cfg_.rms_eps);
  be_.gemm(logits, xn, false, lm_head_, true, 1.f, 0.f);
  return logits;
}

std::vector<int32_t> generate_greedy(const LlamaModel& m, std::vector<int32_t> seq, int steps, bool stop_at_eog) {
  for (int s = 0; s < steps && static_cast<int>(seq.size()) < m.config().max_seq_len; ++s) {
    const int T = static_cast<int>(seq.size());
    Tensor logits = m.forward(seq, 1, T);
    const std::vector<float> last = to_host_f32(m.backend(), logits.view().rows(T - 1, T));
    seq.push_back(static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
    if (stop_at_eog && m.tokenizer().is_eog(seq.back())) break;
  }
  return seq;
}

}  // namespace saelab
