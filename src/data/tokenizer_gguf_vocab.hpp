// What the two GGUF tokenizer models share, as llama.cpp's llama_vocab does it: the validated
// vocabulary, the tokens split out of the text verbatim before the model sees it (control,
// user-defined and unknown tokens, longest first: tokenizer_st_partition with parse_special), the
// end-of-generation set, and decoding token by token.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "saelab/tokenizer.hpp"

namespace saelab::gguf_tok {

// tokenizer.ggml.token_type values (llama.h, LLAMA_TOKEN_TYPE_*).
enum TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

class GgufTokenizer : public Tokenizer {
 public:
  // Validates the model-independent parts of v; throws Error naming v.source.
  explicit GgufTokenizer(const GgufVocab& v);

  std::vector<int32_t> encode(std::string_view text) const final;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const final;
  std::string piece(int32_t id) const final;
  int32_t vocab_size() const final { return static_cast<int32_t>(pieces_.size()); }
  // Control and unknown tokens: what llama.cpp leaves out of a detokenization without `special`.
  bool is_special(int32_t id) const final;

 protected:
  // Text between split-out tokens (never empty) to ids.
  virtual void encode_fragment(std::string_view text, std::vector<int32_t>& out) const = 0;
  // The bytes of a normal token (unescaped as the model writes its pieces).
  virtual std::string normal_bytes(int32_t id) const = 0;
  // SentencePiece: decoding drops the space encode_fragment put before each fragment.
  virtual bool prefixes_space() const { return false; }

  int32_t find(std::string_view text) const;  // the id of a piece, -1 when absent
  int32_t byte_token(uint8_t b) const;        // "<0xXX>", -1 when absent
  bool is_split_out(int32_t id) const;

  std::string source_;
  std::vector<std::string> pieces_;
  std::vector<int32_t> types_;
  int32_t unk_ = -1;

 private:
  struct Fragment {
    size_t begin, end;  // bytes of the text
    int32_t token;      // a split-out token, or -1: text for the model
  };
  std::vector<Fragment> partition(std::string_view text) const;
  void set_special_ids(const GgufVocab& v);
  void set_end_of_generation(const GgufVocab& v);
  std::string token_bytes(int32_t id) const;

  std::unordered_map<std::string, int32_t> ids_;
  std::vector<int32_t> split_out_;  // control, user-defined and unknown tokens, longest text first
};

// The two models (tokenizer_gguf_bpe.cpp, tokenizer_gguf_spm.cpp); each validates its own parts.
std::unique_ptr<Tokenizer> make_byte_level_bpe(const GgufVocab& v);
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(const GgufVocab& v);

}  // namespace saelab::gguf_tok
