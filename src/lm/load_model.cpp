#include <filesystem>

#include "load_model_impl.hpp"
#include "saelab/atomic_file.hpp"

namespace saelab {

namespace fs = std::filesystem;

std::string directory_name(const std::string& dir) {
  const fs::path p = fs::path(dir).lexically_normal();
  const std::string name = p.filename().string();
  return name.empty() ? p.parent_path().filename().string() : name;
}

std::unique_ptr<LanguageModel> load_model(const std::string& path, Backend& be) {
  if (!fs::exists(path)) fail("model path '{}' does not exist", path);
  if (dir_exists(path) && file_exists(path + "/config.json")) return load_hf_model(path, be);
  if (!dir_exists(path) && fs::path(path).extension() == ".gguf")
    return load_gguf_model(path, fs::path(path).stem().string(), be);
  if (dir_exists(path)) {  // a directory holding one GGUF file
    std::string gguf;
    for (const auto& e : fs::directory_iterator(path)) {
      if (e.path().extension() != ".gguf") continue;
      if (!gguf.empty())
        fail("model directory '{}' holds several .gguf files ('{}', '{}'); pass one file", path,
             fs::path(gguf).filename().string(), e.path().filename().string());
      gguf = e.path().string();
    }
    if (!gguf.empty()) return load_gguf_model(gguf, directory_name(path), be);
  }
  // llama2.c: a .bin file, or a directory holding one model .bin beside tok*.bin / tokenizer.bin.
  std::string bin = path, dir = fs::path(path).parent_path().string();
  if (dir_exists(path)) {
    dir = path;
    bin.clear();
    for (const auto& e : fs::directory_iterator(path)) {
      const std::string f = e.path().filename().string();
      if (e.path().extension() == ".bin" && f.rfind("tok", 0) != 0) {
        if (!bin.empty()) fail("model directory '{}' holds several .bin checkpoints; pass one file", path);
        bin = e.path().string();
      }
    }
    if (bin.empty())
      fail("'{}' is not a model directory: expected config.json (Hugging Face), a .gguf file or a llama2.c .bin "
           "checkpoint", path);
  }
  if (fs::path(bin).extension() != ".bin")
    fail("'{}' is not a model: expected a Hugging Face directory, a .gguf file or a llama2.c .bin checkpoint", path);
  if (dir.empty()) dir = ".";
  std::string tok;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f == "tokenizer.bin" || (f.rfind("tok", 0) == 0 && e.path().extension() == ".bin")) tok = e.path().string();
  }
  if (tok.empty()) fail("llama2.c checkpoint '{}' has no tokenizer (tok*.bin or tokenizer.bin) beside it", bin);
  return load_llama2c_model(bin, tok, be);
}

}  // namespace saelab
