// Building the CPU sparse ops' lists and panels (cpu_sparse_lists.hpp).
#include "cpu_sparse_lists.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "saelab/error.hpp"

namespace saelab::cpu {

namespace {
// Rows per task of rows_of: the block's entries gather in the block's own buffers, which are then
// copied out at the block's offset, so the result does not depend on which thread ran the block.
constexpr int64_t kListRowBlock = 64;

// fn(i, v) for the non-zeros v = row[i] of row[0, n), in index order. The scan tests four floats
// at a time as two 64-bit words: with k of F non-zero most groups are all zero (+0.0 has no bits
// set; a −0.0 takes the slow path and is skipped there), and the branch per float is what a plain
// scan spends its time on.
template <typename Fn>
inline void for_nonzeros(const float* row, int64_t n, Fn fn) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint64_t lo, hi;
    std::memcpy(&lo, row + i, sizeof lo);
    std::memcpy(&hi, row + i + 2, sizeof hi);
    if ((lo | hi) == 0) continue;
    for (int64_t t = i; t < i + 4; ++t)
      if (row[t] != 0.f) fn(t, row[t]);
  }
  for (; i < n; ++i)
    if (row[i] != 0.f) fn(i, row[i]);
}

struct BlockEntries {
  std::vector<int32_t> idx;
  std::vector<float> val;
};
}  // namespace

void rows_of(SparseLists& out, const float* a, int64_t R, int64_t C) {
  SAELAB_ASSERT(C <= INT32_MAX, "rows_of: {} columns exceed int32 indices", C);
  static thread_local std::vector<BlockEntries> blocks;  // reused: their capacity persists
  const int64_t nb = (R + kListRowBlock - 1) / kListRowBlock;
  if (static_cast<int64_t>(blocks.size()) < nb) blocks.resize(static_cast<size_t>(nb));
  out.R = R;
  out.start.assign(static_cast<size_t>(R + 1), 0);
  BlockEntries* bp = blocks.data();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    BlockEntries& be = bp[b];
    be.idx.clear();
    be.val.clear();
    for (int64_t r = b * kListRowBlock; r < std::min(R, (b + 1) * kListRowBlock); ++r) {
      const size_t before = be.idx.size();
      for_nonzeros(a + r * C, C, [&](int64_t i, float v) {
        be.idx.push_back(static_cast<int32_t>(i));
        be.val.push_back(v);
      });
      out.start[r + 1] = static_cast<int64_t>(be.idx.size() - before);
    }
  }
  for (int64_t r = 0; r < R; ++r) out.start[r + 1] += out.start[r];
  out.idx.resize(static_cast<size_t>(out.start[R]));
  out.val.resize(static_cast<size_t>(out.start[R]));
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t at = out.start[b * kListRowBlock];
    std::copy(bp[b].idx.begin(), bp[b].idx.end(), out.idx.begin() + at);
    std::copy(bp[b].val.begin(), bp[b].val.end(), out.val.begin() + at);
  }
}

// A counting sort by column: counts, offsets, then each thread fills the lists of its own range of
// columns reading every entry in row order, so each list is in row order whoever fills it.
void cols_of(SparseLists& out, const SparseLists& rows, int64_t C) {
  SAELAB_ASSERT(rows.R <= INT32_MAX, "cols_of: {} rows exceed int32 indices", rows.R);
  out.R = C;
  out.start.assign(static_cast<size_t>(C + 1), 0);
  for (int32_t c : rows.idx) ++out.start[c + 1];
  for (int64_t c = 0; c < C; ++c) out.start[c + 1] += out.start[c];
  out.idx.resize(rows.idx.size());
  out.val.resize(rows.val.size());
#pragma omp parallel
  {
    const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t c0 = C * t / T, c1 = C * (t + 1) / T;
    std::vector<int64_t> next(out.start.begin() + c0, out.start.begin() + c1);
    for (int64_t r = 0; r < rows.R; ++r)
      for (int64_t e = rows.start[r]; e < rows.start[r + 1]; ++e) {
        const int64_t c = rows.idx[e];
        if (c < c0 || c >= c1) continue;
        const int64_t pos = next[c - c0]++;
        out.idx[pos] = static_cast<int32_t>(r);
        out.val[pos] = rows.val[e];
      }
  }
}

void pack_panels(Panels& out, const float* m, int64_t R, int64_t d) {
  out.R = R;
  out.d = d;
  out.count = (d + kPanel - 1) / kPanel;
  out.data.resize(static_cast<size_t>(out.count * R * kPanel));
  float* dst = out.data.data();
  const int64_t count = out.count;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t p = 0; p < count; ++p) {
      const int64_t j0 = p * kPanel, w = std::min(kPanel, d - j0);
      float* o = dst + (p * R + r) * kPanel;
      std::copy(m + r * d + j0, m + r * d + j0 + w, o);
      std::fill(o + w, o + kPanel, 0.f);
    }
}

}  // namespace saelab::cpu
