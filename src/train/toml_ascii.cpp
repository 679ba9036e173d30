#include "train/toml_ascii.hpp"

#include "data/utf8.hpp"
#include "saelab/error.hpp"

namespace saelab {

namespace {

class AsciiWriter {
 public:
  AsciiWriter(const std::string& s, const std::string& path) : s_(s), path_(path) {}

  std::string run() {
    if (s_.compare(0, 3, "\xEF\xBB\xBF") == 0) i_ = 3;  // a UTF-8 byte-order mark
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '#') {
        comment();
      } else if (s_.compare(i_, 3, "\"\"\"") == 0) {
        basic_string(true);
      } else if (c == '"') {
        basic_string(false);
      } else if (s_.compare(i_, 3, "'''") == 0) {
        literal_string(true);
      } else if (c == '\'') {
        literal_string(false);
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        fail("'{}' is not valid TOML: line {} has a non-ASCII character outside a string or comment (keys such as "
             "`α` must be quoted; saelab's keys are ASCII)", path_, line_);
      } else {
        put(c);
      }
    }
    return std::move(out_);
  }

 private:
  void put(char c) {
    if (c == '\n') ++line_;
    out_.push_back(c);
    ++i_;
  }
  // The code point at i_ (advancing past it); fails on invalid UTF-8.
  uint32_t take_char() {
    size_t n;
    const uint32_t cp = utf8::decode_at(s_, i_, &n);
    if (cp == 0xFFFD && s_.compare(i_, 3, "\xEF\xBF\xBD") != 0)
      fail("'{}' is not valid TOML: line {} is not valid UTF-8", path_, line_);
    i_ += n;
    return cp;
  }
  void escape(uint32_t cp) {
    out_ += cp <= 0xFFFF ? fmt::format("\\u{:04X}", cp) : fmt::format("\\U{:08X}", cp);
  }
  void comment() {
    while (i_ < s_.size() && s_[i_] != '\n') {
      if (static_cast<unsigned char>(s_[i_]) < 0x80) {
        put(s_[i_]);
      } else {
        take_char();
        out_.push_back('?');
      }
    }
  }
  // Number of quote characters `q` from i_ on.
  size_t run_of(char q) const {
    size_t n = 0;
    while (i_ + n < s_.size() && s_[i_ + n] == q) ++n;
    return n;
  }
  void basic_string(bool multi) {
    out_ += multi ? "\"\"\"" : "\"";
    i_ += multi ? 3 : 1;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '\\') {
        put(c);
        if (i_ < s_.size()) {
          if (static_cast<unsigned char>(s_[i_]) >= 0x80)
            fail("'{}' is not valid TOML: line {} escapes a non-ASCII character", path_, line_);
          put(s_[i_]);
        }
      } else if (c == '"' && (!multi || run_of('"') >= 3)) {
        const size_t n = multi ? std::min<size_t>(run_of('"'), 5) : 1;  // up to two quotes end the content
        for (size_t k = 0; k < n; ++k) put('"');
        return;
      } else if (c == '\n' && !multi) {
        return;  // unterminated: toml++ reports it
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        escape(take_char());
      } else {
        put(c);
      }
    }
  }
  void literal_string(bool multi) {
    const size_t open = multi ? 3 : 1;
    size_t end = i_ + open;  // the closing delimiter
    bool ascii = true;
    for (; end < s_.size(); ++end) {
      if (multi ? s_.compare(end, 3, "'''") == 0 : (s_[end] == '\'' || s_[end] == '\n')) break;
      if (static_cast<unsigned char>(s_[end]) >= 0x80) ascii = false;
    }
    size_t close = 0;
    if (end < s_.size() && s_[end] == '\'') {
      close = 1;
      if (multi) {
        while (end + close < s_.size() && s_[end + close] == '\'' && close < 5) ++close;
        end += close - 3;  // up to two quotes before the closing ''' are content
        close = 3;
      }
    }
    if (ascii) {
      while (i_ < end + close) put(s_[i_]);
      return;
    }
    // As a basic string with the same value.
    const char* quotes = multi ? "\"\"\"" : "\"";
    out_ += quotes;
    i_ += open;
    while (i_ < end) {
      const char c = s_[i_];
      if (c == '\\' || c == '"') {
        out_.push_back('\\');
        put(c);
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        escape(take_char());
      } else {
        put(c);
      }
    }
    if (close) {
      out_ += quotes;
      i_ += close;
    }
  }

  const std::string& s_;
  const std::string& path_;
  std::string out_;
  size_t i_ = 0;
  int line_ = 1;
};

}  // namespace

std::string toml_ascii(const std::string& text, const std::string& path) { return AsciiWriter(text, path).run(); }

}  // namespace saelab
