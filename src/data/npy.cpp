#include "saelab/npy.hpp"

#include <cstdint>
#include <string_view>

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
  // The header is a Python dict literal. Parsed by hand: std::regex recurses once per character,
  // so a long header (the format allows 4 GiB; 1 MB was enough) overflowed the stack.
  const std::string_view header(buf.data() + hstart, hlen);
  auto value_after = [&](std::string_view key) -> size_t {
    const size_t k = header.find(key);
    if (k == std::string_view::npos) return k;
    size_t v = k + key.size();
    while (v < header.size() && (header[v] == ' ' || header[v] == '\t')) ++v;
    return v;
  };
  NpyArray a;
  const size_t dpos = value_after("'descr':");
  if (dpos == std::string_view::npos || dpos >= header.size() || header[dpos] != '\'')
    fail("'{}': header has no 'descr': {}", path, header);
  const size_t dend = header.find('\'', dpos + 1);
  if (dend == std::string_view::npos) fail("'{}': header has an unterminated 'descr': {}", path, header);
  const std::string d(header.substr(dpos + 1, dend - dpos - 1));
  if (d == "<f4") a.dtype = DType::F32;
  else if (d == "<f2") a.dtype = DType::F16;
  else if (d == "<i4") a.dtype = DType::I32;
  else fail("'{}': dtype '{}' is not supported (expected <f4, <f2 or <i4)", path, d);
  if (header.find("'fortran_order': False") == std::string_view::npos)
    fail("'{}': Fortran-order arrays are not supported", path);
  const size_t spos = value_after("'shape':");
  if (spos == std::string_view::npos || spos >= header.size() || header[spos] != '(')
    fail("'{}': header has no shape", path);
  const size_t send = header.find(')', spos);
  if (send == std::string_view::npos) fail("'{}': header has an unterminated shape", path);
  const std::string_view shape = header.substr(spos + 1, send - spos - 1);
  // Elements of the data, checked against the file size as they multiply so nothing overflows.
  const uint64_t have = buf.size() - hstart - hlen;
  const uint64_t max_elems = have / dtype_size(a.dtype);
  uint64_t n = 1;
  bool too_big = false;
  for (size_t i = 0; i < shape.size();) {
    while (i < shape.size() && (shape[i] == ' ' || shape[i] == ',')) ++i;
    if (i == shape.size()) break;
    uint64_t dim = 0;
    size_t digits = 0;
    for (; i < shape.size() && shape[i] >= '0' && shape[i] <= '9' && digits < 19; ++i, ++digits)
      dim = dim * 10 + static_cast<uint64_t>(shape[i] - '0');
    if (i < shape.size() && shape[i] == 'L') ++i;  // Python 2's long literals
    if (digits == 0 || dim > static_cast<uint64_t>(INT64_MAX) || (i < shape.size() && shape[i] != ' ' && shape[i] != ','))
      fail("'{}': shape ({}) is not a tuple of non-negative integers", path, shape);
    a.shape.push_back(static_cast<int64_t>(dim));
    if (dim != 0 && n > max_elems / dim) too_big = true;
    n *= dim;
  }
  const auto dims = [&] {
    std::string out;
    for (int64_t x : a.shape) out += (out.empty() ? "" : ", ") + std::to_string(x);
    return out;
  };
  const size_t want = static_cast<size_t>(n) * dtype_size(a.dtype);
  if (too_big || have != want) {
    if (too_big) fail("'{}' is truncated or corrupt: shape ({}) needs more data than the file's {} bytes", path, dims(), have);
    fail("'{}' is truncated or corrupt: shape ({}) needs {} data bytes, file has {}", path, dims(), want, have);
  }
  a.bytes.assign(buf.begin() + static_cast<long>(hstart + hlen), buf.end());
  return a;
}

}  // namespace saelab
