// Two error tiers (docs/style.md):
//  - SAELAB_ASSERT: an internal invariant; violation is a bug, so abort with file:line.
//  - saelab::Error: a user or file error; thrown at the boundary with a message that names
//    the file, what was expected and what was found. The CLI prints it as one line.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace saelab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace saelab

#define SAELAB_ASSERT(cond, ...)                                                                   \
  do {                                                                                             \
    if (!(cond)) ::saelab::assert_fail(#cond, __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__)); \
  } while (0)
