// Free functions behind the CPU backend's SAE ops (cpu_sae_ops.cpp) and attention; the class in cpu_backend.cpp
// forwards to them.
#pragma once
#include "saelab/backend.hpp"

namespace saelab::cpu {
// cpu_attention.cpp: q [B·T, H·hd], k and v [B·T, Hkv·hd] -> out [B·T, H·hd]
void causal_attention(TensorView out, TensorView q, TensorView k, TensorView v, int T, int H, int Hkv,
                      const AttentionOptions& opt);
void sub_row(TensorView y, TensorView x, TensorView b);
void add_row(TensorView y, TensorView b);
void encode_epilogue(TensorView f, TensorView pre, TensorView b, const EncoderActivation& act, TensorView fires,
                     TensorView mass);
void topk_rows(TensorView f, TensorView pre, TensorView b, int k, TensorView allowed);
// cpu_threshold_ops.cpp
float batch_topk(TensorView f, TensorView pre, TensorView b, int64_t keep, TensorView fires, TensorView mass);
void jumprelu_backward(TensorView dlog_threshold, TensorView df, TensorView f, TensorView pre, TensorView threshold,
                       float bandwidth, float c);
void keep_columns(TensorView y, TensorView x, int64_t c0, int64_t c1);
void col_sum(TensorView out, TensorView x, float alpha, float beta);
// cpu_sparse_ops.cpp
void sparse_decode(TensorView out, TensorView f, TensorView W);
void sparse_decode_grad_w(TensorView gW, TensorView f, TensorView dx, float alpha, float beta);
void sparse_decode_grad_f(TensorView df, TensorView f, TensorView dx, TensorView W);
void sparse_encode_grad_w(TensorView gW, TensorView gb, TensorView dpre, TensorView x);
void hierarchy_grad_mask(TensorView mask, TensorView f, TensorView pre, int n_parents, int children_per_parent,
                         float width);
void row_norms(TensorView out, TensorView W);
void scale_rows(TensorView W, TensorView s);
void project_out_rows(TensorView g, TensorView W);
void relu_backward(TensorView g, TensorView f, TensorView pen);
void scaled_diff(TensorView y, TensorView a, TensorView b, float alpha);
double sum_squares(TensorView x);
void axpy(TensorView y, TensorView x, float alpha);
void scale(TensorView y, float alpha);
void adam(TensorView p, TensorView g, TensorView m, TensorView v, float lr, float beta1, float beta2, float eps,
          int64_t t);
void hierarchy_backward(TensorView df, TensorView f, TensorView pre, TensorView pen, int n_parents,
                        int children_per_parent, float width);
void smooth_l0_grad(TensorView out, TensorView df, TensorView f, TensorView a, float c, TensorView sech_f);
double sum_tanh(TensorView f, TensorView a);
void col_dot(TensorView out, TensorView A, TensorView B);
void row_dot(TensorView out, TensorView A, TensorView B);
void adam_forward_tangent(TensorView z, TensorView zm, TensorView zv, TensorView g, TensorView dg, TensorView m,
                          TensorView v, float lr, float beta1, float beta2, float eps, int64_t t);
void adam_tangent(TensorView u, TensorView g, TensorView g_alpha, TensorView m, TensorView v, float lr, float beta1,
                  float beta2, float eps, int64_t t);
}  // namespace saelab::cpu
