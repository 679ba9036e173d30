// tokenizer.json pre-tokenizers: Sequence, ByteLevel, Metaspace, Digits, Split. Split takes a
// String pattern with any behavior, or one of the regexes below, which real tokenizer.json files
// carry verbatim and pretokenize.cpp implements as hand-written scanners (std::regex has no \p{L}).
// Any other regex is refused: approximating one would silently change the ids.
#include <array>

#include "byte_level.hpp"
#include "hf_pipeline.hpp"
#include "pretokenize.hpp"
#include "saelab/error.hpp"
#include "utf8.hpp"

namespace saelab::hf {
namespace {

struct KnownRegex {
  const char* name;
  const char* pattern;
  pretokenize::PreTokenizer scanner;
};
// The patterns exactly as the files hold them (after JSON unescaping).
constexpr std::array kKnownRegexes{
    KnownRegex{"Llama 3", R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
               pretokenize::PreTokenizer::Llama3},
    KnownRegex{"Qwen2", R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
               pretokenize::PreTokenizer::Qwen2},
    KnownRegex{"GPT-2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
               pretokenize::PreTokenizer::Gpt2},
};

std::string supported_regexes() {
  std::string s;
  for (const auto& r : kKnownRegexes) s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", r.name, r.pattern);
  return s;
}

SplitBehavior parse_behavior(const json& p, const std::string& file) {
  static const std::array<std::pair<const char*, SplitBehavior>, 5> kNames{{
      {"Removed", SplitBehavior::Removed},
      {"Isolated", SplitBehavior::Isolated},
      {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
      {"MergedWithNext", SplitBehavior::MergedWithNext},
      {"Contiguous", SplitBehavior::Contiguous},
  }};
  const json& b = p.contains("behavior") ? p["behavior"] : json();
  if (b.is_string())
    for (const auto& [name, v] : kNames)
      if (b.get<std::string>() == name) return v;
  fail("'{}': Split pre_tokenizer has behavior {}, expected one of Removed, Isolated, MergedWithPrevious, "
       "MergedWithNext, Contiguous",
       file, b.is_null() ? "<missing>" : b.dump());
}

// A Split pre-tokenizer (tokenizers' pre_tokenizers/split.rs).
PreTokenizer make_split(const json& p, const std::string& file) {
  const SplitBehavior behavior = parse_behavior(p, file);
  if (!p.contains("invert") || !p["invert"].is_boolean())
    fail("'{}': Split pre_tokenizer needs \"invert\": true or false, found {}", file,
         p.contains("invert") ? p["invert"].dump() : "<missing>");
  const bool invert = p["invert"].get<bool>();
  const json& pat = p.contains("pattern") ? p["pattern"] : json();
  if (pat.is_object() && pat.contains("Regex")) {
    const std::string re = pat["Regex"].is_string() ? pat["Regex"].get<std::string>() : pat["Regex"].dump();
    for (const auto& k : kKnownRegexes) {
      if (re != k.pattern) continue;
      // These regexes match every character (their last alternatives take any other symbol and any
      // whitespace), so the text between matches is always empty and only Isolated keeps the pieces
      // as the regex cuts them; no file pairs them with anything else.
      if (behavior != SplitBehavior::Isolated || invert)
        fail("'{}': Split pre_tokenizer with the {} regex is supported with behavior Isolated and invert false only",
             file, k.name);
      const pretokenize::PreTokenizer scanner = k.scanner;
      return [scanner](const Piece& in, std::vector<Piece>& out) {
        bool first = true;
        for (std::string_view s : pretokenize::split(in.text, scanner)) {
          out.push_back({std::string(s), in.at_start && first});
          first = false;
        }
      };
    }
    fail("'{}': Split pre_tokenizer regex {} is not supported. Supported regexes (matched exactly): {}; or a "
         "{{\"String\": ...}} pattern",
         file, json(re).dump(), supported_regexes());
  }
  const std::string s = string_pattern(pat, file, "the Split pre_tokenizer");
  return [s, behavior, invert](const Piece& in, std::vector<Piece>& out) {
    std::vector<Span> spans = find_string(in.text, s);
    if (invert)
      for (auto& sp : spans) sp.is_match = !sp.is_match;
    split_pieces(in, std::move(spans), behavior, out);
  };
}

}  // namespace

// The replacement of a Metaspace pre-tokenizer or decoder: one character (a Rust char in tokenizers).
std::string metaspace_replacement(const json& p, const std::string& file, const char* what) {
  const std::string rep = p.value("replacement", "\xE2\x96\x81");
  if (rep.empty() || utf8::char_len(rep, 0) != rep.size())
    fail("'{}': {} replacement {} must be exactly one character", file, what, json(rep).dump());
  return rep;
}

std::vector<Span> find_string(std::string_view text, std::string_view pattern) {
  SAELAB_ASSERT(!pattern.empty(), "an empty pattern matches everywhere");
  std::vector<Span> out;
  size_t prev = 0;
  for (size_t pos = text.find(pattern); pos != std::string_view::npos; pos = text.find(pattern, pos)) {
    if (prev < pos) out.push_back({prev, pos, false});
    out.push_back({pos, pos + pattern.size(), true});
    pos += pattern.size();
    prev = pos;
  }
  if (prev < text.size()) out.push_back({prev, text.size(), false});
  return out;
}

void split_pieces(const Piece& in, std::vector<Span> spans, SplitBehavior behavior, std::vector<Piece>& out) {
  // (span, removed), as NormalizedString::split computes them.
  std::vector<std::pair<Span, bool>> parts;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : spans) parts.push_back({s, false});
      break;
    case SplitBehavior::Removed:
      for (const auto& s : spans) parts.push_back({s, s.is_match});
      break;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const auto& s : spans) {
        if (s.is_match == prev && !parts.empty()) parts.back().first.end = s.end;
        else parts.push_back({s, false});
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const auto& s : spans) {
        if (s.is_match && !prev && !parts.empty()) parts.back().first.end = s.end;
        else parts.push_back({s, false});
        prev = s.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !prev && !parts.empty()) parts.back().first.begin = it->begin;
        else parts.push_back({*it, false});
        prev = it->is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& [s, removed] = parts[i];
    if (removed || s.end == s.begin) continue;
    out.push_back({in.text.substr(s.begin, s.end - s.begin), in.at_start && i == 0 && s.begin == 0});
  }
}

