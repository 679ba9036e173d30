// llama2.c's tokenizer.bin and its encode/decode (run.c): a dummy-prefix space, one token per
// UTF-8 character (byte fallback to ids 3 + byte), then greedy merging of the adjacent pair whose
// concatenation is in the vocabulary with the highest score.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "bpe_merge.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "utf8.hpp"

namespace saelab {
namespace {

class Llama2cTokenizer final : public Tokenizer {
 public:
  Llama2cTokenizer(const std::string& path, int32_t vocab_size) {
    const std::string buf = read_file(path);
    size_t off = 0;
    auto take = [&](void* dst, size_t n, const char* what) {
      if (off + n > buf.size())
        fail("'{}' is truncated: expected {} for {} tokens, file ends at byte {}", path, what, vocab_size, buf.size());
      std::memcpy(dst, buf.data() + off, n);
      off += n;
    };
    // encode() maps byte b to id 3 + b (byte fallback) and starts with the " " token, as run.c does.
    if (vocab_size < 259)
      fail("'{}': a llama2.c vocabulary holds <unk>, <s>, </s> and the 256 byte tokens (ids 0..258), but the model "
           "gives vocab_size {}", path, vocab_size);
    // Each token takes at least 8 bytes (score, length): check before allocating for vocab_size.
    if (static_cast<uint64_t>(vocab_size) * 8 + 4 > buf.size())
      fail("'{}' is truncated: {} tokens need at least {} bytes, the file has {}", path, vocab_size,
           static_cast<uint64_t>(vocab_size) * 8 + 4, buf.size());
    int32_t max_len = 0;
    take(&max_len, 4, "max_token_length");
    if (max_len <= 0 || max_len > 1 << 16) fail("'{}': implausible max_token_length {}", path, max_len);
    pieces_.resize(vocab_size);
    scores_.resize(vocab_size);
    for (int32_t i = 0; i < vocab_size; ++i) {
      int32_t len = 0;
      take(&scores_[i], 4, "a score");
      if (!std::isfinite(scores_[i])) fail("'{}': token {} has score {}, expected a finite number", path, i, scores_[i]);
      take(&len, 4, "a token length");
      if (len < 0 || len > max_len) fail("'{}': token {} has length {} (max_token_length {})", path, i, len, max_len);
      pieces_[i].resize(len);
      take(pieces_[i].data(), len, "token bytes");
      ids_.emplace(pieces_[i], i);  // first occurrence wins, as llama2.c's sorted lookup effectively does
    }
    if (lookup(" ") < 0) fail("'{}' has no \" \" token (the dummy prefix every encoding starts with)", path);
    bos_id_ = 1;
    eos_id_ = 2;
    add_eog(eos_id_);
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> syms;
    if (text.empty()) return syms;
    syms.push_back(lookup(" "));  // the dummy prefix of sentencepiece
    for (size_t i = 0; i < text.size();) {
      const size_t n = utf8::char_len(text, i);
      const int32_t id = lookup(text.substr(i, n));
      if (id >= 0) {
        syms.push_back(id);
      } else {
        for (size_t k = 0; k < n; ++k) syms.push_back(static_cast<unsigned char>(text[i + k]) + 3);
      }
      i += n;
    }
    bpe_merge(syms, [this](int32_t a, int32_t b, BpeMerge& out) {
      const int32_t id = lookup(pieces_[a] + pieces_[b]);
      if (id < 0) return false;
      out = {-static_cast<double>(scores_[id]), id};
      return true;
    });
    return syms;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    int32_t prev = -1;
    for (int32_t id : ids) {
      if (skip_special && is_special(id)) {
        prev = id;
        continue;
      }
      std::string p = piece(id);
      if (prev == bos_id_ && !p.empty() && p[0] == ' ') p.erase(0, 1);  // BOS strips the leading space
      unsigned int byte = 0;
      if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>", &byte) == 1) p = std::string(1, static_cast<char>(byte));
      out += p;
      prev = id;
    }
    return out;
  }

  std::string piece(int32_t id) const override {
    SAELAB_ASSERT(id >= 0 && id < vocab_size(), "token id {} outside vocabulary of {}", id, vocab_size());
    return pieces_[id];
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  bool is_special(int32_t id) const override { return id >= 0 && id <= 2; }  // <unk>, <s>, </s>

 private:
  int32_t lookup(std::string_view s) const {
    auto it = ids_.find(std::string(s));
    return it == ids_.end() ? -1 : it->second;
  }
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  return std::make_unique<Llama2cTokenizer>(path, vocab_size);
}

}  // namespace saelab
