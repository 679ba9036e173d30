#pragma once
#include <memory>
#include <string>

#include "saelab/lm.hpp"

namespace saelab {
std::unique_ptr<LanguageModel> load_hf_model(const std::string& dir, Backend& be);
// The last component of a directory path, trailing slash or not ("models/smollm2/" -> "smollm2").
std::string directory_name(const std::string& dir);
// `name`: the model's name in outputs (the directory that holds the file, else the file's stem).
std::unique_ptr<LanguageModel> load_gguf_model(const std::string& path, const std::string& name, Backend& be);
std::unique_ptr<LanguageModel> load_llama2c_model(const std::string& bin_path, const std::string& tokenizer_path,
                                               Backend& be);
}  // namespace saelab
