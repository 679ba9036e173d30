// Which backends exist in this build. The CUDA backend registers itself only when compiled in
// (-DSAELAB_CUDA=ON); this file is the one place that knows that.
#include <vector>

#include "saelab/backend.hpp"

namespace saelab {

#ifdef SAELAB_HAVE_CUDA_BACKEND
Backend* cuda_backend_if_present();  // defined in src/backend/cuda; nullptr without a GPU
#else
static Backend* cuda_backend_if_present() { return nullptr; }
#endif

Backend& backend_for(Device device) {
  if (device == Device::CPU) return cpu_backend();
  if (Backend* be = cuda_backend_if_present()) return *be;
  fail("no CUDA device available (this build {} the CUDA backend)",
#ifdef SAELAB_HAVE_CUDA_BACKEND
       "has"
#else
       "lacks; rebuild with -DSAELAB_CUDA=ON for"
#endif
  );
}

Backend& backend_named(const std::string& name) {
  if (name == "cpu") return cpu_backend();
  if (name == "cuda") return backend_for(Device::CUDA);
  fail("device must be cpu or cuda, got '{}'", name);
}

std::vector<Backend*> available_backends() {
  std::vector<Backend*> out{&cpu_backend()};
  if (Backend* be = cuda_backend_if_present()) out.push_back(be);
  return out;
}

Tensor to_device(Backend& be, const std::vector<int64_t>& shape, const float* host) {
  Tensor t(shape, DType::F32, be.device());
  be.upload(t.view(), host);
  return t;
}

std::vector<float> to_host_f32(Backend& be, TensorView v) {
  SAELAB_ASSERT(v.dtype == DType::F32, "to_host_f32 of {}", dtype_name(v.dtype));
  std::vector<float> out(static_cast<size_t>(v.numel()));
  be.download(out.data(), v);
  return out;
}

}  // namespace saelab
