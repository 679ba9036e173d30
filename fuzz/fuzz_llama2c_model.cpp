// llama2.c checkpoint (.bin): the seven-int32 header, the weight count it implies, then a forward
// pass over two tokens, so a header the loader accepts but the model cannot run is found too.
// The tokenizer beside it is generated to match the header's vocabulary size (the tokenizer file
// has its own target, fuzz_llama2c_tokenizer).
#include <cstring>

#include "fuzz_common.hpp"
#include "saelab/backend.hpp"
#include "saelab/lm.hpp"

using namespace saelab;

namespace {

// max_token_length, then per token: f32 score, i32 length, bytes (<unk>, <s>, </s>, <0xXX>, " ", ...).
void write_tokenizer(const std::string& path, int32_t vocab) {
  std::string buf;
  auto put = [&](const void* p, size_t n) { buf.append(static_cast<const char*>(p), n); };
  const int32_t max_len = 8;
  put(&max_len, 4);
  for (int32_t i = 0; i < vocab; ++i) {
    std::string piece = i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>"
                      : i < 259 ? fmt::format("<0x{:02X}>", i - 3) : i == 259 ? " " : fmt::format("t{}", i);
    const float score = -static_cast<float>(i);
    const int32_t len = static_cast<int32_t>(piece.size());
    put(&score, 4);
    put(&len, 4);
    put(piece.data(), piece.size());
  }
  fuzz::write_bytes(path, buf);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::single_threaded();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bin = fuzz::input_file("model.bin", data, size);
  const std::string tok = fuzz::path_of("tok.bin");
  // Only a vocabulary the file can hold (V * d floats) gets past the size check to the tokenizer.
  static int32_t written = -1;
  int32_t vocab = 1;
  if (size >= 28) {
    int32_t v;
    std::memcpy(&v, data + 20, 4);
    if (v != INT32_MIN) vocab = v < 0 ? -v : v;
  }
  if (vocab < 1 || static_cast<size_t>(vocab) > size / 4) vocab = 1;
  if (vocab != written) {
    write_tokenizer(tok, vocab);
    written = vocab;
  }
  fuzz::expect_no_crash([&] {
    auto model = load_model(bin, cpu_backend());
    const auto& c = model->config();
    const int T = std::min(2, c.max_seq_len);
    std::vector<int32_t> ids{0, c.vocab_size - 1};
    ids.resize(T);
    (void)model->forward(ids, 1, T);
  });
  return 0;
}
