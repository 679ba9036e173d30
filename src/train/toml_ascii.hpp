// TOML text made pure ASCII before toml++ parses it. toml++ 3.3 (Debian 12's) classifies some
// non-ASCII code points (U+00A1..U+0499, U+2C5E..U+3057, U+FB26..U+FEFE) by reaching
// __builtin_unreachable, i.e. undefined behaviour, wherever it tests them for whitespace: a bare
// key such as `α = 0.5`, a malformed value, the line after a line-ending backslash in a multi-line
// string (upstream issues marzer/tomlplusplus#190 and #295; found here by fuzzing). Escaped, they
// never reach that test.
#pragma once
#include <string>

namespace saelab {

// Returns `text` with non-ASCII characters in basic strings written as \uXXXX / \UXXXXXXXX escapes,
// literal strings holding any rewritten as basic strings, and non-ASCII in comments replaced by '?'
// (same values, same line numbers). Throws Error naming `path` and the line for non-ASCII outside
// strings and comments (TOML allows none there), invalid UTF-8, or a non-ASCII escape.
std::string toml_ascii(const std::string& text, const std::string& path);

}  // namespace saelab
