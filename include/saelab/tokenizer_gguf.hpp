// The tokenizer of a GGUF file: its tokenizer.ggml.* metadata as a GgufVocab, which
// make_gguf_tokenizer (saelab/tokenizer.hpp) turns into a Tokenizer.
#pragma once
#include "saelab/gguf.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

// Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, bos_token_id, eos_token_id,
// eot_token_id, eom_token_id, unknown_token_id, padding_token_id, add_bos_token, add_eos_token,
// add_space_prefix}. Absent keys take llama.cpp's defaults (llama_vocab::impl::load):
//   model "llama": bos 1, eos 2, unk 0, add_bos true, add_space_prefix true;
//   model "gpt2":  bos 11, eos 11 (GPT-2 vocabularies' legacy default), add_bos true for the
//                  Llama 3 pre-tokenizers (llama3, llama-bpe, ...) else false, add_space_prefix false;
//   pre "default", add_eos false, the other ids absent (-1). A default id outside the vocabulary
//   is dropped (-1), as llama.cpp does.
// Throws Error naming the file and the key for a missing tokens/model (or gpt2 merges) key, an
// array of the wrong element type, or an id outside the vocabulary.
GgufVocab read_gguf_vocab(const GgufFile& f);

}  // namespace saelab
