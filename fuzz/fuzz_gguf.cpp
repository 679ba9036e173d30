// GGUF: the header, metadata of every value type (nested arrays, huge counts and string lengths),
// tensor infos (dims, types, offsets, alignment). Every tensor the reader accepts is then read
// through raw() and, when its type is supported and it is not too large, dequantized, so an info
// that passes validation but points outside the file shows up as an ASan report.
#include "fuzz_common.hpp"
#include "fuzz_tokenizer.hpp"
#include "saelab/gguf.hpp"
#include "saelab/lm.hpp"
#include "saelab/tokenizer_gguf.hpp"

using namespace saelab;

namespace {
constexpr int64_t kMaxDequantValues = 1 << 20;  // a 16 KiB input decodes to far fewer
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::single_threaded();
  const std::string path = fuzz::input_file("input.gguf", data, size);
  fuzz::expect_no_crash([&] {
    GgufFile f(path);
    for (const std::string& key : f.keys()) {
      const nlohmann::json& v = f.metadata()[key];
      if (v.is_string()) (void)f.get_string(key);
      else if (v.is_boolean()) (void)f.get_bool(key);
      else if (v.is_number()) (void)f.get_float(key);
      else (void)f.get_array(key).size();
    }
    if (f.has("general.architecture")) (void)f.get_string("general.architecture");  // may be another type
    for (const GgufTensorInfo& t : f.tensors()) {
      const uint8_t* p = f.raw(t);
      uint8_t sum = 0;
      for (uint64_t i = 0; i < t.nbytes; ++i) sum = static_cast<uint8_t>(sum + p[i]);
      (void)sum;
      if (f.find(t.name) != &t) std::abort();
      if (t.numel() <= kMaxDequantValues && ggml_type_supported(t.type)) (void)f.dequantize(t.name);
    }
    for (const GgufTensorInfo& t : f.tensors())  // the refusal of an unsupported type
      if (!ggml_type_supported(t.type)) (void)f.dequantize(t.name);
  });
  // The tokenizer the metadata describes, and the model loader's checks (shapes, names, types).
  fuzz::expect_no_crash([&] {
    GgufFile f(path);
    const auto tok = make_gguf_tokenizer(read_gguf_vocab(f));
    fuzz::exercise_tokenizer(*tok, {"Hello world 123", " \n\t<|im_start|>x", "na\xc3\xafve \xe6\x9d\xb1"});
  });
  fuzz::expect_no_crash([&] { (void)load_model(path, cpu_backend()); });
  return 0;
}
