// Reading GGUF files (versions 2 and 3, little-endian). The layout, front to back:
//   header        u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   metadata      n_kv × (string key | u32 value type | value)
//   tensor infos  n_tensors × (string name | u32 n_dims | i64 ne[n_dims] | u32 ggml type | u64 offset)
//   padding       to a multiple of general.alignment (default 32)
//   data          each tensor at data start + its offset (a multiple of the alignment)
// A string is u64 length | bytes (no terminator); an array is u32 element type | u64 count | values.
// Version 1 used u32 counts and lengths; it is refused, as are big-endian files.
// Every read checks that its bytes remain before it happens, and every count is checked against the
// bytes left before anything is allocated for it, so a corrupt file fails with one Error naming the
// file and what was being read.
#include "saelab/gguf.hpp"


#include <algorithm>
#include <cstring>
#include <optional>

#include "saelab/error.hpp"
#include "util/mapped_file.hpp"

namespace saelab {
namespace {

using json = nlohmann::json;

constexpr int kMaxArrayDepth = 16;          // nested metadata arrays; real files use at most 1
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;  // empty key, value type, a one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one ne, type, offset
constexpr int64_t kParallelMinValues = 1 << 16;  // smaller tensors dequantize on one thread

// GGUF metadata value types (gguf.h: enum gguf_type).
enum ValueType : uint32_t { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64, kNumValueTypes };
constexpr const char* kValueTypeNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                           "bool", "string", "array", "u64", "i64", "f64"};
constexpr uint64_t kValueTypeBytes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};  // 0: variable

// Reads the mapped file front to back. `context` names what is being read, for error messages.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  const std::string& path() const { return path_; }
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n) const {
    if (n > remaining())
      fail("'{}' is truncated: {} runs past the end of the file (needs {} bytes at offset {}, the file has {})",
           path_, context, n, pos_, size_);
  }
  template <typename T>
  T read() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string() {
    const uint64_t n = read<uint64_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

  std::string context;

 private:
  const uint8_t* data_;
  uint64_t size_, pos_ = 0;
  const std::string& path_;
};

json read_value(Cursor& c, uint32_t type, int depth);

// u32 element type | u64 count | count values. The count is checked against the bytes left
// (each element takes at least its fixed size, 8 for a string, 12 for an array) before reserving.
json read_array(Cursor& c, int depth) {
  if (depth >= kMaxArrayDepth)
    fail("'{}': {} has arrays nested more than {} deep", c.path(), c.context, kMaxArrayDepth);
  const uint32_t elem = c.read<uint32_t>();
  if (elem >= kNumValueTypes) fail("'{}': {} is an array of unknown value type {}", c.path(), c.context, elem);
  const uint64_t count = c.read<uint64_t>();
  const uint64_t min_bytes = elem == STRING ? 8 : elem == ARRAY ? 12 : kValueTypeBytes[elem];
  if (count > c.remaining() / min_bytes)
    fail("'{}' is truncated or corrupt: {} is an array of {} {} values ({} bytes or more each) but only {} bytes "
         "remain in the file", c.path(), c.context, count, kValueTypeNames[elem], min_bytes, c.remaining());
  json arr = json::array();
  arr.get_ref<json::array_t&>().reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) arr.push_back(read_value(c, elem, depth + 1));
  return arr;
}

json read_value(Cursor& c, uint32_t type, int depth) {
  switch (type) {
    case U8: return c.read<uint8_t>();
    case I8: return c.read<int8_t>();
    case U16: return c.read<uint16_t>();
    case I16: return c.read<int16_t>();
    case U32: return c.read<uint32_t>();
    case I32: return c.read<int32_t>();
    case F32: return static_cast<double>(c.read<float>());
    case BOOL: return c.read<uint8_t>() != 0;
    case STRING: return c.read_string();
    case ARRAY: return read_array(c, depth);
    case U64: return c.read<uint64_t>();
    case I64: return c.read<int64_t>();
    case F64: return c.read<double>();
  }
  fail("'{}': {} has unknown value type {}", c.path(), c.context, type);
}

// A metadata value in a message: JSON, invalid UTF-8 replaced, cut to 60 characters.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::optional<uint64_t> as_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// u32 magic | u32 version; refuses v1 and big-endian files by name.
uint32_t read_version(Cursor& c, const uint8_t* bytes, size_t size) {
  c.context = "the header";
  if (size < 4 || std::memcmp(bytes, "GGUF", 4) != 0) {
    std::string got;
    for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) got += fmt::format("{:02x}", bytes[i]);
    fail("'{}' is not a GGUF file: it starts with bytes '{}', expected the magic 'GGUF' (47475546)", c.path(), got);
  }
  c.read<uint32_t>();
  const uint32_t version = c.read<uint32_t>();
  if (version == 2 || version == 3) return version;
  if (version == 1)
    fail("'{}' is GGUF version 1, which is not supported (expected version 2 or 3; re-convert it with a current "
         "llama.cpp)", c.path());
  const uint32_t swapped = __builtin_bswap32(version);
  if (swapped >= 1 && swapped <= 3)
    fail("'{}' is a big-endian GGUF (version field {:#010x}); only little-endian files are supported", c.path(),
         version);
  fail("'{}' has GGUF version {}, expected 2 or 3", c.path(), version);
}

