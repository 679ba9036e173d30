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
  if (!j.is_object()) fail("'{}': expected a JSON object, found {}", path, j.type_name());
  LlamaConfig c;
  try {
    const std::string type = j.value("model_type", "");
    if (type != "llama" && type != "mistral")
      fail("'{}': model_type '{}' is not supported (supported: llama, mistral)", path, type.empty() ? "<missing>" : type);
    // Sizes are checked as 64-bit integers: a value past int's range must not wrap into a valid one.
    auto need_int = [&](const char* key) -> int {
      if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0 ||
          j[key].get<int64_t>() > (int64_t{1} << 30))
        fail("'{}': expected a positive integer '{}' (at most 2^30), found {}", path, key,
             j.contains(key) ? j[key].dump() : "nothing");
      return static_cast<int>(j[key].get<int64_t>());
    };
    c.source_format = "hf";
    c.d_model = need_int("hidden_size");
    c.d_ff = need_int("intermediate_size");
    c.n_layers = need_int("num_hidden_layers");
    c.n_heads = need_int("num_attention_heads");
    c.n_kv_heads = j.contains("num_key_value_heads") ? need_int("num_key_value_heads") : c.n_heads;
    c.vocab_size = need_int("vocab_size");
    c.max_seq_len = j.contains("max_position_embeddings") ? need_int("max_position_embeddings") : 2048;
    if (j.contains("head_dim") && !j["head_dim"].is_null()) {
      c.head_dim = need_int("head_dim");
    } else {
      if (c.d_model % c.n_heads != 0)
        fail("'{}': hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim is given)", path,
             c.d_model, c.n_heads);
      c.head_dim = c.d_model / c.n_heads;
    }
    const double eps = j.value("rms_norm_eps", 1e-6), theta = j.value("rope_theta", 10000.0);
    if (!(eps > 0 && eps < 1) || !(theta > 0 && theta < 1e30))
      fail("'{}': rms_norm_eps {} must be in (0, 1) and rope_theta {} positive", path, eps, theta);
    c.rms_eps = static_cast<float>(eps);
    c.rope_theta = static_cast<float>(theta);
    c.rope_style = RopeStyle::Half;
    c.tied_embeddings = j.value("tie_word_embeddings", false);
    if (j.value("hidden_act", "silu") != "silu")
      fail("'{}': hidden_act '{}' is not supported (supported: silu)", path, j.value("hidden_act", ""));
    if (j.value("attention_bias", false) || j.value("mlp_bias", false))
      fail("'{}': attention_bias / mlp_bias are not supported", path);
  } catch (const json::exception& e) {
    fail("'{}': a setting has the wrong type: {}", path, e.what());
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail("'{}': rope_scaling {} is not supported", path, j["rope_scaling"].dump());
  if (c.n_heads % c.n_kv_heads != 0 || c.head_dim % 2 != 0)
    fail("'{}': num_attention_heads {} must be a multiple of num_key_value_heads {} and head_dim {} even", path,
         c.n_heads, c.n_kv_heads, c.head_dim);
  return c;
}

std::unique_ptr<LlamaModel> load_hf_model(const std::string& dir, Backend& be) {
  LlamaConfig cfg = parse_hf_llama_config(dir + "/config.json");
  cfg.name = directory_name(dir);
  auto tok = load_hf_directory_tokenizer(dir, cfg.vocab_size);

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
    if (!ij.is_object() || !ij.contains("weight_map") || !ij["weight_map"].is_object())
      fail("'{}': expected an object with a \"weight_map\" object", index);
    std::map<std::string, SafetensorsFile*> by_file;
    for (auto it = ij["weight_map"].begin(); it != ij["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("'{}': weight_map['{}'] is {}, expected a file name", index, it.key(), it.value().dump());
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

  // Every tensor the config implies, checked against the files' headers before the model (sized
  // by the config) is allocated: a config.json that disagrees with the weights, e.g. a hidden_size
  // of 2^30, fails here instead of allocating from its numbers.
  // 9 tensors per layer: more layers than the files hold tensors for cannot all be present.
  if (static_cast<size_t>(cfg.n_layers) > where.size() / 9)
    fail("'{}': num_hidden_layers is {}, but the weights hold only {} tensors (9 per layer)", dir + "/config.json",
         cfg.n_layers, where.size());
  const auto params = llama_param_specs(cfg);
  auto stored_name = [&](const std::string& name) {
    // Tied checkpoints often store the shared matrix once, as lm_head.weight.
    if (!where.count(name) && cfg.tied_embeddings && name == "model.embed_tokens.weight") return std::string("lm_head.weight");
    return name;
  };
  for (const auto& [name, shape] : params) {
    const std::string stored = stored_name(name);
    auto it = where.find(stored);
    if (it == where.end()) fail("model directory '{}' lacks tensor '{}'", dir, name);
    const auto& have = it->second->entry(stored).shape;
    if (have != shape) {
      auto str = [](const std::vector<int64_t>& v) {
        std::string out;
        for (auto x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
        return out;
      };
      fail("'{}': tensor '{}' has shape [{}], but config.json implies [{}]", it->second->path(), stored, str(have), str(shape));
    }
  }

  auto model = std::make_unique<LlamaModel>(cfg, std::move(tok), be);
  for (const auto& [name, shape] : params) {
    const std::string stored = stored_name(name);
    const std::vector<float> w = where.at(stored)->read_f32(stored, shape);
    std::memcpy(model->host_params().data() + model->param_offset(name), w.data(), w.size() * sizeof(float));
  }
  model->upload();
  return model;
}

}  // namespace saelab
