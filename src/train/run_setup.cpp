#include "run_setup.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "checkpoint.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool sparse_step(const TrainConfig& cfg, const SaeConfig& sc, const Backend& be, int64_t step, double l0_ema) {
  if (cfg.decode != "auto") return cfg.decode == "sparse";
  if (sc.architecture == SaeArchitecture::JumpReLU) return false;
  const double l0 = sae_is_topk_family(sc.architecture) ? sc.k : step > 0 ? l0_ema : -1.0;
  return l0 >= 0 && l0 <= be.sparse_step_max_l0_fraction() * sc.d_sae;
}

void check_and_record_config(const TrainConfig& cfg, const TrainingData& data, int processes, bool writer) {
  const int G = cfg.grad_partitions;
  if (G % processes != 0)
    fail("grad_partitions = {} cannot be split over {} processes; use a multiple of the process count", G, processes);
  if (cfg.batch_size % G != 0) fail("batch_size {} must be a multiple of grad_partitions {}", cfg.batch_size, G);
  if (data.max_parts < G)
    fail("activation directory '{}' has {} shard(s); {} data-parallel parts need at least one each (harvest with a "
         "smaller shard size)", cfg.activations, data.max_parts, G);
  if (G > 1 && cfg.resample_every_steps > 0)
    fail("resample_every_steps needs the whole batch in one process; it cannot be combined with {} parts", G);
  if (!writer) return;
  const std::string& out = cfg.out_dir;
  const auto comparable = [](json j) {
    for (const char* k : {"out_dir", "on_nonfinite", "max_skipped_batches", "progress", "device"}) j.erase(k);
    if (j.value("grad_partitions", 1) == 1) j.erase("grad_partitions");
    // Runs from before streamed training existed have none of its keys: at their defaults they are absent.
    const json defaults = train_config_to_json(TrainConfig{});
    for (const char* k : {"model", "corpus", "hook", "context_size", "lm_batch_size", "shuffle"})
      if (!j.contains(k) || j[k] == defaults[k]) j.erase(k);
    return j;
  };
  fs::create_directories(out + "/checkpoints");
  remove_stale_temps(out);
  const json resolved = comparable(train_config_to_json(cfg));
  if (file_exists(out + "/config.json")) {
    const json old = comparable(json::parse(read_file(out + "/config.json")));
    if (old != resolved) fail("'{}' holds a run with another config; use another out_dir (stored: {})", out, old.dump());
  }
  write_file_atomic(out + "/config.json", train_config_to_json(cfg).dump(2) + "\n");
}

void check_resolved_width(const TrainConfig& cfg, const TrainingData& data) {
  if (cfg.d_sae > 0) return;  // train_config_from_json checked these against d_sae
  const SaeArchitecture a = sae_architecture_from_name(cfg.architecture);
  const int F = cfg.expansion_factor * data.d_in;
  if (sae_is_topk_family(a) && cfg.k > F)
    fail("config: k must be at most d_sae = {} (expansion_factor {} × d_in {}), found k = {}", F,
         cfg.expansion_factor, data.d_in, cfg.k);
  if (a != SaeArchitecture::MatryoshkaBatchTopK) return;
  try {
    check_matryoshka_widths(resolved_matryoshka_widths(cfg, F), F);
  } catch (const Error& e) {
    fail("config: {} (d_sae = expansion_factor {} × d_in {})", e.what(), cfg.expansion_factor, data.d_in);
  }
}

SaeConfig sae_config_for(const TrainConfig& cfg, const TrainingData& data, const Backend& be) {
  SaeConfig sc;
  sc.architecture = sae_architecture_from_name(cfg.architecture);
  sc.d_in = data.d_in;
  const int wanted = cfg.d_sae > 0 ? cfg.d_sae : cfg.expansion_factor * data.d_in;
  sc.d_sae = wanted;
  sc.k = cfg.k;
  sc.k_aux = cfg.k_aux;
  sc.aux_coefficient = cfg.aux_coefficient;
  // The top-k family keeps unit-norm decoder rows (dictionary_learning's BatchTopK and Matryoshka do
  // the same; SAELens instead rescales by ‖W_dec,i‖, which is this at unit norm).
  sc.unit_norm_decoder = sae_is_topk_family(sc.architecture);
  sc.jumprelu_bandwidth = cfg.jumprelu_bandwidth;
  sc.jumprelu_init_threshold = cfg.jumprelu_init_threshold;
  if (sc.architecture == SaeArchitecture::MatryoshkaBatchTopK)
    sc.matryoshka_widths = resolved_matryoshka_widths(cfg, wanted);
  if (sc.architecture == SaeArchitecture::Hierarchical) {
    sc.children_per_parent = cfg.children_per_parent;
    sc.gate_ste_width = cfg.gate_ste_width;
    sc.n_parents = cfg.n_parents > 0 ? cfg.n_parents : std::max(1, wanted / (1 + cfg.children_per_parent));
    sc.d_sae = sc.n_parents * (1 + sc.children_per_parent);
  }
  // The first step's choice; the trainer sets it again every step (sparse_step).
  sc.sparse_decode = sparse_step(cfg, sc, be, 0, 0.0);
  sc.model_name = data.model_name;
  sc.hook_name = data.hook_name;
  if (data.hook_name.rfind("blocks.", 0) == 0) sc.hook_layer = std::atoi(data.hook_name.c_str() + 7);
  sc.context_size = data.context_size;
  sc.dataset_path = data.dataset_path;
  return sc;
}

float activation_scale(const TrainConfig& cfg, TrainingData& data, const std::optional<std::string>& latest) {
  if (latest) return static_cast<float>(read_checkpoint_meta(*latest).at("act_scale").get<double>());
  if (cfg.normalize_activations != "expected_average_only_in") return 1.f;
  const ActivationSample s = data.sample(100000, 1);
  return static_cast<float>(std::sqrt(static_cast<double>(data.d_in) / std::max(s.mean_sq_norm, 1e-30)));
}

void init_fresh(Sae& sae, const TrainConfig& cfg, TrainingData& data) {
  const int64_t d = sae.config().d_in;
  std::vector<float> b_dec;
  if (cfg.b_dec_init != "zeros") {
    const ActivationSample s = data.sample(data.sample_tokens, 8192);
    std::vector<float> rows = s.rows;
    for (auto& v : rows) v *= sae.config().act_scale;
    if (cfg.b_dec_init == "mean") {
      b_dec.assign(static_cast<size_t>(d), 0.f);
      for (int64_t r = 0; r < s.n; ++r)
        for (int64_t j = 0; j < d; ++j) b_dec[j] += rows[r * d + j] / static_cast<float>(s.n);
    } else {
      b_dec = geometric_median(rows, s.n, static_cast<int>(d));
    }
  }
  sae.init(cfg.seed, sae.config().unit_norm_decoder ? 1.0f : cfg.decoder_init_norm, b_dec);
}

}  // namespace saelab
