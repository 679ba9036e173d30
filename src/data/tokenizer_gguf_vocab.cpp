#include "tokenizer_gguf_vocab.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <set>

#include "saelab/error.hpp"

namespace saelab {
namespace gguf_tok {
namespace {

template <size_t N>
bool one_of(const std::string& s, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

// llama.cpp's text lists (llama-vocab.cpp, llama_vocab::impl::load). Tokens found by them become
// control tokens, whatever their token_type says.
constexpr std::string_view kEot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                     "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                     "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                     "<end_of_utterance>"};
constexpr std::string_view kEom[] = {"<|eom_id|>"};
constexpr std::string_view kFimPre[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                        "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                                        "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSuf[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                        "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
                                        "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMid[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                        "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                                        "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
// FIM pad / repo / file-separator tokens also end generation in llama.cpp.
constexpr std::string_view kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSep[] = {"<|file_sep|>"};
constexpr std::string_view kEog[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~["};

bool is_byte_piece(const std::string& p) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

}  // namespace

GgufTokenizer::GgufTokenizer(const GgufVocab& v) : source_(v.source) {
  const size_t n = v.tokens.size();
  if (n == 0) fail("'{}': the vocabulary (tokenizer.ggml.tokens) is empty", source_);
  if (n >= static_cast<size_t>(INT32_MAX)) fail("'{}': {} tokens are more than token ids can hold", source_, n);
  for (const auto& [what, size] : {std::pair{"scores", v.scores.size()}, std::pair{"token_type", v.token_types.size()}})
    if (size != 0 && size != n)
      fail("'{}': tokenizer.ggml.{} has {} entries, expected one per token ({})", source_, what, size, n);
  for (size_t i = 0; i < v.scores.size(); ++i)  // NaN would break the merge queue's ordering
    if (std::isnan(v.scores[i])) fail("'{}': tokenizer.ggml.scores[{}] is NaN, expected a number", source_, i);
  types_.assign(n, kNormal);
  for (size_t i = 0; i < v.token_types.size(); ++i)
    types_[i] = v.token_types[i] >= kUndefined && v.token_types[i] <= kByte ? v.token_types[i] : kUndefined;
  pieces_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // llama.cpp names an empty token rather than refusing the file; an empty piece would also match
    // everywhere when split out of the text.
    pieces_.push_back(v.tokens[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : v.tokens[i]);
    const auto [it, fresh] = ids_.emplace(pieces_.back(), static_cast<int32_t>(i));
    if (!fresh)
      fail("'{}': token '{}' appears twice in tokenizer.ggml.tokens (ids {} and {})", source_, pieces_.back(),
           it->second, i);
    if (types_[i] == kByte && !is_byte_piece(pieces_[i]))
      fail("'{}': token {} '{}' has token_type 6 (byte) but is not of the form <0xXX>", source_, i, pieces_[i]);
  }
  set_special_ids(v);
  set_end_of_generation(v);
  for (int32_t id = 0; id < vocab_size(); ++id)
    if (is_split_out(id)) split_out_.push_back(id);
  std::stable_sort(split_out_.begin(), split_out_.end(),
                   [&](int32_t a, int32_t b) { return pieces_[a].size() > pieces_[b].size(); });
}

void GgufTokenizer::set_special_ids(const GgufVocab& v) {
  const std::pair<const char*, int32_t> ids[] = {{"bos_token_id", v.bos},     {"eos_token_id", v.eos},
                                                 {"eot_token_id", v.eot},     {"eom_token_id", v.eom},
                                                 {"unknown_token_id", v.unk}, {"padding_token_id", v.pad}};
  for (const auto& [key, id] : ids)
    if (id != -1 && (id < 0 || id >= vocab_size()))
      fail("'{}': tokenizer.ggml.{} is {}, outside the vocabulary of {} tokens", source_, key, id, vocab_size());
  if (v.add_bos && v.bos < 0)
    fail("'{}': tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id", source_);
  if (v.add_eos && v.eos < 0)
    fail("'{}': tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id", source_);
  set_bos_eos(v.bos, v.eos);
  set_adds_bos(v.add_bos);
  unk_ = v.unk;
}

// As llama.cpp: EOS, EOT and EOM, every token whose text is on its EOG list, and the FIM pad / repo
// / separator tokens. Tokens it recognises by text (EOT, EOM, FIM when the GGUF does not name them)
// become control tokens. Where several tokens match one list, llama.cpp takes the first in hash
// order; here the lowest id.
void GgufTokenizer::set_end_of_generation(const GgufVocab& v) {
  auto detect = [&](const auto& list) {
    for (int32_t id = 0; id < vocab_size(); ++id)
      if (one_of(pieces_[id], list)) {
        types_[id] = kControl;
        return id;
      }
    return -1;
  };
  std::set<int32_t> eog{v.eos, v.eom >= 0 ? v.eom : detect(kEom), v.eot >= 0 ? v.eot : detect(kEot)};
  for (int32_t id : {detect(kFimPad), detect(kFimRep), detect(kFimSep)}) eog.insert(id);
  detect(kFimPre);
  detect(kFimSuf);
  detect(kFimMid);
  for (int32_t id = 0; id < vocab_size(); ++id)
    if (one_of(pieces_[id], kEog)) {
      types_[id] = kControl;
      eog.insert(id);
    }
  for (int32_t id : eog) add_eog(id);  // ignores -1
}

bool GgufTokenizer::is_split_out(int32_t id) const {
  return types_[id] == kControl || types_[id] == kUserDefined || types_[id] == kUnknown;
}

bool GgufTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (types_[id] == kControl || types_[id] == kUnknown);
}

std::string GgufTokenizer::piece(int32_t id) const {
  SAELAB_ASSERT(id >= 0 && id < vocab_size(), "token id {} outside vocabulary of {}", id, vocab_size());
  return pieces_[id];
}

int32_t GgufTokenizer::find(std::string_view text) const {
  auto it = ids_.find(std::string(text));
  return it == ids_.end() ? -1 : it->second;
}

int32_t GgufTokenizer::byte_token(uint8_t b) const { return find(fmt::format("<0x{:02X}>", b)); }

// tokenizer_st_partition: for each split-out token, longest first, every occurrence in the text not
// yet claimed becomes that token; the text between occurrences goes to the model.
std::vector<GgufTokenizer::Fragment> GgufTokenizer::partition(std::string_view text) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({0, text.size(), -1});
  for (int32_t id : split_out_) {
    const std::string& s = pieces_[id];
    if (text.find(s) == std::string_view::npos) continue;
    std::vector<Fragment> next;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view window = text.substr(0, f.end);
      size_t at = f.begin;
      for (size_t p = window.find(s, at); p != std::string_view::npos; p = window.find(s, at)) {
        if (p > at) next.push_back({at, p, -1});
        next.push_back({p, p + s.size(), id});
        at = p + s.size();
      }
      if (at < f.end) next.push_back({at, f.end, -1});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> GgufTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const Fragment& f : partition(text)) {
    if (f.token >= 0) ids.push_back(f.token);
    else encode_fragment(text.substr(f.begin, f.end - f.begin), ids);
  }
  return ids;
}

std::string GgufTokenizer::token_bytes(int32_t id) const {
  switch (types_[id]) {
    case kNormal: return normal_bytes(id);
    case kByte: return std::string(1, static_cast<char>(std::stoi(pieces_[id].substr(3, 2), nullptr, 16)));
    default: return "";  // undefined and unused tokens print nothing in llama.cpp
  }
}

// Split-out tokens decode to their text (control and unknown ones unless skip_special). With a
// space prefix (SentencePiece), the space encode() put at the start of each text fragment is
// dropped again: at the start and after each split-out token. (llama.cpp drops it only at the start,
// so it prints "<s> Hello" where this gives "<s>Hello"; decode(encode(s)) == s needs the inverse.)
std::string GgufTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  bool fragment_start = true;
  for (int32_t id : ids) {
    SAELAB_ASSERT(id >= 0 && id < vocab_size(), "token id {} outside vocabulary of {}", id, vocab_size());
    if (is_split_out(id)) {
      if (!(skip_special && is_special(id))) out += pieces_[id];
      fragment_start = true;
      continue;
    }
    std::string b = token_bytes(id);
    if (fragment_start && prefixes_space() && !b.empty() && b[0] == ' ') b.erase(0, 1);
    fragment_start = false;
    out += b;
  }
  return out;
}

}  // namespace gguf_tok

std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& v) {
  if (v.model == "gpt2") return gguf_tok::make_byte_level_bpe(v);
  if (v.model == "llama") return gguf_tok::make_sentencepiece_bpe(v);
  fail("'{}': tokenizer model '{}' (tokenizer.ggml.model) is not supported (supported: gpt2, llama)", v.source,
       v.model);
}

}  // namespace saelab
