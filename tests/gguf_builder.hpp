// A GGUF file built field by field (little-endian) in memory, so a test can bend any one field:
// the GGUF reader's defect tests and the GGUF model loader's tests share it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace saelab::test::gguf {

struct Bytes {
  std::string b;
  template <typename T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
};

enum : uint32_t { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

template <typename T>
std::string val(uint32_t type, T v) {
  return Bytes().put(type).put(v).b;
}
inline std::string val_str(const std::string& s) { return Bytes().put<uint32_t>(STRING).str(s).b; }
// An array value: u32 ARRAY | u32 element type | u64 count | the elements' bytes.
inline std::string val_arr(uint32_t elem, uint64_t count, const std::string& elems) {
  return Bytes().put<uint32_t>(ARRAY).put(elem).put(count).b + elems;
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;
  uint32_t type = 0;
  std::string data;  // placed at the next aligned offset of the data section
  std::optional<uint32_t> n_dims;
  std::optional<uint64_t> offset;  // written instead of the real offset
};

inline TensorSpec tensor_spec(std::string name, std::vector<int64_t> ne, uint32_t type, std::string data) {
  TensorSpec t;
  t.name = std::move(name);
  t.ne = std::move(ne);
  t.type = type;
  t.data = std::move(data);
  return t;
}

struct GgufSpec {
  uint32_t version = 3;
  uint64_t pad_to = 32;  // alignment used for the layout (general.alignment only if a kv says so)
  std::vector<std::pair<std::string, std::string>> kvs;  // key, value bytes (type included)
  std::vector<TensorSpec> tensors;

  std::string build() const {
    Bytes f;
    f.b = "GGUF";
    f.put(version).put<uint64_t>(tensors.size()).put<uint64_t>(kvs.size());
    for (const auto& [k, v] : kvs) f.str(k).b += v;
    std::string data;
    for (const TensorSpec& t : tensors) {
      data.resize((data.size() + pad_to - 1) / pad_to * pad_to, '\0');
      f.str(t.name).put<uint32_t>(t.n_dims.value_or(static_cast<uint32_t>(t.ne.size())));
      for (int64_t n : t.ne) f.put(n);
      f.put(t.type).put<uint64_t>(t.offset.value_or(data.size()));
      data += t.data;
    }
    f.b.resize((f.b.size() + pad_to - 1) / pad_to * pad_to, '\0');
    return f.b + data;
  }
};

inline std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

}  // namespace saelab::test::gguf
