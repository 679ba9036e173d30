#include "train/training_data.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "data_parallel.hpp"
#include "saelab/activation_stream.hpp"
#include "saelab/backend.hpp"
#include "saelab/error.hpp"
#include "saelab/lm.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// A harvested directory: shards read through ActivationLoader, statistics over its rows in shard order.
class DirectoryData : public TrainingData {
 public:
  explicit DirectoryData(const TrainConfig& cfg) : cfg_(cfg), manifest_(read_activation_manifest(cfg.activations)) {
    if (!manifest_.complete)
      fail("activation directory '{}' is incomplete ({} tokens so far); finish it with `saelab harvest`",
           cfg.activations, manifest_.n_tokens);
    d_in = manifest_.d_in;
    model_name = manifest_.model_name;
    hook_name = manifest_.hook_name;
    dataset_path = absolute(cfg.activations);
    context_size = manifest_.settings.value("context_size", 128);
    n_tokens = sample_tokens = manifest_.n_tokens;
    max_parts = static_cast<int>(manifest_.shards.size());
    what = fmt::format("activation directory '{}'", cfg.activations);
  }
  ActivationSample sample(int64_t max_tokens, int64_t max_rows) override {
    return sample_activations(manifest_, max_tokens, max_rows, cfg_.on_nonfinite == "skip_batch");
  }
  std::unique_ptr<MixingBuffer> open(int part, int parts, int64_t buffer_tokens, float scale) override {
    return std::make_unique<ActivationLoader>(manifest_, buffer_tokens, cfg_.seed + static_cast<uint64_t>(part), scale,
                                              cfg_.on_nonfinite == "skip_batch",
                                              part_shards(manifest_.shards.size(), part, parts), cfg_.shuffle);
  }

 private:
  TrainConfig cfg_;
  ActivationManifest manifest_;
};

// Chunks kept from an earlier pass first (moved out as served), then the source itself.
class PrefixedSource : public RowSource {
 public:
  PrefixedSource(std::vector<std::vector<float>> prefix, std::unique_ptr<RowSource> rest)
      : prefix_(std::move(prefix)), rest_(std::move(rest)) {}
  int d() const override { return rest_->d(); }
  void next_chunk(std::vector<float>& rows) override {
    if (next_ < prefix_.size()) {
      rows = std::move(prefix_[next_++]);
      return;
    }
    rest_->next_chunk(rows);
  }

 private:
  std::vector<std::vector<float>> prefix_;  // each [n, d]
  size_t next_ = 0;
  std::unique_ptr<RowSource> rest_;
};

// The LM over the corpus (LmRowSource). The statistics' prefix is forwarded once: its chunks are
// kept and become the first rows the buffer is filled with.
class StreamData : public TrainingData {
 public:
  explicit StreamData(const TrainConfig& cfg) : cfg_(cfg) {
    if (cfg.hook.empty()) fail("streamed training (model = '{}') needs a hook, e.g. hook = \"blocks.0.hook_resid_post\"", cfg.model);
    if (cfg.corpus.empty()) fail("streamed training (model = '{}') needs a corpus (files or directories)", cfg.model);
    if (cfg.total_tokens <= 0)
      fail("streamed training (model = '{}') needs total_tokens > 0: a stream has no end to make one pass of", cfg.model);
    if (cfg.buffer_tokens < cfg.batch_size)
      fail("buffer_tokens = {} is smaller than one batch (batch_size = {}); the mixing buffer must hold at least a "
           "batch: raise buffer_tokens (default {})", cfg.buffer_tokens, cfg.batch_size, TrainConfig{}.buffer_tokens);
    model_ = std::shared_ptr<const LanguageModel>(load_model(cfg.model, backend_named(cfg.device)));
    source_ = std::make_unique<LmRowSource>(model_, settings(0, 1));  // checks hook, context and corpus
    // every part needs a context of its own: checked before training too
    if (cfg.grad_partitions > 1) const LmRowSource last_part(model_, settings(cfg.grad_partitions - 1, cfg.grad_partitions));
    d_in = model_->config().d_model;
    model_name = model_->config().name;
    hook_name = cfg.hook;
    for (const auto& c : cfg.corpus) dataset_path += (dataset_path.empty() ? "" : ",") + absolute(c);
    context_size = cfg.context_size;
    n_tokens = 0;
    sample_tokens = std::min(cfg.buffer_tokens, cfg.total_tokens);
    max_parts = std::numeric_limits<int>::max();  // the corpus' context count, checked above
    what = fmt::format("the stream of model '{}'", model_name);
  }
  ActivationSample sample(int64_t max_tokens, int64_t max_rows) override {
    SAELAB_ASSERT(source_, "statistics after the stream was opened for training");
    ActivationSampler s(d_in, std::min(max_tokens, sample_tokens), max_rows);
    for (size_t i = 0; !s.done(); ++i) {
      if (i == prefix_.size()) {
        prefix_.emplace_back();
        source_->next_chunk(prefix_.back());
      }
      s.add(prefix_[i].data(), static_cast<int64_t>(prefix_[i].size()) / d_in);
    }
    return s.finish();
  }
  // Part g of G reads the LM over its own stride of contexts (StreamSettings::part). With one part
  // a fresh run fills the buffer with the statistics' chunks first; with several the statistics
  // (the unstrided stream's first rows, the same whatever G) were forwarded apart, and each part
  // forwards its own contexts. A resumed run has no statistics' chunks: its buffer replays the
  // stream on row counts (MixingBuffer::skip).
  std::unique_ptr<MixingBuffer> open(int part, int parts, int64_t buffer_tokens, float scale) override {
    SAELAB_ASSERT(part >= 0 && part < parts, "part {} of {}", part, parts);
    std::unique_ptr<RowSource> rows;
    if (parts == 1) {
      SAELAB_ASSERT(source_, "a one-part stream is opened once");
      rows = std::move(source_);
      if (!prefix_.empty()) rows = std::make_unique<PrefixedSource>(std::move(prefix_), std::move(rows));
    } else {
      rows = std::make_unique<LmRowSource>(model_, settings(part, parts));
      source_.reset();  // the statistics are done; their rows are not this part's
      prefix_ = {};
    }
    // Training takes S·N rows, N / G of them per part: the LM forwards no more than those (and a
    // buffer beyond them would be filled with rows never served).
    const int64_t steps = std::max<int64_t>(1, cfg_.total_tokens / cfg_.batch_size);
    const int64_t wanted = steps * (cfg_.batch_size / parts);
    return std::make_unique<MixingBuffer>(std::move(rows), std::min(buffer_tokens, wanted),
                                          cfg_.seed + static_cast<uint64_t>(part), scale, cfg_.shuffle, wanted);
  }

