// CUDA kernels of the thresholded SAEs (src/backend/cpu/cpu_threshold_ops.cpp is the reference):
// the batch top-k's radix select, JumpReLU's backward and Matryoshka's column mask. The select's
// histograms count with integer atomics, whose result does not depend on their order, and the
// host reads them to pick the bins, so CPU and CUDA keep the same entries. Ties at the cut are
// ranked by flat index from per-row counts prefix-summed on the host.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cuda_kernels.cuh"

namespace saelab::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kBins = 1 << 16;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535LL * 16 ? 65535LL * 16 : b));
}

#define SAELAB_FOR(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// A positive float's bits order as the float; 0 marks "not a candidate".
__device__ inline uint32_t key_of(float v) { return v > 0.f ? __float_as_uint(v) : 0u; }

__global__ void add_bias_k(float* pre, const float* b, int64_t n, int64_t F) {
  SAELAB_FOR(e, n) pre[e] += b[e % F];
}

// shift 16: bins of the high half; shift 0: low half of keys whose high half is `hi`.
__global__ void key_histogram_k(unsigned long long* hist, const float* x, int64_t n, int shift, uint32_t hi) {
  SAELAB_FOR(e, n) {
    const uint32_t k = key_of(x[e]);
    if (k == 0 || (shift == 0 && (k >> 16) != hi)) continue;
    atomicAdd(&hist[(k >> shift) & 0xFFFFu], 1ull);
  }
}

// ties[r] = #{i: key(x[r, i]) == T}; a block per row, summed by one thread per warp lane in order.
__global__ void row_ties_k(long long* ties, const float* x, int64_t F, uint32_t T) {
  __shared__ long long part[kThreads];
  const float* row = x + blockIdx.x * F;
  long long c = 0;
  for (int64_t i = threadIdx.x; i < F; i += blockDim.x) c += key_of(row[i]) == T;
  part[threadIdx.x] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long total = 0;
    for (int t = 0; t < kThreads; ++t) total += part[t];
    ties[blockIdx.x] = total;
  }
}

// f = x where key > T, or key == T when every tie is kept; 0 elsewhere.
__global__ void keep_above_k(float* f, const float* x, int64_t n, uint32_t T, bool all_ties, bool any) {
  SAELAB_FOR(e, n) {
    const uint32_t k = key_of(x[e]);
    f[e] = any && (k > T || (all_ties && k == T)) ? x[e] : 0.f;
  }
}

// The first `need` ties in flat order: one thread walks one row from its starting rank.
__global__ void keep_ties_k(float* f, const float* x, const long long* start, int64_t N, int64_t F, uint32_t T,
                            long long need) {
  SAELAB_FOR(r, N) {
    long long rank = start[r];
    for (int64_t i = 0; i < F && rank < need; ++i) {
      const float v = x[r * F + i];
      if (key_of(v) == T) f[r * F + i] = rank++ < need ? v : 0.f;
    }
  }
}

__global__ void jumprelu_chunks_k(float* part, float* df, const float* f, const float* pre, const float* th,
                                  float bandwidth, float c, int64_t N, int64_t F) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= F) return;
  const int64_t r0 = blockIdx.y * kEpilogueRows, r1 = min(N, r0 + kEpilogueRows);
  float acc = 0.f;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t e = r * F + i;
    const float u = (pre[e] - th[i]) / bandwidth;
    if (u > -0.5f && u < 0.5f) acc += th[i] * df[e] + c;
    df[e] = f[e] > 0.f ? df[e] : 0.f;
  }
  part[blockIdx.y * F + i] = acc;
}

__global__ void jumprelu_combine_k(float* out, const float* part, const float* th, float bandwidth, int64_t chunks,
                                   int64_t F) {
  SAELAB_FOR(i, F) {
    float s = 0.f;
    for (int64_t ch = 0; ch < chunks; ++ch) s += part[ch * F + i];
    out[i] = -(th[i] / bandwidth) * s;
  }
}

__global__ void keep_columns_k(float* y, const float* x, int64_t c0, int64_t c1, int64_t n, int64_t F) {
  SAELAB_FOR(e, n) {
    const int64_t i = e % F;
    y[e] = i >= c0 && i < c1 ? x[e] : 0.f;
  }
}

// Scanning bins from the top: the bin where the count reaches `take`; `above` gets the count above it.
uint32_t crossing_bin(const std::vector<unsigned long long>& hist, int64_t take, int64_t& above) {
  int64_t cum = 0;
  for (int64_t b = kBins - 1; b >= 0; --b) {
    if (cum + static_cast<int64_t>(hist[b]) >= take) {
      above = cum;
      return static_cast<uint32_t>(b);
    }
    cum += static_cast<int64_t>(hist[b]);
  }
  SAELAB_ASSERT(false, "batch_topk: {} keys requested of {}", take, cum);
}

