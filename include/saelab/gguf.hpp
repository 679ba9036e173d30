// GGUF (llama.cpp's model file, versions 2 and 3): a header (magic "GGUF", u32 version, u64 tensor
// count, u64 metadata count), metadata key/values, tensor infos (name, dims ne[0..n), ggml type,
// offset relative to the data section), padding to `general.alignment` (default 32), then the data.
// ne[0] is the contiguous dimension: a tensor with ne = [in, out] is a row-major [out, in] matrix.
// The file is memory-mapped; every offset, count, string length and shape is checked against the
// file size before it is used, so a truncated or corrupt file fails with one message naming the file
// (and the tensor or key) before any tensor is read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace saelab {

// ggml_type ids as written in GGUF files (ggml.h).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

// "Q4_K", or "type 99" for an id this build does not know.
std::string ggml_type_name(uint32_t type);
// True for the types dequantize_ggml() decodes: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K.
bool ggml_type_supported(uint32_t type);
// Weights per block and bytes per block (1 and the element size for F32/F16/BF16); 0 if unknown.
int64_t ggml_block_size(uint32_t type);
int64_t ggml_block_bytes(uint32_t type);

// Decodes n values (a multiple of the type's block size) of a supported type from src to f32.
// Internal invariant: callers have checked the type and the byte count.
void dequantize_ggml(uint32_t type, const uint8_t* src, float* dst, int64_t n);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] contiguous
  uint32_t type = 0;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
  int64_t numel() const;
  // Row-major shape (ne reversed): ne = [576, 192] -> {192, 576}.
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // throws Error naming the file and the defect
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata as JSON: integers as integers, floats as numbers, bools, strings, arrays of those
  // (nested arrays allowed). Keys keep their file order in keys().
  const nlohmann::json& metadata() const { return metadata_; }
  const std::vector<std::string>& keys() const { return keys_; }
  bool has(const std::string& key) const { return metadata_.contains(key); }
  // Typed access; each throws Error naming the file and the key when it is absent or of another type.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // integers are accepted too
  bool get_bool(const std::string& key) const;
  const nlohmann::json& get_array(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find(const std::string& name) const;  // nullptr when absent
  const GgufTensorInfo& tensor(const std::string& name) const;  // throws Error naming file and tensor
  const uint8_t* raw(const GgufTensorInfo& t) const;           // t.nbytes bytes inside the mapping

  // Dequantizes one tensor to f32, row-major (shape()). Throws Error naming the file and the tensor
  // for a type outside ggml_type_supported(). `out` holds numel() floats.
  void dequantize(const GgufTensorInfo& t, float* out) const;
  std::vector<float> dequantize(const std::string& name) const;

 private:
  void parse();

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32, data_offset_ = 0;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::vector<std::string> keys_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;  // tensor name -> position in tensors_
};

}  // namespace saelab
