// Activations straight from the LM, for training without a disk cache (`saelab train --model`): the
// corpus is streamed, packed into contexts and forwarded a batch at a time exactly as `saelab harvest`
// does (src/data/harvest_rows.hpp), keeping the rows harvest stores, in harvest's order. So a stream
// and an f32 harvest with the same model, corpus, hook, context length and batch size hold the same
// rows bit for bit (the forward's products see the same batches).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "saelab/hooks.hpp"
#include "saelab/row_source.hpp"

namespace saelab {

class LanguageModel;
class CorpusReader;
class ContextStream;

struct StreamSettings {
  std::vector<std::string> corpus;  // files and directories, as harvest takes them
  std::string hook_name;
  int context_size = 128;           // tokens per context, BOS included
  int batch_contexts = 32;          // contexts per forward (harvest's batch_size)
  bool exclude_special = true;      // BOS/EOS positions are not stored (harvest's default)
  // Data-parallel part `part` of `parts` forwards its own stride of the corpus' contexts: part,
  // part + parts, part + 2·parts, ... (batch_contexts of them a forward), so the parts together
  // forward every context once. parts = 1: every context, in harvest's batches.
  int part = 0, parts = 1;
};

// A chunk is the kept rows of one forward of batch_contexts contexts. At the end of the corpus (a
// last, possibly smaller batch) the next chunk starts a new pass from its beginning.
class LmRowSource : public RowSource {
 public:
  // Refuses, before any forward, a hook the model lacks, a context length it cannot take, and a
  // corpus that does not fill one context for each of the `parts` parts.
  LmRowSource(std::shared_ptr<const LanguageModel> model, StreamSettings s);
  ~LmRowSource() override;
  int d() const override { return d_; }
  void next_chunk(std::vector<float>& rows) override;  // rows [n, d]
  // A chunk's row count needs only the tokens: skipping one tokenizes, never forwards.
  bool replayable() const override { return true; }
  int64_t skip_chunk() override;
  void rewind() override;
  int64_t contexts() const { return contexts_; }    // this part's, passed so far (forwarded or skipped), over every pass
  int64_t forwarded() const { return forwarded_; }  // contexts run through the LM, ever
  int64_t passes() const { return passes_; }        // passes begun over the corpus

 private:
  void restart();     // a new pass from the corpus' first context
  int next_batch();   // the next batch's tokens into tokens_ [B·T]; returns B ≥ 1
  void end_batch(int B);
  std::shared_ptr<const LanguageModel> model_;
  StreamSettings s_;
  std::vector<std::string> files_;
  int d_;
  std::unique_ptr<CorpusReader> reader_;
  std::unique_ptr<ContextStream> stream_;
  Hooks hooks_;
  std::vector<float> acts_;      // [B·T, d] the hook's activations of the current batch
  std::vector<int32_t> tokens_;  // [B·T]
  int64_t contexts_ = 0, passes_ = 0, forwarded_ = 0;
  int64_t pass_read_ = 0;       // contexts of every part read from the stream in this pass
  int64_t batch_first_ = 0;     // the current batch's first context, counted in the corpus
};

}  // namespace saelab
