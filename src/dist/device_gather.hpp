// An all-gather of GPU tensors that bypasses the host (NCCL), behind the MPI communicator's
// allgather_device. Internal to src/dist.
#pragma once
#include "saelab/tensor.hpp"

namespace saelab {

class Backend;

class DeviceGather {
 public:
  virtual ~DeviceGather() = default;
  // Same contract as Communicator::allgather_device, for tensors on the GPU.
  virtual void allgather(Backend& be, TensorView in, TensorView out) = 0;
};

}  // namespace saelab
