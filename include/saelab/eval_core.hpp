// Core SAE evaluation (method.md §4; SAEBench's "core" eval): reconstruction quality, sparsity,
// shrinkage, latent health, and model behaviour with the SAE spliced into the LM at its hook:
//   ce_loss_score = (CE_zero_ablation − CE_sae) / (CE_zero_ablation − CE_clean)
//   kl_div_score  = (KL_zero_ablation − KL_sae) / KL_zero_ablation   (KL of the spliced run from the clean one)
// Positions holding special tokens (BOS) are neither spliced nor counted: SAEs are not trained on them.
#pragma once
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

class LlamaModel;

struct CoreEvalConfig {
  std::vector<std::string> corpus;  // held-out text, kept out of SAE training
  int context_size = 128;
  int batch_size = 16;   // contexts per forward
  int n_contexts = 64;
  double dense_threshold = 0.1;
  bool progress = true;
};

struct CoreEvalResult {
  int64_t tokens = 0;  // spliced / measured positions
  double ce_clean = 0, ce_sae = 0, ce_zero = 0, kl_sae = 0, kl_zero = 0;
  double mse = 0, explained_variance = 0, cossim = 0, l0 = 0, l1 = 0;
  double l2_norm_in = 0, l2_norm_out = 0, relative_reconstruction_bias = 0;
  double dead_fraction = 0, dense_fraction = 0;
  std::vector<float> density;  // [F] firing frequency over the evaluated tokens
  double ce_loss_score() const { return (ce_zero - ce_sae) / (ce_zero - ce_clean); }
  double kl_div_score() const { return kl_zero > 0 ? (kl_zero - kl_sae) / kl_zero : 0.0; }
};

// Where an evaluation's wall time went: LM forwards (with their host copies), SAE encode/decode, and
// the rest (metric arithmetic on the host, probe fits). The multi-SAE entry points add to it.
struct EvalTiming {
  double lm_s = 0, sae_s = 0, other_s = 0;
};
// Adds the seconds of its lifetime to *slot (nothing for a null slot).
class TimeInto {
 public:
  explicit TimeInto(double* slot) : slot_(slot), t0_(std::chrono::steady_clock::now()) {}
  ~TimeInto() {
    if (slot_) *slot_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  TimeInto(const TimeInto&) = delete;
  TimeInto& operator=(const TimeInto&) = delete;

 private:
  double* slot_;
  std::chrono::steady_clock::time_point t0_;
};

// Evaluates `sae` (weights taking raw activations, e.g. an SAELens export) at its hook.
CoreEvalResult eval_core(const LlamaModel& model, const Sae& sae, const std::string& hook, const CoreEvalConfig& cfg);

// Several SAEs at one hook over the same contexts: per batch one clean and one zero-ablated forward
// shared by all, then one spliced forward per SAE. result[s] equals eval_core(model, *saes[s], ...)
// (the same contexts, batches and arithmetic; test_eval_core compares them).
std::vector<CoreEvalResult> eval_core_multi(const LlamaModel& model, const std::vector<const Sae*>& saes,
                                            const std::string& hook, const CoreEvalConfig& cfg,
                                            EvalTiming* timing = nullptr);

// The same measurements with any reconstruction in place of an SAE: recon(x [n, d]) -> x̂ [n, d]
// and latents [n, F] (F may be 0). Used by eval_core and by tests (identity, zeros).
using Reconstruct = std::function<void(const std::vector<float>& x, int64_t n, std::vector<float>& xhat,
                                       std::vector<float>& latents)>;
CoreEvalResult eval_core_with(const LlamaModel& model, const std::string& hook, int F, const Reconstruct& recon,
                              const CoreEvalConfig& cfg);
// Several reconstructions (F[s] latents each) sharing the clean and zero-ablated forwards.
std::vector<CoreEvalResult> eval_core_multi_with(const LlamaModel& model, const std::string& hook,
                                                 const std::vector<int>& F, const std::vector<Reconstruct>& recons,
                                                 const CoreEvalConfig& cfg, EvalTiming* timing = nullptr);

// SAEBench "core" result JSON (eval_type_id, eval_config, eval_id, datetime_epoch_millis,
// eval_result_metrics{model_behavior_preservation, model_performance_preservation,
// reconstruction_quality, shrinkage, sparsity, misc_metrics, token_stats}, eval_result_details,
// sae_cfg_dict).
nlohmann::json core_result_json(const CoreEvalResult& r, const CoreEvalConfig& cfg, const nlohmann::json& sae_cfg,
                                 const std::string& model_name);

// Common SAEBench envelope fields: a random eval_id (UUID v4) and the current time in ms.
std::string new_eval_id();
int64_t now_epoch_millis();

}  // namespace saelab
