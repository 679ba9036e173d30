// Hugging Face tokenizer.json, encoded as `tokenizers` (the Rust library) encodes with
// add_special_tokens=False: added tokens with normalized=false are split out of the raw text; each
// remaining segment is normalized, added tokens with normalized=true are split out of it; each
// remaining piece goes through the pre-tokenizers, then each word through the BPE model. Decoding
// runs the file's decoder chain. The components are in hf_*.cpp; supported here:
//   model:          BPE (merges as "a b" or ["a", "b"], byte_fallback, unk_token / fuse_unk, ignore_merges)
//   post_processor: TemplateProcessing (a special token before $A is the BOS), ByteLevel, Sequence, null
// Whether BOS is added is settled for a model directory by tokenizer_hf_dir.cpp.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "bpe_merge.hpp"
#include "hf_added_tokens.hpp"
#include "hf_pipeline.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "utf8.hpp"
#include "util/json_number.hpp"

namespace saelab {
namespace {

using json = nlohmann::json;

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(const json& j, const std::string& file) : file_(file) {
    parse_model(j, j.at("model"));
    hf::parse_normalizer(j.value("normalizer", json()), file_, normalizers_);
    hf::parse_pre_tokenizer(j.value("pre_tokenizer", json()), file_, pre_tokenizers_);
    hf::parse_decoder(j.value("decoder", json()), file_, decoders_);
    parse_added_tokens(j);
    adds_bos_ = false;  // only a post-processor template that starts with a special token adds one
    parse_post_processor(j.value("post_processor", json()));
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (const auto& seg : raw_added_.split(text)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      std::string s(text.substr(seg.begin, seg.end - seg.begin));
      for (const auto& n : normalizers_) s = n(s);
      for (const auto& sub : normalized_added_.split(s)) {
        if (sub.id >= 0) ids.push_back(sub.id);
        else encode_piece({s.substr(sub.begin, sub.end - sub.begin), seg.begin == 0 && sub.begin == 0}, ids);
      }
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::vector<std::string> toks;
    for (int32_t id : ids) {
      // Ids the vocabulary does not define (e.g. padding rows of a larger embedding) are dropped,
      // as tokenizers drops them.
      if (id < 0 || id >= vocab_size() || !defined_[id]) continue;
      // Special tokens are skipped by id. tokenizers 0.23 compares the decoded string with the special
      // tokens' contents instead, so it keeps a special token that decodes in a normalized form
      // (TinyStories' "▁<|end_story|>"); 0.22 and earlier skipped it, as saelab does.
      if (skip_special && is_special(id)) continue;
      auto it = decoded_added_.find(id);
      toks.push_back(it != decoded_added_.end() ? it->second : pieces_[id]);
    }
    // Without a decoder, tokenizers joins the tokens with spaces.
    if (decoders_.empty()) {
      std::string out;
      for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
      return out;
    }
    for (const auto& step : decoders_) step(toks);
    std::string out;
    for (const auto& t : toks) out += t;
    return out;
  }

  std::string piece(int32_t id) const override {
    SAELAB_ASSERT(id >= 0 && id < vocab_size(), "token id {} outside vocabulary of {}", id, vocab_size());
    return pieces_[id];
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  bool is_special(int32_t id) const override { return special_.count(id) != 0; }

 private:
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  void set_piece(int32_t id, const std::string& s) {
    if (id >= static_cast<int32_t>(pieces_.size())) {
      pieces_.resize(id + 1);
      defined_.resize(id + 1, false);
    }
    pieces_[id] = s;
    defined_[id] = true;
  }

  // Ids index pieces_: each must be an integer (fuzzing found an id of 2.7e77, undefined behaviour
  // as an int32), non-negative, and gaps are bounded by the number of tokens the file defines, so a
  // large id cannot allocate more than the file justifies.
  int32_t token_id(const json& v, const std::string& token) const {
    const auto id = json_integer<int32_t>(v);
    if (!id || *id < 0 || *id >= max_id_)
      fail("'{}': token '{}' has id {}, expected an integer in [0, {}) (the file defines {} tokens)", file_, token,
           v.dump(), max_id_, n_defined_);
    return *id;
  }

  void parse_model(const json& j, const json& model) {
    if (model.value("type", "") != "BPE")
      fail("'{}': tokenizer model type '{}' is not supported (supported: BPE)", file_, model.value("type", "?"));
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && !model[k].get<std::string>().empty())
        fail("'{}': BPE option {} is not supported", file_, k);
    // Dropout samples merges at random; a file for inference never sets it.
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
      fail("'{}': BPE dropout {} is not supported (expected null)", file_, model["dropout"].dump());
    byte_fallback_ = model.value("byte_fallback", false);
    fuse_unk_ = model.value("fuse_unk", false);
    ignore_merges_ = model.value("ignore_merges", false);
    const json& vocab = model.at("vocab");
    if (!vocab.is_object()) fail("'{}': model.vocab is not an object", file_);
    n_defined_ = vocab.size() + (j.contains("added_tokens") ? j["added_tokens"].size() : 0);
    max_id_ = std::max<int64_t>(1 << 20, 16 * static_cast<int64_t>(n_defined_));
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int32_t id = token_id(it.value(), it.key());
      model_vocab_[it.key()] = id;
      set_piece(id, it.key());
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) unk_token_ = model["unk_token"].get<std::string>();
    int32_t rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) fail("'{}': merge '{}' is not of the form 'a b'", file_, s);
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        fail("'{}': merge {} is neither 'a b' nor [a, b]", file_, m.dump());
      }
      auto ia = model_vocab_.find(a), ib = model_vocab_.find(b), iab = model_vocab_.find(a + b);
      if (ia == model_vocab_.end() || ib == model_vocab_.end() || iab == model_vocab_.end())
        fail("'{}': merge '{} {}' refers to tokens missing from the vocabulary", file_, a, b);
      // A repeated pair takes its last rank, as tokenizers builds its merge map.
      merges_[key(ia->second, ib->second)] = {static_cast<double>(rank++), iab->second};
    }
  }

  void parse_added_tokens(const json& j) {
    if (!j.contains("added_tokens")) return;
    for (const auto& t : j["added_tokens"]) {
      hf::AddedToken a;
      a.content = t.at("content").get<std::string>();
      a.id = token_id(t.at("id"), a.content);
      // An empty added token matches everywhere; tokenizers ignores it.
      if (a.content.empty()) fail("'{}': added token {} has empty content", file_, a.id);
      a.single_word = t.value("single_word", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.normalized = t.value("normalized", false);
      a.special = t.value("special", false);
      set_piece(a.id, a.content);
      if (a.special) special_.insert(a.id);
      if (!a.normalized) {
        raw_added_.add(a.content, a);
        continue;
      }
      // A normalized token is found by its normalized form, and decodes as that form (so a
      // Prepend("▁") normalizer makes "<unk>" decode as "▁<unk>"), as tokenizers does.
      std::string s = a.content;
      for (const auto& n : normalizers_) s = n(s);
      normalized_added_.add(s, a);
      if (s != a.content) decoded_added_[a.id] = s;
    }
  }

  // The BOS a post-processor template puts before the text ($A), if any.
  void parse_post_processor(const json& post) {
    if (post.is_null()) return;
    const std::string type = post.value("type", "");
    if (type == "Sequence") {
      for (const auto& p : post.at("processors")) parse_post_processor(p);
    } else if (type == "ByteLevel") {
      // Offsets only.
    } else if (type == "TemplateProcessing") {
      std::vector<int32_t> before;  // the ids the template puts before $A
      for (const auto& item : post.at("single")) {
        if (item.contains("Sequence")) break;
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        const json& specials = post.value("special_tokens", json::object());
        if (!specials.contains(name))
          fail("'{}': post_processor template uses special token '{}', which its special_tokens does not define", file_,
               name);
        for (const auto& id : specials[name].at("ids")) before.push_back(token_id(id, name));
      }
      // Harvest puts exactly one token (bos_id) before a context; a template that puts more could
      // not be reproduced. Tokens after $A (an EOS) are not part of encode() or of a context.
      if (before.size() > 1)
        fail("'{}': post_processor template puts {} tokens before the text; saelab supports a single BOS", file_,
             before.size());
      if (before.size() == 1) {
        if (before[0] >= vocab_size() || !defined_[before[0]])
          fail("'{}': post_processor BOS id {} is not in the vocabulary", file_, before[0]);
        bos_id_ = before[0];
        adds_bos_ = true;
      }
    } else {
      fail("'{}': post_processor type '{}' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)", file_,
           type.empty() ? post.dump() : type);
    }
  }

  void encode_piece(hf::Piece piece, std::vector<int32_t>& ids) const {
    if (piece.text.empty()) return;
    std::vector<hf::Piece> words{std::move(piece)}, next;
    for (const auto& step : pre_tokenizers_) {
      next.clear();
      for (const auto& w : words) step(w, next);
      words.swap(next);
    }
    for (const auto& w : words) encode_word(w.text, ids);
  }

  int32_t model_id(std::string_view s) const {
    auto it = model_vocab_.find(std::string(s));
    return it == model_vocab_.end() ? -1 : it->second;
  }

  // BPE::merge_word: characters (or their <0xNN> byte tokens, or unk) then merges by rank.
  void encode_word(const std::string& w, std::vector<int32_t>& ids) const {
    if (ignore_merges_) {  // a word that is itself a token is taken whole (Llama 3)
      if (const int32_t whole = model_id(w); whole >= 0) {
        ids.push_back(whole);
        return;
      }
    }
    std::vector<int32_t> syms;
    int32_t pending_unk = -1;  // an unk waiting to be fused with the next unknown character
    for (size_t i = 0; i < w.size();) {
      const size_t n = utf8::char_len(w, i);
      const std::string_view ch(w.data() + i, n);
      i += n;
      if (const int32_t id = model_id(ch); id >= 0) {
        if (pending_unk >= 0) syms.push_back(pending_unk);
        pending_unk = -1;
        syms.push_back(id);
        continue;
      }
      if (byte_fallback_) {
        std::vector<int32_t> bytes;
        for (unsigned char b : ch) {
          const int32_t bt = model_id(fmt::format("<0x{:02X}>", b));
          if (bt < 0) break;
          bytes.push_back(bt);
        }
        // tokenizers leaves a pending unk pending here, so it lands after these bytes.
        if (bytes.size() == n) {
          syms.insert(syms.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      // Without an unk token the character is dropped, as tokenizers does.
      if (unk_token_.empty()) continue;
      const int32_t unk = model_id(unk_token_);
      if (unk < 0) fail("'{}': unk_token '{}' is not in the model's vocabulary", file_, unk_token_);
      if (pending_unk >= 0 && !fuse_unk_) syms.push_back(pending_unk);
      pending_unk = unk;
    }
    if (pending_unk >= 0) syms.push_back(pending_unk);
    bpe_merge(syms, [this](int32_t a, int32_t b, BpeMerge& out) {
      auto it = merges_.find(key(a, b));
      if (it == merges_.end()) return false;
      out = it->second;
      return true;
    });
    ids.insert(ids.end(), syms.begin(), syms.end());
  }

  std::string file_;
  size_t n_defined_ = 0;
  int64_t max_id_ = 0;
  std::unordered_map<std::string, int32_t> model_vocab_;  // the BPE model's own tokens
  std::vector<std::string> pieces_;                        // by id: model tokens and added tokens
  std::vector<bool> defined_;                              // whether the file gives the id a token
  std::unordered_map<uint64_t, BpeMerge> merges_;
  hf::AddedTokenMatcher raw_added_, normalized_added_;
  std::unordered_set<int32_t> special_;
  std::unordered_map<int32_t, std::string> decoded_added_;
  std::string unk_token_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::vector<hf::Normalizer> normalizers_;
  std::vector<hf::PreTokenizer> pre_tokenizers_;
  std::vector<hf::Decoder> decoders_;
};

}  // namespace

namespace {
std::unique_ptr<Tokenizer> build_hf_tokenizer(const json& j, const std::string& path) {
  try {
    if (!j.is_object()) fail("'{}': expected a JSON object, found {}", path, j.type_name());
    auto tok = std::make_unique<HfTokenizer>(j, path);
    // BOS/EOS from special_tokens_map conventions when the post-processor does not name one (a
    // model directory's config.json overrides these: load_hf_directory_tokenizer).
    auto find_special = [&](const char* content) -> int32_t {
      for (int32_t id = 0; id < tok->vocab_size(); ++id)
        if (tok->is_special(id) && tok->piece(id) == content) return id;
      return -1;
    };
    int32_t eos = -1;
    for (const char* c : {"</s>", "<|endoftext|>", "<|end_story|>", "<eos>", "<|im_end|>"})
      if (eos < 0) eos = find_special(c);
    int32_t bos = -1;
    for (const char* c : {"<s>", "<bos>", "<|startoftext|>", "<|start_story|>", "<|begin_of_text|>", "<|endoftext|>"})
      if (bos < 0) bos = find_special(c);
    if (tok->bos_id() < 0) tok->set_bos_eos(bos, -1);
    tok->set_bos_eos(-1, eos);
    return tok;
  } catch (const json::exception& e) {
    fail("'{}' does not look like a Hugging Face tokenizer.json: {}", path, e.what());
  }
}
}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
  return build_hf_tokenizer(j, path);
}

std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_path, const std::string& bpe_path) {
  json vocab;
  try {
    vocab = json::parse(read_file(encoder_path));
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", encoder_path, e.what());
  }
  json merges = json::array();
  const std::string bpe = read_file(bpe_path);
  size_t pos = 0;
  while (pos < bpe.size()) {
    size_t end = bpe.find('\n', pos);
    if (end == std::string::npos) end = bpe.size();
    std::string line = bpe.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    merges.push_back(line);
  }
  json added = json::array();
  if (vocab.contains("<|endoftext|>"))
    added.push_back({{"id", vocab["<|endoftext|>"]}, {"content", "<|endoftext|>"}, {"special", true}});
  const json j = {{"added_tokens", added},
                  {"normalizer", nullptr},
                  {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                  {"post_processor", nullptr},
                  {"decoder", {{"type", "ByteLevel"}}},
                  {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  return build_hf_tokenizer(j, encoder_path);
}

}  // namespace saelab
