// The decoder-only transformer forward, written once over the backend interface for every
// architecture ModelConfig describes. Activations are [B*T, width] with row = b*T + t; every hook
// point is a named view of the residual stream or a sub-block output, fired where TransformerLens
// defines it, so a splice changes what the rest of the forward sees.
#include <algorithm>
#include <cstring>

#include "saelab/lm.hpp"

namespace saelab {

namespace {
const char* const kEmbedHook = "hook_embed";        // the token embedding as it enters the residual
const char* const kPosEmbedHook = "hook_pos_embed";  // learned positions (GPT-2)

// The hook points of one block, in the order the forward reaches them.
std::vector<const char*> block_hook_points(const ModelConfig& c) {
  if (c.parallel_residual) return {"hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post"};
  return {"hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"};
}
}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> model_param_specs(const ModelConfig& c) {
  const int64_t d = c.d_model, ff = c.d_ff, V = c.vocab_size, hd = c.head_dim;
  const int64_t qw = c.n_heads * hd, kw = c.n_kv_heads * hd;
  const bool ln = c.norm == NormKind::Layer;
  std::vector<std::pair<std::string, std::vector<int64_t>>> specs;
  auto add = [&](std::string name, std::vector<int64_t> shape) { specs.emplace_back(std::move(name), shape); };
  add("embed.W_E", {V, d});
  if (c.learned_positions) add("pos_embed.W_pos", {c.max_seq_len, d});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blocks.{}.", l);
    add(p + "ln1.w", {d});
    if (ln) add(p + "ln1.b", {d});
    for (const char* m : {"Q", "K", "V"}) {
      const int64_t rows = m[0] == 'Q' ? qw : kw;
      add(p + "attn.W_" + m, {rows, d});
      if (c.qkv_bias) add(p + "attn.b_" + m, {rows});
    }
    if (c.qk_norm) {
      add(p + "attn.q_norm", {hd});
      add(p + "attn.k_norm", {hd});
    }
    add(p + "attn.W_O", {d, qw});
    if (c.o_bias) add(p + "attn.b_O", {d});
    if (c.post_norms) add(p + "ln1_post.w", {d});
    add(p + "ln2.w", {d});
    if (ln) add(p + "ln2.b", {d});
    if (c.gated_mlp) add(p + "mlp.W_gate", {ff, d});
    add(p + "mlp.W_in", {ff, d});
    if (c.mlp_bias) add(p + "mlp.b_in", {ff});
    add(p + "mlp.W_out", {d, ff});
    if (c.mlp_bias) add(p + "mlp.b_out", {d});
    if (c.post_norms) add(p + "ln2_post.w", {d});
  }
  add("ln_final.w", {d});
  if (ln) add("ln_final.b", {d});
  if (!c.tied_embeddings) add("unembed.W_U", {V, d});
  return specs;
}

LanguageModel::LanguageModel(ModelConfig cfg, std::unique_ptr<Tokenizer> tok, Backend& be)
    : cfg_(std::move(cfg)), tok_(std::move(tok)), be_(be), param_specs_(model_param_specs(cfg_)) {
  SAELAB_ASSERT(static_cast<int>(cfg_.window.size()) == cfg_.n_layers || cfg_.window.empty(),
                "window has {} entries for {} layers", cfg_.window.size(), cfg_.n_layers);
  if (cfg_.window.empty()) cfg_.window.assign(cfg_.n_layers, 0);
  size_t total = 0;
  for (const auto& [name, shape] : param_specs_) {
    param_offsets_.push_back(total);
    size_t n = 1;
    for (auto s : shape) n *= static_cast<size_t>(s);
    total += n;
  }
  host_params_.assign(total, 0.f);
  params_ = Tensor({static_cast<int64_t>(total)}, DType::F32, be_.device());
  if (cfg_.rotary_dim > 0) {
    const auto g = rope_inv_freq(cfg_.rope, cfg_.rotary_dim), loc = rope_inv_freq(cfg_.rope_local, cfg_.rotary_dim);
    inv_freq_ = to_device(be_, {static_cast<int64_t>(g.size())}, g.data());
    inv_freq_local_ = to_device(be_, {static_cast<int64_t>(loc.size())}, loc.data());
  }
  embed_ = view("embed.W_E");
  pos_embed_ = view("pos_embed.W_pos");
  final_norm_w_ = view("ln_final.w");
  final_norm_b_ = view("ln_final.b");
  unembed_ = cfg_.tied_embeddings ? embed_ : view("unembed.W_U");
  for (int l = 0; l < cfg_.n_layers; ++l) {
    auto v = [&](const char* n) { return view(fmt::format("blocks.{}.{}", l, n)); };
    layers_.push_back({v("ln1.w"), v("ln1.b"), v("attn.W_Q"), v("attn.b_Q"), v("attn.W_K"), v("attn.b_K"),
                       v("attn.W_V"), v("attn.b_V"), v("attn.q_norm"), v("attn.k_norm"), v("attn.W_O"),
                       v("attn.b_O"), v("ln1_post.w"), v("ln2.w"), v("ln2.b"), v("mlp.W_gate"), v("mlp.W_in"),
                       v("mlp.b_in"), v("mlp.W_out"), v("mlp.b_out"), v("ln2_post.w")});
  }
}

