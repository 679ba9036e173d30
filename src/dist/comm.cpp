// The single-process communicator, and which one world() is. This file is the one place that knows
// whether MPI is compiled in.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "saelab/backend.hpp"
#include "saelab/comm.hpp"
#include "saelab/error.hpp"

namespace saelab {

#ifdef SAELAB_HAVE_MPI
Communicator* mpi_world_if_launched();  // src/dist/comm_mpi.cpp; nullptr outside an MPI launcher
#else
static Communicator* mpi_world_if_launched() { return nullptr; }
#endif

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allgather(const void* in, void* out, size_t bytes) override {
    if (bytes) std::memcpy(out, in, bytes);
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

}  // namespace

void Communicator::allgather_device(Backend& be, TensorView in, TensorView out) {
  SAELAB_ASSERT(in.is_contiguous() && out.is_contiguous() && in.dtype == out.dtype && in.device == out.device &&
                    out.nbytes() == in.nbytes() * static_cast<size_t>(size()),
                "allgather_device: in {} out {} over {} processes", in.shape_str(), out.shape_str(), size());
  if (in.device == Device::CPU) {
    allgather(in.data, out.data, in.nbytes());
    return;
  }
  std::vector<char> host_in(in.nbytes()), host_out(out.nbytes());
  be.download(host_in.data(), in);
  allgather(host_in.data(), host_out.data(), in.nbytes());
  be.upload(out, host_out.data());
}

bool Communicator::any(bool mine) {
  const char flag = mine ? 1 : 0;
  std::vector<char> all(static_cast<size_t>(size()));
  allgather(&flag, all.data(), 1);
  for (char c : all)
    if (c) return true;
  return false;
}

Communicator& world() {
  if (Communicator* c = mpi_world_if_launched()) return *c;
  static SingleProcess single;
  return single;
}

}  // namespace saelab
