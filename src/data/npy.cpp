#include "saelab/npy.hpp"

#include <regex>

#include "saelab/atomic_file.hpp"

namespace saelab {

namespace {
const char* descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F16: return "<f2";
    case DType::I32: return "<i4";
    case DType::BF16: break;
  }
  fail("npy has no bf16 type; use f32 or f16");
}
}  // namespace

void write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data) {
  std::string sh = "(";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    sh += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) sh += " ";
    n *= shape[i];
  }
  sh += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr(dtype), sh);
  const size_t unpadded = 10 + header.size() + 1;  // magic(6) version(2) len(2) header '\n'
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string pre("\x93NUMPY\x01\x00", 8);
  pre.push_back(static_cast<char>(header.size() & 0xff));
  pre.push_back(static_cast<char>(header.size() >> 8));
  AtomicFile f(path);
  f.write(pre);
  f.write(header);
  f.write(data, static_cast<size_t>(n) * dtype_size(dtype));
  f.commit();
}

NpyArray read_npy(const std::string& path) {
  const std::string buf = read_file(path);
  if (buf.size() < 10 || buf.compare(0, 6, "\x93NUMPY") != 0) fail("'{}' is not a .npy file (bad magic)", path);
  const int major = static_cast<unsigned char>(buf[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<unsigned char>(buf[8]) | (static_cast<unsigned char>(buf[9]) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (buf.size() < 12) fail("'{}' is truncated", path);
    hlen = 0;
    for (int i = 3; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(buf[8 + i]);
    hstart = 12;
  } else {
    fail("'{}': unsupported .npy version {}", path, major);
  }
  if (hstart + hlen > buf.size()) fail("'{}' is truncated inside its header", path);
  const std::string header = buf.substr(hstart, hlen);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<|>]?[a-z]\\d+)'")))
    fail("'{}': header has no descr: {}", path, header);
  NpyArray a;
  const std::string d = m[1];
  if (d == "<f4") a.dtype = DType::F32;
  else if (d == "<f2") a.dtype = DType::F16;
  else if (d == "<i4") a.dtype = DType::I32;
  else fail("'{}': dtype '{}' is not supported (expected <f4, <f2 or <i4)", path, d);
  if (header.find("'fortran_order': False") == std::string::npos) fail("'{}': Fortran-order arrays are not supported", path);
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) fail("'{}': header has no shape", path);
  const std::string shape = m[1];
  int64_t n = 1;
  const std::regex digits("\\d+");
  for (std::sregex_iterator it(shape.begin(), shape.end(), digits), end; it != end; ++it) {
    a.shape.push_back(std::stoll(it->str()));
    n *= a.shape.back();
  }
  const size_t want = static_cast<size_t>(n) * dtype_size(a.dtype);
  const size_t have = buf.size() - hstart - hlen;
  if (have != want) fail("'{}' is truncated or corrupt: shape ({}) needs {} data bytes, file has {}", path, shape, want, have);
  a.bytes.assign(buf.begin() + static_cast<long>(hstart + hlen), buf.end());
  return a;
}

}  // namespace saelab
