// CUDA kernels behind the Backend interface; the CPU loops in src/backend/cpu are the reference
// each one is compared with (tests/test_backend_equivalence.cpp). Plain kernels: one thread per
// element, a warp per row for row reductions, a block per row where a row needs a softmax or a
// selection. Column reductions over N rows (col_sum, the epilogue's statistics) give each thread a
// column and a chunk of kEpilogueRows rows, summed in row order, and add the chunks in order after,
// as the CPU does; coalesced across the warp, and N / 64 times the blocks of a thread per column.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "cuda_kernels.cuh"

namespace saelab::cuda {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535LL * 16 ? 65535LL * 16 : b));
}

// Grid-stride loop over [0, n).
#define SAELAB_FOR(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

template <typename T>
__device__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024); the result is valid in every thread.
template <typename T>
__device__ T block_sum(T v, T* shared /* [32] */) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < warps; ++w) total += shared[w];  // fixed order
  __syncthreads();
  return total;
}

__device__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = -FLT_MAX;
  for (int w = 0; w < warps; ++w) m = fmaxf(m, shared[w]);
  __syncthreads();
  return m;
}

// ---- LM ops

__global__ void rmsnorm_k(float* y, const float* x, const float* w, int64_t d, float eps) {
  __shared__ float sh[32];
  const float* xr = x + blockIdx.x * d;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, sh);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) y[blockIdx.x * d + i] = xr[i] * inv * w[i];
}

__global__ void layernorm_k(float* y, const float* x, const float* w, const float* b, int64_t d, float eps) {
  __shared__ float sh[32];
  const float* xr = x + blockIdx.x * d;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum += xr[i];
  const float mean = block_sum(sum, sh) / static_cast<float>(d);
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += (xr[i] - mean) * (xr[i] - mean);
  const float inv = 1.0f / sqrtf(block_sum(ss, sh) / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) y[blockIdx.x * d + i] = (xr[i] - mean) * inv * w[i] + b[i];
}

// x [rows, H·hd]; the first 2·half dimensions of each head rotate by pos · inv_freq[i].
__global__ void rope_k(float* x, int64_t rows, int T, int H, int hd, const float* inv_freq, int half,
                       bool interleaved) {
  const int step = interleaved ? 2 : 1, partner = interleaved ? 1 : half;
  SAELAB_FOR(e, rows * H * half) {
    const int i = static_cast<int>(e % half);
    const int h = static_cast<int>((e / half) % H);
    const int64_t r = e / (static_cast<int64_t>(half) * H);
    const float ang = static_cast<float>(r % T) * inv_freq[i];
    const float c = static_cast<float>(cos(static_cast<double>(ang))), sn = static_cast<float>(sin(static_cast<double>(ang)));
    float* v = x + r * static_cast<int64_t>(H) * hd + static_cast<int64_t>(h) * hd;
    const float a = v[i * step], b = v[i * step + partner];
    v[i * step] = a * c - b * sn;
    v[i * step + partner] = a * sn + b * c;
  }
}

// One block per (sequence, head, query position); scores for keys [lo, t] in dynamic shared memory
// (lo > 0 under a sliding window).
__global__ void attention_k(float* out, const float* q, const float* k, const float* v, int T, int H, int Hkv,
                            int hd, float scale, float softcap, int window) {
  extern __shared__ float att[];  // [T]
  __shared__ float sh[32];
  const int t = blockIdx.x % T, h = (blockIdx.x / T) % H;
  const int64_t b = blockIdx.x / (static_cast<int64_t>(T) * H);
  const int kvh = h / (H / Hkv);
  const int lo = window > 0 ? max(0, t - window + 1) : 0;
  const int64_t qw = static_cast<int64_t>(H) * hd, kw = static_cast<int64_t>(Hkv) * hd;
  const float* qr = q + (b * T + t) * qw + static_cast<int64_t>(h) * hd;
  float mx = -FLT_MAX;
  for (int s = lo + threadIdx.x; s <= t; s += blockDim.x) {
    const float* kr = k + (b * T + s) * kw + static_cast<int64_t>(kvh) * hd;
    float a = 0.f;
    for (int i = 0; i < hd; ++i) a += qr[i] * scale * kr[i];
    if (softcap > 0) a = softcap * tanhf(a / softcap);
    att[s] = a;
    mx = fmaxf(mx, a);
  }
  mx = block_max(mx, sh);
  float sum = 0.f;
  for (int s = lo + threadIdx.x; s <= t; s += blockDim.x) {
    att[s] = expf(att[s] - mx);
    sum += att[s];
  }
  sum = block_sum(sum, sh);  // also orders the writes to att before the reads below
  const float inv = 1.0f / sum;
  float* orow = out + (b * T + t) * qw + static_cast<int64_t>(h) * hd;
  for (int i = threadIdx.x; i < hd; i += blockDim.x) {
    float acc = 0.f;
    for (int s = lo; s <= t; ++s) acc += att[s] * inv * v[(b * T + s) * kw + static_cast<int64_t>(kvh) * hd + i];
    orow[i] = acc;
  }
}

