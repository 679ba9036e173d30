// Outputs are written atomically: to `path.tmp-<pid>` first, then renamed over `path` on commit(),
// so a crash or bad input never leaves a half-written file where a good one was.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace saelab {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws Error if the temp file cannot be created
  ~AtomicFile();                          // removes the temp file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);  // throws Error on a short write (disk full, ...)
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();  // flush, fsync, rename over the target

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);  // throws Error naming the file
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
// A killed writer leaves `*.tmp-<pid>` files and `*.tmp` / `*.tmp.old` directories behind; a run
// resuming in `dir` (one writer per output directory) removes them first. Returns how many.
int remove_stale_temps(const std::string& dir);

}  // namespace saelab
