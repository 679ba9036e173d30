// Where a training run's activations come from, as the trainer sees them: a harvested activation
// directory, or the LM itself (streamed, nothing on disk). Either gives the run's width and
// provenance, the statistics act_scale and b_dec are computed from (a prefix of its row stream, by
// the same ActivationSampler), and per data-parallel part a MixingBuffer of batches. The trainer
// never asks which one it has.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "saelab/activation_loader.hpp"
#include "saelab/train.hpp"

namespace saelab {

class TrainingData {
 public:
  virtual ~TrainingData() = default;
  // Statistics of the row stream's first min(max_tokens, sample_tokens) rows (sample_activations).
  virtual ActivationSample sample(int64_t max_tokens, int64_t max_rows) = 0;
  // The batches of data-parallel part `part` of `parts`, through a buffer of buffer_tokens rows,
  // each row multiplied by `scale`.
  virtual std::unique_ptr<MixingBuffer> open(int part, int parts, int64_t buffer_tokens, float scale) = 0;

  int d_in = 0;
  std::string model_name, hook_name, dataset_path;
  int context_size = 128;
  int64_t n_tokens = 0;       // rows in one pass over a directory; 0 for a stream (total_tokens sets the length)
  int64_t sample_tokens = 0;  // the prefix b_dec's sample is drawn from: a directory's every row, a stream's first buffer
  int max_parts = 1;          // data-parallel parts it can feed
  std::string what;           // for messages: "activation directory 'DIR'" or "the stream of model 'M'"
};

// The batches one pass of training reads, this process's share: a loader per data-parallel part
// [first_part, first_part + local_parts), replayed up to `first_step`. Rows come unscaled: each run
// of the pass multiplies them by its own act_scale, which gives the bits a loader scaling them would
// (one float product either way), so runs that share a feed see exactly the rows they would alone.
struct BatchFeed {
  BatchFeed(TrainingData& data, const TrainConfig& cfg, int first_part, int local_parts, int64_t first_step);
  const float* next();  // this process's rows of the next batch [local_parts · Np, d], part after part
  std::vector<std::unique_ptr<MixingBuffer>> loaders;  // one per local part
  int64_t Np;                                          // rows per part: batch_size / grad_partitions
  std::vector<float> rows;                             // [local_parts · Np, d]
};

// The keys that decide which rows a run's batches hold (its data, the stream's batching, the mixing
// buffer, the shuffle seed, the batch and the run's length, the parts). Runs trained in one pass
// (train_saes) must agree on every one of them.
extern const char* const kPassKeys[14];
// Refuses runs that cannot share one pass: one error naming the first key two of them set
// differently, or an out_dir two of them share.
void check_shared_pass(const std::vector<TrainConfig>& cfgs);

// Checks the config's data settings (a complete directory; or a model with its hook, a corpus,
// total_tokens and a buffer of at least one batch) and opens them. Throws Error on bad settings.
std::unique_ptr<TrainingData> open_training_data(const TrainConfig& cfg);

}  // namespace saelab
