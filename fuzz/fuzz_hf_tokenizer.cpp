// Hugging Face tokenizer.json: loading (model, vocab, merges, added tokens, normalizer,
// pre-tokenizer, decoder, post-processor), then encoding and decoding fixed text with the result.
#include "fuzz_common.hpp"
#include "saelab/tokenizer.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file("tokenizer.json", data, size);
  fuzz::expect_no_crash([&] {
    auto tok = load_hf_tokenizer(path);
    for (const char* text : {"Once upon a time, L\xC3\xA9o saw 42 cats.\n  <s>x</s> <unk>", "", " ", "\xFF\xC3"}) {
      const std::vector<int32_t> ids = tok->encode(text);
      (void)tok->decode(ids, false);
      (void)tok->decode(ids, true);
    }
    std::vector<int32_t> all(static_cast<size_t>(tok->vocab_size()));
    for (int32_t i = 0; i < tok->vocab_size(); ++i) all[i] = i;
    (void)tok->decode(all, false);
    (void)tok->decode(all, true);
  });
  return 0;
}
