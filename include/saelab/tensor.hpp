// Tensors: a small non-owning view {data, shape, strides, dtype, device} and an owning RAII buffer.
// Dimension letters used project-wide: N tokens, d model width, F latents, k top-k, L layer,
// B sequences in a batch, T tokens per sequence, V vocabulary, H heads, hd head width.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "saelab/error.hpp"

namespace saelab {

enum class DType : uint8_t { F32, F16, BF16, I32 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
const char* dtype_name(DType t);      // "f32", "f16", "bf16", "i32"
DType dtype_from_name(const std::string& s);  // throws Error for an unknown name
const char* device_name(Device d);

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even
// Converts n elements of `src_dtype` (any float dtype) to f32.
void convert_to_f32(float* dst, const void* src, DType src_dtype, size_t n);
void convert_from_f32(void* dst, DType dst_dtype, const float* src, size_t n);

constexpr int kMaxDims = 4;

struct TensorView {
  void* data = nullptr;
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};  // in elements
  DType dtype = DType::F32;
  Device device = Device::CPU;

  static TensorView make(void* data, std::initializer_list<int64_t> shape, DType dtype = DType::F32,
                         Device device = Device::CPU);
  static TensorView make(void* data, const std::vector<int64_t>& shape, DType dtype = DType::F32,
                         Device device = Device::CPU);

  int64_t numel() const;
  int64_t dim(int i) const;  // negative i counts from the back
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
  std::vector<int64_t> shape_vec() const { return {shape.begin(), shape.begin() + ndim}; }
  std::string shape_str() const;  // "[7, 13]"

  // Rows [begin, end) along dim 0; keeps strides.
  TensorView rows(int64_t begin, int64_t end) const;
  // Same data, new shape; requires a contiguous view with the same numel.
  TensorView reshape(std::initializer_list<int64_t> new_shape) const;

  float* f32() const;
  int32_t* i32() const;
};

// Owns a buffer allocated by the backend of `device`; zero-initialised. Move-only.
class Tensor {
 public:
  Tensor() = default;
  Tensor(const std::vector<int64_t>& shape, DType dtype = DType::F32, Device device = Device::CPU);
  ~Tensor();
  Tensor(Tensor&& o) noexcept;
  Tensor& operator=(Tensor&& o) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  const TensorView& view() const { return view_; }
  operator TensorView() const { return view_; }  // NOLINT: views are the currency of the ops
  float* f32() const { return view_.f32(); }
  int32_t* i32() const { return view_.i32(); }
  int64_t numel() const { return view_.numel(); }
  int64_t dim(int i) const { return view_.dim(i); }
  bool empty() const { return view_.data == nullptr; }

 private:
  TensorView view_;
};

}  // namespace saelab