std::vector<unsigned long long> histogram(cudaStream_t s, unsigned long long* hist, const float* x, int64_t n,
                                          int shift, uint32_t hi) {
  cudaMemsetAsync(hist, 0, kBins * sizeof(unsigned long long), s);
  key_histogram_k<<<blocks_for(n), kThreads, 0, s>>>(hist, x, n, shift, hi);
  std::vector<unsigned long long> host(static_cast<size_t>(kBins));
  cudaMemcpyAsync(host.data(), hist, kBins * sizeof(unsigned long long), cudaMemcpyDeviceToHost, s);
  cudaStreamSynchronize(s);
  return host;
}

}  // namespace

int64_t batch_topk_work_floats(int64_t N) { return 2 * (kBins + N + 1); }  // u64 histogram + i64 [N + 1]

float batch_topk(cudaStream_t s, float* f, float* pre, const float* b, int64_t keep, float* fires, float* mass,
                 float* work, float* stats_scratch, int64_t N, int64_t F) {
  const int64_t n = N * F;
  if (n == 0) return 0.f;
  auto* hist = reinterpret_cast<unsigned long long*>(work);
  auto* ties = reinterpret_cast<long long*>(work + 2 * kBins);  // [N + 1]: counts, then starts
  add_bias_k<<<blocks_for(n), kThreads, 0, s>>>(pre, b, n, F);
  const std::vector<unsigned long long> high = histogram(s, hist, pre, n, 16, 0);
  int64_t positives = 0;
  for (unsigned long long c : high) positives += static_cast<int64_t>(c);
  const int64_t take = std::min(keep, positives);
  uint32_t T = 0;
  int64_t need = 0;
  if (take > 0) {
    int64_t above_hi = 0, above_lo = 0;
    const uint32_t hi = crossing_bin(high, take, above_hi);
    const uint32_t lo = crossing_bin(histogram(s, hist, pre, n, 0, hi), take - above_hi, above_lo);
    T = (hi << 16) | lo;
    need = take - above_hi - above_lo;
  }
  int64_t total_ties = 0;
  std::vector<long long> start(static_cast<size_t>(N) + 1, 0);
  if (take > 0) {
    row_ties_k<<<static_cast<unsigned>(N), kThreads, 0, s>>>(ties + 1, pre, F, T);
    cudaMemcpyAsync(start.data() + 1, ties + 1, static_cast<size_t>(N) * sizeof(long long), cudaMemcpyDeviceToHost, s);
    cudaStreamSynchronize(s);
    for (int64_t r = 0; r < N; ++r) start[r + 1] += start[r];
    total_ties = start[N];
  }
  const bool all_ties = need == total_ties;
  keep_above_k<<<blocks_for(n), kThreads, 0, s>>>(f, pre, n, T, all_ties, take > 0);
  if (!all_ties) {
    cudaMemcpyAsync(ties, start.data(), static_cast<size_t>(N + 1) * sizeof(long long), cudaMemcpyHostToDevice, s);
    keep_ties_k<<<blocks_for(N), kThreads, 0, s>>>(f, pre, ties, N, F, T, static_cast<long long>(need));
  }
  if (fires) column_stats(s, f, N, F, fires, mass, stats_scratch);
  cudaStreamSynchronize(s);  // `start` lives on this stack until the copy above has run
  float t = 0.f;
  std::memcpy(&t, &T, sizeof t);
  return take > 0 ? t : 0.f;
}

void jumprelu_backward(cudaStream_t s, float* dlog_threshold, float* df, const float* f, const float* pre,
                       const float* threshold, float bandwidth, float c, float* scratch, int64_t N, int64_t F) {
  if (F == 0) return;
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  if (chunks > 0)
    jumprelu_chunks_k<<<dim3(static_cast<unsigned>((F + kThreads - 1) / kThreads), static_cast<unsigned>(chunks)),
                        kThreads, 0, s>>>(scratch, df, f, pre, threshold, bandwidth, c, N, F);
  jumprelu_combine_k<<<blocks_for(F), kThreads, 0, s>>>(dlog_threshold, scratch, threshold, bandwidth, chunks, F);
}

void keep_columns(cudaStream_t s, float* y, const float* x, int64_t c0, int64_t c1, int64_t N, int64_t F) {
  if (N * F > 0) keep_columns_k<<<blocks_for(N * F), kThreads, 0, s>>>(y, x, c0, c1, N * F, F);
}

}  // namespace saelab::cuda
