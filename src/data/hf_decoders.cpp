// tokenizer.json decoders: Sequence, Replace (string patterns), ByteFallback, Fuse, Strip,
// ByteLevel, Metaspace; each maps the list of token strings as its tokenizers decode_chain does.
#include <cctype>

#include "byte_level.hpp"
#include "hf_pipeline.hpp"
#include "saelab/error.hpp"
#include "util/json_number.hpp"
#include "utf8.hpp"

namespace saelab::hf {

void parse_decoder(const json& d, const std::string& file, std::vector<Decoder>& out) {
  if (d.is_null()) return;
  const std::string type = d.value("type", "");
  using Toks = std::vector<std::string>;
  if (type == "Sequence") {
    for (const auto& c : d.at("decoders")) parse_decoder(c, file, out);
  } else if (type == "Replace") {
    const std::string from = string_pattern(d.at("pattern"), file, "the Replace decoder");
    const std::string to = d.at("content").get<std::string>();
    out.push_back([from, to](Toks& t) {
      for (auto& s : t) s = replace_all(s, from, to);
    });
  } else if (type == "ByteFallback") {
    // Runs of <0xNN> tokens become their bytes when those form valid UTF-8, else one U+FFFD per byte.
    out.push_back([](Toks& t) {
      Toks res;
      std::string bytes;
      size_t n_bytes = 0;
      auto flush = [&] {
        if (n_bytes == 0) return;
        if (utf8::valid(bytes)) res.push_back(bytes);
        else
          for (size_t i = 0; i < n_bytes; ++i) res.push_back("\xEF\xBF\xBD");
        bytes.clear();
        n_bytes = 0;
      };
      for (auto& s : t) {
        if (s.size() == 6 && s.rfind("<0x", 0) == 0 && s[5] == '>' && std::isxdigit(static_cast<unsigned char>(s[3])) &&
            std::isxdigit(static_cast<unsigned char>(s[4]))) {
          bytes.push_back(static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
          ++n_bytes;
        } else {
          flush();
          res.push_back(s);
        }
      }
      flush();
      t.swap(res);
    });
  } else if (type == "Fuse") {
    out.push_back([](Toks& t) {
      std::string all;
      for (auto& s : t) all += s;
      t = {all};
    });
  } else if (type == "Strip") {
    const std::string c = d.at("content").get<std::string>();
    const int start = json_int<int>(d.value("start", json(0)), fmt::format("'{}': Strip decoder 'start'", file));
    const int stop = json_int<int>(d.value("stop", json(0)), fmt::format("'{}': Strip decoder 'stop'", file));
    // Stripping "" would loop `start` times without changing anything.
    if (c.empty()) fail("'{}': Strip decoder has empty content", file);
    out.push_back([c, start, stop](Toks& t) {
      for (auto& s : t) {
        for (int i = 0; i < start && s.rfind(c, 0) == 0; ++i) s.erase(0, c.size());
        for (int i = 0; i < stop && s.size() >= c.size() && s.compare(s.size() - c.size(), c.size(), c) == 0; ++i)
          s.erase(s.size() - c.size());
      }
    });
  } else if (type == "ByteLevel") {
    // Per token: its bytes when every character is a mapped byte, else its own text; the whole is
    // then read as UTF-8 with invalid sequences replaced (String::from_utf8_lossy).
    out.push_back([](Toks& t) {
      std::string all;
      for (auto& s : t) {
        auto bytes = byte_level::decode_token(s);
        all += bytes ? *bytes : s;
      }
      t = {utf8::lossy(all)};
    });
  } else if (type == "Metaspace") {
    const std::string rep = metaspace_replacement(d, file, "the Metaspace decoder");
    std::string scheme = d.value("prepend_scheme", "always");
    if (d.contains("add_prefix_space") && d["add_prefix_space"].is_boolean() && !d["add_prefix_space"].get<bool>())
      scheme = "never";
    const bool drop_first = scheme != "never";
    // Every replacement character becomes a space, except in the first token, where (unless the
    // scheme is "never") each one is dropped: it stood for the prefix the pre-tokenizer added.
    out.push_back([rep, drop_first](Toks& t) {
      for (size_t i = 0; i < t.size(); ++i) t[i] = replace_all(t[i], rep, i == 0 && drop_first ? "" : " ");
    });
  } else {
    fail("'{}': decoder type '{}' is not supported (supported: Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, "
         "Metaspace)",
         file, type.empty() ? d.dump() : type);
  }
}

}  // namespace saelab::hf