// act: 0 SiLU, 1 GELU (tanh), 2 GELU (erf); u may be null (ungated).
__global__ void activation_k(float* o, const float* g, const float* u, int act, int64_t n) {
  SAELAB_FOR(i, n) {
    const float x = g[i];
    float y;
    if (act == 0) y = x / (1.0f + expf(-x));
    else if (act == 1) y = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    else y = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    o[i] = u ? y * u[i] : y;
  }
}
__global__ void softcap_k(float* x, float cap, int64_t n) {
  SAELAB_FOR(i, n) x[i] = cap * tanhf(x[i] / cap);
}
__global__ void add_k(float* y, const float* x, int64_t n) {
  SAELAB_FOR(i, n) y[i] += x[i];
}
__global__ void embedding_k(float* out, const float* table, const int32_t* ids, int64_t N, int64_t d) {
  SAELAB_FOR(e, N * d) out[e] = table[static_cast<int64_t>(ids[e / d]) * d + e % d];
}
__global__ void cross_entropy_k(float* out, const float* logits, const int32_t* targets, int64_t V) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  const float* row = logits + blockIdx.x * V;
  float mx = -FLT_MAX;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, row[i]);
  mx = block_max(mx, shf);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) sum += exp(static_cast<double>(row[i] - mx));
  sum = block_sum(sum, shd);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<float>(log(sum) + mx - row[targets[blockIdx.x]]);
}

// ---- SAE ops

__global__ void sub_row_k(float* y, const float* x, const float* b, int64_t n, int64_t d) {
  SAELAB_FOR(i, n) y[i] = x[i] - b[i % d];
}
__global__ void add_row_k(float* y, const float* b, int64_t n, int64_t d) {
  SAELAB_FOR(i, n) y[i] += b[i % d];
}
// The encoder epilogue (Backend::encode_epilogue). A block per (column group, chunk of
// kEpilogueRows rows); a thread owns one column of the group for the chunk's rows, in row order,
// and writes its statistics for the chunk once (cnt/sum: [chunks, F] partials, or fires/mass
// themselves when there is one chunk). Plain ReLU (P = 0): a group is kThreads columns. Hierarchy:
// a group is `group` parents and their children; the parents go first and leave their activity in
// shared memory for the children's gate, so no thread reads a column another thread writes.
constexpr int kEpilogueGroupParents = kThreads / 2;  // the most parents a group holds (m ≥ 1)

// th [F] (JumpReLU, P = 0 only): f = max(pre, 0)·1[pre > th_i].
__global__ void epilogue_relu_k(float* f, float* pre, const float* b, float* cnt, float* sum, int64_t N, int64_t F,
                                int64_t P, int64_t m, int64_t group, bool children_on, const float* th) {
  __shared__ unsigned char on[kEpilogueRows * kEpilogueGroupParents];  // [row in chunk, parent in group]
  const int64_t cols = P == 0 ? F : P;
  const int64_t p0 = blockIdx.x * group, np = min(group, cols - p0);
  const int64_t r0 = blockIdx.y * kEpilogueRows, nr = min(static_cast<int64_t>(kEpilogueRows), N - r0);
  const int64_t part = gridDim.y > 1 ? blockIdx.y * F : 0;
  auto column = [&](int64_t i, const unsigned char* gate, int64_t gate_stride) {
    float c = 0.f, s = 0.f;
    for (int64_t r = 0; r < nr; ++r) {
      const int64_t e = (r0 + r) * F + i;
      const float v = pre[e] + b[i];
      pre[e] = v;
      const float a = (!gate || gate[r * gate_stride]) && v > 0.f && (!th || v > th[i]) ? v : 0.f;
      f[e] = a;
      c += a > 0.f ? 1.f : 0.f;
      s += a;
      if (P > 0 && !gate) on[r * kEpilogueGroupParents + (i - p0)] = a > 0.f;
    }
    if (cnt) cnt[part + i] = c, sum[part + i] = s;
  };
  for (int64_t t = threadIdx.x; t < np; t += blockDim.x) column(p0 + t, nullptr, 0);
  if (P == 0) return;
  __syncthreads();
  const unsigned char off = 0;
  for (int64_t jl = threadIdx.x; jl < np * m; jl += blockDim.x)
    column(P + p0 * m + jl, children_on ? &on[jl / m] : &off, children_on ? kEpilogueGroupParents : 0);
}

