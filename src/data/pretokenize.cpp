#include "pretokenize.hpp"

#include <array>
#include <utility>

#include "utf8.hpp"

namespace saelab::pretokenize {
namespace {

// A text as code points, their classes and byte offsets (off has one more entry: the end).
struct Text {
  std::vector<uint32_t> cp;
  std::vector<UnicodeClass> cls;
  std::vector<size_t> off;
  explicit Text(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
      size_t n;
      cp.push_back(utf8::decode_at(s, i, &n));
      cls.push_back(unicode_class(cp.back()));
      off.push_back(i);
      i += n;
    }
    off.push_back(s.size());
  }
  bool is(size_t i, UnicodeClass c) const { return cls[i] == c; }
  bool space(size_t i) const { return cls[i] == UnicodeClass::Space; }
  bool letter(size_t i) const { return cls[i] == UnicodeClass::Letter; }
  bool number(size_t i) const { return cls[i] == UnicodeClass::Number; }
  // [^\s\p{L}\p{N}]: marks, punctuation, symbols, controls
  bool other(size_t i) const { return !space(i) && !letter(i) && !number(i); }
  bool crlf(size_t i) const { return cp[i] == '\r' || cp[i] == '\n'; }
};

// Code point ranges [first, second).
using Pieces = std::vector<std::pair<size_t, size_t>>;

// A scanner returns the end of the regex's match starting at i (the piece ends at `end`, which is
// the end of the string for lookaheads), or i when the regex does not match there.
using Scanner = size_t (*)(const Text& t, size_t i, size_t end);

template <class Pred>
size_t run(const Text& t, size_t i, size_t end, Pred pred, size_t max = SIZE_MAX) {
  size_t j = i;
  while (j < end && j - i < max && pred(j)) ++j;
  return j;
}

// 's|'t|'re|'ve|'m|'ll|'d, or with ASCII case folding (Llama 3's (?i:...), which llama.cpp
// writes as '[sS]|'[tT]|...). Returns i when there is none.
size_t contraction(const Text& t, size_t i, size_t end, bool fold) {
  if (t.cp[i] != '\'' || i + 1 >= end) return i;
  auto lower = [&](size_t k) -> uint32_t {
    const uint32_t c = k < end ? t.cp[k] : 0;
    return fold && c >= 'A' && c <= 'Z' ? c + 32 : c;
  };
  const uint32_t a = lower(i + 1), b = lower(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return i;
}

// \s+(?!\S)|\s+ at a whitespace run [i, k): all of it at the end of the piece, else all but its
// last character (which then leads the next piece), or the single character.
size_t trailing_space(size_t i, size_t k, size_t end) { return k < end && k - i > 1 ? k - 1 : k; }

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t gpt2(const Text& t, size_t i, size_t end) {
  if (size_t m = contraction(t, i, end, false); m > i) return m;
  const size_t j = t.cp[i] == ' ' && i + 1 < end && !t.space(i + 1) ? i + 1 : i;  // the optional space
  if (t.letter(j)) return run(t, j, end, [&](size_t k) { return t.letter(k); });
  if (t.number(j)) return run(t, j, end, [&](size_t k) { return t.number(k); });
  if (t.other(j)) return run(t, j, end, [&](size_t k) { return t.other(k); });
  return trailing_space(i, run(t, i, end, [&](size_t k) { return t.space(k); }), end);
}

// Llama 3 with \p{N}{1,max_digits}:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
size_t llama3_like(const Text& t, size_t i, size_t end, size_t max_digits) {
  if (size_t m = contraction(t, i, end, true); m > i) return m;
  auto letters = [&](size_t k) { return t.letter(k); };
  if (t.letter(i)) return run(t, i, end, letters);
  if (!t.crlf(i) && !t.number(i) && i + 1 < end && t.letter(i + 1)) return run(t, i + 1, end, letters);
  if (t.number(i)) return run(t, i, end, [&](size_t k) { return t.number(k); }, max_digits);
  const size_t j = t.cp[i] == ' ' && i + 1 < end && t.other(i + 1) ? i + 1 : i;
  if (t.other(j)) {
    const size_t k = run(t, j, end, [&](size_t x) { return t.other(x); });
    return run(t, k, end, [&](size_t x) { return t.crlf(x); });
  }
  const size_t k = run(t, i, end, [&](size_t x) { return t.space(x); });
  for (size_t p = k; p > i; --p)  // \s*[\r\n]+: up to the run's last \r or \n
    if (t.crlf(p - 1)) return p;
  return trailing_space(i, k, end);
}
size_t llama3(const Text& t, size_t i, size_t end) { return llama3_like(t, i, end, 3); }
size_t qwen2(const Text& t, size_t i, size_t end) { return llama3_like(t, i, end, 1); }

// \p{N}
size_t one_number(const Text& t, size_t i, size_t end) { return t.number(i) ? i + 1 : i; }
// \p{N}+
size_t numbers(const Text& t, size_t i, size_t end) {
  return run(t, i, end, [&](size_t k) { return t.number(k); });
}
// [0-9][0-9][0-9]
size_t three_digits(const Text& t, size_t i, size_t end) {
  const size_t k = run(t, i, end, [&](size_t x) { return t.cp[x] >= '0' && t.cp[x] <= '9'; }, 3);
  return k - i == 3 ? k : i;
}
// [\p{P}\$\+<=>\^~\|]+
size_t punctuation(const Text& t, size_t i, size_t end) {
  return run(t, i, end, [&](size_t k) {
    const uint32_t c = t.cp[k];
    return t.is(k, UnicodeClass::Punct) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' ||
           c == '~' || c == '|';
  });
}

// One regex over every piece: its matches and the text between them become the new pieces.
Pieces apply(const Text& t, const Pieces& in, Scanner scan) {
  Pieces out;
  for (const auto& [b, e] : in) {
    size_t gap = b;
    for (size_t i = b; i < e;) {
      const size_t m = scan(t, i, e);
      if (m == i) {
        ++i;
        continue;
      }
      if (gap < i) out.emplace_back(gap, i);
      out.emplace_back(i, m);
      i = gap = m;
    }
    if (gap < e) out.emplace_back(gap, e);
  }
  return out;
}

std::vector<Scanner> stages(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::Default: return {punctuation, gpt2, numbers, three_digits};
    case PreTokenizer::Gpt2: return {gpt2};
    case PreTokenizer::Smollm: return {one_number, gpt2};
    case PreTokenizer::Llama3: return {llama3};
    case PreTokenizer::Qwen2: return {qwen2};
  }
  return {};
}

struct Named {
  const char* name;
  PreTokenizerSpec spec;
};
// The names llama.cpp maps to these regexes (others use regexes not written here). "gpt2" is not a
// llama.cpp name; it is accepted as the obvious alias of "gpt-2".
constexpr std::array kNames{
    Named{"default", {PreTokenizer::Default, false, false}},
    Named{"gpt-2", {PreTokenizer::Gpt2, false, false}},
    Named{"gpt2", {PreTokenizer::Gpt2, false, false}},
    Named{"phi-2", {PreTokenizer::Gpt2, false, false}},
    Named{"mpt", {PreTokenizer::Gpt2, false, false}},
    Named{"olmo", {PreTokenizer::Gpt2, false, false}},
    Named{"smollm", {PreTokenizer::Smollm, false, false}},
    Named{"starcoder", {PreTokenizer::Smollm, false, false}},
    Named{"refact", {PreTokenizer::Smollm, false, false}},
    Named{"command-r", {PreTokenizer::Smollm, false, false}},
    Named{"llama3", {PreTokenizer::Llama3, true, true}},
    Named{"llama-v3", {PreTokenizer::Llama3, true, true}},
    Named{"llama-bpe", {PreTokenizer::Llama3, true, true}},
    Named{"falcon3", {PreTokenizer::Llama3, true, true}},
    Named{"dbrx", {PreTokenizer::Llama3, false, false}},
    Named{"smaug-bpe", {PreTokenizer::Llama3, false, false}},
    Named{"qwen2", {PreTokenizer::Qwen2, false, false}},
    Named{"deepseek-r1-qwen", {PreTokenizer::Qwen2, false, false}},
    Named{"megrez", {PreTokenizer::Qwen2, false, false}},
    Named{"stablelm2", {PreTokenizer::Qwen2, false, false}},
};

}  // namespace

std::optional<PreTokenizerSpec> find_pre_tokenizer(std::string_view gguf_pre) {
  if (gguf_pre.empty()) gguf_pre = "default";
  for (const auto& n : kNames)
    if (gguf_pre == n.name) return n.spec;
  return std::nullopt;
}

std::string supported_pre_tokenizers() {
  std::string s;
  for (const auto& n : kNames) s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}

std::vector<std::string_view> split(std::string_view text, PreTokenizer p) {
  const Text t(text);
  Pieces pieces;
  if (!t.cp.empty()) pieces.emplace_back(0, t.cp.size());
  for (Scanner s : stages(p)) pieces = apply(t, pieces, s);
  std::vector<std::string_view> out;
  out.reserve(pieces.size());
  for (const auto& [b, e] : pieces) out.push_back(text.substr(t.off[b], t.off[e] - t.off[b]));
  return out;
}

}  // namespace saelab::pretokenize