 private:
  StreamSettings settings(int part, int parts) const {
    StreamSettings s;
    s.corpus = cfg_.corpus;
    s.hook_name = cfg_.hook;
    s.context_size = cfg_.context_size;
    s.batch_contexts = cfg_.lm_batch_size;
    s.part = part;
    s.parts = parts;
    return s;
  }
  TrainConfig cfg_;
  std::shared_ptr<const LanguageModel> model_;
  std::unique_ptr<LmRowSource> source_;
  std::vector<std::vector<float>> prefix_;  // chunks forwarded for the statistics, each [n, d]
};

}  // namespace

BatchFeed::BatchFeed(TrainingData& data, const TrainConfig& cfg, int first_part, int local_parts, int64_t first_step)
    : Np(cfg.batch_size / cfg.grad_partitions),
      rows(static_cast<size_t>(local_parts * Np * data.d_in)) {
  const int G = cfg.grad_partitions;
  for (int p = first_part; p < first_part + local_parts; ++p) {
    loaders.push_back(data.open(p, G, G == 1 ? cfg.buffer_tokens : std::max(cfg.buffer_tokens / G, Np), 1.0f));
    loaders.back()->skip(first_step, Np);  // replay: the batch sequence is a function of the seed only
  }
}

const float* BatchFeed::next() {
  for (size_t p = 0; p < loaders.size(); ++p) loaders[p]->next(Np, rows.data() + p * Np * loaders[p]->d());
  return rows.data();
}

const char* const kPassKeys[14] = {
    "activations", "model",         "corpus",     "hook",         "context_size",    "lm_batch_size", "shuffle",
    "seed",        "buffer_tokens", "batch_size", "total_tokens", "grad_partitions", "on_nonfinite",  "device"};

void check_shared_pass(const std::vector<TrainConfig>& cfgs) {
  SAELAB_ASSERT(!cfgs.empty(), "a pass of no runs");
  const json first = train_config_to_json(cfgs.front());
  for (size_t i = 1; i < cfgs.size(); ++i) {
    const json other = train_config_to_json(cfgs[i]);
    for (const char* k : kPassKeys)
      if (first[k] != other[k])
        fail("SAEs trained in one pass read the same batches, so they must agree on '{}': it is {} for '{}' and {} "
             "for '{}'; set it the same, or train them separately",
             k, first[k].dump(), cfgs.front().out_dir, other[k].dump(), cfgs[i].out_dir);
    for (size_t j = 0; j < i; ++j)
      if (fs::weakly_canonical(cfgs[i].out_dir) == fs::weakly_canonical(cfgs[j].out_dir))
        fail("SAEs trained in one pass need an out_dir each; runs {} and {} both write to '{}'", j + 1, i + 1,
             cfgs[i].out_dir);
  }
}

std::unique_ptr<TrainingData> open_training_data(const TrainConfig& cfg) {
  if (!cfg.model.empty() && !cfg.activations.empty())
    fail("set either activations (a harvested directory) or model (stream from the LM), not both");
  if (!cfg.model.empty()) return std::make_unique<StreamData>(cfg);
  if (cfg.activations.empty())
    fail("no activations given: set 'activations' (a harvested directory) in the config, or 'model', 'corpus' and "
         "'hook' to stream them from the LM");
  return std::make_unique<DirectoryData>(cfg);
}

}  // namespace saelab
