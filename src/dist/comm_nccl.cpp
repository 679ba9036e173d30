// NCCL all-gather of GPU tensors for a data-parallel job, set up over the job's MPI communicator
// (the unique id travels by MPI). Compiled only with CUDA, MPI and NCCL (SAELAB_HAVE_NCCL).
// Gathering keeps the job's ordered sum: each rank adds every part in part order itself, so
// NCCL's own reduction order never enters the weights (see data_parallel.hpp).
#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "device_gather.hpp"
#include "saelab/backend.hpp"
#include "saelab/comm.hpp"
#include "saelab/error.hpp"

namespace saelab {

namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) fail("NCCL {} failed: {}", what, ncclGetErrorString(rc));
}
void check_cuda(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) fail("{} failed: {}", what, cudaGetErrorString(rc));
}

// "host/PCI bus id" of this rank's current GPU, in a fixed-size record for the all-gather.
constexpr size_t kKeyBytes = 128;
std::string gpu_key() {
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  char bus[64] = {};
  check_cuda(cudaDeviceGetPCIBusId(bus, sizeof bus, dev), "cudaDeviceGetPCIBusId");
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "/" + bus;
}

class NcclGather final : public DeviceGather {
 public:
  NcclGather(Communicator& comm, const ncclUniqueId& id) {
    check_nccl(ncclCommInitRank(&comm_, comm.size(), id, comm.rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~NcclGather() override {
    cudaStreamDestroy(stream_);
    ncclCommDestroy(comm_);
  }
  void allgather(Backend& be, TensorView in, TensorView out) override {
    be.synchronize();  // `in` is written on the backend's stream; NCCL runs on its own
    check_nccl(ncclAllGather(in.data, out.data, in.nbytes(), ncclChar, comm_, stream_), "ncclAllGather");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize after ncclAllGather");
  }

 private:
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

// nullptr (the host path) when two ranks share a GPU, which NCCL refuses. Collective: every rank
// calls it at the same point and all of them reach the same answer from the same gathered keys.
std::unique_ptr<DeviceGather> make_nccl_gather(Communicator& comm) {
  const size_t P = static_cast<size_t>(comm.size());
  char mine[kKeyBytes] = {};
  std::snprintf(mine, sizeof mine, "%s", gpu_key().c_str());
  std::vector<char> keys(kKeyBytes * P);
  comm.allgather(mine, keys.data(), kKeyBytes);
  std::set<std::string> distinct;
  for (size_t r = 0; r < P; ++r) distinct.insert(std::string(keys.data() + r * kKeyBytes));
  if (distinct.size() < P) {
    if (comm.rank() == 0)
      std::fprintf(stderr,
                   "saelab: %zu processes share %zu GPU(s); gradients are gathered through the host "
                   "(one GPU per process enables NCCL)\n",
                   P, distinct.size());
    return nullptr;
  }
  ncclUniqueId id{};
  if (comm.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  std::vector<char> ids(sizeof id * P);
  comm.allgather(&id, ids.data(), sizeof id);
  std::memcpy(&id, ids.data(), sizeof id);  // rank 0's
  return std::make_unique<NcclGather>(comm, id);
}

}  // namespace saelab