TensorView LanguageModel::view(const std::string& name) const {
  for (size_t i = 0; i < param_specs_.size(); ++i)
    if (param_specs_[i].first == name)
      return TensorView::make(params_.f32() + param_offsets_[i], param_specs_[i].second, DType::F32, be_.device());
  return TensorView{};
}

size_t LanguageModel::param_offset(const std::string& name) const {
  for (size_t i = 0; i < param_specs_.size(); ++i)
    if (param_specs_[i].first == name) return param_offsets_[i];
  SAELAB_ASSERT(false, "no parameter {}", name);
}

// The host copy is freed once on the device: a 2B-parameter model would otherwise hold its f32
// weights twice (10 GB each for gemma-2-2b).
void LanguageModel::upload() {
  SAELAB_ASSERT(host_params_.size() == static_cast<size_t>(params_.numel()), "upload after the host copy was freed");
  be_.upload(params_.view(), host_params_.data());
  std::vector<float>().swap(host_params_);
}

std::vector<std::string> LanguageModel::hook_names() const {
  std::vector<std::string> out{kEmbedHook};
  if (cfg_.learned_positions) out.push_back(kPosEmbedHook);
  for (int l = 0; l < cfg_.n_layers; ++l)
    for (const char* p : block_hook_points(cfg_)) out.push_back(hook_name(l, p));
  return out;
}

void LanguageModel::check_hook(const std::string& name) const {
  const auto names = hook_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  std::string points;
  for (const char* p : block_hook_points(cfg_)) points += (points.empty() ? "" : ", ") + std::string(p);
  fail("hook '{}' is not in model '{}' ({}; valid: hook_embed{}, blocks.{{0..{}}}.{{{}}})", name, cfg_.name,
       cfg_.architecture, cfg_.learned_positions ? ", hook_pos_embed" : "", cfg_.n_layers - 1, points);
}

int LanguageModel::hook_layer(const std::string& name) const {
  check_hook(name);
  if (name == kEmbedHook || name == kPosEmbedHook) return -1;
  return std::stoi(name.substr(7, name.find('.', 7) - 7));
}

struct LanguageModel::Buffers {
  Buffers(const ModelConfig& c, int64_t N, Device dev)
      : h({N, c.d_model}, DType::F32, dev),
        xn({N, c.d_model}, DType::F32, dev),
        q({N, static_cast<int64_t>(c.n_heads) * c.head_dim}, DType::F32, dev),
        k({N, static_cast<int64_t>(c.n_kv_heads) * c.head_dim}, DType::F32, dev),
        v({N, static_cast<int64_t>(c.n_kv_heads) * c.head_dim}, DType::F32, dev),
        att({N, static_cast<int64_t>(c.n_heads) * c.head_dim}, DType::F32, dev),
        attn_out({N, c.d_model}, DType::F32, dev),
        mlp_out({N, c.d_model}, DType::F32, dev),
        gate({N, c.d_ff}, DType::F32, dev),
        up({N, c.d_ff}, DType::F32, dev) {}
  Tensor h;         // the residual stream
  Tensor xn;        // normalised input of a sub-block
  Tensor q, k, v, att;
  Tensor attn_out, mlp_out;  // what each sub-block adds to the residual
  Tensor gate, up;  // MLP hidden [N, ff]
};

