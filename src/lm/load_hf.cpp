// A Hugging Face model directory: config.json, model.safetensors (or a sharded
// model.safetensors.index.json), tokenizer.json.
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "load_model_impl.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

LlamaConfig parse_hf_llama_config(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
  const std::string type = j.value("model_type", "");
  if (type != "llama" && type != "mistral")
    fail("'{}': model_type '{}' is not supported (supported: llama, mistral)", path, type.empty() ? "<missing>" : type);
  auto need_int = [&](const char* key) -> int {
    if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int>() <= 0)
      fail("'{}': expected a positive integer '{}', found {}", path, key, j.contains(key) ? j[key].dump() : "nothing");
    return j[key].get<int>();
  };
  LlamaConfig c;
  c.source_format = "hf";
  c.d_model = need_int("hidden_size");
  c.d_ff = need_int("intermediate_size");
  c.n_layers = need_int("num_hidden_layers");
  c.n_heads = need_int("num_attention_heads");
  c.n_kv_heads = j.contains("num_key_value_heads") ? need_int("num_key_value_heads") : c.n_heads;
  c.vocab_size = need_int("vocab_size");
  c.max_seq_len = j.contains("max_position_embeddings") ? need_int("max_position_embeddings") : 2048;
  c.head_dim = j.contains("head_dim") && j["head_dim"].is_number_integer() ? j["head_dim"].get<int>()
                                                                          : c.d_model / c.n_heads;
  c.rms_eps = j.value("rms_norm_eps", 1e-6f);
  c.rope_theta = j.value("rope_theta", 10000.f);
  c.rope_style = RopeStyle::Half;
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  if (j.value("hidden_act", "silu") != "silu")
    fail("'{}': hidden_act '{}' is not supported (supported: silu)", path, j.value("hidden_act", ""));
  if (j.value("attention_bias", false) || j.value("mlp_bias", false))
    fail("'{}': attention_bias / mlp_bias are not supported", path);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail("'{}': rope_scaling {} is not supported", path, j["rope_scaling"].dump());
  if (c.n_heads % c.n_kv_heads != 0 || c.head_dim % 2 != 0)
    fail("'{}': num_attention_heads {} must be a multiple of num_key_value_heads {} and head_dim {} even", path,
         c.n_heads, c.n_kv_heads, c.head_dim);
  return c;
}

std::unique_ptr<LlamaModel> load_hf_model(const std::string& dir, Backend& be) {
  LlamaConfig cfg = parse_hf_llama_config(dir + "/config.json");
  cfg.name = fs::path(dir).lexically_normal().filename().string();
  if (cfg.name.empty()) cfg.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  const std::string tok_path = dir + "/tokenizer.json";
  if (!file_exists(tok_path)) fail("model directory '{}' has no tokenizer.json", dir);
  auto tok = load_hf_tokenizer(tok_path);
  {
    const json j = json::parse(read_file(dir + "/config.json"));
    auto id_of = [&](const char* k) { return j.contains(k) && j[k].is_number_integer() ? j[k].get<int32_t>() : -1; };
    tok->set_bos_eos(id_of("bos_token_id"), id_of("eos_token_id"));
  }
  if (tok->vocab_size() > cfg.vocab_size)
    fail("'{}': tokenizer has {} tokens but config.json vocab_size is {}", tok_path, tok->vocab_size(), cfg.vocab_size);

  // Which file holds each tensor.
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, SafetensorsFile*> where;
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (file_exists(single)) {
    files.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (file_exists(index)) {
    json ij;
    try {
      ij = json::parse(read_file(index));
    } catch (const json::exception& e) {
      fail("'{}' is not valid JSON: {}", index, e.what());
    }
    std::map<std::string, SafetensorsFile*> by_file;
    for (auto it = ij.at("weight_map").begin(); it != ij.at("weight_map").end(); ++it) {
      const std::string f = it.value().get<std::string>();
      if (!by_file.count(f)) {
        files.push_back(std::make_unique<SafetensorsFile>(dir + "/" + f));
        by_file[f] = files.back().get();
      }
    }
  } else {
    fail("model directory '{}' has neither model.safetensors nor model.safetensors.index.json", dir);
  }
  for (auto& f : files)
    for (const auto& n : f->names()) where[n] = f.get();

  auto model = std::make_unique<LlamaModel>(cfg, std::move(tok), be);
  auto load = [&](const std::string& name, const std::vector<int64_t>& shape) {
    std::string stored = name;
    // Tied checkpoints often store the shared matrix once, as lm_head.weight.
    if (!where.count(stored) && cfg.tied_embeddings && name == "model.embed_tokens.weight") stored = "lm_head.weight";
    auto it = where.find(stored);
    if (it == where.end()) fail("model directory '{}' lacks tensor '{}'", dir, name);
    const std::vector<float> w = it->second->read_f32(stored, shape);
    std::memcpy(model->host_params().data() + model->param_offset(name), w.data(), w.size() * sizeof(float));
  };
  const int64_t d = cfg.d_model, ff = cfg.d_ff, V = cfg.vocab_size;
  const int64_t qw = static_cast<int64_t>(cfg.n_heads) * cfg.head_dim, kw = static_cast<int64_t>(cfg.n_kv_heads) * cfg.head_dim;
  load("model.embed_tokens.weight", {V, d});
  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    load(p + "input_layernorm.weight", {d});
    load(p + "self_attn.q_proj.weight", {qw, d});
    load(p + "self_attn.k_proj.weight", {kw, d});
    load(p + "self_attn.v_proj.weight", {kw, d});
    load(p + "self_attn.o_proj.weight", {d, qw});
    load(p + "post_attention_layernorm.weight", {d});
    load(p + "mlp.gate_proj.weight", {ff, d});
    load(p + "mlp.up_proj.weight", {ff, d});
    load(p + "mlp.down_proj.weight", {d, ff});
  }
  load("model.norm.weight", {d});
  if (!cfg.tied_embeddings) load("lm_head.weight", {V, d});
  model->upload();
  return model;
}

}  // namespace saelab