// Column sums over chunks of kEpilogueRows rows, a thread per column, rows in order: sum [chunks, F]
// and, when cnt is given, the count of positive entries (top-k's statistics, col_sum). With one
// chunk the outputs are written directly.
__global__ void chunk_column_sums_k(float* cnt, float* sum, const float* x, int64_t N, int64_t F) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= F) return;
  const int64_t r0 = blockIdx.y * kEpilogueRows, r1 = min(N, r0 + kEpilogueRows);
  float c = 0.f, s = 0.f;
  for (int64_t n = r0; n < r1; ++n) {
    const float a = x[n * F + i];
    c += a > 0.f ? 1.f : 0.f;
    s += a;
  }
  const int64_t part = gridDim.y > 1 ? blockIdx.y * F : 0;
  if (cnt) cnt[part + i] = c;
  sum[part + i] = s;
}

// out = alpha · Σ_chunks sum + beta · out, fires = Σ_chunks cnt (when given), chunks in order.
__global__ void chunk_combine_k(float* fires, float* out, const float* cnt, const float* sum, int64_t chunks,
                                int64_t F, float alpha, float beta) {
  SAELAB_FOR(i, F) {
    float c = 0.f, s = 0.f;
    for (int64_t k = 0; k < chunks; ++k) {
      if (fires) c += cnt[k * F + i];
      s += sum[k * F + i];
    }
    if (fires) fires[i] = c;
    out[i] = alpha * s + (beta == 0.f ? 0.f : beta * out[i]);
  }
}

dim3 chunk_grid(int64_t N, int64_t F) {
  return dim3(static_cast<unsigned>((F + kThreads - 1) / kThreads),
              static_cast<unsigned>((N + kEpilogueRows - 1) / kEpilogueRows));
}

// (value, index) order of the CPU's heap: larger value first, then lower index.
__device__ bool better(float va, int64_t ia, float vb, int64_t ib) { return va > vb || (va == vb && ia < ib); }

// One block per row: k rounds, each picking the best entry ordered after the previous pick, so no
// per-entry flags are needed. Biases are added first (unless a mask is given, as on the CPU).
__global__ void topk_k(float* f, float* pre, const float* b, const float* allowed, int64_t F, int k) {
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  float* row = pre + blockIdx.x * F;
  float* out = f + blockIdx.x * F;
  for (int64_t i = threadIdx.x; i < F; i += blockDim.x) {
    if (!allowed) row[i] += b[i];
    out[i] = 0.f;
  }
  __syncthreads();
  float prev_v = FLT_MAX;
  int64_t prev_i = -1;  // "before everything"
  for (int r = 0; r < k; ++r) {
    float bv = -FLT_MAX;
    int64_t bi = -1;
    for (int64_t i = threadIdx.x; i < F; i += blockDim.x) {
      if (allowed && allowed[i] == 0.f) continue;
      const float v = row[i];
      if (prev_i >= 0 && !better(prev_v, prev_i, v, i)) continue;  // already taken
      if (bi < 0 || better(v, i, bv, bi)) bv = v, bi = i;
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
      if (threadIdx.x < o) {
        const int64_t oi = si[threadIdx.x + o];
        if (oi >= 0 && (si[threadIdx.x] < 0 || better(sv[threadIdx.x + o], oi, sv[threadIdx.x], si[threadIdx.x])))
          sv[threadIdx.x] = sv[threadIdx.x + o], si[threadIdx.x] = oi;
      }
      __syncthreads();
    }
    prev_v = sv[0];
    prev_i = si[0];
    __syncthreads();
    if (prev_i < 0) break;  // fewer than k candidates
    if (threadIdx.x == 0) out[prev_i] = prev_v > 0.f ? prev_v : 0.f;
  }
}

// Sparse decode: a block per row of f (out, df) or per column (gW). Its non-zeros are compacted
// into shared memory in index order (a warp ballot and a prefix over the warps, blockDim entries
// at a time), then used by the block's threads across the d columns, coalesced. out and gW are one
// kernel (sparse_gather_k), accumulating over the compacted batches in order; df's dot products
// are block sums.
constexpr int kDecodeThreads = 256;             // blockDim of the row kernels (8 warps)
constexpr int kDecodeCap = 2 * kDecodeThreads;  // compacted non-zeros held at once (≥ one chunk)

struct RowNonzeros {
  int idx[kDecodeCap];
  float val[kDecodeCap];
  int warp_count[kDecodeThreads / 32];
  int count;
};

