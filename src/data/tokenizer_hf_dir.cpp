// The tokenizer of a Hugging Face model directory: tokenizer.json, with the BOS/EOS policy the
// directory's other files state, as transformers applies them:
//   adds_bos  tokenizer_config.json add_bos_token when it is a boolean (transformers rebuilds the
//             post-processor from it: Llama 2, Mistral, Gemma, Pythia), else whether tokenizer.json's
//             post-processor template starts with a special token (Llama 3); GPT-2 and Qwen have neither.
//   bos_id    for a tokenizer that adds BOS, the token it adds; otherwise config.json bos_token_id
//             (GPT-2, Pythia, Qwen: <|endoftext|>, which harvest puts before every context as
//             SAELens' prepend_bos does), else tokenizer_config.json bos_token.
//   eos_id    config.json eos_token_id (the first, when a list), else tokenizer_config.json eos_token.
//   eog_ids   every eos_token_id of config.json and generation_config.json, and eos_id.
// Ids outside the tokenizer's vocabulary, or of the wrong type, are refused naming the file.
#include <nlohmann/json.hpp>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "util/json_file.hpp"

namespace saelab {
namespace {

using json = nlohmann::json;

// The file's JSON object, or null when the file does not exist.
json read_object(const std::string& path) { return file_exists(path) ? read_json_object(path) : json(nullptr); }

// j[key] as token ids: one id, a list of ids, or nothing (absent or null).
std::vector<int32_t> ids_of(const json& j, const char* key, const std::string& path, const Tokenizer& tok) {
  std::vector<int32_t> out;
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return out;
  const json& v = j[key];
  for (const json& x : v.is_array() ? v : json::array({v})) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= tok.vocab_size())
      fail("'{}': {} is {}, expected a token id in [0, {}) or a list of them (the tokenizer has {} tokens)", path, key,
           v.dump(), tok.vocab_size(), tok.vocab_size());
    out.push_back(static_cast<int32_t>(x.get<int64_t>()));
  }
  return out;
}

// The id of the token tokenizer_config.json names under `key` ("<s>" or {"content": "<s>", ...}),
// or -1 when it names none.
int32_t named_token(const json& j, const char* key, const std::string& path, const Tokenizer& tok) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return -1;
  const json& v = j[key];
  const json& content = v.is_object() && v.contains("content") ? v["content"] : v;
  if (!content.is_string())
    fail("'{}': {} is {}, expected a token string or an object with a \"content\" string", path, key, v.dump());
  const std::string s = content.get<std::string>();
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (tok.piece(id) == s) return id;
  fail("'{}': {} '{}' is not a token of the tokenizer", path, key, s);
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_directory_tokenizer(const std::string& dir, int32_t vocab_size) {
  const std::string tok_path = dir + "/tokenizer.json";
  if (!file_exists(tok_path)) fail("model directory '{}' has no tokenizer.json", dir);
  auto tok = load_hf_tokenizer(tok_path);
  if (tok->vocab_size() > vocab_size)
    fail("'{}': tokenizer has {} tokens but config.json vocab_size is {}", tok_path, tok->vocab_size(), vocab_size);

  const std::string tc_path = dir + "/tokenizer_config.json", cfg_path = dir + "/config.json",
                    gen_path = dir + "/generation_config.json";
  const json tc = read_object(tc_path), cfg = read_object(cfg_path), gen = read_object(gen_path);

  if (tc.is_object() && tc.contains("add_bos_token") && !tc["add_bos_token"].is_null()) {
    if (!tc["add_bos_token"].is_boolean())
      fail("'{}': add_bos_token is {}, expected true or false", tc_path, tc["add_bos_token"].dump());
    const bool add = tc["add_bos_token"].get<bool>();
    // With add_bos_token, transformers builds the template from bos_token, whatever tokenizer.json has.
    if (add && !tok->adds_bos()) tok->set_bos_eos(named_token(tc, "bos_token", tc_path, *tok), -1);
    tok->set_adds_bos(add);
    if (add && tok->bos_id() < 0)
      fail("'{}': add_bos_token is true but no bos_token is named (and tokenizer.json names none)", tc_path);
  }
  if (!tok->adds_bos()) {
    const std::vector<int32_t> bos = ids_of(cfg, "bos_token_id", cfg_path, *tok);
    if (!bos.empty()) tok->set_bos_eos(bos[0], -1);
    else tok->set_bos_eos(named_token(tc, "bos_token", tc_path, *tok), -1);
  }

  const std::vector<int32_t> cfg_eos = ids_of(cfg, "eos_token_id", cfg_path, *tok);
  tok->set_bos_eos(-1, !cfg_eos.empty() ? cfg_eos[0] : named_token(tc, "eos_token", tc_path, *tok));
  for (int32_t id : cfg_eos) tok->add_eog(id);
  for (int32_t id : ids_of(gen, "eos_token_id", gen_path, *tok)) tok->add_eog(id);
  tok->add_eog(tok->eos_id());
  return tok;
}

}  // namespace saelab
