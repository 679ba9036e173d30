// Pre-tokenizers of byte-level BPE vocabularies, chosen by name as llama.cpp chooses them from GGUF
// `tokenizer.ggml.pre` (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_*). A pre-tokenizer is one or more
// regexes applied in sequence: each one cuts every piece the previous produced into its matches and
// the text between them (llama.cpp's unicode_regex_split; `tokenizers`' Split with "isolated").
// The regexes are hand-written scanners over Unicode classes: std::regex has no \p{L}.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace saelab::pretokenize {

// The class of a code point as these regexes see it (tested in this order): \s (Unicode
// White_Space), \p{L}, \p{N}, \p{M}, \p{P}, anything else. From a generated table
// (pretokenize_unicode.cpp), not the C library, whose classes differ in thousands of code points.
enum class UnicodeClass : uint8_t { Other, Space, Letter, Number, Mark, Punct };
UnicodeClass unicode_class(uint32_t cp);

enum class PreTokenizer {
  Default,  // llama.cpp's fallback set: punctuation runs, GPT-2, \p{N}+, [0-9]{3}
  Gpt2,     // GPT-2's regex
  Smollm,   // every \p{N} isolated, then GPT-2's regex (SmolLM, StarCoder)
  Llama3,   // Llama 3's regex: digits in runs of at most 3
  Qwen2,    // Llama 3's regex with single digits
};

struct PreTokenizerSpec {
  PreTokenizer kind;
  bool ignore_merges;    // a piece that is itself a token is taken whole (llama.cpp: the Llama 3 family)
  bool default_add_bos;  // llama.cpp's add_bos when the GGUF has no tokenizer.ggml.add_bos_token
};

// The pre-tokenizer of a `tokenizer.ggml.pre` value ("" reads as "default", as in llama.cpp), or
// nullopt for a name this build does not implement.
std::optional<PreTokenizerSpec> find_pre_tokenizer(std::string_view gguf_pre);
std::string supported_pre_tokenizers();  // the names find_pre_tokenizer accepts, for messages

// The pieces of text, in order; together they cover text exactly. Invalid UTF-8 bytes count as one
// U+FFFD (class Other) each, so every byte lands in some piece.
std::vector<std::string_view> split(std::string_view text, PreTokenizer p);

}  // namespace saelab::pretokenize
