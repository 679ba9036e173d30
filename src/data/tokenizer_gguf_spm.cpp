// GGUF model "llama": SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm_session runs it.
// A text fragment gets a leading space (add_space_prefix), spaces become "▁" (U+2581), the symbols
// start as UTF-8 characters, and the adjacent pair whose concatenation is a token with the highest
// score merges first (leftmost on ties), until no pair forms a token. A symbol that is no token
// falls back to its bytes: "<0xXX>" tokens, else tokens of the raw bytes, else one unknown token.
#include <array>
#include <queue>

#include "saelab/error.hpp"
#include "tokenizer_gguf_vocab.hpp"
#include "utf8.hpp"

namespace saelab::gguf_tok {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁

class SentencePieceBpe final : public GgufTokenizer {
 public:
  explicit SentencePieceBpe(const GgufVocab& v)
      : GgufTokenizer(v), scores_(v.scores), add_space_prefix_(v.add_space_prefix) {
    scores_.resize(pieces_.size(), 0.0f);  // llama.cpp: score 0 without tokenizer.ggml.scores
    for (int b = 0; b < 256; ++b) {
      bytes_[b] = byte_token(static_cast<uint8_t>(b));
      if (bytes_[b] < 0) bytes_[b] = find(std::string(1, static_cast<char>(b)));
    }
  }

 protected:
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const override {
    std::string s;
    for (char c : (add_space_prefix_ ? " " : "") + std::string(text)) {
      if (c == ' ') s += kSpace;
      else s += c;
    }
    std::vector<Symbol> syms;
    for (size_t i = 0; i < s.size(); i += syms.back().len)
      syms.push_back({i, utf8::char_len(s, i), static_cast<int>(syms.size()) - 1, -1});
    for (size_t i = 0; i + 1 < syms.size(); ++i) syms[i].next = static_cast<int>(i + 1);
    merge(s, syms);
    for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next)
      emit(std::string_view(s).substr(syms[i].off, syms[i].len), out);
  }

  std::string normal_bytes(int32_t id) const override {
    std::string out;
    const std::string& p = pieces_[id];
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += p[i++];
      }
    }
    return out;
  }

  bool prefixes_space() const override { return add_space_prefix_; }

 private:
  struct Symbol {
    size_t off, len;  // bytes of the escaped text; len 0 once merged into the symbol on its left
    int prev, next;
  };
  struct Bigram {
    float score;
    int left, right;
    size_t len;  // of the merged text: a bigram whose symbols changed since is stale
    bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
  };

  void push_bigram(const std::string& s, const std::vector<Symbol>& syms, int l, int r,
                   std::priority_queue<Bigram>& q) const {
    if (l < 0 || r < 0) return;
    const size_t len = syms[l].len + syms[r].len;
    const int32_t id = find(std::string_view(s).substr(syms[l].off, len));
    if (id >= 0) q.push({scores_[id], l, r, len});
  }

  void merge(const std::string& s, std::vector<Symbol>& syms) const {
    std::priority_queue<Bigram> q;
    for (size_t i = 1; i < syms.size(); ++i) push_bigram(s, syms, static_cast<int>(i) - 1, static_cast<int>(i), q);
    while (!q.empty()) {
      const Bigram b = q.top();
      q.pop();
      Symbol &l = syms[b.left], &r = syms[b.right];
      if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = b.left;
      push_bigram(s, syms, l.prev, b.left, q);
      push_bigram(s, syms, b.left, l.next, q);
    }
  }

  void emit(std::string_view sym, std::vector<int32_t>& out) const {
    if (const int32_t id = find(sym); id >= 0) {
      out.push_back(id);
      return;
    }
    for (unsigned char c : sym) {
      if (bytes_[c] >= 0) continue;
      // Without byte fallback the character is one unknown token, as in SentencePiece.
      if (unk_ < 0) fail("'{}': byte 0x{:02X} has no token (no <0x{:02X}>, no unknown token)", source_, c, c);
      out.push_back(unk_);
      return;
    }
    for (unsigned char c : sym) out.push_back(bytes_[c]);
  }

  std::vector<float> scores_;
  bool add_space_prefix_;
  std::array<int32_t, 256> bytes_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(const GgufVocab& v) {
  return std::make_unique<SentencePieceBpe>(v);
}

}  // namespace saelab::gguf_tok
