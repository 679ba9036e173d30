// The safetensors format (https://huggingface.co/docs/safetensors): u64 little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian data. Reading memory-maps the file and validates every entry up front,
// so a truncated or corrupt file fails with one clear message before any tensor is used.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

struct SafetensorsEntry {
  std::string name;
  std::string dtype_str;  // as in the file: "F32", "F16", "BF16", "I32", "I64", ...
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte offsets into the data section
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws Error naming the file and the defect
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws Error if absent
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const void* raw(const std::string& name) const;

  // Reads a float tensor (F32/F16/BF16) as f32. If `expect_shape` is non-empty it must match.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& expect_shape = {}) const;
  std::vector<int32_t> read_i32(const std::string& name) const;

 private:
  void parse_header();  // validates the mapped file into entries_ and metadata_

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const char* data_ = nullptr;  // start of the data section
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

struct SafetensorsTensorOut {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes, already in `dtype`
};

// Writes atomically (temp + rename).
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

const char* safetensors_dtype_name(DType t);  // "F32", ...

}  // namespace saelab
