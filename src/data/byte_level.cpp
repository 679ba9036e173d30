#include "byte_level.hpp"

#include <locale.h>
#include <wctype.h>

#include <array>
#include <unordered_map>

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

locale_t utf8_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

enum class Cls { Letter, Number, Space, Other };
Cls classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return Cls::Letter;
    if (cp >= '0' && cp <= '9') return Cls::Number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return Cls::Space;
    return Cls::Other;
  }
  locale_t loc = utf8_locale();
  const auto wc = static_cast<wint_t>(cp);
  if (loc) {
    if (iswspace_l(wc, loc)) return Cls::Space;
    if (iswalpha_l(wc, loc)) return Cls::Letter;
    if (iswalnum_l(wc, loc)) return Cls::Number;
    return Cls::Other;
  }
  return Cls::Letter;  // without Unicode tables, non-ASCII text is most often letters
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

std::vector<std::string> gpt2_split(std::string_view text) {
  std::vector<uint32_t> cps;
  std::vector<size_t> offs;  // byte offset of each code point, plus the end
  for (size_t i = 0; i < text.size();) {
    size_t n;
    cps.push_back(utf8::decode_at(text, i, &n));
    offs.push_back(i);
    i += n;
  }
  offs.push_back(text.size());
  const size_t n = cps.size();
  std::vector<Cls> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = classify(cps[i]);
  std::vector<std::string> out;
  size_t i = 0;
  auto emit = [&](size_t end) {
    out.emplace_back(text.substr(offs[i], offs[end] - offs[i]));
    i = end;
  };
  while (i < n) {
    if (cps[i] == '\'' && i + 1 < n) {  // contractions
      const uint32_t a = cps[i + 1], b = i + 2 < n ? cps[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') { emit(i + 2); continue; }
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) { emit(i + 3); continue; }
    }
    const bool lead_space = cps[i] == ' ' && i + 1 < n && cls[i + 1] != Cls::Space;
    const size_t j0 = lead_space ? i + 1 : i;
    if (cls[j0] != Cls::Space) {
      const Cls c = cls[j0];
      size_t j = j0;
      while (j < n && cls[j] == c) ++j;
      emit(j);
      continue;
    }
    size_t j = i;  // a run of whitespace
    while (j < n && cls[j] == Cls::Space) ++j;
    if (j < n && j - i > 1) --j;  // \s+(?!\S): leave the last space to lead the next token
    emit(j);
  }
  return out;
}

}  // namespace saelab::byte_level
