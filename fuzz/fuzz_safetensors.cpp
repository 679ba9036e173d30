// safetensors: the u64 header length, the JSON header and the data offsets. Every tensor the header
// accepts is then read back (read_f32 / read_i32), so a header that passes validation but points
// outside the data section shows up as an ASan report.
#include "fuzz_common.hpp"
#include "saelab/safetensors.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file("input.safetensors", data, size);
  fuzz::expect_no_crash([&] {
    SafetensorsFile f(path);
    for (const auto& name : f.names()) {
      const SafetensorsEntry& e = f.entry(name);
      (void)f.raw(name);
      if (e.dtype_str == "F32" || e.dtype_str == "F16" || e.dtype_str == "BF16") (void)f.read_f32(name, e.shape);
      else if (e.dtype_str == "I32") (void)f.read_i32(name);
    }
  });
  return 0;
}
