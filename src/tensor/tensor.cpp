#include "saelab/tensor.hpp"

#include <utility>

#include "saelab/backend.hpp"

namespace saelab {

static void fill_contiguous(TensorView& v) {
  int64_t stride = 1;
  for (int i = v.ndim - 1; i >= 0; --i) {
    v.strides[i] = stride;
    stride *= v.shape[i];
  }
}

TensorView TensorView::make(void* data, const std::vector<int64_t>& shape, DType dtype, Device device) {
  SAELAB_ASSERT(shape.size() <= kMaxDims, "at most {} dims", kMaxDims);
  TensorView v;
  v.data = data;
  v.ndim = static_cast<int>(shape.size());
  for (int i = 0; i < v.ndim; ++i) {
    SAELAB_ASSERT(shape[i] >= 0, "negative dimension");
    v.shape[i] = shape[i];
  }
  v.dtype = dtype;
  v.device = device;
  fill_contiguous(v);
  return v;
}

TensorView TensorView::make(void* data, std::initializer_list<int64_t> shape, DType dtype, Device device) {
  return make(data, std::vector<int64_t>(shape), dtype, device);
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

int64_t TensorView::dim(int i) const {
  if (i < 0) i += ndim;
  SAELAB_ASSERT(i >= 0 && i < ndim, "dim {} of a {}-d tensor", i, ndim);
  return shape[i];
}

bool TensorView::is_contiguous() const {
  int64_t stride = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != stride) return false;
    stride *= shape[i];
  }
  return true;
}

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

TensorView TensorView::rows(int64_t begin, int64_t end) const {
  SAELAB_ASSERT(ndim >= 1 && begin >= 0 && begin <= end && end <= shape[0], "rows [{}, {}) of {}", begin, end,
                shape_str());
  TensorView v = *this;
  v.data = static_cast<char*>(data) + begin * strides[0] * static_cast<int64_t>(dtype_size(dtype));
  v.shape[0] = end - begin;
  return v;
}

TensorView TensorView::reshape(std::initializer_list<int64_t> new_shape) const {
  SAELAB_ASSERT(is_contiguous(), "reshape of a non-contiguous view");
  TensorView v = make(data, new_shape, dtype, device);
  SAELAB_ASSERT(v.numel() == numel(), "reshape {} -> {} changes numel", shape_str(), v.shape_str());
  return v;
}

float* TensorView::f32() const {
  SAELAB_ASSERT(dtype == DType::F32, "expected f32, have {}", dtype_name(dtype));
  return static_cast<float*>(data);
}

int32_t* TensorView::i32() const {
  SAELAB_ASSERT(dtype == DType::I32, "expected i32, have {}", dtype_name(dtype));
  return static_cast<int32_t*>(data);
}

Tensor::Tensor(const std::vector<int64_t>& shape, DType dtype, Device device) {
  view_ = TensorView::make(nullptr, shape, dtype, device);
  view_.data = backend_for(device).alloc(view_.nbytes());
}

Tensor::~Tensor() {
  if (view_.data) backend_for(view_.device).free(view_.data);
}

Tensor::Tensor(Tensor&& o) noexcept : view_(o.view_) { o.view_ = TensorView{}; }

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    if (view_.data) backend_for(view_.device).free(view_.data);
    view_ = o.view_;
    o.view_ = TensorView{};
  }
  return *this;
}

}  // namespace saelab
