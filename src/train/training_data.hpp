// Where a training run's activations come from, as the trainer sees them: a harvested activation
// directory, or the LM itself (streamed, nothing on disk). Either gives the run's width and
// provenance, the statistics act_scale and b_dec are computed from (a prefix of its row stream, by
// the same ActivationSampler), and per data-parallel part a MixingBuffer of batches. The trainer
// never asks which one it has.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

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

// Checks the config's data settings (a complete directory; or a model with its hook, a corpus,
// total_tokens and a buffer of at least one batch) and opens them. Throws Error on bad settings.
std::unique_ptr<TrainingData> open_training_data(const TrainConfig& cfg);

}  // namespace saelab
