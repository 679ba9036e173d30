#include "bpe_merge.hpp"

#include <queue>

namespace saelab {

namespace {
struct Candidate {
  double priority;
  int pos;  // index of the left symbol in the original sequence
  int32_t left, right, new_id;
  bool operator>(const Candidate& o) const {
    return priority != o.priority ? priority > o.priority : pos > o.pos;
  }
};
}  // namespace

void bpe_merge(std::vector<int32_t>& symbols, const BpeLookup& lookup) {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::vector<char> alive(n, 1);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    BpeMerge m;
    if (lookup(symbols[i], symbols[next[i]], m)) heap.push({m.priority, i, symbols[i], symbols[next[i]], m.new_id});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Stale if either side has merged since the candidate was pushed.
    if (!alive[c.pos] || symbols[c.pos] != c.left) continue;
    const int r = next[c.pos];
    if (r < 0 || symbols[r] != c.right) continue;
    symbols[c.pos] = c.new_id;
    alive[r] = 0;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0 && i < n; i = next[i]) out.push_back(symbols[i]);
  symbols.swap(out);
}

}  // namespace saelab
