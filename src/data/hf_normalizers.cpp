// tokenizer.json normalizers: Sequence, Prepend, Replace (string patterns), NFC. Each applies to
// a whole segment of the input between added tokens (AddedVocabulary::extract_and_normalize).
#include "hf_pipeline.hpp"
#include "saelab/error.hpp"
#include "unicode_nfc.hpp"

namespace saelab::hf {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  SAELAB_ASSERT(!from.empty(), "replace_all with an empty pattern never advances");
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

std::string string_pattern(const json& p, const std::string& file, const char* where) {
  if (p.is_object() && p.contains("String") && p["String"].is_string()) {
    std::string s = p["String"].get<std::string>();
    // An empty pattern matches between every two characters; no model uses one.
    if (s.empty()) fail("'{}': {} has an empty String pattern", file, where);
    return s;
  }
  fail("'{}': {} has pattern {}; only {{\"String\": ...}} patterns are supported here", file, where, p.dump());
}

void parse_normalizer(const json& n, const std::string& file, std::vector<Normalizer>& out) {
  if (n.is_null()) return;
  const std::string type = n.value("type", "");
  if (type == "Sequence") {
    for (const auto& c : n.at("normalizers")) parse_normalizer(c, file, out);
  } else if (type == "Prepend") {
    const std::string pre = n.at("prepend").get<std::string>();
    out.push_back([pre](const std::string& s) { return s.empty() ? s : pre + s; });
  } else if (type == "Replace") {
    const std::string from = string_pattern(n.at("pattern"), file, "the Replace normalizer");
    const std::string to = n.at("content").get<std::string>();
    out.push_back([from, to](const std::string& s) { return replace_all(s, from, to); });
  } else if (type == "NFC") {
    out.push_back([](const std::string& s) { return unicode_nfc::nfc(s); });
  } else {
    fail("'{}': normalizer type '{}' is not supported (supported: Sequence, Prepend, Replace, NFC)", file,
         type.empty() ? n.dump() : type);
  }
}

}  // namespace saelab::hf
