#include "util/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "saelab/error.hpp"

namespace saelab {

FileMapping map_file(const std::string& path, const char* kind) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open {} '{}': {}", kind, path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'{}' is not a regular file, expected a {}", path, kind);
  }
  FileMapping m;
  m.size = static_cast<size_t>(st.st_size);
  if (m.size == 0) {
    ::close(fd);
    fail("'{}' is empty, so it is not a {}", path, kind);
  }
  m.data = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m.data == MAP_FAILED) fail("cannot map '{}': {}", path, std::strerror(errno));
  return m;
}

void unmap_file(FileMapping& m) {
  if (m.data) ::munmap(m.data, m.size);
  m = FileMapping{};
}

}  // namespace saelab
