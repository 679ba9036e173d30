// The processes of one data-parallel job (`mpirun -np P saelab train ...`). Only what training
// needs: rank, size, an all-gather (of host memory, and of a backend's tensors) and a barrier. Sums over ranks are not MPI_Allreduce (whose
// order is the library's choice): every rank gathers all buffers and adds them in rank order, so
// every rank holds bit-identical parameters and a single process adding the same parts in the same
// order gets the same bits.
#pragma once
#include <cstddef>

#include "saelab/tensor.hpp"

namespace saelab {

class Backend;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // out [size · bytes]: rank r's `in` at offset r · bytes, on every rank.
  virtual void allgather(const void* in, void* out, size_t bytes) = 0;
  // out [size · n] on be's device, rank r's `in` [n] at offset r · n, on every rank (contiguous
  // views of one dtype). CPU tensors are gathered in place. GPU tensors go device to device through
  // NCCL where the build has it and every rank has a GPU of its own; otherwise through the host.
  virtual void allgather_device(Backend& be, TensorView in, TensorView out);
  virtual void barrier() = 0;
  // Ends the whole job with this exit code. A rank that fails alone must not return normally:
  // MPI_Finalize would wait for ranks that are themselves waiting for it in an all-gather.
  [[noreturn]] virtual void abort(int code) = 0;
  // Every rank calls this with its own failure state; true when any rank failed, so that all ranks
  // stop together instead of the healthy ones waiting in the next all-gather.
  bool any(bool mine);
};

// MPI_COMM_WORLD when this build has MPI (SAELAB_MPI) and the process was started by an MPI
// launcher; otherwise a job of one process. MPI is initialised on first use, finalised at exit.
Communicator& world();

}  // namespace saelab
