#include "byte_level.hpp"

#include <array>
#include <unordered_map>

#include "pretokenize.hpp"
#include "utf8.hpp"

namespace saelab::byte_level {
namespace {

struct Tables {
  std::array<uint32_t, 256> byte_to_cp{};
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  Tables() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      cp_to_byte[byte_to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string encode_bytes(std::string_view raw) {
  std::string out;
  for (unsigned char b : raw) utf8::append(out, tables().byte_to_cp[b]);
  return out;
}

std::string decode_chars(std::string_view mapped) {
  std::string out;
  for (size_t i = 0; i < mapped.size();) {
    size_t n;
    const uint32_t cp = utf8::decode_at(mapped, i, &n);
    auto it = tables().cp_to_byte.find(cp);
    if (it != tables().cp_to_byte.end()) out.push_back(static_cast<char>(it->second));
    else out.append(mapped.substr(i, n));
    i += n;
  }
  return out;
}

std::optional<std::string> decode_token(std::string_view mapped) {
  std::string out;
  for (size_t i = 0; i < mapped.size();) {
    size_t n;
    const uint32_t cp = utf8::decode_at(mapped, i, &n);
    auto it = tables().cp_to_byte.find(cp);
    if (it == tables().cp_to_byte.end() || (cp == 0xFFFD && n == 1)) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
    i += n;
  }
  return out;
}

std::vector<std::string> gpt2_split(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view piece : pretokenize::split(text, pretokenize::PreTokenizer::Gpt2)) out.emplace_back(piece);
  return out;
}

}  // namespace saelab::byte_level
