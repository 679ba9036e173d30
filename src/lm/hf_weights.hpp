// The mapping from a Hugging Face checkpoint's tensors to saelab's parameters (model_param_specs).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "saelab/lm.hpp"

namespace saelab {

// Where one parameter comes from.
struct HfSource {
  std::string param;                  // saelab's name
  std::string stored;                 // the checkpoint's tensor name
  std::vector<int64_t> stored_shape;  // its shape in the file, as config.json implies it
  bool transpose = false;             // Conv1D (GPT-2) stores [in, out]
  float add = 0.f;                    // added to every element (Gemma's 1 + w norms)
  // Fused tensors: the parameter's rows are blocks of `chunk` rows of the (transposed) stored tensor
  // taken every `stride` rows from `offset`; chunk 0 takes the whole tensor.
  int64_t chunk = 0, stride = 0, offset = 0;
};

// One source per parameter of model_param_specs(c), any order. `present` says whether the
// checkpoint holds a tensor name (used where checkpoints differ: GPT-2's "transformer." prefix, a
// tied head stored as lm_head.weight).
std::vector<HfSource> hf_sources(const ModelConfig& c, const std::function<bool(const std::string&)>& present);

// Tensors a checkpoint may hold that are not parameters of the forward (attention-mask and RoPE
// buffers, a tied duplicate head): skipped; any other unused tensor is an error.
bool hf_ignorable(const std::string& name, const ModelConfig& c);

// Writes the parameter (shape param_shape) from the stored tensor's f32 values.
void apply_source(const HfSource& s, const std::vector<float>& stored, const std::vector<int64_t>& param_shape,
                  float* dst);

}  // namespace saelab
