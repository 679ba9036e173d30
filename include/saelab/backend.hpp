// The one backend interface. Model and SAE code call these ops on TensorViews and never ask which
// backend runs them. Every op has a case in tests/test_backend_equivalence.cpp, which runs it on
// every available backend against a plain double-precision reference.
// All float ops take f32, contiguous views on the backend's device.
#pragma once
#include <memory>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

// How RoPE pairs the dimensions of a head: llama2.c rotates adjacent pairs (2i, 2i+1);
// Hugging Face Llama rotates (i, i + hd/2) ("rotate_half").
enum class RopeStyle : uint8_t { Interleaved, Half };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual const char* name() const = 0;

  // Memory. alloc returns zeroed memory aligned to 64 bytes.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void upload(TensorView dst, const void* host_src) = 0;   // dst.nbytes() bytes
  virtual void download(void* host_dst, TensorView src) = 0;       // src.nbytes() bytes
  virtual void copy(TensorView dst, TensorView src) = 0;           // same device, same shape
  virtual void synchronize() {}

  // c[M,N] = alpha * op(a) @ op(b) + beta * c, op(x) = x or xᵀ. Row-major.
  virtual void gemm(TensorView c, TensorView a, bool trans_a, TensorView b, bool trans_b, float alpha,
                    float beta) = 0;
  // y[N,d] = x / sqrt(mean(x²) + eps) * w[d]
  virtual void rmsnorm(TensorView y, TensorView x, TensorView w, float eps) = 0;
  // x[B*T, H*hd] rotated in place; the position of row r is r % T.
  virtual void rope(TensorView x, int T, int H, float theta, RopeStyle style) = 0;
  // out[B*T, H*hd] = softmax(q kᵀ / sqrt(hd), causal) v, q [B*T, H*hd], k,v [B*T, Hkv*hd],
  // query head h reads key/value head h / (H / Hkv) (grouped-query attention).
  virtual void causal_attention(TensorView out, TensorView q, TensorView k, TensorView v, int T, int H,
                                int Hkv) = 0;
  // out = silu(gate) * up, elementwise
  virtual void swiglu(TensorView out, TensorView gate, TensorView up) = 0;
  // y += x, elementwise
  virtual void add_inplace(TensorView y, TensorView x) = 0;
  // out[N,d] = table[ids[n], :]; ids i32 [N]; ids outside [0, V) are an internal error.
  virtual void embedding(TensorView out, TensorView table, TensorView ids) = 0;
  // out[N] = logsumexp(logits[n,:]) - logits[n, target[n]]; targets i32 [N].
  virtual void cross_entropy(TensorView out, TensorView logits, TensorView targets) = 0;
};

Backend& cpu_backend();
// The backend owning memory of `device`; throws Error if this build has no such backend.
Backend& backend_for(Device device);
// CPU always; CUDA when built with -DSAELAB_CUDA=ON and a GPU is present.
std::vector<Backend*> available_backends();

// Convenience: a host f32 vector into a new tensor on `be`, and back.
Tensor to_device(Backend& be, const std::vector<int64_t>& shape, const float* host);
std::vector<float> to_host_f32(Backend& be, TensorView v);

}  // namespace saelab
