#pragma once
#include <memory>
#include <string>

#include "saelab/lm.hpp"

namespace saelab {
std::unique_ptr<LlamaModel> load_hf_model(const std::string& dir, Backend& be);
std::unique_ptr<LlamaModel> load_gguf_model(const std::string& path, Backend& be);
std::unique_ptr<LlamaModel> load_llama2c_model(const std::string& bin_path, const std::string& tokenizer_path,
                                               Backend& be);
}  // namespace saelab