// Appends the non-zeros of v[c, c + blockDim) (v[e] = base[e·stride], e < n) to nz in index
// order; calls flush() (every thread) first when they might not fit. Every thread must call it.
template <typename Flush>
__device__ void compact_chunk(const float* base, int64_t stride, int64_t n, int64_t c, RowNonzeros& nz, Flush flush) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int64_t i = c + threadIdx.x;
  const float v = i < n ? base[i * stride] : 0.f;
  const unsigned ballot = __ballot_sync(0xffffffffu, v != 0.f);
  if (lane == 0) nz.warp_count[warp] = __popc(ballot);
  __syncthreads();
  int before = 0, total = 0;
  for (int w = 0; w < warps; ++w) {
    before += w < warp ? nz.warp_count[w] : 0;
    total += nz.warp_count[w];
  }
  if (nz.count + total > kDecodeCap) flush();  // uniform: every thread sees the same count and total
  if (v != 0.f) {
    const int pos = nz.count + before + __popc(ballot & ((1u << lane) - 1u));
    nz.idx[pos] = static_cast<int>(i);
    nz.val[pos] = v;
  }
  __syncthreads();
  if (threadIdx.x == 0) nz.count += total;
  __syncthreads();
}

// out[r, :] = beta·out[r, :] + alpha·Σ_e v_r[e]·M[e, :] over the non-zeros of v_r[e] =
// v[r·row_step + e·stride], e < n, in order: x̂ = f W_dec (rows of f, M = W_dec) and
// ∇W_dec = fᵀ dx̂ (columns of f, M = dx̂). A block per output row.
__global__ void sparse_gather_k(float* out, int64_t R, int64_t d, const float* v, int64_t row_step, int64_t stride,
                                int64_t n, const float* M, float alpha, float beta) {
  __shared__ RowNonzeros nz;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    float* o = out + r * d;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) o[j] = beta == 0.f ? 0.f : beta * o[j];
    if (threadIdx.x == 0) nz.count = 0;
    __syncthreads();
    auto flush = [&] {
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        float acc = o[j];
        for (int t = 0; t < nz.count; ++t) acc += alpha * nz.val[t] * M[static_cast<int64_t>(nz.idx[t]) * d + j];
        o[j] = acc;
      }
      __syncthreads();
      if (threadIdx.x == 0) nz.count = 0;
      __syncthreads();
    };
    for (int64_t c = 0; c < n; c += blockDim.x) compact_chunk(v + r * row_step, stride, n, c, nz, flush);
    flush();
  }
}
__global__ void sparse_decode_grad_f_k(float* df, const float* f, const float* dx, const float* W, int64_t N,
                                       int64_t F, int64_t d) {
  __shared__ RowNonzeros nz;
  __shared__ float sums[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    for (int64_t i = threadIdx.x; i < F; i += blockDim.x) df[n * F + i] = 0.f;
    if (threadIdx.x == 0) nz.count = 0;
    __syncthreads();
    const float* x = dx + n * d;
    auto flush = [&] {
      for (int t = 0; t < nz.count; ++t) {
        const float* w = W + static_cast<int64_t>(nz.idx[t]) * d;
        float part = 0.f;
        for (int64_t j = threadIdx.x; j < d; j += blockDim.x) part += x[j] * w[j];
        part = block_sum(part, sums);
        if (threadIdx.x == 0) df[n * F + nz.idx[t]] = part;
      }
      __syncthreads();
      if (threadIdx.x == 0) nz.count = 0;
      __syncthreads();
    };
    for (int64_t c = 0; c < F; c += blockDim.x) compact_chunk(f + n * F, 1, F, c, nz, flush);
    flush();
  }
}
// out[c, r] = in[r, c] for in [R, C]: 32×32 tiles through shared memory (the +1 column avoids
// bank conflicts), coalesced on both sides. blockDim (32, 8).
__global__ void transpose_k(float* out, const float* in, int64_t R, int64_t C) {
  __shared__ float tile[32][33];
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32, c0 = static_cast<int64_t>(blockIdx.x) * 32;
  for (int y = threadIdx.y; y < 32; y += blockDim.y) {
    const int64_t r = r0 + y, c = c0 + threadIdx.x;
    if (r < R && c < C) tile[y][threadIdx.x] = in[r * C + c];
  }
  __syncthreads();
  for (int y = threadIdx.y; y < 32; y += blockDim.y) {
    const int64_t c = c0 + y, r = r0 + threadIdx.x;
    if (r < R && c < C) out[c * R + r] = tile[threadIdx.x][y];
  }
}
// The hierarchy's ∂L/∂f support (Backend::hierarchy_grad_mask), a thread per entry.
__global__ void hierarchy_grad_mask_k(float* mask, const float* f, const float* pre, int64_t N, int64_t P, int64_t m,
                                      float width) {
  const int64_t F = P + P * m;
  SAELAB_FOR(e, N * F) {
    const int64_t n = e / F, i = e % F;
    bool on = f[e] > 0.f;
    if (!on && width > 0.f && i >= P && pre[e] > 0.f) on = fabsf(pre[n * F + (i - P) / m]) < 0.5f * width;
    mask[e] = on ? 1.f : 0.f;
  }
}
__global__ void col_dot_k(float* out, const float* A, const float* B, int64_t R, int64_t F) {
  SAELAB_FOR(i, F) {
    double acc = 0.0;
    for (int64_t r = 0; r < R; ++r) acc += static_cast<double>(A[r * F + i]) * B[r * F + i];
    out[i] = static_cast<float>(acc);
  }
}

