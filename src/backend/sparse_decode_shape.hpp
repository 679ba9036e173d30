// Shapes of the sparse-decode ops (backend.hpp), checked the same way by every backend:
// f [N, F], W or gW [F, d], x (out or dx) [N, d]; and of the sparse encoder backward:
// dpre [N, F], x [N, d], gW [d, F], gb [F] or empty.
#pragma once
#include "saelab/error.hpp"
#include "saelab/tensor.hpp"

namespace saelab {

struct SparseDecodeShape {
  int64_t N, F, d;
};

inline SparseDecodeShape sparse_decode_shape(const TensorView& f, const TensorView& W, const TensorView& x,
                                             const char* op) {
  SAELAB_ASSERT(f.ndim == 2 && W.ndim == 2 && x.ndim == 2, "{}: 2-D views", op);
  const SparseDecodeShape s{f.dim(0), f.dim(1), W.dim(1)};
  SAELAB_ASSERT(W.dim(0) == s.F && x.dim(0) == s.N && x.dim(1) == s.d, "{}: f {}, W {}, x {}", op, f.shape_str(),
                W.shape_str(), x.shape_str());
  return s;
}

inline SparseDecodeShape sparse_encode_shape(const TensorView& gW, const TensorView& gb, const TensorView& dpre,
                                             const TensorView& x) {
  SAELAB_ASSERT(gW.ndim == 2 && dpre.ndim == 2 && x.ndim == 2, "sparse_encode_grad_w: 2-D views");
  const SparseDecodeShape s{dpre.dim(0), dpre.dim(1), x.dim(1)};
  SAELAB_ASSERT(x.dim(0) == s.N && gW.dim(0) == s.d && gW.dim(1) == s.F && (!gb.data || gb.numel() == s.F),
                "sparse_encode_grad_w: gW {}, gb {}, dpre {}, x {}", gW.shape_str(), gb.shape_str(), dpre.shape_str(),
                x.shape_str());
  return s;
}

}  // namespace saelab