// The number of values and bytes of one tensor, checked for overflow and for whole blocks per row.
void size_tensor(const std::string& path, GgufTensorInfo& t) {
  int64_t numel = 1;
  for (size_t d = 0; d < t.ne.size(); ++d) {
    if (t.ne[d] < 0) fail("'{}': tensor '{}' has size {} in dimension {}, expected >= 0", path, t.name, t.ne[d], d);
    if (__builtin_mul_overflow(numel, t.ne[d], &numel))
      fail("'{}': tensor '{}' of shape {} has more than 2^63 values", path, t.name, shape_str(t.ne));
  }
  const int64_t bs = ggml_block_size(t.type), bb = ggml_block_bytes(t.type);
  if (bs == 0) fail("'{}': tensor '{}' has {}, which is not a ggml type this build knows", path, t.name,
                    ggml_type_name(t.type));
  if (t.ne[0] % bs != 0)
    fail("'{}': tensor '{}' of type {} has rows of {} values, not a multiple of the type's block size {}", path,
         t.name, ggml_type_name(t.type), t.ne[0], bs);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel / bs), static_cast<uint64_t>(bb), &nbytes))
    fail("'{}': tensor '{}' of shape {} and type {} has more than 2^64 bytes", path, t.name, shape_str(t.ne),
         ggml_type_name(t.type));
  t.nbytes = nbytes;
}

// string name | u32 n_dims | i64 ne[n_dims] | u32 type | u64 offset (relative to the data section).
GgufTensorInfo read_tensor_info(Cursor& c, uint64_t alignment) {
  GgufTensorInfo t;
  t.name = c.read_string();
  c.context = fmt::format("the info of tensor '{}'", t.name);
  const uint32_t n_dims = c.read<uint32_t>();
  if (n_dims < 1 || n_dims > 4) fail("'{}': tensor '{}' has {} dimensions, expected 1 to 4", c.path(), t.name, n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.read<int64_t>());
  t.type = c.read<uint32_t>();
  t.offset = c.read<uint64_t>();
  size_tensor(c.path(), t);
  if (t.offset % alignment != 0)
    fail("'{}': tensor '{}' has data offset {}, not a multiple of the alignment {}", c.path(), t.name, t.offset,
         alignment);
  return t;
}

}  // namespace

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : ne) n *= s;
  return n;
}

std::vector<int64_t> GgufTensorInfo::shape() const { return {ne.rbegin(), ne.rend()}; }

GgufFile::GgufFile(const std::string& path) : path_(path) {
  FileMapping m = map_file(path, "GGUF file");
  map_ = m.data;
  map_size_ = m.size;
  parse_or_unmap(m, [&] { parse(); });
}

GgufFile::~GgufFile() {
  FileMapping m{map_, map_size_};
  unmap_file(m);
}

