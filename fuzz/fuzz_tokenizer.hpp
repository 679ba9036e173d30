// What the tokenizer targets do with a tokenizer that loaded: encode and decode fixed texts (odd
// bytes, specials, empty input) and the vocabulary's own pieces, then decode every id.
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "saelab/tokenizer.hpp"

namespace saelab::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok, std::initializer_list<const char*> texts) {
  for (const char* text : texts) {
    const std::vector<int32_t> ids = tok.encode(text);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  }
  // The vocabulary's own pieces as text (the first 512, joined): split-out special tokens next to
  // each other and long merge chains, which fixed texts rarely reach.
  std::string pieces;
  for (int32_t i = 0; i < tok.vocab_size() && i < 512; ++i) pieces += tok.piece(i);
  (void)tok.decode(tok.encode(pieces), false);
  std::vector<int32_t> all(static_cast<size_t>(tok.vocab_size()));
  for (int32_t i = 0; i < tok.vocab_size(); ++i) all[i] = i;
  (void)tok.decode(all, false);
  (void)tok.decode(all, true);
}

}  // namespace saelab::fuzz
