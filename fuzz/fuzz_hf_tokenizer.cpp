// Hugging Face tokenizer.json: loading (model, vocab, merges, added tokens, normalizer,
// pre-tokenizer, decoder, post-processor), then encoding and decoding fixed text with the result.
// Seeds include every model family's tiny tokenizer (tests/data/hf_tiny), so the Split regexes,
// ignore_merges, NFC and the added-token flags are reached.
#include "fuzz_common.hpp"
#include "fuzz_tokenizer.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file("tokenizer.json", data, size);
  fuzz::expect_no_crash([&] {
    auto tok = load_hf_tokenizer(path);
    // Fixed texts: accents (composed and decomposed, for NFC), digit runs, upper-case contractions,
    // whitespace runs, and the special tokens of the families' files written as text.
    fuzz::exercise_tokenizer(*tok, {"Once upon a time, L\xC3\xA9o saw 42 cats.\n  <s>x</s> <unk>", "", " ", "\xFF\xC3",
                                    "Cafe\xCC\x81 1234567 I'M \t\t\r\n\n   x <|endoftext|><|im_start|>a<bos>b<mask>",
                                    "<|begin_of_text|>Hi<|eot_id|> \xE2\x96\x81\xE2\x96\x81 \xF0\x9F\x98\x80 \xE1\x84\x80\xE1\x85\xA1"});
  });
  return 0;
}
