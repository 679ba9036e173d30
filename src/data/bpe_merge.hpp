// The merge loop shared by both tokenizers: repeatedly merge the adjacent pair with the best
// (lowest) priority, leftmost first on ties, until no adjacent pair is mergeable.
// A heap of candidate pairs over a linked list of symbols: O(n log n) in the word length, which
// matters because tokenizers without a pre-tokenizer treat a whole paragraph as one word.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace saelab {

struct BpeMerge {
  double priority;  // lower merges first
  int32_t new_id;
};

// lookup(a, b) returns false if the pair (a, b) cannot merge.
using BpeLookup = std::function<bool(int32_t a, int32_t b, BpeMerge& out)>;

void bpe_merge(std::vector<int32_t>& symbols, const BpeLookup& lookup);

}  // namespace saelab
