// llama2.c tokenizer.bin. Input: a little-endian u16 vocabulary size (the model header supplies it
// in real use), then the file. A loaded tokenizer must encode and decode text without crashing.
#include <cstring>

#include "fuzz_common.hpp"
#include "fuzz_tokenizer.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int32_t vocab = data[0] | (data[1] << 8);
  const std::string path = fuzz::input_file("tok.bin", data + 2, size - 2);
  fuzz::expect_no_crash([&] {
    auto tok = load_llama2c_tokenizer(path, vocab);
    fuzz::exercise_tokenizer(*tok, {"Once upon a time, L\xC3\xA9o saw 42 \xE2\x96\x81 cats.\n", "", " ", "\xFF\xC3"});
  });
  return 0;
}
