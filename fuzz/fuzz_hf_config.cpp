// Hugging Face config.json (parse_hf_config), then the whole model load (load_model) of a
// directory holding that config beside fixed tiny weights and a forward pass: a config that
// disagrees with the weights must be refused before anything is allocated from its sizes, and an
// accepted one must run. The weights are those of the architecture the config names: the tiny
// checkpoints of tests/data/hf_tiny (gpt2, gpt_neox, gemma2, gemma3_text, qwen2, qwen3, mistral),
// else a generated Llama (d 8, ff 16, 1 layer, 2 heads, 1 KV head, vocab 16).
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "fuzz_common.hpp"
#include "saelab/backend.hpp"
#include "saelab/lm.hpp"
#include "saelab/safetensors.hpp"

using namespace saelab;

namespace {

const char* const kTokenizer = R"({"version": "1.0", "added_tokens": [
  {"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
  {"id": 2, "content": "</s>", "special": true}],
 "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
 "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, " ": 3, "a": 4, "b": 5,
   "c": 6, "d": 7, "e": 8, "ab": 9, "cd": 10, "abcd": 11, "x": 12, "y": 13, "z": 14, "xy": 15},
   "merges": ["a b", "c d", "ab cd", "x y"]}})";

const std::string& model_dir() {
  static const std::string dir = [] {
    const std::string d = fuzz::path_of("hf_model");
    std::filesystem::create_directories(d);
    fuzz::write_bytes(d + "/tokenizer.json", kTokenizer);
    const int64_t V = 16, D = 8, F = 16, Q = 8, K = 4;  // Q = heads * head_dim, K = kv_heads * head_dim
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.f, 0.2f);
    std::vector<std::vector<float>> keep;
    std::vector<SafetensorsTensorOut> ts;
    auto add = [&](const std::string& name, std::vector<int64_t> shape) {
      int64_t n = 1;
      for (auto s : shape) n *= s;
      keep.emplace_back(static_cast<size_t>(n));
      for (auto& x : keep.back()) x = name.find("norm") != std::string::npos ? 1.f : nd(rng);
      ts.push_back({name, DType::F32, shape, nullptr});
    };
    add("model.embed_tokens.weight", {V, D});
    add("model.layers.0.input_layernorm.weight", {D});
    add("model.layers.0.self_attn.q_proj.weight", {Q, D});
    add("model.layers.0.self_attn.k_proj.weight", {K, D});
    add("model.layers.0.self_attn.v_proj.weight", {K, D});
    add("model.layers.0.self_attn.o_proj.weight", {D, Q});
    add("model.layers.0.post_attention_layernorm.weight", {D});
    add("model.layers.0.mlp.gate_proj.weight", {F, D});
    add("model.layers.0.mlp.up_proj.weight", {F, D});
    add("model.layers.0.mlp.down_proj.weight", {D, F});
    add("model.norm.weight", {D});
    add("lm_head.weight", {V, D});
    for (size_t i = 0; i < ts.size(); ++i) ts[i].data = keep[i].data();
    write_safetensors(d + "/model.safetensors", ts);
    return d;
  }();
  return dir;
}

// model_type -> a work directory holding that architecture's tiny weights and tokenizer.
const std::string& dir_for(const std::string& model_type) {
  static const std::map<std::string, std::string> dirs = [] {
    std::map<std::string, std::string> m;
    const std::pair<const char*, const char*> tiny[] = {{"gpt2", "gpt2"},     {"gpt_neox", "pythia"}, {"gemma2", "gemma2"},
                                                        {"gemma3_text", "gemma3"}, {"qwen2", "qwen2"}, {"qwen3", "qwen3"},
                                                        {"mistral", "mistral"}};
    for (const auto& [type, name] : tiny) {
      const std::string src = std::string(SAELAB_SOURCE_DIR) + "/tests/data/hf_tiny/" + name, d = fuzz::path_of(name);
      std::filesystem::create_directories(d);
      for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json"})
        std::filesystem::copy_file(src + "/" + f, d + "/" + f, std::filesystem::copy_options::overwrite_existing);
      m[type] = d;
    }
    return m;
  }();
  auto it = dirs.find(model_type);
  return it != dirs.end() ? it->second : model_dir();
}

std::string model_type_of(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  return j.is_object() && j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::single_threaded();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = dir_for(model_type_of(data, size));
  const std::string path = dir + "/config.json";
  fuzz::write_bytes(path, data, size);
  fuzz::expect_no_crash([&] {
    const ModelConfig c = parse_hf_config(path);
    if (c.d_model <= 0 || c.d_ff <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
        c.head_dim <= 0 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim || c.n_heads % c.n_kv_heads != 0 || c.vocab_size <= 0 ||
        c.max_seq_len <= 0) {
      std::fprintf(stderr, "accepted an unrunnable config: d=%d ff=%d L=%d H=%d Hkv=%d hd=%d V=%d T=%d\n", c.d_model,
                   c.d_ff, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.max_seq_len);
      std::abort();
    }
  });
  fuzz::expect_no_crash([&] {
    auto model = load_model(dir, cpu_backend());
    const auto& c = model->config();
    const int T = std::min(3, c.max_seq_len);
    std::vector<int32_t> ids = model->tokenizer().encode("abcd xy");
    ids.resize(T, 0);
    (void)model->forward(ids, 1, T);
  });
  return 0;
}