void LanguageModel::norm(TensorView y, TensorView x, TensorView w, TensorView bias) const {
  if (cfg_.norm == NormKind::Layer)
    be_.layernorm(y, x, w, bias, cfg_.norm_eps);
  else
    be_.rmsnorm(y, x, w, cfg_.norm_eps);
}

void LanguageModel::attention(const Buffers& b, int l, int T) const {
  const LayerWeights& w = layers_[l];
  const int64_t N = b.h.view().dim(0), hd = cfg_.head_dim;
  be_.gemm(b.q, b.xn, false, w.W_Q, true, 1.f, 0.f);
  be_.gemm(b.k, b.xn, false, w.W_K, true, 1.f, 0.f);
  be_.gemm(b.v, b.xn, false, w.W_V, true, 1.f, 0.f);
  if (cfg_.qkv_bias) {
    be_.add_row(b.q, w.b_Q);
    be_.add_row(b.k, w.b_K);
    be_.add_row(b.v, w.b_V);
  }
  if (cfg_.qk_norm) {  // per head: rows of [N·H, hd]
    const TensorView qh = b.q.view().reshape({N * cfg_.n_heads, hd}), kh = b.k.view().reshape({N * cfg_.n_kv_heads, hd});
    be_.rmsnorm(qh, qh, w.q_norm, cfg_.norm_eps);
    be_.rmsnorm(kh, kh, w.k_norm, cfg_.norm_eps);
  }
  const int window = cfg_.window[l];
  if (cfg_.rotary_dim > 0) {
    const Tensor& f = window > 0 ? inv_freq_local_ : inv_freq_;
    be_.rope(b.q, T, cfg_.n_heads, f, cfg_.rope_style);
    be_.rope(b.k, T, cfg_.n_kv_heads, f, cfg_.rope_style);
  }
  be_.causal_attention(b.att, b.q, b.k, b.v, T, cfg_.n_heads, cfg_.n_kv_heads,
                       AttentionOptions{cfg_.attn_scale, cfg_.attn_softcap, window});
  be_.gemm(b.attn_out, b.att, false, w.W_O, true, 1.f, 0.f);
  if (cfg_.o_bias) be_.add_row(b.attn_out, w.b_O);
  if (cfg_.post_norms) be_.rmsnorm(b.attn_out, b.attn_out, w.ln1_post, cfg_.norm_eps);
}

void LanguageModel::mlp(const Buffers& b, int l, TensorView x, TensorView out) const {
  const LayerWeights& w = layers_[l];
  if (cfg_.gated_mlp) {
    be_.gemm(b.gate, x, false, w.W_gate, true, 1.f, 0.f);
    be_.gemm(b.up, x, false, w.W_in, true, 1.f, 0.f);
    be_.activation(b.gate, b.gate, b.up, cfg_.act);
    be_.gemm(out, b.gate, false, w.W_out, true, 1.f, 0.f);
  } else {
    be_.gemm(b.up, x, false, w.W_in, true, 1.f, 0.f);
    if (cfg_.mlp_bias) be_.add_row(b.up, w.b_in);
    be_.activation(b.up, b.up, TensorView{}, cfg_.act);
    be_.gemm(out, b.up, false, w.W_out, true, 1.f, 0.f);
  }
  if (cfg_.mlp_bias) be_.add_row(out, w.b_out);
  if (cfg_.post_norms) be_.rmsnorm(out, out, w.ln2_post, cfg_.norm_eps);
}

