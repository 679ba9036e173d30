#include "data/harvest_rows.hpp"

#include <cmath>

#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/lm.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

void check_hook_and_context(const LanguageModel& model, const std::string& hook, int T) {
  model.check_hook(hook);
  if (T < 2) fail("context length must be at least 2, got {}", T);
  if (T > model.config().max_seq_len)
    fail("context length {} exceeds the maximum {} of model '{}'", T, model.config().max_seq_len, model.config().name);
}

int next_context_batch(ContextStream& stream, int B, std::vector<int32_t>& tokens) {
  tokens.clear();
  std::vector<int32_t> ctx;
  int n = 0;
  while (n < B && stream.next(ctx)) {
    tokens.insert(tokens.end(), ctx.begin(), ctx.end());
    ++n;
  }
  return n;
}

bool keeps_position(const Tokenizer& tok, int32_t t, bool exclude_special) {
  return !(exclude_special && (tok.is_special(t) || t == tok.bos_id()));
}

void check_finite_batch(const LanguageModel& model, const std::string& hook, const float* acts, int64_t rows, int d,
                        int T, int64_t first_context, int stride) {
  for (int64_t i = 0; i < rows * d; ++i) {
    if (std::isfinite(acts[i])) continue;
    const int64_t row = i / d;
    fail("model '{}' produced {} at hook '{}' (context {} of the corpus, position {}, column {}); its weights "
         "may be corrupt. Nothing of this batch was written",
         model.config().name, acts[i], hook, first_context + row / T * stride, row % T, i % d);
  }
}

}  // namespace saelab
