// NumPy .npy (format 1.0, C order, little-endian) for activation shards, so `numpy.load` reads them.
#pragma once
#include <string>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

// Writes atomically. dtype F32, F16 or I32; data holds prod(shape) elements of dtype.
void write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data);

struct NpyArray {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<char> bytes;
};
// Throws Error naming the file for anything but a C-order little-endian f4/f2/i4 array of the stated size.
NpyArray read_npy(const std::string& path);

}  // namespace saelab
