// Sparse probing (SAEBench's sparse_probing eval, method.md §4) over the probe suite (probe_data.hpp):
// texts truncated to context_size tokens (BOS first); hook activations mean-pooled over the tokens
// that are not BOS, EOS or PAD (SAEBench's mask); SAE latents encoded per token, scaled as SAEBench
// scales them (probe_latent_scales), then mean-pooled. Per task: the top-k features by
// |mean(pos) − mean(neg)| on train for every k, an L2 logistic probe (C = 1, sklearn's) on them, test
// accuracy and F1; on all features SAEBench's AdamW probe ("<who>_test_accuracy", its epoch picked
// on test) and the held-out L2 probe ("<who>_all_l2_test_accuracy"). Averages per family, then
// over families. Goldens from SAEBench's own functions: tests/data/saebench_probing.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/eval_core.hpp"
#include "saelab/logistic.hpp"
#include "saelab/probe_data.hpp"
#include "saelab/sae.hpp"

namespace saelab {

class LanguageModel;

struct ProbingConfig {
  int context_size = 128;
  int n_train = 4000, n_test = 1000;  // per task, balanced (SAEBench's sizes); fewer where data is short
  std::vector<int> k_values = {1, 2, 5, 10, 20, 50};
  uint64_t seed = 42;
  int batch_size = 32;
  bool progress = true;
  std::vector<std::string> only_tasks;  // empty: all
};

// Token ids SAEBench's mean-pooling leaves out (activation_collection.get_bos_pad_eos_mask): BOS,
// EOS and PAD wherever they occur. Other special tokens are pooled, as there. -1: no such token.
struct PoolMask {
  int32_t bos = -1, eos = -1, pad = -1;
  bool masked(int32_t id) const { return id >= 0 && (id == bos || id == eos || id == pad); }
};

// Per-latent factor [F] on an SAE's latents before pooling, as SAEBench's latents carry it: it folds
// the decoder norms into the encoder (sae.fold_W_dec_norm(): latents f_i‖W_dec,i‖) for standard and
// hierarchical SAEs, while SAELens refuses to fold a topk SAE (the top k could change), so there
// SAEBench probes the raw latents: factor 1.
std::vector<float> probe_latent_scales(const Sae& sae);

// SAEBench's mean-pooling of one padded batch (create_meaned_model_activations,
// get_sae_meaned_activations): ids[b] are text b's tokens (at most T), act [B, T, d] the hook
// activations. Masked positions are left out; a text with none left pools to zeros (SAEBench
// divides 0 by 0 there). Returns raw [B, d]; pooled[s] [B, F_s] is the mean of SAE s's latents on
// act · input_scales[s], times latent_scales[s] [F_s].
std::vector<float> pool_batch(const std::vector<std::vector<int32_t>>& ids, const std::vector<float>& act, int T, int d,
                              const PoolMask& mask, const std::vector<const Sae*>& saes,
                              const std::vector<float>& input_scales, const std::vector<std::vector<float>>& latent_scales,
                              std::vector<std::vector<float>>& pooled);

// Mean-pooled features of every text: raw [n, d] and SAE latents [n, F] (scaled by probe_latent_scales).
struct PooledFeatures {
  std::vector<float> raw, sae;
  int d = 0, F = 0;
};
PooledFeatures pool_features(const LanguageModel& model, const Sae* sae, const std::string& hook,
                             const std::vector<std::string>& texts, int context_size, int batch_size);

// The same pooling for several SAEs from one LM pass: returns the raw pooled activations [n, d] and
// fills pooled[s] [n, F_s]; SAE s encodes the hook activations multiplied by input_scales[s] (a
// training checkpoint's activation scale; 1 for an export). Each SAE sees the same rows in the same
// batches whatever the other SAEs are, so its pooled features do not depend on them. `timing`
// collects LM time (tokenizing, forwards) and SAE time (encoding, pooling).
std::vector<float> pool_features_multi(const LanguageModel& model, const std::vector<const Sae*>& saes,
                                      const std::vector<float>& input_scales, const std::string& hook,
                                      const std::vector<std::string>& texts, int context_size, int batch_size,
                                      std::vector<std::vector<float>>& pooled, EvalTiming* timing = nullptr);

// pool_features_multi over several text lists in turn (e.g. one per probing task), one LM pass per
// list over its texts that no earlier list held: tasks of one dataset share texts (on the probe
// suite 14% of them), and a shared text is run through the LM once, its features kept only while a
// later list holds it. consume(i, raw [n_i, d], pooled [SAE][n_i, F_s]) gets list i in order.
using PooledListConsumer = std::function<void(size_t list, const std::vector<float>& raw,
                                              const std::vector<std::vector<float>>& pooled)>;
void pool_text_lists(const LanguageModel& model, const std::vector<const Sae*>& saes,
                     const std::vector<float>& input_scales, const std::string& hook,
                     const std::vector<std::vector<std::string>>& lists, int context_size, int batch_size,
                     const PooledListConsumer& consume, EvalTiming* timing = nullptr);

// Columns `cols` of x [n, D], in that order: [n, cols.size()].
std::vector<float> select_columns(const std::vector<float>& x, int64_t n, int D, const std::vector<int>& cols);

// The k features with the largest |mean over positives − mean over negatives| of x [n, D], best first.
std::vector<int> top_k_by_mean_difference(const std::vector<float>& x, const std::vector<int>& y, int D, int k);

struct ProbeScores {
  std::vector<double> acc, f1;  // per k (cfg.k_values), then SAEBench's AdamW probe on all features last
  BinaryScores l2_all;          // the L2 probe (C = 1, held out) on all features: accuracy and f1 only
};
// The AdamW probe's seed for a task: the run's seed and the task's name, so a task's probe is the
// same whichever tasks or SAEs run beside it.
uint64_t probe_seed(uint64_t seed, const std::string& task);
// Top-k selection and probes on one task's features ([n, D] train/test); `seed` seeds the AdamW probe.
ProbeScores probe_task(const std::vector<float>& train, const std::vector<int>& train_y, const std::vector<float>& test,
                       const std::vector<int>& test_y, int D, const std::vector<int>& k_values, uint64_t seed = 42);

// The SAEBench "sparse_probing" result (eval_result_metrics.llm/.sae with accuracies and, beside
// them, F1; eval_result_details per family; per-task results, with each task's train/test/positive
// counts, in eval_result_unstructured).
nlohmann::json sparse_probing(const LanguageModel& model, const Sae& sae, const std::string& hook,
                              const ProbeSuite& suite, const ProbingConfig& cfg, const nlohmann::json& sae_cfg);
// The same for several SAEs at one hook: per task one LM pass over its train and its test texts
// feeds every SAE, the LLM baseline probes are fitted once, then each SAE's probes as above.
// result[s] equals sparse_probing(model, *saes[s], ..., sae_cfgs[s]) but for eval_id and time.
std::vector<nlohmann::json> sparse_probing_multi(const LanguageModel& model, const std::vector<const Sae*>& saes,
                                                 const std::string& hook, const ProbeSuite& suite,
                                                 const ProbingConfig& cfg, const std::vector<nlohmann::json>& sae_cfgs,
                                                 EvalTiming* timing = nullptr);

// Persistence of each probing task's top-k latents across a run's checkpoints (concept stability,
// method.md §4). At every checkpoint, a task's top-k latents are selected as sparse probing selects
// them, on `texts_per_task` of its training texts. A latent of the final top-k persists at a
// checkpoint when one of that checkpoint's top-k latents has decoder cosine > 0.7 with it. Per task
// and k: the persisting fraction at each checkpoint; and the mean over tasks.
nlohmann::json probe_persistence(const LanguageModel& model, const std::string& run_dir, const std::string& hook,
                                 const ProbeSuite& suite, const ProbingConfig& cfg, int texts_per_task = 100,
                                 const std::vector<int>& k_values = {1, 5, 20});
// The same for several runs at one hook: per task one LM pass over its texts feeds every checkpoint
// of every run. result[r] equals probe_persistence(model, run_dirs[r], ...).
std::vector<nlohmann::json> probe_persistence_multi(const LanguageModel& model, const std::vector<std::string>& run_dirs,
                                                    const std::string& hook, const ProbeSuite& suite,
                                                    const ProbingConfig& cfg, int texts_per_task = 100,
                                                    const std::vector<int>& k_values = {1, 5, 20},
                                                    EvalTiming* timing = nullptr);

}  // namespace saelab
