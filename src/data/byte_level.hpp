// GPT-2's byte-level BPE pieces: every byte is mapped to a printable unicode character, and text is
// pre-split by GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (pretokenize.hpp's scanner, with Unicode classes from its generated table.)
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace saelab::byte_level {

std::string encode_bytes(std::string_view raw);     // each byte -> its printable character (UTF-8)
std::string decode_chars(std::string_view mapped);  // inverse; unmapped characters pass through
// The bytes of a token whose every character is a mapped byte; nullopt if any is not (then the
// Hugging Face ByteLevel decoder keeps the token's own text, e.g. an added token with a space).
std::optional<std::string> decode_token(std::string_view mapped);
std::vector<std::string> gpt2_split(std::string_view text);

}  // namespace saelab::byte_level
