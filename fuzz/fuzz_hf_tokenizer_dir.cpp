// A Hugging Face model directory's tokenizer settings (load_hf_directory_tokenizer): the input is
// tokenizer_config.json, config.json and generation_config.json joined by NUL bytes (an empty part:
// that file is absent), beside a fixed tokenizer.json of 512 tokens whose added tokens carry the
// names the families' configs use. The BOS/EOS ids that come out must be tokens, and encoding with
// the resulting BOS policy must work.
#include <cstring>
#include <filesystem>

#include "fuzz_common.hpp"
#include "fuzz_tokenizer.hpp"

using namespace saelab;

namespace {

const std::string& model_dir() {
  static const std::string dir = [] {
    const std::string d = fuzz::path_of("hf_tok_dir");
    std::filesystem::create_directories(d);
    const char* const names[] = {"<unk>", "<s>", "</s>", "<bos>", "<eos>", "<|endoftext|>", "<|begin_of_text|>",
                                 "<|end_of_text|>", "<|im_end|>", "<pad>"};
    std::string added, vocab;
    for (int i = 0; i < 10; ++i) {
      added += fmt::format("{}{{\"id\": {}, \"content\": \"{}\", \"special\": true}}", i ? ", " : "", i, names[i]);
      vocab += fmt::format("\"{}\": {}, ", names[i], i);
    }
    for (int i = 10; i < 36; ++i) vocab += fmt::format("\"{}\": {}, ", static_cast<char>('a' + i - 10), i);
    for (int i = 36; i < 512; ++i) vocab += fmt::format("\"t{}\": {}{}", i, i, i + 1 < 512 ? ", " : "");
    fuzz::write_bytes(d + "/tokenizer.json", R"({"added_tokens": [)" + added + R"(],
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
      "model": {"type": "BPE", "vocab": {)" + vocab + R"(}, "merges": []}})");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = model_dir();
  const char* const files[] = {"tokenizer_config.json", "config.json", "generation_config.json"};
  size_t start = 0;
  for (int f = 0; f < 3; ++f) {
    const void* nul = start < size ? std::memchr(data + start, 0, size - start) : nullptr;
    const size_t end = nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - data) : size;
    const std::string path = dir + "/" + files[f];
    if (end > start) fuzz::write_bytes(path, data + start, end - start);
    else std::filesystem::remove(path);
    start = std::min(end + 1, size);
  }
  fuzz::expect_no_crash([&] {
    auto tok = load_hf_directory_tokenizer(dir, 512);
    for (int32_t id : {tok->bos_id(), tok->eos_id()})
      if (id >= 0) (void)tok->piece(id);
    for (int32_t id : tok->eog_ids()) (void)tok->piece(id);
    if (tok->adds_bos() && tok->bos_id() < 0) std::abort();  // adds a BOS it cannot name
    fuzz::exercise_tokenizer(*tok, {"abc <s>x</s>", ""});
  });
  return 0;
}
