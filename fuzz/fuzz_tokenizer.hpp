// What the tokenizer targets do with a tokenizer that loaded: encode and decode fixed texts (odd
// bytes, specials, empty input), then decode every id of the vocabulary.
#pragma once
#include <initializer_list>
#include <vector>

#include "saelab/tokenizer.hpp"

namespace saelab::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok, std::initializer_list<const char*> texts) {
  for (const char* text : texts) {
    const std::vector<int32_t> ids = tok.encode(text);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  }
  std::vector<int32_t> all(static_cast<size_t>(tok.vocab_size()));
  for (int32_t i = 0; i < tok.vocab_size(); ++i) all[i] = i;
  (void)tok.decode(all, false);
  (void)tok.decode(all, true);
}

}  // namespace saelab::fuzz
