#include "saelab/activation_stream.hpp"

#include <cstring>

#include "data/harvest_rows.hpp"
#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/lm.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

LmRowSource::LmRowSource(std::shared_ptr<const LanguageModel> model, StreamSettings s)
    : model_(std::move(model)), s_(std::move(s)), d_(model_->config().d_model) {
  SAELAB_ASSERT(s_.batch_contexts >= 1 && s_.parts >= 1 && s_.part >= 0 && s_.part < s_.parts, "batch {}, part {} of {}",
                s_.batch_contexts, s_.part, s_.parts);
  check_hook_and_context(*model_, s_.hook_name, s_.context_size);
  files_ = expand_corpus_paths(s_.corpus);
  restart();
  std::vector<int32_t> first;
  CorpusReader probe_reader(files_);
  ContextStream probe(probe_reader, model_->tokenizer(), s_.context_size);
  int found = 0;
  while (found < s_.parts && probe.next(first)) ++found;
  if (found == 0)
    fail("the corpus ({} file{}, first '{}') yields no complete context of {} tokens", files_.size(),
         files_.size() == 1 ? "" : "s", files_.front(), s_.context_size);
  if (found < s_.parts)
    fail("the corpus ({} file{}, first '{}') yields {} context(s) of {} tokens; {} data-parallel parts need at least "
         "one each", files_.size(), files_.size() == 1 ? "" : "s", files_.front(), found, s_.context_size, s_.parts);
  acts_.resize(static_cast<size_t>(s_.batch_contexts) * s_.context_size * d_);
  hooks_.observe(s_.hook_name, [this](TensorView act) { model_->backend().download(acts_.data(), act); });
}

LmRowSource::~LmRowSource() = default;

void LmRowSource::restart() {
  stream_.reset();
  reader_ = std::make_unique<CorpusReader>(files_);
  stream_ = std::make_unique<ContextStream>(*reader_, model_->tokenizer(), s_.context_size);
  pass_read_ = 0;
  ++passes_;
}

namespace {

// Up to B of this part's contexts (positions ≡ part mod parts in the pass) into tokens [B', T];
// `read` counts every part's contexts taken from the stream; `first` gets the first kept one's.
int next_strided_batch(ContextStream& stream, int B, int part, int parts, std::vector<int32_t>& tokens,
                       int64_t& read, int64_t& first) {
  if (parts == 1) {
    first = read;
    const int n = next_context_batch(stream, B, tokens);
    read += n;
    return n;
  }
  tokens.clear();
  std::vector<int32_t> ctx;
  int n = 0;
  while (n < B && stream.next(ctx)) {
    if (read++ % parts != part) continue;
    if (n++ == 0) first = read - 1;
    tokens.insert(tokens.end(), ctx.begin(), ctx.end());
  }
  return n;
}

}  // namespace

int LmRowSource::next_batch() {
  const auto batch = [&] {
    return next_strided_batch(*stream_, s_.batch_contexts, s_.part, s_.parts, tokens_, pass_read_, batch_first_);
  };
  int B = batch();
  if (B == 0) {  // the corpus is done: a new pass (the constructor made sure it holds this part's context)
    restart();
    B = batch();
    SAELAB_ASSERT(B > 0, "a fresh pass over the corpus yields no context");
  }
  return B;
}

void LmRowSource::end_batch(int B) {
  contexts_ += B;
  if (B < s_.batch_contexts) restart();  // harvest stops after its last, partial batch
}

// A chunk is one batch, or more when a batch keeps no row at all (nothing but special tokens).
void LmRowSource::next_chunk(std::vector<float>& rows) {
  const int T = s_.context_size, d = d_;
  const Tokenizer& tok = model_->tokenizer();
  rows.clear();
  while (rows.empty()) {
    const int B = next_batch();
    model_->forward(tokens_, B, T, &hooks_, /*want_logits=*/false);
    forwarded_ += B;
    check_finite_batch(*model_, s_.hook_name, acts_.data(), static_cast<int64_t>(B) * T, d, T, batch_first_,
                       s_.parts);
    for (int64_t row = 0; row < static_cast<int64_t>(B) * T; ++row)
      if (keeps_position(tok, tokens_[row], s_.exclude_special))
        rows.insert(rows.end(), acts_.begin() + row * d, acts_.begin() + (row + 1) * d);
    end_batch(B);
  }
}

int64_t LmRowSource::skip_chunk() {
  const Tokenizer& tok = model_->tokenizer();
  int64_t n = 0;
  while (n == 0) {
    const int B = next_batch();
    for (int64_t row = 0; row < static_cast<int64_t>(B) * s_.context_size; ++row)
      n += keeps_position(tok, tokens_[row], s_.exclude_special);
    end_batch(B);
  }
  return n;
}

void LmRowSource::rewind() {
  contexts_ = 0;
  passes_ = 0;
  restart();
}

}  // namespace saelab
