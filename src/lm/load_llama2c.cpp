// llama2.c checkpoints (run.c): seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; a negative vocab_size means an untied classifier), then f32 weights in the
// order below, each [out, in] row-major. The RoPE tables in the file are skipped: we compute them.
#include <cstring>
#include <filesystem>

#include "load_model_impl.hpp"
#include "saelab/atomic_file.hpp"

namespace saelab {

std::unique_ptr<LanguageModel> load_llama2c_model(const std::string& bin, const std::string& tok_path, Backend& be) {
  const std::string buf = read_file(bin);
  int32_t hdr[7];
  if (buf.size() < sizeof(hdr)) fail("'{}' is too short for a llama2.c header (28 bytes), has {}", bin, buf.size());
  std::memcpy(hdr, buf.data(), sizeof(hdr));
  // Checked before std::abs: abs(INT32_MIN) is undefined.
  for (int i = 0; i < 7; ++i)
    if (hdr[i] == 0 || (i != 5 && hdr[i] < 0) || hdr[i] > (1 << 24) || hdr[i] < -(1 << 24))
      fail("'{}' does not look like a llama2.c checkpoint: header field {} is {}", bin, i, hdr[i]);
  ModelConfig c;
  c.source_format = "llama2c";
  c.architecture = "llama";
  c.name = std::filesystem::path(bin).stem().string();
  c.d_model = hdr[0];
  c.d_ff = hdr[1];
  c.n_layers = hdr[2];
  c.n_heads = hdr[3];
  c.n_kv_heads = hdr[4];
  c.tied_embeddings = hdr[5] > 0;
  c.vocab_size = std::abs(hdr[5]);
  c.max_seq_len = hdr[6];
  if (c.d_model % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0)
    fail("'{}': dim {} / n_heads {} / n_kv_heads {} are inconsistent", bin, c.d_model, c.n_heads, c.n_kv_heads);
  c.head_dim = c.d_model / c.n_heads;
  // RoPE rotates pairs of a head's dimensions: an odd head size loaded, then the forward aborted
  // on an internal check.
  if (c.head_dim % 2 != 0) fail("'{}': head size dim / n_heads = {} must be even", bin, c.head_dim);
  c.norm_eps = 1e-5f;
  c.rotary_dim = c.head_dim;
  c.rope_style = RopeStyle::Interleaved;

  const int64_t d = c.d_model, ff = c.d_ff, L = c.n_layers, V = c.vocab_size, hd = c.head_dim;
  const int64_t kw = c.n_kv_heads * hd;
  const int64_t rope_tables = static_cast<int64_t>(c.max_seq_len) * hd;  // real + imag halves
  // In 128 bits: header fields up to 2^24 make products up to ~2^75; the int64 sum overflowed
  // (undefined behaviour) and could wrap to the file's size.
  using i128 = __int128;
  const i128 expect = i128{V} * d + i128{L} * (2 * d + i128{d} * d + i128{2 * kw} * d + i128{d} * d + i128{3 * ff} * d) +
                      d + rope_tables + (c.tied_embeddings ? 0 : i128{V} * d);
  const int64_t have = (static_cast<int64_t>(buf.size()) - 28) / 4;
  if (expect != have) {
    const std::string implied = expect > i128{INT64_MAX} ? std::string("more than 2^63") : std::to_string(static_cast<int64_t>(expect));
    fail("'{}' is truncated or not a llama2.c checkpoint: header implies {} floats, file holds {}", bin, implied, have);
  }

  auto model = std::make_unique<LanguageModel>(c, load_llama2c_tokenizer(tok_path, c.vocab_size), be);
  const float* src = reinterpret_cast<const float*>(buf.data() + 28);
  float* dst = model->host_params().data();
  auto take = [&](const std::string& name, int64_t n) {
    std::memcpy(dst + model->param_offset(name), src, n * sizeof(float));
    src += n;
  };
  // Per-kind arrays over all layers, as llama2.c stores them.
  auto take_layers = [&](const char* suffix, int64_t n) {
    for (int64_t l = 0; l < L; ++l) take(fmt::format("blocks.{}.{}", l, suffix), n);
  };
  take("embed.W_E", V * d);
  take_layers("ln1.w", d);
  take_layers("attn.W_Q", d * d);
  take_layers("attn.W_K", kw * d);
  take_layers("attn.W_V", kw * d);
  take_layers("attn.W_O", d * d);
  take_layers("ln2.w", d);
  take_layers("mlp.W_gate", ff * d);  // w1
  take_layers("mlp.W_out", d * ff);   // w2
  take_layers("mlp.W_in", ff * d);    // w3
  take("ln_final.w", d);
  src += rope_tables;
  if (!c.tied_embeddings) take("unembed.W_U", V * d);
  model->upload();
  return model;
}

}  // namespace saelab