void parse_pre_tokenizer(const json& p, const std::string& file, std::vector<PreTokenizer>& out) {
  if (p.is_null()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& c : p.at("pretokenizers")) parse_pre_tokenizer(c, file, out);
  } else if (type == "ByteLevel") {
    const bool prefix = p.value("add_prefix_space", false);
    const bool regex = p.value("use_regex", true);
    out.push_back([prefix, regex](const Piece& in, std::vector<Piece>& o) {
      const std::string s = prefix && in.text[0] != ' ' ? " " + in.text : in.text;
      bool first = true;
      auto emit = [&](std::string_view part) {
        o.push_back({byte_level::encode_bytes(part), in.at_start && first});
        first = false;
      };
      if (!regex) emit(s);
      else
        for (std::string_view part : pretokenize::split(s, pretokenize::PreTokenizer::Gpt2)) emit(part);
    });
  } else if (type == "Metaspace") {
    const std::string rep = metaspace_replacement(p, file, "the Metaspace pre_tokenizer");
    // prepend_scheme, or the older add_prefix_space (false: "never"), as tokenizers reads them.
    std::string scheme = p.value("prepend_scheme", "always");
    if (p.contains("add_prefix_space") && p["add_prefix_space"].is_boolean() && !p["add_prefix_space"].get<bool>())
      scheme = "never";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail("'{}': Metaspace prepend_scheme '{}' is not one of always, first, never", file, scheme);
    const bool split = p.value("split", true);
    out.push_back([rep, scheme, split](const Piece& in, std::vector<Piece>& o) {
      Piece p{replace_all(in.text, " ", rep), in.at_start};
      if (p.text.rfind(rep, 0) != 0 && (scheme == "always" || (scheme == "first" && in.at_start))) p.text = rep + p.text;
      if (!split) o.push_back(std::move(p));
      else split_pieces(p, find_string(p.text, rep), SplitBehavior::MergedWithNext, o);
    });
  } else if (type == "Digits") {
    const bool individual = p.value("individual_digits", false);
    out.push_back([individual](const Piece& in, std::vector<Piece>& o) {
      // Each numeric character (Rust's char::is_numeric: \p{N}, so also "²" and "３") is a match
      // of its own, with the runs of other characters between.
      std::vector<Span> spans;
      size_t prev = 0;
      for (size_t i = 0; i < in.text.size();) {
        size_t n;
        const uint32_t cp = utf8::decode_at(in.text, i, &n);
        if (pretokenize::unicode_class(cp) == pretokenize::UnicodeClass::Number) {
          if (prev < i) spans.push_back({prev, i, false});
          spans.push_back({i, i + n, true});
          prev = i + n;
        }
        i += n;
      }
      if (prev < in.text.size()) spans.push_back({prev, in.text.size(), false});
      split_pieces(in, std::move(spans), individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous, o);
    });
  } else if (type == "Split") {
    out.push_back(make_split(p, file));
  } else {
    fail("'{}': pre_tokenizer type '{}' is not supported (supported: Sequence, ByteLevel, Metaspace, Digits, Split)",
         file, type.empty() ? p.dump() : type);
  }
}

}  // namespace saelab::hf
