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
  // The model's config (config.json bos_token_id / eos_token_id) has the last word.
  void set_bos_eos(int32_t bos, int32_t eos) {
    if (bos >= 0) bos_id_ = bos;
    if (eos >= 0) eos_id_ = eos;
  }

 protected:
  int32_t bos_id_ = -1, eos_id_ = -1;
};

// Hugging Face tokenizer.json. Throws Error naming the file and any component type it does not know.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& tokenizer_json_path);
// GPT-2's original files (encoder.json + vocab.bpe): byte-level BPE with <|endoftext|> as BOS/EOS.
std::unique_ptr<Tokenizer> load_gpt2_tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
// llama2.c tokenizer.bin (max_token_length, then per token: f32 score, i32 length, bytes).
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size);

}  // namespace saelab
