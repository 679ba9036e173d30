// .npy (activation shards and their token ids): magic, version, header length, the header's
// descr / fortran_order / shape, and the data size the shape implies.
#include "fuzz_common.hpp"
#include "saelab/npy.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file("input.npy", data, size);
  fuzz::expect_no_crash([&] {
    NpyArray a = read_npy(path);
    if (a.dtype != DType::I32) {
      std::vector<float> out(a.bytes.size() / dtype_size(a.dtype));
      convert_to_f32(out.data(), a.bytes.data(), a.dtype, out.size());
    }
  });
  return 0;
}
