// The first-letter task's vocabulary and prompts (SAEBench vocab.py and prompting.py).
#include <algorithm>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"

namespace saelab {

namespace {

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// vocab.get_alpha_tokens' filter: optional single leading space, then one or more ASCII letters.
bool alpha_word(const std::string& w) {
  const size_t start = !w.empty() && w[0] == ' ' ? 1 : 0;
  if (w.size() == start) return false;
  return std::all_of(w.begin() + static_cast<std::ptrdiff_t>(start), w.end(), ascii_letter);
}

// The word without its leading spaces (prompting.first_letter strips them).
std::string_view stripped(const std::string& w) {
  std::string_view s(w);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

}  // namespace

std::vector<std::string> alpha_vocab(const Tokenizer& tok) {
  static const std::string kSpMarker = "\xE2\x96\x81";  // "▁", SentencePiece's space
  std::vector<std::string> out;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    std::string w = tok.decode({id});
    // vocab.convert_tokens_to_string: a decoder that strips the leading space (Llama 2, Mistral)
    // loses the space a leading "▁" stands for; SAEBench puts it back.
    const std::string piece = tok.piece(id);
    if (piece.compare(0, kSpMarker.size(), kSpMarker) == 0 && (w.empty() || w[0] != ' ')) w = " " + w;
    if (alpha_word(w)) out.push_back(std::move(w));
  }
  return out;
}

int first_letter_index(const std::string& word) {
  const std::string_view s = stripped(word);
  SAELAB_ASSERT(!s.empty() && ascii_letter(s[0]), "first_letter_index: '{}' is not an alphabetic word", word);
  const char c = s[0];
  return c >= 'a' ? c - 'a' : c - 'A';
}

std::string first_letter_answer(const std::string& word) {
  return std::string(" ") + static_cast<char>('A' + first_letter_index(word));
}

namespace {

std::string fill_template(const std::string& tmpl, const std::string& word) {
  static const std::string kSlot = "{word}";
  const size_t at = tmpl.find(kSlot);
  SAELAB_ASSERT(at != std::string::npos, "prompt template without {{word}}");
  return tmpl.substr(0, at) + word + tmpl.substr(at + kSlot.size());
}

}  // namespace

std::string icl_prompt(const std::string& word, const std::vector<std::string>& examples, const std::string& tmpl) {
  // create_icl_prompt(..., prepend_separator_to_first_example=True) with separator "\n".
  std::string base = "\n";
  for (const std::string& ex : examples) base += fill_template(tmpl, ex) + first_letter_answer(ex) + "\n";
  return base + fill_template(tmpl, word);
}

std::vector<std::string> sample_icl_examples(const std::string& word, const std::vector<std::string>& pool, int count,
                                             std::mt19937_64& rng) {
  if (count > static_cast<int>(pool.size()))
    fail("absorption: {} in-context examples asked for from a pool of {} words", count, pool.size());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // `count` distinct indices, uniform without replacement (count is small next to the pool).
    std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
    std::vector<size_t> idx;
    while (static_cast<int>(idx.size()) < count) {
      const size_t i = pick(rng);
      if (std::find(idx.begin(), idx.end(), i) == idx.end()) idx.push_back(i);
    }
    std::vector<std::string> ex;
    bool contaminated = false;
    for (size_t i : idx) {
      ex.push_back(pool[i]);
      contaminated |= pool[i] == word;
    }
    if (!contaminated) return ex;
  }
  fail("absorption: no set of {} in-context examples without '{}' in 1000 attempts (pool of {} words)", count, word,
       pool.size());
}

}  // namespace saelab
