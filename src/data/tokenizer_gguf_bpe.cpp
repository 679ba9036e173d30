// GGUF model "gpt2": byte-level BPE as llama.cpp's llm_tokenizer_bpe_session runs it. Each text
// fragment is cut by the pre-tokenizer named in tokenizer.ggml.pre, each piece's bytes are mapped
// to GPT-2's printable characters, and adjacent symbols merge by rank (the merge's index in
// tokenizer.ggml.merges), lowest first, leftmost on ties.
#include <unordered_map>

#include "bpe_merge.hpp"
#include "byte_level.hpp"
#include "pretokenize.hpp"
#include "saelab/error.hpp"
#include "tokenizer_gguf_vocab.hpp"
#include "utf8.hpp"

namespace saelab::gguf_tok {
namespace {

class ByteLevelBpe final : public GgufTokenizer {
 public:
  ByteLevelBpe(const GgufVocab& v, pretokenize::PreTokenizerSpec pre) : GgufTokenizer(v), pre_(pre) {
    for (size_t rank = 0; rank < v.merges.size(); ++rank) add_merge(v.merges[rank], rank);
  }

 protected:
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const override {
    for (std::string_view piece : pretokenize::split(text, pre_.kind)) {
      const std::string word = byte_level::encode_bytes(piece);
      const int32_t whole = pre_.ignore_merges ? find(word) : -1;
      if (whole >= 0) {
        out.push_back(whole);
        continue;
      }
      std::vector<int32_t> syms;
      for (size_t i = 0; i < word.size();) {
        const size_t n = utf8::char_len(word, i);
        syms.push_back(find(std::string_view(word).substr(i, n)));  // -1 never merges
        i += n;
      }
      bpe_merge(syms, [this](int32_t a, int32_t b, BpeMerge& m) {
        auto it = merges_.find(key(a, b));
        if (it == merges_.end()) return false;
        m = it->second;
        return true;
      });
      // A byte whose character is missing from the vocabulary is dropped, as llama.cpp and
      // `tokenizers` (without an unk token) do; SmolLM2 lacks 21 bytes (0xC0, 0xF5-0xFF, ...).
      for (int32_t id : syms)
        if (id >= 0) out.push_back(id);
    }
  }

  std::string normal_bytes(int32_t id) const override { return byte_level::decode_chars(pieces_[id]); }

 private:
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  // "a b" (split at the first space after the first character, as llama.cpp does). The first
  // occurrence of a pair keeps its rank.
  void add_merge(const std::string& m, size_t rank) {
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos) fail("'{}': merge {} '{}' is not of the form 'a b'", source_, rank, m);
    const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
    const int32_t ia = find(a), ib = find(b), iab = find(a + b);
    if (ia < 0 || ib < 0 || iab < 0)
      fail("'{}': merge {} '{}' refers to a token missing from the vocabulary ('{}')", source_, rank, m,
           ia < 0 ? a : ib < 0 ? b : a + b);
    merges_.emplace(key(ia, ib), BpeMerge{static_cast<double>(rank), iab});
  }

  pretokenize::PreTokenizerSpec pre_;
  std::unordered_map<uint64_t, BpeMerge> merges_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_bpe(const GgufVocab& v) {
  const auto pre = pretokenize::find_pre_tokenizer(v.pre);
  if (!pre)
    fail("'{}': pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported (supported: {})", v.source, v.pre,
         pretokenize::supported_pre_tokenizers());
  return std::make_unique<ByteLevelBpe>(v, *pre);
}

}  // namespace saelab::gguf_tok
