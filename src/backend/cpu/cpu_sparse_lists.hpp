// The compact forms the CPU sparse ops (cpu_sparse_ops.cpp) work on:
//  - SparseLists: the non-zeros of a dense [R, C] matrix as R lists of (column, value), each in
//    column order (CSR), or transposed to C lists of (row, value) in row order (CSC);
//  - Panels: a dense [R, d] matrix repacked as ⌈d / kPanel⌉ panels [R, kPanel] (zero-padded), so
//    the rows a product gathers for one panel are contiguous and fit in L2 (4096 rows × 64 B =
//    256 KB), instead of 2 KB rows strided through L3 (a 2 KB stride also maps every row's
//    first line to the same few L2 sets).
// Both are built in a fixed order whatever the thread count, so the ops that read them stay
// bit-reproducible. Buffers are thread-local and reused across calls: at N = 4096, F = 9216 a fresh
// 20 MB buffer per call costs more in page faults than the copy into it.
#pragma once
#include <cstdint>
#include <vector>

namespace saelab::cpu {

// Panel width in floats: one 64-byte cache line, and the vector type the inner loops use. GCC
// warns that passing a 64-byte vector by value has a different ABI with AVX-512 on; every function
// taking or returning one is inline here, so no call crosses that boundary.
#pragma GCC diagnostic ignored "-Wpsabi"
constexpr int64_t kPanel = 16;
typedef float PanelVec __attribute__((vector_size(kPanel * sizeof(float))));

// The hot loops of the sparse ops are compiled three times, for AVX-512, AVX2 and the baseline
// x86-64, and the loader picks the best the CPU has (GCC's target_clones, through an ifunc); the
// build itself stays -march=x86-64. The clones give the same bits: cpu_sparse_ops.cpp is compiled
// with -ffp-contract=off (CMakeLists.txt), so no clone fuses a·b + c into an FMA; the lanes of
// PanelVec are independent; and lane sums use a fixed tree. ASan builds (scripts/test_sanitizers.sh) keep the baseline only: an ifunc
// resolver runs before ASan has mapped its shadow memory.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__)
#define SAELAB_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SAELAB_SIMD_CLONES
#endif

// R lists; list r is entries [start[r], start[r + 1]) of idx / val.
struct SparseLists {
  int64_t R = 0;
  std::vector<int64_t> start;  // [R + 1]
  std::vector<int32_t> idx;    // [nnz]
  std::vector<float> val;      // [nnz]
};

// The raw arrays of a SparseLists, as the cloned kernels take them.
struct ListView {
  const int64_t* start;
  const int32_t* idx;
  const float* val;
};
inline ListView view_of(const SparseLists& L) { return {L.start.data(), L.idx.data(), L.val.data()}; }

// The non-zeros (v != 0; −0.0 counts as zero) of each row of a [R, C] in column order.
void rows_of(SparseLists& out, const float* a, int64_t R, int64_t C);
// The transpose of `rows` (lists over columns [0, C), rows in order).
void cols_of(SparseLists& out, const SparseLists& rows, int64_t C);

// m [R, d] as panels: panel p is [R, kPanel] at data + p·R·kPanel, columns p·kPanel + [0, kPanel)
// of m, zeros past d.
struct Panels {
  int64_t R = 0, d = 0, count = 0;
  std::vector<float> data;  // [count, R, kPanel]
  const float* panel(int64_t p) const { return data.data() + p * R * kPanel; }
};
void pack_panels(Panels& out, const float* m, int64_t R, int64_t d);

// One panel's lane block as a vector (unaligned load / store).
inline PanelVec load_panel(const float* p) {
  PanelVec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace saelab::cpu
