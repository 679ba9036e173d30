// Hugging Face tokenizer.json: loading (model, vocab, merges, added tokens, normalizer,
// pre-tokenizer, decoder, post-processor), then encoding and decoding fixed text with the result.
#include "fuzz_common.hpp"
#include "fuzz_tokenizer.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file("tokenizer.json", data, size);
  fuzz::expect_no_crash([&] {
    auto tok = load_hf_tokenizer(path);
    fuzz::exercise_tokenizer(*tok, {"Once upon a time, L\xC3\xA9o saw 42 cats.\n  <s>x</s> <unk>", "", " ", "\xFF\xC3"});
  });
  return 0;
}
