// The added tokens of a tokenizer.json (special tokens and others added on top of the model's
// vocabulary), found in text as tokenizers' AddedVocabulary finds them: leftmost-longest,
// non-overlapping matches of their contents, then each token's flags (single_word, lstrip, rstrip).
// A tokenizer keeps two matchers: tokens with normalized=false match the raw input, tokens with
// normalized=true match (by their normalized content) each segment after normalization.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace saelab::hf {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;  // only where no word character (\w) touches either end
  bool lstrip = false;       // the match takes the whitespace before it
  bool rstrip = false;       // and after it
  bool normalized = false;
  bool special = false;
};

class AddedTokenMatcher {
 public:
  // Matches `pattern` (the content, or its normalized form) as `token`. An empty pattern is
  // ignored (it cannot be found); of two tokens with one pattern, the later one wins.
  void add(const std::string& pattern, const AddedToken& token);
  bool empty() const { return tokens_.empty(); }

  // [begin, end) of text in bytes; id is the added token's, or -1 for text between tokens. The
  // spans are in order and cover text; text spans are non-empty (a token span is empty only where
  // an earlier token's rstrip already took its text).
  struct Span {
    size_t begin, end;
    int32_t id;
  };
  std::vector<Span> split(std::string_view text) const;

 private:
  // A byte trie: node 0 is the root; edges_ maps (node << 8 | byte) to the child node.
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> terminal_{-1};  // per node: index into tokens_, or -1
  std::vector<AddedToken> tokens_;
};

}  // namespace saelab::hf
