// What `saelab harvest` and the streamed trainer (activation_stream.hpp) share, so that both see
// exactly the same rows: the checks on the model, the batching of contexts for one forward, which
// positions are kept, and the refusal of non-finite activations.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace saelab {

class ContextStream;
class LanguageModel;
class Tokenizer;

// Refuses a hook the model lacks or a context length the model cannot take (T < 2 or > max_seq_len).
void check_hook_and_context(const LanguageModel& model, const std::string& hook, int T);

// Up to B contexts of the stream into tokens [B', T] (replaced); returns B' (< B at the corpus end).
int next_context_batch(ContextStream& stream, int B, std::vector<int32_t>& tokens);

// Whether the activation at a position holding token t is stored: BOS and special tokens (EOS, ...)
// are attention sinks, not text, and are left out when exclude_special.
bool keeps_position(const Tokenizer& tok, int32_t t, bool exclude_special);

// Fails naming the first non-finite value of a forwarded batch acts [rows, d] (rows = B·T) whose
// first context is `first_context` of the corpus and whose contexts are `stride` apart in it (a
// data-parallel part's): the model's weights are corrupt.
void check_finite_batch(const LanguageModel& model, const std::string& hook, const float* acts, int64_t rows, int d,
                        int T, int64_t first_context, int stride = 1);

}  // namespace saelab
