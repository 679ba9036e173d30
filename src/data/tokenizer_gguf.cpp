// tokenizer.ggml.* metadata of a GGUF file -> GgufVocab, with llama.cpp's defaults for absent keys.
#include "saelab/tokenizer_gguf.hpp"

#include <cstdint>

#include "pretokenize.hpp"
#include "saelab/error.hpp"

namespace saelab {
namespace {

const std::string kPrefix = "tokenizer.ggml.";

// The array at `key` (required or absent -> empty), each element checked by `ok` and converted.
template <class T, class Ok, class Get>
std::vector<T> read_array(const GgufFile& f, const std::string& key, bool required, const char* what, Ok ok, Get get) {
  std::vector<T> out;
  if (!required && !f.has(key)) return out;
  const nlohmann::json& a = f.get_array(key);
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!ok(a[i])) fail("'{}': {}[{}] is {}, expected {}", f.path(), key, i, a[i].dump(), what);
    out.push_back(get(a[i]));
  }
  return out;
}

std::vector<std::string> strings(const GgufFile& f, const std::string& key, bool required) {
  return read_array<std::string>(
      f, key, required, "a string", [](const nlohmann::json& j) { return j.is_string(); },
      [](const nlohmann::json& j) { return j.get<std::string>(); });
}

// A token id key: the file's value (which must lie in the vocabulary), else llama.cpp's default
// when that lies in the vocabulary, else -1.
int32_t token_id(const GgufFile& f, const std::string& name, int32_t fallback, size_t n_tokens) {
  const std::string key = kPrefix + name;
  if (!f.has(key)) return fallback >= 0 && static_cast<size_t>(fallback) < n_tokens ? fallback : -1;
  const int64_t id = f.get_int(key);
  if (id < 0 || static_cast<uint64_t>(id) >= n_tokens)
    fail("'{}': {} is {}, outside the vocabulary of {} tokens", f.path(), key, id, n_tokens);
  return static_cast<int32_t>(id);
}

bool flag(const GgufFile& f, const std::string& name, bool fallback) {
  return f.has(kPrefix + name) ? f.get_bool(kPrefix + name) : fallback;
}

}  // namespace

GgufVocab read_gguf_vocab(const GgufFile& f) {
  GgufVocab v;
  v.source = f.path();
  v.model = f.get_string(kPrefix + "model");
  if (f.has(kPrefix + "pre")) v.pre = f.get_string(kPrefix + "pre");
  if (v.pre.empty()) v.pre = "default";  // llama.cpp warns and uses the default pre-tokenizer
  v.tokens = strings(f, kPrefix + "tokens", true);
  v.scores = read_array<float>(
      f, kPrefix + "scores", false, "a number", [](const nlohmann::json& j) { return j.is_number(); },
      [](const nlohmann::json& j) { return j.get<float>(); });
  v.token_types = read_array<int32_t>(
      f, kPrefix + "token_type", false, "an integer",
      [](const nlohmann::json& j) {
        return j.is_number_integer() && j.get<int64_t>() >= INT32_MIN && j.get<int64_t>() <= INT32_MAX;
      },
      [](const nlohmann::json& j) { return j.get<int32_t>(); });
  const bool llama = v.model == "llama", gpt2 = v.model == "gpt2";
  if (gpt2 && !f.has(kPrefix + "merges"))
    fail("'{}': {}merges is missing (a gpt2 tokenizer needs its BPE merges)", f.path(), kPrefix);
  v.merges = strings(f, kPrefix + "merges", false);
  const size_t n = v.tokens.size();
  v.bos = token_id(f, "bos_token_id", llama ? 1 : gpt2 ? 11 : -1, n);
  v.eos = token_id(f, "eos_token_id", llama ? 2 : gpt2 ? 11 : -1, n);
  v.eot = token_id(f, "eot_token_id", -1, n);
  v.eom = token_id(f, "eom_token_id", -1, n);
  v.unk = token_id(f, "unknown_token_id", llama ? 0 : -1, n);
  v.pad = token_id(f, "padding_token_id", -1, n);
  const auto pre = pretokenize::find_pre_tokenizer(v.pre);
  v.add_bos = flag(f, "add_bos_token", llama || (gpt2 && pre && pre->default_add_bos));
  v.add_eos = flag(f, "add_eos_token", false);
  v.add_space_prefix = flag(f, "add_space_prefix", llama);
  return v;
}

}  // namespace saelab
