// Minimal UTF-8 helpers for the tokenizers. Invalid bytes decode as U+FFFD, one byte at a time.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace saelab::utf8 {

// Length in bytes of the sequence starting at s[i] (1 for an invalid lead byte).
size_t char_len(std::string_view s, size_t i);
uint32_t decode_at(std::string_view s, size_t i, size_t* len);
void append(std::string& out, uint32_t cp);
std::vector<std::string> split_chars(std::string_view s);  // one UTF-8 character per element
bool valid(std::string_view s);
// s with each maximal invalid subsequence replaced by one U+FFFD (Unicode's "substitution of
// maximal subparts", as Rust's String::from_utf8_lossy and Python's errors="replace" do).
std::string lossy(std::string_view s);

}  // namespace saelab::utf8
