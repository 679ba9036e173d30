#include "saelab/atomic_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>
#include <fstream>
#include <sstream>

#include "saelab/error.hpp"

namespace saelab {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail("cannot create '{}': {}", tmp_, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  SAELAB_ASSERT(f_ && !committed_, "write after commit");
  if (bytes && std::fwrite(data, 1, bytes, f_) != bytes) fail("writing '{}' failed: {}", tmp_, std::strerror(errno));
}

void AtomicFile::commit() {
  SAELAB_ASSERT(f_ && !committed_, "double commit");
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) fail("flushing '{}' failed: {}", tmp_, std::strerror(errno));
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("renaming '{}' to '{}' failed: {}", tmp_, path_, std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int remove_stale_temps(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> stale;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string n = it->path().filename().string();
    const bool temp_file = n.find(".tmp-") != std::string::npos;
    const bool temp_dir = it->is_directory() && (n.ends_with(".tmp") || n.ends_with(".tmp.old"));
    if (temp_file || temp_dir) {
      stale.push_back(it->path());
      if (temp_dir) it.disable_recursion_pending();
    }
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
  return static_cast<int>(stale.size());
}

}  // namespace saelab
