// Kernels of the CUDA backend, launched on the backend's stream. Same contracts as the Backend
// interface (include/saelab/backend.hpp); every reduction runs in a fixed order for a given shape,
// so results do not depend on scheduling. Dimension letters: N rows (tokens), d width, F latents.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "saelab/backend.hpp"  // kEpilogueRows

namespace saelab::cuda {

void rmsnorm(cudaStream_t s, float* y, const float* x, const float* w, int64_t N, int64_t d, float eps);
void layernorm(cudaStream_t s, float* y, const float* x, const float* w, const float* b, int64_t N, int64_t d,
               float eps);
void rope(cudaStream_t s, float* x, int64_t rows, int T, int H, int hd, const float* inv_freq, int half,
          bool interleaved);
void causal_attention(cudaStream_t s, float* out, const float* q, const float* k, const float* v, int64_t B, int T,
                      int H, int Hkv, int hd, float scale, float softcap, int window);
void activation(cudaStream_t s, float* out, const float* x, const float* up, int act, int64_t n);  // act: Activation
void softcap(cudaStream_t s, float* x, float cap, int64_t n);
void add_inplace(cudaStream_t s, float* y, const float* x, int64_t n);
void embedding(cudaStream_t s, float* out, const float* table, const int32_t* ids, int64_t N, int64_t d);
void cross_entropy(cudaStream_t s, float* out, const float* logits, const int32_t* targets, int64_t N, int64_t V);

void sub_row(cudaStream_t s, float* y, const float* x, const float* b, int64_t N, int64_t d);
void add_row(cudaStream_t s, float* y, const float* b, int64_t N, int64_t d);
// The encoder epilogue (Backend::encode_epilogue). fires = nullptr: no statistics. scratch: device
// memory of 2 · ceil(N / kEpilogueRows) · F floats (the per-chunk partials).
void encode_epilogue(cudaStream_t s, float* f, float* pre, const float* b, int k, int64_t P, int64_t m,
                     bool children_on, const float* threshold, float* fires, float* mass, float* scratch, int64_t N,
                     int64_t F);
// fires[F] = #{n: f > 0}, mass[F] = Σ_n f, as encode_epilogue's statistics; scratch as there.
void column_stats(cudaStream_t s, const float* f, int64_t N, int64_t F, float* fires, float* mass, float* scratch);
// cuda_threshold_kernels.cu. batch_topk's work: device scratch of batch_topk_work_floats(N) floats
// (a 2^16-bin histogram and per-row tie counts); stats_scratch as encode_epilogue's scratch.
int64_t batch_topk_work_floats(int64_t N);
float batch_topk(cudaStream_t s, float* f, float* pre, const float* b, int64_t keep, float* fires, float* mass,
                 float* work, float* stats_scratch, int64_t N, int64_t F);
// scratch: ceil(N / kEpilogueRows) · F floats.
void jumprelu_backward(cudaStream_t s, float* dlog_threshold, float* df, const float* f, const float* pre,
                       const float* threshold, float bandwidth, float c, float* scratch, int64_t N, int64_t F);
void keep_columns(cudaStream_t s, float* y, const float* x, int64_t c0, int64_t c1, int64_t N, int64_t F);
void topk_rows(cudaStream_t s, float* f, float* pre, const float* b, const float* allowed, int64_t N, int64_t F,
               int k);
// scratch: device memory of ceil(N / kEpilogueRows) · F floats (the per-chunk sums).
void col_sum(cudaStream_t s, float* out, const float* x, int64_t N, int64_t F, float alpha, float beta,
             float* scratch);
void sparse_decode(cudaStream_t s, float* out, const float* f, const float* W, int64_t N, int64_t F, int64_t d);
void sparse_decode_grad_w(cudaStream_t s, float* gW, const float* f, const float* dx, int64_t N, int64_t F, int64_t d,
                          float alpha, float beta);
void sparse_decode_grad_f(cudaStream_t s, float* df, const float* f, const float* dx, const float* W, int64_t N,
                          int64_t F, int64_t d);
// gb = nullptr: no bias gradient. scratch: F·d + max(ceil(N / kEpilogueRows), 1)·F floats (∇W_encᵀ,
// then col_sum's partials).
void sparse_encode_grad_w(cudaStream_t s, float* gW, float* gb, const float* dpre, const float* x, int64_t N,
                          int64_t F, int64_t d, float* scratch);
void hierarchy_grad_mask(cudaStream_t s, float* mask, const float* f, const float* pre, int64_t N, int64_t P,
                         int64_t m, float width);
void row_norms(cudaStream_t s, float* out, const float* W, int64_t F, int64_t d);
void scale_rows(cudaStream_t s, float* W, const float* sc, int64_t F, int64_t d);
void project_out_rows(cudaStream_t s, float* g, const float* W, int64_t F, int64_t d);
void relu_backward(cudaStream_t s, float* g, const float* f, const float* pen, int64_t N, int64_t F);
void scaled_diff(cudaStream_t s, float* y, const float* a, const float* b, float alpha, int64_t n);
void axpy(cudaStream_t s, float* y, const float* x, float alpha, int64_t n);
void scale(cudaStream_t s, float* y, float alpha, int64_t n);
void hierarchy_backward(cudaStream_t s, float* df, const float* f, const float* pre, const float* pen, int64_t N,
                        int64_t P, int64_t m, float width);
void smooth_l0_grad(cudaStream_t s, float* out, const float* df, const float* f, const float* a, int64_t N, int64_t F,
                    float c, float* sech_f);
void col_dot(cudaStream_t s, float* out, const float* A, const float* B, int64_t R, int64_t F);
void row_dot(cudaStream_t s, float* out, const float* A, const float* B, int64_t F, int64_t d);
void adam_tangent(cudaStream_t s, float* u, const float* g, const float* ga, const float* m, const float* v, int64_t n,
                  float lr, float beta1, float beta2, float eps, int64_t t);
void adam_forward_tangent(cudaStream_t s, float* z, float* zm, float* zv, const float* g, const float* dg,
                          const float* m, const float* v, int64_t n, float lr, float beta1, float beta2, float eps,
                          int64_t t);
void adam(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
          float eps, int64_t t);

// Deterministic Σ x² and Σ tanh(a[k mod F]·x[k]) (x ≠ 0) in double: fixed grid partials, summed in order.
// `partials` is device scratch of kReducePartials doubles.
constexpr int kReducePartials = 256;
double sum_squares(cudaStream_t s, const float* x, int64_t n, double* partials);
double sum_tanh(cudaStream_t s, const float* x, int64_t n, const float* a, int64_t F, double* partials);

}  // namespace saelab::cuda
