// Shared by the libFuzzer targets: the loaders under test take file paths, so each input is written
// to a per-process temp file (reused across runs) and loaded from there.
// Acceptable outcomes: success or a thrown exception. saelab::Error is what a bad file should
// produce; any other std::exception is accepted too unless SAELAB_FUZZ_STRICT=1, which aborts on it
// (used to find loaders that leak a library's error instead of naming the file);
// SAELAB_FUZZ_VERBOSE=1 prints each one.
// Crashes, sanitizer reports, SAELAB_ASSERT aborts, hangs and oversized allocations are findings.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

#include "saelab/error.hpp"

namespace saelab::fuzz {

// /tmp/saelab-fuzz-<pid>/, created on first use, removed at exit.
inline const std::string& work_dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/saelab-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    std::atexit([] { std::error_code ec; std::filesystem::remove_all("/tmp/saelab-fuzz-" + std::to_string(::getpid()), ec); });
    return d;
  }();
  return dir;
}

inline std::string path_of(const std::string& name) { return work_dir() + "/" + name; }

inline void write_bytes(const std::string& path, const void* data, size_t n) {
  // Unlink first: truncating a file and rewriting it makes ext4 (auto_da_alloc) flush it to disk
  // on close, which cut the targets to ~100 runs/s.
  ::unlink(path.c_str());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (n && std::fwrite(data, 1, n, f) != n) std::abort();
  std::fclose(f);
}
inline void write_bytes(const std::string& path, std::string_view s) { write_bytes(path, s.data(), s.size()); }

// Writes the input to `name` in the work dir and returns its path.
inline std::string input_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string p = path_of(name);
  write_bytes(p, data, size);
  return p;
}

inline bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && e[0] == '1';
}
inline bool strict() {
  static const bool s = env_flag("SAELAB_FUZZ_STRICT");
  return s;
}
// SAELAB_FUZZ_VERBOSE=1 prints every error a loader throws (to check what the seeds reach).
inline bool verbose() {
  static const bool v = env_flag("SAELAB_FUZZ_VERBOSE");
  return v;
}

// Runs `f`, accepting success and thrown errors (see the top of this file).
template <typename F>
void expect_no_crash(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (verbose()) std::fprintf(stderr, "saelab::Error: %s\n", e.what());
  } catch (const std::exception& e) {
    if (verbose()) std::fprintf(stderr, "std::exception: %s\n", e.what());
    if (strict()) {
      std::fprintf(stderr, "SAELAB_FUZZ_STRICT: a loader threw a non-saelab error: %s\n", e.what());
      std::abort();
    }
  }
}

// The linear-algebra paths use OpenMP; one thread keeps runs deterministic and cheap.
inline void single_threaded() { ::setenv("OMP_NUM_THREADS", "1", 1); }

}  // namespace saelab::fuzz
