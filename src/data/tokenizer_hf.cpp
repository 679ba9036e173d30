// Hugging Face tokenizer.json: added tokens are split out of the raw text, each remaining segment
// goes normalizer -> pre-tokenizer -> BPE model; decoding runs the file's decoder chain.
// Supported components (others are refused by name, so a new model family fails loudly):
//   normalizer:    Sequence, Prepend, Replace (string pattern), NFC (identity: input assumed NFC)
//   pre_tokenizer: null, Sequence, ByteLevel, Metaspace, Digits
//   model:         BPE (merges as "a b" or ["a", "b"], byte_fallback, unk/fuse_unk)
//   decoder:       Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace
//   post_processor: TemplateProcessing (its leading special token is the BOS), ByteLevel, null
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "bpe_merge.hpp"
#include "byte_level.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "utf8.hpp"
#include "util/json_number.hpp"

namespace saelab {
namespace {

using json = nlohmann::json;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

std::string pattern_string(const json& p, const std::string& file, const char* where) {
  if (p.is_object() && p.contains("String")) return p["String"].get<std::string>();
  fail("'{}': {} uses a regex pattern {}, only string patterns are supported", file, where, p.dump());
}

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(const json& j, const std::string& file) : file_(file) {
    const json& model = j.at("model");
    if (model.value("type", "") != "BPE")
      fail("'{}': tokenizer model type '{}' is not supported (supported: BPE)", file, model.value("type", "?"));
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && !model[k].get<std::string>().empty())
        fail("'{}': BPE option {} is not supported", file, k);
    byte_fallback_ = model.value("byte_fallback", false);
    fuse_unk_ = model.value("fuse_unk", false);
    // Ids index pieces_: each must be an integer (fuzzing found an id of 2.7e77, undefined behaviour
    // as an int32), non-negative, and gaps are bounded by the number of tokens the file defines, so a
    // large id cannot allocate more than the file justifies.
    const json& vocab = model.at("vocab");
    if (!vocab.is_object()) fail("'{}': model.vocab is not an object", file);
    const size_t n_defined = vocab.size() + (j.contains("added_tokens") ? j["added_tokens"].size() : 0);
    const int64_t max_id = std::max<int64_t>(1 << 20, 16 * static_cast<int64_t>(n_defined));
    auto token_id = [&](const json& v, const std::string& token) {
      const auto id = json_integer<int32_t>(v);
      if (!id || *id < 0 || *id >= max_id)
        fail("'{}': token '{}' has id {}, expected an integer in [0, {}) (the file defines {} tokens)", file, token,
             v.dump(), max_id, n_defined);
      return *id;
    };
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int32_t id = token_id(it.value(), it.key());
      vocab_[it.key()] = id;
      if (id >= static_cast<int32_t>(pieces_.size())) pieces_.resize(id + 1);
      pieces_[id] = it.key();
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      auto it = vocab_.find(model["unk_token"].get<std::string>());
      if (it != vocab_.end()) unk_id_ = it->second;
    }
    int32_t rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) fail("'{}': merge '{}' is not of the form 'a b'", file, s);
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        fail("'{}': merge {} is neither 'a b' nor [a, b]", file, m.dump());
      }
      auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end())
        fail("'{}': merge '{} {}' refers to tokens missing from the vocabulary", file, a, b);
      merges_[key(ia->second, ib->second)] = {static_cast<double>(rank++), iab->second};
    }
    if (j.contains("added_tokens")) {
      for (const auto& t : j["added_tokens"]) {
        const std::string content = t.at("content").get<std::string>();
        const int32_t id = token_id(t.at("id"), content);
        // An empty added token matches everywhere: encode() would never advance.
        if (content.empty()) fail("'{}': added token {} has empty content", file, id);
        if (id >= static_cast<int32_t>(pieces_.size())) pieces_.resize(id + 1);
        pieces_[id] = content;
        vocab_[content] = id;
        added_.push_back({content, id});
        if (t.value("special", false)) special_.insert(id);
        if (t.value("normalized", false)) normalized_added_.insert(id);
      }
    }
    parse_normalizer(j.value("normalizer", json()));
    parse_pre_tokenizer(j.value("pre_tokenizer", json()));
    parse_decoder(j.value("decoder", json()));
    // Decoding shows a normalized added token as the normalizer would have written it (so a
    // Prepend("▁") normalizer gives "▁<unk>"), which is what `tokenizers` does.
    for (int32_t id : normalized_added_) {
      std::string s = pieces_[id];
      for (const auto& step : normalizers_) s = step(s);
      decoded_added_[id] = s;
    }
    const json& post = j.value("post_processor", json());
    adds_bos_ = false;  // only a post-processor template that starts with a special token adds one
    if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
      const json& single = post.at("single");
      if (!single.empty() && single[0].contains("SpecialToken")) {
        const std::string bos = single[0]["SpecialToken"].at("id").get<std::string>();
        auto it = vocab_.find(bos);
        if (it != vocab_.end()) {
          bos_id_ = it->second;
          adds_bos_ = true;
        }
      }
    }
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    size_t start = 0;
    while (start <= text.size()) {
      // The earliest (then longest) added token at or after `start`.
      size_t best = std::string_view::npos, best_len = 0;
      int32_t best_id = -1;
      for (const auto& [content, id] : added_) {
        const size_t p = text.find(content, start);
        if (p != std::string_view::npos && (p < best || (p == best && content.size() > best_len))) {
          best = p;
          best_len = content.size();
          best_id = id;
        }
      }
      const size_t end = best == std::string_view::npos ? text.size() : best;
      if (end > start) encode_segment(text.substr(start, end - start), ids);
      if (best == std::string_view::npos) break;
      ids.push_back(best_id);
      start = best + best_len;
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::vector<std::string> toks;
    for (int32_t id : ids) {
      if (skip_special && is_special(id)) continue;
      auto it = decoded_added_.find(id);
      toks.push_back(it != decoded_added_.end() ? it->second : piece(id));
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

  void encode_segment(std::string_view seg, std::vector<int32_t>& ids) const {
    std::string s(seg);
    for (const auto& step : normalizers_) s = step(s);
    std::vector<std::string> words{s};
    for (const auto& step : pre_tokenizers_) {
      std::vector<std::string> next;
      for (const auto& w : words)
        for (auto& p : step(w)) next.push_back(std::move(p));
      words.swap(next);
    }
    for (const auto& w : words) encode_word(w, ids);
  }

  void encode_word(const std::string& w, std::vector<int32_t>& ids) const {
    std::vector<int32_t> syms;
    bool last_unk = false;
    for (size_t i = 0; i < w.size();) {
      const size_t n = utf8::char_len(w, i);
      auto it = vocab_.find(w.substr(i, n));
      i += n;
      if (it != vocab_.end()) {
        syms.push_back(it->second);
        last_unk = false;
        continue;
      }
      if (byte_fallback_) {
        std::vector<int32_t> bytes;
        for (size_t k = i - n; k < i; ++k) {
          auto bt = vocab_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(w[k])));
          if (bt == vocab_.end()) break;
          bytes.push_back(bt->second);
        }
        if (bytes.size() == n) {
          syms.insert(syms.end(), bytes.begin(), bytes.end());
          last_unk = false;
          continue;
        }
      }
      if (unk_id_ < 0) fail("'{}': character not in the vocabulary and no unk token", file_);
      if (!(fuse_unk_ && last_unk)) syms.push_back(unk_id_);
      last_unk = true;
    }
    bpe_merge(syms, [this](int32_t a, int32_t b, BpeMerge& out) {
      auto it = merges_.find(key(a, b));
      if (it == merges_.end()) return false;
      out = it->second;
      return true;
    });
    ids.insert(ids.end(), syms.begin(), syms.end());
  }

  void parse_normalizer(const json& n) {
    if (n.is_null()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const auto& c : n.at("normalizers")) parse_normalizer(c);
    } else if (type == "Prepend") {
      const std::string pre = n.at("prepend").get<std::string>();
      normalizers_.push_back([pre](const std::string& s) { return s.empty() ? s : pre + s; });
    } else if (type == "Replace") {
      const std::string from = pattern_string(n.at("pattern"), file_, "Replace normalizer");
      const std::string to = n.at("content").get<std::string>();
      normalizers_.push_back([from, to](const std::string& s) { return replace_all(s, from, to); });
    } else if (type == "NFC") {
      // Identity: corpora are overwhelmingly NFC already; documented in docs/formats.md.
    } else {
      fail("'{}': normalizer type '{}' is not supported (supported: Sequence, Prepend, Replace, NFC)", file_, type);
    }
  }

  void parse_pre_tokenizer(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence") {
      for (const auto& c : p.at("pretokenizers")) parse_pre_tokenizer(c);
    } else if (type == "ByteLevel") {
      const bool prefix = p.value("add_prefix_space", false);
      const bool regex = p.value("use_regex", true);
      pre_tokenizers_.push_back([prefix, regex](const std::string& w) {
        std::string s = (prefix && !w.empty() && w[0] != ' ') ? " " + w : w;
        std::vector<std::string> parts = regex ? byte_level::gpt2_split(s) : std::vector<std::string>{s};
        for (auto& part : parts) part = byte_level::encode_bytes(part);
        return parts;
      });
    } else if (type == "Metaspace") {
      const std::string rep = p.value("replacement", "\xE2\x96\x81");
      // Splitting on an empty replacement never advances.
      if (rep.empty()) fail("'{}': Metaspace pre_tokenizer has an empty replacement", file_);
      const std::string scheme = p.value("prepend_scheme", p.value("add_prefix_space", true) ? "always" : "never");
      const bool split = p.value("split", true);
      pre_tokenizers_.push_back([rep, scheme, split](const std::string& w) {
        std::string s = replace_all(w, " ", rep);
        if (scheme != "never" && s.rfind(rep, 0) != 0) s = rep + s;
        std::vector<std::string> parts;
        if (!split) return std::vector<std::string>{s};
        size_t start = 0;
        for (size_t pos = s.find(rep, rep.size()); pos != std::string::npos; pos = s.find(rep, pos + rep.size())) {
          parts.push_back(s.substr(start, pos - start));
          start = pos;
        }
        parts.push_back(s.substr(start));
        return parts;
      });
    } else if (type == "Digits") {
      const bool individual = p.value("individual_digits", false);
      pre_tokenizers_.push_back([individual](const std::string& w) {
        std::vector<std::string> parts;
        std::string cur;
        bool cur_digit = false;
        for (char c : w) {
          const bool dg = c >= '0' && c <= '9';
          if (!cur.empty() && (dg != cur_digit || (dg && individual))) {
            parts.push_back(cur);
            cur.clear();
          }
          cur.push_back(c);
          cur_digit = dg;
        }
        if (!cur.empty()) parts.push_back(cur);
        return parts;
      });
    } else {
      fail("'{}': pre_tokenizer type '{}' is not supported (supported: Sequence, ByteLevel, Metaspace, Digits)",
           file_, type);
    }
  }

  void parse_decoder(const json& d) {
    if (d.is_null()) return;
    const std::string type = d.value("type", "");
    using Toks = std::vector<std::string>;
    if (type == "Sequence") {
      for (const auto& c : d.at("decoders")) parse_decoder(c);
    } else if (type == "Replace") {
      const std::string from = pattern_string(d.at("pattern"), file_, "Replace decoder");
      const std::string to = d.at("content").get<std::string>();
      decoders_.push_back([from, to](Toks& t) {
        for (auto& s : t) s = replace_all(s, from, to);
      });
    } else if (type == "ByteFallback") {
      decoders_.push_back([](Toks& t) {
        Toks out;
        std::string bytes;
        auto flush = [&] {
          if (bytes.empty()) return;
          if (utf8::valid(bytes)) out.push_back(bytes);
          else
            for (size_t i = 0; i < bytes.size(); ++i) out.push_back("\xEF\xBF\xBD");
          bytes.clear();
        };
        for (auto& s : t) {
          if (s.size() == 6 && s.rfind("<0x", 0) == 0 && s[5] == '>' && std::isxdigit(static_cast<unsigned char>(s[3])) &&
              std::isxdigit(static_cast<unsigned char>(s[4]))) {
            bytes.push_back(static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
          } else {
            flush();
            out.push_back(s);
          }
        }
        flush();
        t.swap(out);
      });
    } else if (type == "Fuse") {
      decoders_.push_back([](Toks& t) {
        std::string all;
        for (auto& s : t) all += s;
        t = {all};
      });
    } else if (type == "Strip") {
      const std::string c = d.at("content").get<std::string>();
      const int start = json_int<int>(d.value("start", json(0)), fmt::format("'{}': Strip decoder 'start'", file_));
      const int stop = json_int<int>(d.value("stop", json(0)), fmt::format("'{}': Strip decoder 'stop'", file_));
      // Stripping "" would loop `start` times without changing anything.
      if (c.empty()) fail("'{}': Strip decoder has empty content", file_);
      decoders_.push_back([c, start, stop](Toks& t) {
        for (auto& s : t) {
          for (int i = 0; i < start && s.rfind(c, 0) == 0; ++i) s.erase(0, c.size());
          for (int i = 0; i < stop && s.size() >= c.size() && s.compare(s.size() - c.size(), c.size(), c) == 0; ++i)
            s.erase(s.size() - c.size());
        }
      });
    } else if (type == "ByteLevel") {
      decoders_.push_back([](Toks& t) {
        std::string all;
        for (auto& s : t) all += s;
        t = {byte_level::decode_chars(all)};
      });
    } else if (type == "Metaspace") {
      const std::string rep = d.value("replacement", "\xE2\x96\x81");
      const bool strip_first = d.value("prepend_scheme", "always") != "never";
      decoders_.push_back([rep, strip_first](Toks& t) {
        for (size_t i = 0; i < t.size(); ++i) {
          t[i] = replace_all(t[i], rep, " ");
          if (i == 0 && strip_first && !t[i].empty() && t[i][0] == ' ') t[i].erase(0, 1);
        }
      });
    } else {
      fail("'{}': decoder type '{}' is not supported", file_, type);
    }
  }

  std::string file_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> pieces_;
  std::unordered_map<uint64_t, BpeMerge> merges_;
  std::vector<std::pair<std::string, int32_t>> added_;
  std::unordered_set<int32_t> special_, normalized_added_;
  std::unordered_map<int32_t, std::string> decoded_added_;
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false;
  std::vector<std::function<std::string(const std::string&)>> normalizers_;
  std::vector<std::function<std::vector<std::string>(const std::string&)>> pre_tokenizers_;
  std::vector<std::function<void(std::vector<std::string>&)>> decoders_;
};

}  // namespace

namespace {
std::unique_ptr<Tokenizer> build_hf_tokenizer(const json& j, const std::string& path) {
  try {
    auto tok = std::make_unique<HfTokenizer>(j, path);
    // BOS/EOS from special_tokens_map conventions when the post-processor does not name one.
    auto find_special = [&](const char* content) -> int32_t {
      for (int32_t id = 0; id < tok->vocab_size(); ++id)
        if (tok->is_special(id) && tok->piece(id) == content) return id;
      return -1;
    };
    int32_t eos = -1;
    for (const char* c : {"</s>", "<|endoftext|>", "<|end_story|>", "<eos>", "<|im_end|>"})
      if (eos < 0) eos = find_special(c);
    int32_t bos = -1;
    for (const char* c : {"<s>", "<bos>", "<|startoftext|>", "<|start_story|>", "<|endoftext|>"})
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
