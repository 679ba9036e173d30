#include "saelab/safetensors.hpp"


#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "saelab/atomic_file.hpp"
#include "util/json_number.hpp"
#include "util/mapped_file.hpp"

namespace saelab {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit

int64_t dtype_bytes(const std::string& s) {
  if (s == "F64" || s == "I64" || s == "U64") return 8;
  if (s == "F32" || s == "I32" || s == "U32") return 4;
  if (s == "F16" || s == "BF16" || s == "I16" || s == "U16") return 2;
  if (s == "I8" || s == "U8" || s == "BOOL" || s == "F8_E4M3" || s == "F8_E5M2") return 1;
  return -1;
}

}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
  }
  SAELAB_ASSERT(false, "bad dtype");
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  FileMapping m = map_file(path, "safetensors file");
  map_ = m.data;
  map_size_ = m.size;
  parse_or_unmap(m, [&] {
    if (map_size_ < 8)
      fail("'{}' is not a safetensors file: {} bytes, expected at least an 8-byte header length", path, map_size_);
    parse_header();
  });
}

void SafetensorsFile::parse_header() {
  const std::string& path = path_;
  const auto* bytes = static_cast<const unsigned char*>(map_);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes || header_len > map_size_ - 8)
    fail("'{}' is truncated or corrupt: header length {} but file has {} bytes", path, header_len, map_size_);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes + 8),
                                   reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const std::exception& e) {
    fail("'{}' has a corrupt safetensors header (invalid JSON: {})", path, e.what());
  }
  if (!header.is_object()) fail("'{}': safetensors header is not a JSON object", path);
  data_ = reinterpret_cast<const char*>(bytes + 8 + header_len);
  const size_t data_size = map_size_ - 8 - header_len;
  std::vector<std::pair<size_t, size_t>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail("'{}': __metadata__ is not an object", path);
      for (auto m = it.value().begin(); m != it.value().end(); ++m)
        metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
      continue;
    }
    const auto& v = it.value();
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      fail("'{}': tensor '{}' lacks dtype/shape/data_offsets[2] in the header", path, it.key());
    SafetensorsEntry e;
    e.name = it.key();
    e.dtype_str = v["dtype"].get<std::string>();
    const int64_t eb = dtype_bytes(e.dtype_str);
    if (eb < 0) fail("'{}': tensor '{}' has unknown dtype '{}'", path, e.name, e.dtype_str);
    // Sizes multiply with overflow checks: a shape like [2^62, 4] must not wrap into the span the
    // offsets give.
    uint64_t bytes = static_cast<uint64_t>(eb);
    bool overflow = false;
    for (const auto& s : v["shape"]) {
      const auto dim = s.is_number_unsigned() ? json_integer<int64_t>(s) : std::nullopt;
      if (!dim) fail("'{}': tensor '{}' has a bad shape {}", path, e.name, v["shape"].dump());
      e.shape.push_back(*dim);
      overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(*dim), &bytes);
    }
    if (!v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
      fail("'{}': tensor '{}' has bad data_offsets {}", path, e.name, v["data_offsets"].dump());
    e.begin = v["data_offsets"][0].get<size_t>();
    e.end = v["data_offsets"][1].get<size_t>();
    if (e.begin > e.end || e.end > data_size)
      fail("'{}' is truncated or corrupt: tensor '{}' spans bytes [{}, {}) but the data section has {} bytes", path,
           e.name, e.begin, e.end, data_size);
    if (overflow || bytes != e.end - e.begin)
      fail("'{}': tensor '{}' of shape {} and dtype {} needs {} bytes, header says {}", path, e.name,
           v["shape"].dump(), e.dtype_str, overflow ? std::string("more than 2^64") : std::to_string(bytes),
           e.end - e.begin);
    spans.emplace_back(e.begin, e.end);
    entries_.emplace(e.name, std::move(e));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) fail("'{}' is corrupt: tensors overlap in the data section", path);
}

SafetensorsFile::~SafetensorsFile() {
  FileMapping m{map_, map_size_};
  unmap_file(m);
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("'{}' has no tensor named '{}'", path_, name);
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries_) out.push_back(k);
  return out;
}

const void* SafetensorsFile::raw(const std::string& name) const { return data_ + entry(name).begin; }

std::vector<float> SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& expect) const {
  const auto& e = entry(name);
  if (!expect.empty() && expect != e.shape) {
    std::string want, have;
    for (auto s : expect) want += (want.empty() ? "" : ", ") + std::to_string(s);
    for (auto s : e.shape) have += (have.empty() ? "" : ", ") + std::to_string(s);
    fail("'{}': tensor '{}' has shape [{}], expected [{}]", path_, name, have, want);
  }
  DType dt;
  if (e.dtype_str == "F32") dt = DType::F32;
  else if (e.dtype_str == "F16") dt = DType::F16;
  else if (e.dtype_str == "BF16") dt = DType::BF16;
  else fail("'{}': tensor '{}' has dtype {}, expected F32, F16 or BF16", path_, name, e.dtype_str);
  std::vector<float> out(static_cast<size_t>(e.numel()));
  convert_to_f32(out.data(), data_ + e.begin, dt, out.size());  // data may be unaligned: convert copies
  return out;
}

std::vector<int32_t> SafetensorsFile::read_i32(const std::string& name) const {
  const auto& e = entry(name);
  if (e.dtype_str != "I32") fail("'{}': tensor '{}' has dtype {}, expected I32", path_, name, e.dtype_str);
  std::vector<int32_t> out(static_cast<size_t>(e.numel()));
  if (!out.empty()) std::memcpy(out.data(), data_ + e.begin, out.size() * 4);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (auto s : t.shape) n *= s;
    const size_t bytes = static_cast<size_t>(n) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // align the data section to 8 bytes
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((uint64_t)h.size() >> (8 * i));
  AtomicFile f(path);
  f.write(len, 8);
  f.write(h);
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (auto s : t.shape) n *= s;
    f.write(t.data, static_cast<size_t>(n) * dtype_size(t.dtype));
  }
  f.commit();
}

}  // namespace saelab
