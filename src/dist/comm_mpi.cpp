// MPI_COMM_WORLD behind the Communicator interface; compiled only with MPI (SAELAB_MPI).
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "device_gather.hpp"
#include "saelab/backend.hpp"
#include "saelab/comm.hpp"
#include "saelab/error.hpp"

namespace saelab {

#ifdef SAELAB_HAVE_NCCL
std::unique_ptr<DeviceGather> make_nccl_gather(Communicator& comm);  // src/dist/comm_nccl.cpp
#else
static std::unique_ptr<DeviceGather> make_nccl_gather(Communicator&) { return nullptr; }
#endif

namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) fail("MPI call {} failed with code {}", what, rc);
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      // Only the main thread calls MPI; OpenMP threads never do.
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allgather(const void* in, void* out, size_t bytes) override {
    const size_t chunk = size_t{1} << 30;  // MPI counts are int: at most 1 GiB per rank per call
    if (bytes <= chunk) {
      check(MPI_Allgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes), MPI_BYTE,
                          MPI_COMM_WORLD),
            "MPI_Allgather");
      return;
    }
    std::vector<char> tmp(chunk * static_cast<size_t>(size_));
    for (size_t off = 0; off < bytes; off += chunk) {
      const size_t n = std::min(chunk, bytes - off);
      check(MPI_Allgather(static_cast<const char*>(in) + off, static_cast<int>(n), MPI_BYTE, tmp.data(),
                          static_cast<int>(n), MPI_BYTE, MPI_COMM_WORLD),
            "MPI_Allgather");
      for (size_t r = 0; r < static_cast<size_t>(size_); ++r)
        std::memcpy(static_cast<char*>(out) + r * bytes + off, tmp.data() + r * n, n);
    }
  }
  void allgather_device(Backend& be, TensorView in, TensorView out) override {
    if (in.device == Device::CUDA) {
      // Set up on the first GPU gather, which every rank reaches together.
      if (!nccl_tried_) nccl_ = make_nccl_gather(*this), nccl_tried_ = true;
      if (nccl_) return nccl_->allgather(be, in, out);
    }
    Communicator::allgather_device(be, in, out);
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
  std::unique_ptr<DeviceGather> nccl_;  // null: GPU tensors go through the host
  bool nccl_tried_ = false;
};

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

Communicator* mpi_world_if_launched() {
  static MpiWorld* w = launched_by_mpi() ? new MpiWorld() : nullptr;  // lives until exit
  return w;
}

}  // namespace saelab