// A warp per row: Σ_j A[i, j] B[i, j] in double, its square root for row norms (A = B = W).
template <bool kSqrt>
__global__ void row_dot_k(float* out, const float* A, const float* B, int64_t F, int64_t d) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= F) return;
  double s = 0.0;
  for (int64_t j = lane; j < d; j += 32) s += static_cast<double>(A[row * d + j]) * B[row * d + j];
  s = warp_sum(s);
  if (lane == 0) out[row] = static_cast<float>(kSqrt ? sqrt(s) : s);
}
__global__ void project_out_rows_k(float* g, const float* W, int64_t F, int64_t d) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= F) return;
  float dot = 0.f;
  for (int64_t j = lane; j < d; j += 32) dot += g[row * d + j] * W[row * d + j];
  dot = __shfl_sync(0xffffffffu, warp_sum(dot), 0);
  for (int64_t j = lane; j < d; j += 32) g[row * d + j] -= dot * W[row * d + j];
}
__global__ void scale_rows_k(float* W, const float* sc, int64_t n, int64_t d) {
  SAELAB_FOR(i, n) W[i] *= sc[i / d];
}

__global__ void relu_backward_k(float* g, const float* f, const float* pen, int64_t n, int64_t F) {
  SAELAB_FOR(i, n) g[i] = f[i] > 0.f ? g[i] + pen[i % F] : 0.f;
}
__global__ void scaled_diff_k(float* y, const float* a, const float* b, float alpha, int64_t n) {
  SAELAB_FOR(i, n) y[i] = alpha * (a[i] - b[i]);
}
__global__ void axpy_k(float* y, const float* x, float alpha, int64_t n) {
  SAELAB_FOR(i, n) y[i] += alpha * x[i];
}
__global__ void scale_k(float* y, float alpha, int64_t n) {
  SAELAB_FOR(i, n) y[i] *= alpha;
}

// A thread per (row, parent): it owns the parent's and its children's entries, so it can read the
// children's raw gradients for the gate term before turning them into pre-activation gradients.
__global__ void hierarchy_backward_k(float* df, const float* f, const float* pre, const float* pen, int64_t N,
                                     int64_t P, int64_t m, float width) {
  const int64_t F = P + P * m;
  SAELAB_FOR(e, N * P) {
    const int64_t n = e / P, p = e % P;
    float* d = df + n * F;
    const float* fr = f + n * F;
    const float* pr = pre + n * F;
    float G = 0.f;
    for (int64_t c = 0; c < m; ++c) {
      const int64_t j = P + p * m + c;
      if (width > 0.f && pr[j] > 0.f) G += (d[j] + pen[j]) * pr[j];
      d[j] = fr[j] > 0.f ? d[j] + pen[j] : 0.f;
    }
    d[p] = fr[p] > 0.f ? d[p] + pen[p] : 0.f;
    if (width > 0.f && fabsf(pr[p]) < 0.5f * width) d[p] += G / width;
  }
}

// A thread per latent i, down its column: out[n, i] and the column's Σ_n sech²(a_i f)·f in a fixed
// order (threads of a warp read consecutive latents of one row).
__global__ void smooth_l0_grad_k(float* out, const float* df, const float* f, const float* a, int64_t N, int64_t F,
                                 float c, float* sech_f) {
  SAELAB_FOR(i, F) {
    const float ai = a[i];
    double acc = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t k = n * F + i;
      if (f[k] > 0.f) {
        const float th = tanhf(ai * f[k]);
        const float sech2 = 1.0f - th * th;
        out[k] = df[k] + c * ai * sech2;
        acc += static_cast<double>(sech2) * f[k];
      } else {
        out[k] = 0.f;
      }
    }
    sech_f[i] = static_cast<float>(acc);
  }
}

__global__ void adam_tangent_k(float* u, const float* g, const float* ga, const float* m, const float* v, int64_t n,
                               double step, double beta1, double beta2, double bc2, double eps) {
  SAELAB_FOR(i, n) {
    const double s = sqrt(static_cast<double>(v[i]) / bc2);
    const double D = s + eps;
    const double dv = s > 0 ? static_cast<double>(m[i]) * (1.0 - beta2) * g[i] * ga[i] / (bc2 * s * D * D) : 0.0;
    u[i] = static_cast<float>(-step * ((1.0 - beta1) * ga[i] / D - dv));
  }
}

