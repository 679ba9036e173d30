// Sparse probing (SAEBench's algorithm, method.md §4) over the probe suite (probe_data.hpp):
// texts truncated to context_size tokens (BOS first), hook activations with special tokens masked;
// SAE latents encoded per token (decoder rows unit-normed: latents scaled by ‖W_dec,i‖), then
// mean-pooled; the LLM baseline mean-pools the raw activations. Per task: the top-k features by
// |mean(pos) − mean(neg)| on train for every k, an L2 logistic probe (C = 1) on them, test accuracy
// and F1; plus a probe on all features. Averages per family, then over families.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/eval_core.hpp"
#include "saelab/probe_data.hpp"
#include "saelab/sae.hpp"

namespace saelab {

class LlamaModel;

struct ProbingConfig {
  int context_size = 128;
  int n_train = 400, n_test = 200;  // per task, balanced
  std::vector<int> k_values = {1, 2, 5, 10, 20, 50};
  uint64_t seed = 42;
  int batch_size = 32;
  bool progress = true;
  std::vector<std::string> only_tasks;  // empty: all
};

// Mean-pooled features of every text: raw [n, d] and SAE latents [n, F] (decoder-norm scaled).
struct PooledFeatures {
  std::vector<float> raw, sae;
  int d = 0, F = 0;
};
PooledFeatures pool_features(const LlamaModel& model, const Sae* sae, const std::string& hook,
                             const std::vector<std::string>& texts, int context_size, int batch_size);

// The same pooling for several SAEs from one LM pass: returns the raw pooled activations [n, d] and
// fills pooled[s] [n, F_s]; SAE s encodes the hook activations multiplied by input_scales[s] (a
// training checkpoint's activation scale; 1 for an export). Each SAE sees the same rows in the same
// batches whatever the other SAEs are, so its pooled features do not depend on them. `timing`
// collects LM time (tokenizing, forwards) and SAE time (encoding, pooling).
std::vector<float> pool_features_multi(const LlamaModel& model, const std::vector<const Sae*>& saes,
                                      const std::vector<float>& input_scales, const std::string& hook,
                                      const std::vector<std::string>& texts, int context_size, int batch_size,
                                      std::vector<std::vector<float>>& pooled, EvalTiming* timing = nullptr);

// pool_features_multi over several text lists in turn (e.g. one per probing task), one LM pass per
// list over its texts that no earlier list held: tasks of one dataset share texts (on the probe
// suite 14% of them), and a shared text is run through the LM once, its features kept only while a
// later list holds it. consume(i, raw [n_i, d], pooled [SAE][n_i, F_s]) gets list i in order.
using PooledListConsumer = std::function<void(size_t list, const std::vector<float>& raw,
                                              const std::vector<std::vector<float>>& pooled)>;
void pool_text_lists(const LlamaModel& model, const std::vector<const Sae*>& saes,
                     const std::vector<float>& input_scales, const std::string& hook,
                     const std::vector<std::vector<std::string>>& lists, int context_size, int batch_size,
                     const PooledListConsumer& consume, EvalTiming* timing = nullptr);

// The k features with the largest |mean over positives − mean over negatives| of x [n, D], best first.
std::vector<int> top_k_by_mean_difference(const std::vector<float>& x, const std::vector<int>& y, int D, int k);

struct ProbeScores {
  std::vector<double> acc, f1;  // per k (cfg.k_values), then "all" last
};
// Top-k selection and probes on one task's features ([n, D] train/test).
ProbeScores probe_task(const std::vector<float>& train, const std::vector<int>& train_y, const std::vector<float>& test,
                       const std::vector<int>& test_y, int D, const std::vector<int>& k_values);

// The SAEBench "sparse_probing" result (eval_result_metrics.llm/.sae with accuracies and, beside
// them, F1; eval_result_details per family; per-task results in eval_result_unstructured).
nlohmann::json sparse_probing(const LlamaModel& model, const Sae& sae, const std::string& hook,
                              const ProbeSuite& suite, const ProbingConfig& cfg, const nlohmann::json& sae_cfg);
// The same for several SAEs at one hook: per task one LM pass over its train and its test texts
// feeds every SAE, the LLM baseline probes are fitted once, then each SAE's probes as above.
// result[s] equals sparse_probing(model, *saes[s], ..., sae_cfgs[s]) but for eval_id and time.
std::vector<nlohmann::json> sparse_probing_multi(const LlamaModel& model, const std::vector<const Sae*>& saes,
                                                 const std::string& hook, const ProbeSuite& suite,
                                                 const ProbingConfig& cfg, const std::vector<nlohmann::json>& sae_cfgs,
                                                 EvalTiming* timing = nullptr);

// Persistence of each probing task's top-k latents across a run's checkpoints (concept stability,
// method.md §4). At every checkpoint, a task's top-k latents are selected as sparse probing selects
// them, on `texts_per_task` of its training texts. A latent of the final top-k persists at a
// checkpoint when one of that checkpoint's top-k latents has decoder cosine > 0.7 with it. Per task
// and k: the persisting fraction at each checkpoint; and the mean over tasks.
nlohmann::json probe_persistence(const LlamaModel& model, const std::string& run_dir, const std::string& hook,
                                 const ProbeSuite& suite, const ProbingConfig& cfg, int texts_per_task = 100,
                                 const std::vector<int>& k_values = {1, 5, 20});
// The same for several runs at one hook: per task one LM pass over its texts feeds every checkpoint
// of every run. result[r] equals probe_persistence(model, run_dirs[r], ...).
std::vector<nlohmann::json> probe_persistence_multi(const LlamaModel& model, const std::vector<std::string>& run_dirs,
                                                    const std::string& hook, const ProbeSuite& suite,
                                                    const ProbingConfig& cfg, int texts_per_task = 100,
                                                    const std::vector<int>& k_values = {1, 5, 20},
                                                    EvalTiming* timing = nullptr);

}  // namespace saelab