Tensor LanguageModel::forward(const std::vector<int32_t>& tokens, int B, int T, const Hooks* hooks,
                              bool want_logits) const {
  const int64_t N = static_cast<int64_t>(B) * T;
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

  Buffers b(cfg_, N, be_.device());
  auto fire = [&](int l, const char* point, const Tensor& t) {
    if (hooks) hooks->fire(hook_name(l, point), t.view());
  };
  {
    Tensor ids({N}, DType::I32, be_.device());
    be_.upload(ids.view(), tokens.data());
    be_.embedding(b.h, embed_, ids);
    if (cfg_.embed_scale != 1.f) be_.scale(b.h, cfg_.embed_scale);
    if (hooks) hooks->fire(kEmbedHook, b.h.view());
  }
  if (cfg_.learned_positions) {
    std::vector<int32_t> pos(static_cast<size_t>(N));
    for (int64_t r = 0; r < N; ++r) pos[r] = static_cast<int32_t>(r % T);
    Tensor ids({N}, DType::I32, be_.device());
    be_.upload(ids.view(), pos.data());
    be_.embedding(b.mlp_out, pos_embed_, ids);
    if (hooks) hooks->fire(kPosEmbedHook, b.mlp_out.view());
    be_.add_inplace(b.h, b.mlp_out);
  }
  for (int l = 0; l <= last_layer; ++l) {
    const LayerWeights& w = layers_[l];
    fire(l, "hook_resid_pre", b.h);
    norm(b.xn, b.h, w.ln1_w, w.ln1_b);
    attention(b, l, T);
    fire(l, "hook_attn_out", b.attn_out);
    if (cfg_.parallel_residual) {  // both sub-blocks read the block's input
      norm(b.xn, b.h, w.ln2_w, w.ln2_b);
      mlp(b, l, b.xn, b.mlp_out);
      fire(l, "hook_mlp_out", b.mlp_out);
      be_.add_inplace(b.h, b.attn_out);
      be_.add_inplace(b.h, b.mlp_out);
    } else {
      be_.add_inplace(b.h, b.attn_out);
      fire(l, "hook_resid_mid", b.h);
      norm(b.xn, b.h, w.ln2_w, w.ln2_b);
      mlp(b, l, b.xn, b.mlp_out);
      fire(l, "hook_mlp_out", b.mlp_out);
      be_.add_inplace(b.h, b.mlp_out);
    }
    fire(l, "hook_resid_post", b.h);
  }
  if (!want_logits) return Tensor();
  Tensor logits({N, static_cast<int64_t>(cfg_.vocab_size)}, DType::F32, be_.device());
  norm(b.xn, b.h, final_norm_w_, final_norm_b_);
  be_.gemm(logits, b.xn, false, unembed_, true, 1.f, 0.f);
  if (cfg_.final_softcap > 0) be_.softcap(logits, cfg_.final_softcap);
  return logits;
}

std::vector<float> LanguageModel::logit_effects(const std::vector<float>& dirs, int64_t R) const {
  const int64_t d = cfg_.d_model, V = cfg_.vocab_size;
  SAELAB_ASSERT(static_cast<int64_t>(dirs.size()) == R * d, "logit_effects: {} values for R={} d={}", dirs.size(), R, d);
  if (R == 0) return {};
  std::vector<float> w = to_host_f32(be_, final_norm_w_), rows(dirs);
  for (int64_t r = 0; r < R; ++r) {
    float* x = rows.data() + r * d;
    if (cfg_.norm == NormKind::Layer) {
      double mean = 0;
      for (int64_t i = 0; i < d; ++i) mean += x[i];
      mean /= static_cast<double>(d);
      for (int64_t i = 0; i < d; ++i) x[i] -= static_cast<float>(mean);
    }
    for (int64_t i = 0; i < d; ++i) x[i] *= w[i];
  }
  const Tensor X = to_device(be_, {R, d}, rows.data());
  Tensor out({R, V}, DType::F32, be_.device());
  be_.gemm(out, X, false, unembed_, true, 1.f, 0.f);
  return to_host_f32(be_, out);
}

std::vector<int32_t> generate_greedy(const LanguageModel& m, std::vector<int32_t> seq, int steps, bool stop_at_eog) {
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
