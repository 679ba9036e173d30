// The text-transforming components of a Hugging Face tokenizer.json, each built from its JSON
// object as `tokenizers` (the Rust library) defines it: normalizers (hf_normalizers.cpp),
// pre-tokenizers (hf_pre_tokenizers.cpp) and decoders (hf_decoders.cpp). A component type, option
// or regex this build does not implement is refused with an Error naming the file, never
// approximated, so a new model family fails at load instead of tokenizing differently.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace saelab::hf {

using json = nlohmann::json;

// A piece of (normalized) text on its way to the model. at_start: it begins at offset 0 of the
// input text, which is where Metaspace's prepend_scheme "first" adds its prefix.
struct Piece {
  std::string text;
  bool at_start = false;
};

using Normalizer = std::function<std::string(const std::string&)>;
// Appends the pieces `in` splits into (none may be empty).
using PreTokenizer = std::function<void(const Piece& in, std::vector<Piece>& out)>;
// One step of the decoder chain: token strings in, token strings out.
using Decoder = std::function<void(std::vector<std::string>& tokens)>;

// Each appends the steps one tokenizer.json member describes (nothing for null). `file` is named
// in errors.
void parse_normalizer(const json& n, const std::string& file, std::vector<Normalizer>& out);
void parse_pre_tokenizer(const json& p, const std::string& file, std::vector<PreTokenizer>& out);
void parse_decoder(const json& d, const std::string& file, std::vector<Decoder>& out);

// Cutting `text` into matches of a pattern and the text between them, then grouping them as a
// `tokenizers` SplitDelimiterBehavior says (NormalizedString::split). A span is [begin, end) in bytes.
struct Span {
  size_t begin, end;
  bool is_match;
};
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
// Appends the resulting non-empty pieces of `in`; only the first span may inherit in.at_start.
void split_pieces(const Piece& in, std::vector<Span> spans, SplitBehavior behavior, std::vector<Piece>& out);
// Non-overlapping occurrences of `pattern` (not empty) in `text`, left to right, with the text between.
std::vector<Span> find_string(std::string_view text, std::string_view pattern);

// A JSON "pattern": {"String": s} gives s; {"Regex": r} is refused naming `where` (Replace and
// Split with a regex other than the pre-tokenizer regexes hf_pre_tokenizers.cpp recognises).
std::string string_pattern(const json& p, const std::string& file, const char* where);
std::string replace_all(std::string s, std::string_view from, std::string_view to);
// The replacement of a Metaspace pre-tokenizer or decoder (`what`): one character, a Rust char there.
std::string metaspace_replacement(const json& p, const std::string& file, const char* what);

}  // namespace saelab::hf