void GgufFile::parse() {
  const auto* bytes = static_cast<const uint8_t*>(map_);
  Cursor c(bytes, map_size_, path_);
  version_ = read_version(c, bytes, map_size_);
  const uint64_t n_tensors = c.read<uint64_t>(), n_kv = c.read<uint64_t>();
  if (n_kv > c.remaining() / kMinKvBytes || n_tensors > c.remaining() / kMinTensorInfoBytes)
    fail("'{}' is truncated or corrupt: the header declares {} metadata entries and {} tensors but only {} bytes "
         "follow", path_, n_kv, n_tensors, c.remaining());

  for (uint64_t i = 0; i < n_kv; ++i) {
    c.context = fmt::format("metadata entry {} of {}", i, n_kv);
    std::string key = c.read_string();
    c.context = fmt::format("metadata key '{}'", key);
    if (metadata_.contains(key)) fail("'{}': metadata key '{}' appears twice", path_, key);
    const uint32_t type = c.read<uint32_t>();
    if (type >= kNumValueTypes) fail("'{}': metadata key '{}' has unknown value type {}", path_, key, type);
    metadata_[key] = read_value(c, type, 0);
    keys_.push_back(std::move(key));
  }
  if (has("general.alignment")) {
    const auto a = as_u64(metadata_["general.alignment"]);
    if (!a || *a == 0 || (*a & (*a - 1)) != 0)
      fail("'{}': general.alignment is {}, expected a non-zero power of two", path_,
           brief(metadata_["general.alignment"]));
    alignment_ = *a;
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    c.context = fmt::format("tensor info {} of {}", i, n_tensors);
    GgufTensorInfo t = read_tensor_info(c, alignment_);
    if (!index_.emplace(t.name, tensors_.size()).second) fail("'{}': tensor '{}' appears twice", path_, t.name);
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the first aligned offset after the infos (no overflow: pos < 2^63
  // and the alignment is at most 2^63).
  data_offset_ = c.pos() + (alignment_ - c.pos() % alignment_) % alignment_;
  if (!tensors_.empty() && data_offset_ > map_size_)
    fail("'{}' is truncated: the tensor data would start at byte {} (aligned to {}) but the file has {} bytes",
         path_, data_offset_, alignment_, map_size_);
  const uint64_t avail = tensors_.empty() ? 0 : map_size_ - data_offset_;
  std::vector<std::pair<uint64_t, size_t>> starts;  // (absolute offset, tensor) of non-empty tensors
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensorInfo& t = tensors_[i];
    if (t.offset > avail || t.nbytes > avail - t.offset)
      fail("'{}' is truncated: tensor '{}' ({} {}, {} bytes at data offset {}) runs past the end of the file; "
           "the data section has {} bytes", path_, t.name, ggml_type_name(t.type), shape_str(t.ne), t.nbytes,
           t.offset, avail);
    t.offset += data_offset_;
    if (t.nbytes > 0) starts.emplace_back(t.offset, i);
  }
  std::sort(starts.begin(), starts.end());
  for (size_t i = 1; i < starts.size(); ++i) {
    const GgufTensorInfo &a = tensors_[starts[i - 1].second], &b = tensors_[starts[i].second];
    if (b.offset < a.offset + a.nbytes)
      fail("'{}' is corrupt: tensors '{}' and '{}' overlap in the data section", path_, a.name, b.name);
  }
}

namespace {
const json& lookup(const GgufFile& f, const std::string& key, bool ok(const json&), const char* expected) {
  if (!f.has(key)) fail("'{}' has no metadata key '{}' (expected {})", f.path(), key, expected);
  const json& v = f.metadata()[key];
  if (!ok(v)) fail("'{}': metadata key '{}' is {}, expected {}", f.path(), key, brief(v), expected);
  return v;
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  return lookup(*this, key, [](const json& v) { return v.is_string(); }, "a string").get<std::string>();
}

int64_t GgufFile::get_int(const std::string& key) const {
  const json& v = lookup(
      *this, key,
      [](const json& v) {
        return v.is_number_integer() && (!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t{INT64_MAX});
      },
      "an integer that fits in int64");
  return v.get<int64_t>();
}

double GgufFile::get_float(const std::string& key) const {
  return lookup(*this, key, [](const json& v) { return v.is_number(); }, "a number").get<double>();
}

bool GgufFile::get_bool(const std::string& key) const {
  return lookup(*this, key, [](const json& v) { return v.is_boolean(); }, "a bool").get<bool>();
}

const nlohmann::json& GgufFile::get_array(const std::string& key) const {
  return lookup(*this, key, [](const json& v) { return v.is_array(); }, "an array");
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find(name);
  if (!t) fail("'{}' has no tensor named '{}'", path_, name);
  return *t;
}

const uint8_t* GgufFile::raw(const GgufTensorInfo& t) const {
  SAELAB_ASSERT(t.offset <= map_size_ && t.nbytes <= map_size_ - t.offset, "tensor '{}' lies outside '{}'", t.name,
                path_);
  return static_cast<const uint8_t*>(map_) + t.offset;
}

void GgufFile::dequantize(const GgufTensorInfo& t, float* out) const {
  if (!ggml_type_supported(t.type))
    fail("'{}': tensor '{}' has type {}, which saelab cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, "
         "Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)", path_, t.name, ggml_type_name(t.type));
  const uint8_t* src = raw(t);
  const int64_t n = t.numel();
  if (n == 0) return;
  // Rows of ne[0] values are whole blocks (checked when the file was opened).
  const int64_t row = t.ne[0], rows = n / row;
  const int64_t row_bytes = row / ggml_block_size(t.type) * ggml_block_bytes(t.type);
  SAELAB_ASSERT(static_cast<uint64_t>(rows * row_bytes) == t.nbytes, "tensor '{}': bad size", t.name);
#pragma omp parallel for schedule(static) if (n >= kParallelMinValues)
  for (int64_t r = 0; r < rows; ++r) dequantize_ggml(t.type, src + r * row_bytes, out + r * row, row);
}

std::vector<float> GgufFile::dequantize(const std::string& name) const {
  const GgufTensorInfo& t = tensor(name);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  dequantize(t, out.data());
  return out;
}

}  // namespace saelab
