// Tokenizers: Hugging Face tokenizer.json (BPE with byte fallback or byte-level BPE; the
// normalizer / pre-tokenizer / decoder pipeline of the file) and llama2.c's tokenizer.bin.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace saelab {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text to ids, without BOS (callers decide where sequences begin).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids to text, as the reference decoders do (Hugging Face decode / llama2.c's printing loop).
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  virtual std::string piece(int32_t id) const = 0;  // the vocabulary string of one id
  virtual int32_t vocab_size() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  int32_t bos_id() const { return bos_id_; }  // -1 when the vocabulary has none
  int32_t eos_id() const { return eos_id_; }
  // Whether the model's own tokenizer puts BOS before a prompt (HF post-processor / add_bos_token,
  // GGUF tokenizer.ggml.add_bos_token). Harvest contexts start with BOS either way (SAELens' prepend_bos).
  bool adds_bos() const { return adds_bos_; }
  void set_adds_bos(bool b) { adds_bos_ = b; }
  // End-of-generation tokens: generation stops at any of them (EOS, and EOT-like tokens such as
  // <|im_end|>, <|eot_id|>, <end_of_turn>, as transformers' generation_config and llama.cpp do).
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }
  bool is_eog(int32_t id) const;
  void add_eog(int32_t id);
  // The model's config (config.json bos_token_id / eos_token_id) has the last word.
  void set_bos_eos(int32_t bos, int32_t eos) {
    if (bos >= 0) bos_id_ = bos;
    if (eos >= 0) eos_id_ = eos;
  }

 protected:
  int32_t bos_id_ = -1, eos_id_ = -1;
  bool adds_bos_ = true;
  std::vector<int32_t> eog_ids_;
};

// A vocabulary as GGUF metadata states it (tokenizer.ggml.*), independent of the file reader.
struct GgufVocab {
  std::string source;               // the file, for messages
  std::string model;                // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::string pre = "default";      // tokenizer.ggml.pre: the pre-tokenizer of a gpt2 model
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens, by id
  std::vector<float> scores;        // tokenizer.ggml.scores (llama); may be empty for gpt2
  // tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;  // tokenizer.ggml.merges, "a b" in rank order (gpt2)
  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1;  // -1: absent
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // llama: "▁" before the text (tokenizer.ggml.add_space_prefix)
};

// Byte-level BPE (model "gpt2", pre-tokenizers: default / gpt-2, smollm, llama-bpe (Llama 3),
// qwen2, ...) or SentencePiece-style BPE with scores and byte fallback (model "llama"). Throws Error
// naming vocab.source for an unknown model or pre-tokenizer, or inconsistent arrays.
std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& vocab);

// Hugging Face tokenizer.json. Throws Error naming the file and any component type it does not know.
// BOS/EOS are guessed from conventional special-token names; adds_bos() is whether the file's
// post-processor template puts a special token before the text.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& tokenizer_json_path);
// The tokenizer of a Hugging Face model directory as transformers loads it: tokenizer.json, with
// adds_bos() from tokenizer_config.json add_bos_token (else the template), bos_id() the BOS it adds
// or else config.json bos_token_id, eos_id() / eog_ids() from config.json and generation_config.json
// eos_token_id (one id or a list). vocab_size is config.json's: the tokenizer may not be larger.
std::unique_ptr<Tokenizer> load_hf_directory_tokenizer(const std::string& dir, int32_t vocab_size);
// GPT-2's original files (encoder.json + vocab.bpe): byte-level BPE with <|endoftext|> as BOS/EOS.
std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
// llama2.c tokenizer.bin (max_token_length, then per token: f32 score, i32 length, bytes).
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size);

}  // namespace saelab
