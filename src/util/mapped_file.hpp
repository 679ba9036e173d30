// A whole regular file mapped read-only: what the GGUF and safetensors readers parse in place.
#pragma once
#include <cstddef>
#include <string>
#include <utility>

namespace saelab {

struct FileMapping {
  void* data = nullptr;
  size_t size = 0;
};

// Maps `path`, or throws Error naming it: it cannot be opened (`kind`, e.g. "GGUF file", says what
// was expected), is not a regular file, or is empty.
FileMapping map_file(const std::string& path, const char* kind);
void unmap_file(FileMapping& m);  // no-op on an empty mapping

// Runs parse() on a fresh mapping; if it throws, unmaps first: a constructor that throws runs no
// destructor, and every rejected file would keep its mapping (found by fuzzing: the process ran
// out of mappings).
template <typename F>
void parse_or_unmap(FileMapping& m, F&& parse) {
  try {
    std::forward<F>(parse)();
  } catch (...) {
    unmap_file(m);
    throw;
  }
}

}  // namespace saelab
