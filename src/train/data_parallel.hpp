// One training step's forward/backward over a batch split into G equal parts (see TrainConfig::
// grad_partitions). This process computes its parts one after another, every process gathers every
// part's gradients (device to device with NCCL on GPUs) and statistics, and all of them add the
// parts in part order. With G = 1 in one process it is exactly Sae::forward_backward.
#pragma once
#include <vector>

#include "saelab/activation_loader.hpp"
#include "saelab/comm.hpp"
#include "saelab/sae.hpp"

namespace saelab {

// Σ_n ‖x_n‖² and Σ_n x_n over a batch, for its explained variance.
struct BatchMoments {
  double sq = 0;
  std::vector<double> sum;  // [d]
  void add_rows(const float* x, int64_t n, int d);
};

class DataParallelStep {
 public:
  // N: the global batch; G parts, G % comm.size() == 0 and N % G == 0 (checked by the caller).
  DataParallelStep(const Sae& sae, Communicator& comm, int parts, int64_t N);
  int parts() const { return parts_; }
  int first_part() const { return first_; }         // this process's parts: [first_part, first_part + local_parts)
  int local_parts() const { return local_; }
  int64_t part_rows() const { return part_rows_; }  // N / G
  int64_t local_rows() const { return part_rows_ * local_; }

  // x: this process's rows [local_rows, d], part after part. Writes the global gradient into
  // `grads` (and hyper's outputs) and returns the global batch statistics; `moments` gets the
  // global batch's moments. ws.f holds the last local part's latents afterwards.
  SaeBatchStats forward_backward(TensorView x, const float* x_host, const SaeLossTerms& terms, SaeParams& grads,
                                 SaeWorkspace& ws, SaeHyperRequest* hyper, BatchMoments& moments);

 private:
  const Sae& sae_;
  Communicator& comm_;
  int parts_, first_, local_;
  int64_t part_rows_;
  SaeParams part_grads_, part_grad_J_;  // scratch for one part
  std::vector<SaeParams> part_g_alpha_;  // [levels]
  // This process's parts' gradients [local · Pg] and every part's [parts · Pg] on the device, in
  // buffers that only grow (Pg = the parameter count, or (2 + levels) × it with ∇J and g_α per level).
  Tensor local_grads_, all_grads_;
};

// The shards of part g of G: g, g + G, g + 2G, ... (all of them when G = 1).
std::vector<size_t> part_shards(size_t n_shards, int part, int parts);

}  // namespace saelab
