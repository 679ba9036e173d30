#include "hf_added_tokens.hpp"

#include "pretokenize.hpp"
#include "utf8.hpp"

namespace saelab::hf {
namespace {

using pretokenize::UnicodeClass;

// Rust regex's \s (Unicode White_Space), which lstrip/rstrip take.
bool is_space(uint32_t cp) { return pretokenize::unicode_class(cp) == UnicodeClass::Space; }
// Rust regex's \w: alphabetic, marks, decimal numbers, connector punctuation (approximated by the
// pre-tokenizer classes: letters, marks, numbers, and the connector punctuation characters).
bool is_word(uint32_t cp) {
  const UnicodeClass c = pretokenize::unicode_class(cp);
  return c == UnicodeClass::Letter || c == UnicodeClass::Mark || c == UnicodeClass::Number || cp == '_' ||
         cp == 0x203F || cp == 0x2040 || cp == 0x2054 || cp == 0xFE33 || cp == 0xFE34 ||
         (cp >= 0xFE4D && cp <= 0xFE4F) || cp == 0xFF3F;
}

// The code point ending at byte `end` (> 0) of s.
uint32_t last_char(std::string_view s, size_t end, size_t* start) {
  size_t b = end - 1;
  while (b > 0 && end - b < 4 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  size_t n;
  uint32_t cp = utf8::decode_at(s, b, &n);
  if (b + n != end) {  // not a whole character: the last byte alone (invalid UTF-8)
    b = end - 1;
    cp = 0xFFFD;
  }
  *start = b;
  return cp;
}

}  // namespace

void AddedTokenMatcher::add(const std::string& pattern, const AddedToken& token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char b : pattern) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      const int32_t child = static_cast<int32_t>(terminal_.size());
      terminal_.push_back(-1);
      it = edges_.emplace(key, child).first;
    }
    node = it->second;
  }
  terminal_[node] = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
}

std::vector<AddedTokenMatcher::Span> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Span> out;
  if (text.empty()) return out;
  // Leftmost-longest, non-overlapping matches: (begin, end, token index).
  struct Match {
    size_t begin, end;
    int32_t tok;
  };
  std::vector<Match> matches;
  if (!tokens_.empty()) {
    for (size_t i = 0; i < text.size();) {
      int32_t node = 0, best = -1;
      size_t best_end = i;
      for (size_t j = i; j < text.size(); ++j) {
        auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[j]));
        if (it == edges_.end()) break;
        node = it->second;
        if (terminal_[node] >= 0) {
          best = terminal_[node];
          best_end = j + 1;
        }
      }
      if (best < 0) {
        ++i;
        continue;
      }
      matches.push_back({i, best_end, best});
      i = best_end;
    }
  }
  // The flags, as AddedVocabulary::find_matches applies them. A match that an earlier rstrip
  // already covered keeps its token but not the covered text (tokenizers would repeat that text).
  size_t offset = 0;
  for (const Match& m : matches) {
    const AddedToken& t = tokens_[m.tok];
    size_t begin = m.begin, end = m.end;
    if (t.single_word) {
      size_t b;
      const bool word_before = begin > 0 && is_word(last_char(text, begin, &b));
      size_t n;
      const bool word_after = end < text.size() && is_word(utf8::decode_at(text, end, &n));
      if (word_before || word_after) continue;
    }
    if (t.lstrip) {
      size_t b = begin;
      while (b > offset) {
        size_t start;
        if (!is_space(last_char(text, b, &start))) break;
        b = start;
      }
      begin = b;
    }
    if (t.rstrip) {
      while (end < text.size()) {
        size_t n;
        if (!is_space(utf8::decode_at(text, end, &n))) break;
        end += n;
      }
    }
    begin = std::max(begin, offset);
    end = std::max(end, begin);
    if (offset < begin) out.push_back({offset, begin, -1});
    out.push_back({begin, end, t.id});
    offset = end;
  }
  if (offset < text.size()) out.push_back({offset, text.size(), -1});
  return out;
}

}  // namespace saelab::hf