__global__ void adam_forward_tangent_k(float* z, float* zm, float* zv, const float* g, const float* dg, const float* m,
                                       const float* v, int64_t n, double step, double beta1, double beta2, double bc2,
                                       double eps) {
  SAELAB_FOR(i, n) {
    const double zmi = beta1 * static_cast<double>(zm[i]) + (1.0 - beta1) * dg[i];
    const double zvi = beta2 * static_cast<double>(zv[i]) + 2.0 * (1.0 - beta2) * g[i] * dg[i];
    const double s = sqrt(static_cast<double>(v[i]) / bc2);
    const double D = s + eps;
    const double dv = s > 0 ? static_cast<double>(m[i]) * zvi / (2.0 * bc2 * s * D * D) : 0.0;
    zm[i] = static_cast<float>(zmi);
    zv[i] = static_cast<float>(zvi);
    z[i] = static_cast<float>(z[i] - step * (zmi / D - dv));
  }
}

__global__ void adam_k(float* p, const float* g, float* m, float* v, int64_t n, float step, float inv_sqrt_bc2,
                       float beta1, float beta2, float eps) {
  SAELAB_FOR(i, n) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

template <bool kTanh>
__global__ void reduce_partials_k(double* partials, const float* x, int64_t n, const float* a, int64_t F) {
  __shared__ double sh[32];
  double s = 0.0;
  SAELAB_FOR(i, n) {
    const double v = x[i];
    if (kTanh) s += v != 0.0 ? tanh(static_cast<double>(a[i % F]) * v) : 0.0;
    else s += v * v;
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

template <bool kTanh>
double reduce(cudaStream_t st, const float* x, int64_t n, const float* a, int64_t F, double* partials) {
  reduce_partials_k<kTanh><<<kReducePartials, kThreads, 0, st>>>(partials, x, n, a, F);
  double host[kReducePartials];
  cudaMemcpyAsync(host, partials, sizeof host, cudaMemcpyDeviceToHost, st);
  cudaStreamSynchronize(st);
  double total = 0.0;
  for (double v : host) total += v;
  return total;
}

}  // namespace

void rmsnorm(cudaStream_t s, float* y, const float* x, const float* w, int64_t N, int64_t d, float eps) {
  if (N > 0) rmsnorm_k<<<static_cast<unsigned>(N), kThreads, 0, s>>>(y, x, w, d, eps);
}
void layernorm(cudaStream_t s, float* y, const float* x, const float* w, const float* b, int64_t N, int64_t d,
               float eps) {
  if (N > 0) layernorm_k<<<static_cast<unsigned>(N), kThreads, 0, s>>>(y, x, w, b, d, eps);
}
void rope(cudaStream_t s, float* x, int64_t rows, int T, int H, int hd, const float* inv_freq, int half,
          bool interleaved) {
  if (half > 0) rope_k<<<blocks_for(rows * H * half), kThreads, 0, s>>>(x, rows, T, H, hd, inv_freq, half, interleaved);
}
void causal_attention(cudaStream_t s, float* out, const float* q, const float* k, const float* v, int64_t B, int T,
                      int H, int Hkv, int hd, float scale, float softcap, int window) {
  const int64_t blocks = B * T * H;
  if (blocks > 0)
    attention_k<<<static_cast<unsigned>(blocks), 128, static_cast<size_t>(T) * sizeof(float), s>>>(
        out, q, k, v, T, H, Hkv, hd, scale, softcap, window);
}
void activation(cudaStream_t s, float* out, const float* x, const float* up, int act, int64_t n) {
  activation_k<<<blocks_for(n), kThreads, 0, s>>>(out, x, up, act, n);
}
void softcap(cudaStream_t s, float* x, float cap, int64_t n) { softcap_k<<<blocks_for(n), kThreads, 0, s>>>(x, cap, n); }
void add_inplace(cudaStream_t s, float* y, const float* x, int64_t n) { add_k<<<blocks_for(n), kThreads, 0, s>>>(y, x, n); }
void embedding(cudaStream_t s, float* out, const float* table, const int32_t* ids, int64_t N, int64_t d) {
  embedding_k<<<blocks_for(N * d), kThreads, 0, s>>>(out, table, ids, N, d);
}
void cross_entropy(cudaStream_t s, float* out, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  if (N > 0) cross_entropy_k<<<static_cast<unsigned>(N), kThreads, 0, s>>>(out, logits, targets, V);
}
void sub_row(cudaStream_t s, float* y, const float* x, const float* b, int64_t N, int64_t d) {
  sub_row_k<<<blocks_for(N * d), kThreads, 0, s>>>(y, x, b, N * d, d);
}
void add_row(cudaStream_t s, float* y, const float* b, int64_t N, int64_t d) {
  add_row_k<<<blocks_for(N * d), kThreads, 0, s>>>(y, b, N * d, d);
}
void encode_epilogue(cudaStream_t s, float* f, float* pre, const float* b, int k, int64_t P, int64_t m,
                     bool children_on, const float* threshold, float* fires, float* mass, float* scratch, int64_t N,
                     int64_t F) {
  if (N == 0 || F == 0) return;
  if (m == 0) P = 0;  // a hierarchy without children is plain ReLU
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  float* cnt = !fires ? nullptr : chunks == 1 ? fires : scratch;
  float* sum = !fires ? nullptr : chunks == 1 ? mass : scratch + chunks * F;
  if (k > 0) {
    topk_rows(s, f, pre, b, nullptr, N, F, k);
    if (fires) chunk_column_sums_k<<<chunk_grid(N, F), kThreads, 0, s>>>(cnt, sum, f, N, F);
  } else {
    const int64_t group = P == 0 ? kThreads : std::max<int64_t>(1, kThreads / (1 + m));
    const int64_t groups = ((P == 0 ? F : P) + group - 1) / group;
    epilogue_relu_k<<<dim3(static_cast<unsigned>(groups), static_cast<unsigned>(chunks)), kThreads, 0, s>>>(
        f, pre, b, cnt, sum, N, F, P, m, group, children_on, threshold);
  }
  if (fires && chunks > 1)
    chunk_combine_k<<<blocks_for(F), kThreads, 0, s>>>(fires, mass, cnt, sum, chunks, F, 1.f, 0.f);
}
void column_stats(cudaStream_t s, const float* f, int64_t N, int64_t F, float* fires, float* mass, float* scratch) {
  if (N == 0 || F == 0) return;
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  float* cnt = chunks == 1 ? fires : scratch;
  float* sum = chunks == 1 ? mass : scratch + chunks * F;
  chunk_column_sums_k<<<chunk_grid(N, F), kThreads, 0, s>>>(cnt, sum, f, N, F);
  if (chunks > 1) chunk_combine_k<<<blocks_for(F), kThreads, 0, s>>>(fires, mass, cnt, sum, chunks, F, 1.f, 0.f);
}
void topk_rows(cudaStream_t s, float* f, float* pre, const float* b, const float* allowed, int64_t N, int64_t F,
               int k) {
  if (N > 0) topk_k<<<static_cast<unsigned>(N), kThreads, 0, s>>>(f, pre, b, allowed, F, k);
}
void col_sum(cudaStream_t s, float* out, const float* x, int64_t N, int64_t F, float alpha, float beta,
             float* scratch) {
  if (F == 0) return;
  const int64_t chunks = (N + kEpilogueRows - 1) / kEpilogueRows;
  if (chunks > 0) chunk_column_sums_k<<<chunk_grid(N, F), kThreads, 0, s>>>(nullptr, scratch, x, N, F);
  chunk_combine_k<<<blocks_for(F), kThreads, 0, s>>>(nullptr, out, nullptr, scratch, chunks, F, alpha, beta);
}
void sparse_decode(cudaStream_t s, float* out, const float* f, const float* W, int64_t N, int64_t F, int64_t d) {
  sparse_gather_k<<<blocks_for(N, 1), kDecodeThreads, 0, s>>>(out, N, d, f, F, 1, F, W, 1.f, 0.f);
}
void sparse_decode_grad_w(cudaStream_t s, float* gW, const float* f, const float* dx, int64_t N, int64_t F, int64_t d,
                          float alpha, float beta) {
  sparse_gather_k<<<blocks_for(F, 1), kDecodeThreads, 0, s>>>(gW, F, d, f, 1, F, N, dx, alpha, beta);
}
void sparse_decode_grad_f(cudaStream_t s, float* df, const float* f, const float* dx, const float* W, int64_t N,
                          int64_t F, int64_t d) {
  sparse_decode_grad_f_k<<<blocks_for(N, 1), kDecodeThreads, 0, s>>>(df, f, dx, W, N, F, d);
}
void sparse_encode_grad_w(cudaStream_t s, float* gW, float* gb, const float* dpre, const float* x, int64_t N,
                          int64_t F, int64_t d, float* scratch) {
  // ∇W_encᵀ [F, d] = dpreᵀ x is the decoder's gather over the columns of dpre; then transposed.
  float* gT = scratch;
  if (F > 0 && d > 0) {
    sparse_gather_k<<<blocks_for(F, 1), kDecodeThreads, 0, s>>>(gT, F, d, dpre, 1, F, N, x, 1.f, 0.f);
    const dim3 grid(static_cast<unsigned>((d + 31) / 32), static_cast<unsigned>((F + 31) / 32));
    transpose_k<<<grid, dim3(32, 8), 0, s>>>(gW, gT, F, d);
  }
  if (gb) col_sum(s, gb, dpre, N, F, 1.f, 0.f, scratch + F * d);
}
void hierarchy_grad_mask(cudaStream_t s, float* mask, const float* f, const float* pre, int64_t N, int64_t P,
                         int64_t m, float width) {
  hierarchy_grad_mask_k<<<blocks_for(N * (P + P * m)), kThreads, 0, s>>>(mask, f, pre, N, P, m, width);
}
void row_norms(cudaStream_t s, float* out, const float* W, int64_t F, int64_t d) {
  row_dot_k<true><<<blocks_for(F * 32), kThreads, 0, s>>>(out, W, W, F, d);
}
void scale_rows(cudaStream_t s, float* W, const float* sc, int64_t F, int64_t d) {
  scale_rows_k<<<blocks_for(F * d), kThreads, 0, s>>>(W, sc, F * d, d);
}
void project_out_rows(cudaStream_t s, float* g, const float* W, int64_t F, int64_t d) {
  project_out_rows_k<<<blocks_for(F * 32), kThreads, 0, s>>>(g, W, F, d);
}
void relu_backward(cudaStream_t s, float* g, const float* f, const float* pen, int64_t N, int64_t F) {
  relu_backward_k<<<blocks_for(N * F), kThreads, 0, s>>>(g, f, pen, N * F, F);
}
void scaled_diff(cudaStream_t s, float* y, const float* a, const float* b, float alpha, int64_t n) {
  scaled_diff_k<<<blocks_for(n), kThreads, 0, s>>>(y, a, b, alpha, n);
}
void axpy(cudaStream_t s, float* y, const float* x, float alpha, int64_t n) {
  axpy_k<<<blocks_for(n), kThreads, 0, s>>>(y, x, alpha, n);
}
void scale(cudaStream_t s, float* y, float alpha, int64_t n) { scale_k<<<blocks_for(n), kThreads, 0, s>>>(y, alpha, n); }
void hierarchy_backward(cudaStream_t s, float* df, const float* f, const float* pre, const float* pen, int64_t N,
                        int64_t P, int64_t m, float width) {
  hierarchy_backward_k<<<blocks_for(N * P), kThreads, 0, s>>>(df, f, pre, pen, N, P, m, width);
}
void smooth_l0_grad(cudaStream_t s, float* out, const float* df, const float* f, const float* a, int64_t N, int64_t F,
                    float c, float* sech_f) {
  smooth_l0_grad_k<<<blocks_for(F), kThreads, 0, s>>>(out, df, f, a, N, F, c, sech_f);
}
void col_dot(cudaStream_t s, float* out, const float* A, const float* B, int64_t R, int64_t F) {
  col_dot_k<<<blocks_for(F), kThreads, 0, s>>>(out, A, B, R, F);
}
void row_dot(cudaStream_t s, float* out, const float* A, const float* B, int64_t F, int64_t d) {
  row_dot_k<false><<<blocks_for(F * 32), kThreads, 0, s>>>(out, A, B, F, d);
}
void adam_tangent(cudaStream_t s, float* u, const float* g, const float* ga, const float* m, const float* v, int64_t n,
                  float lr, float beta1, float beta2, float eps, int64_t t) {
  const double bc1 = 1.0 - pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - pow(static_cast<double>(beta2), static_cast<double>(t));
  adam_tangent_k<<<blocks_for(n), kThreads, 0, s>>>(u, g, ga, m, v, n, lr / bc1, beta1, beta2, bc2, eps);
}
void adam_forward_tangent(cudaStream_t s, float* z, float* zm, float* zv, const float* g, const float* dg,
                          const float* m, const float* v, int64_t n, float lr, float beta1, float beta2, float eps,
                          int64_t t) {
  const double bc1 = 1.0 - pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - pow(static_cast<double>(beta2), static_cast<double>(t));
  adam_forward_tangent_k<<<blocks_for(n), kThreads, 0, s>>>(z, zm, zv, g, dg, m, v, n, lr / bc1, beta1, beta2, bc2, eps);
}
void adam(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
          float eps, int64_t t) {
  const float bc1 = 1.0f - static_cast<float>(pow(beta1, static_cast<double>(t)));
  const float bc2 = 1.0f - static_cast<float>(pow(beta2, static_cast<double>(t)));
  adam_k<<<blocks_for(n), kThreads, 0, s>>>(p, g, m, v, n, lr / bc1, 1.0f / sqrtf(bc2), beta1, beta2, eps);
}
double sum_squares(cudaStream_t s, const float* x, int64_t n, double* partials) {
  return reduce<false>(s, x, n, nullptr, 1, partials);
}
double sum_tanh(cudaStream_t s, const float* x, int64_t n, const float* a, int64_t F, double* partials) {
  return reduce<true>(s, x, n, a, F, partials);
}

}  // namespace saelab::cuda
