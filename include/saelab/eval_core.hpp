// Core SAE evaluation (method.md §4) as SAEBench's "core" eval computes it (sae_bench/evals/core/
// main.py of sae-bench 0.6.0; tests/data/saebench_core holds goldens its own functions produced on
// saelab's tensors). With the SAE spliced into the LM at its hook:
//   ce_loss_score = (CE_zero_ablation − CE_sae) / (CE_zero_ablation − CE_clean)
//   kl_div_score  = (KL_zero_ablation − KL_sae) / KL_zero_ablation   (KL of the run from the clean one)
// Ignored positions (BOS, EOS, pad and other special tokens: SAEBench's ignore_tokens) keep their
// activation in the spliced run (exclude_special_tokens_from_reconstruction) and are counted by no
// metric; the zero-ablated run zeroes every position, BOS included. CE at position t (predicting
// token t+1) and KL at t are counted where token t is not ignored, and averaged over all counted
// positions of all batches.
#pragma once
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/sae.hpp"
#include "saelab/saebench_json.hpp"

namespace saelab {

class LanguageModel;
class Tokenizer;
struct CoreBatchView;

struct CoreEvalConfig {
  std::vector<std::string> corpus;  // held-out text, kept out of SAE training
  int context_size = 128;
  int batch_size = 16;   // contexts per forward
  int n_contexts = 64;
  double dense_threshold = 0.1;
  bool progress = true;
  // Called after each reconstruction's spliced forward of each batch (tests hand the batches to
  // SAEBench's code: scripts/reference/saebench_core_goldens.py).
  std::function<void(const CoreBatchView&)> on_batch;
};

struct CoreEvalResult {
  // Counted positions: of the sparsity/variance metrics (`tokens`), of CE (t < T−1) and of KL; and
  // all positions of the evaluated contexts (SAEBench's token_stats count those).
  int64_t tokens = 0, ce_tokens = 0, kl_tokens = 0, total_tokens = 0;
  double ce_clean = 0, ce_sae = 0, ce_zero = 0, kl_sae = 0, kl_zero = 0;
  // SAEBench's definitions (see ReconSums); saelab's own beside them:
  //   mse_per_element = Σ‖x − x̂‖² / (N·d);  explained_variance_centered = 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²
  //   over all counted tokens (x̄ their mean), the textbook R², independent of the batching.
  double mse = 0, explained_variance = 0, explained_variance_legacy = 0, cossim = 0, l0 = 0, l1 = 0;
  double mse_per_element = 0, explained_variance_centered = 0;
  double l2_norm_in = 0, l2_norm_out = 0, l2_ratio = 0, relative_reconstruction_bias = 0;
  // misc_metrics: from the densities (calculate_misc_metrics) and the weights (0 without weights).
  double frac_alive = 0, freq_over_1_percent = 0, freq_over_10_percent = 0;
  double normalized_freq_over_1_percent = 0, normalized_freq_over_10_percent = 0;
  double average_max_encoder_cosine_sim = 0, average_max_decoder_cosine_sim = 0;
  double dead_fraction = 0, dense_fraction = 0;
  std::vector<float> density;  // [F] fraction of counted tokens with latent > 0
  double ce_loss_score() const { return (ce_zero - ce_sae) / (ce_zero - ce_clean); }
  double kl_div_score() const { return kl_zero > 0 ? (kl_zero - kl_sae) / kl_zero : 0.0; }
};

// One batch as the evaluation saw it, for one reconstruction. Rows are b·T + t.
struct CoreBatchView {
  int B = 0, T = 0, d = 0, F = 0;
  int64_t V = 0;
  size_t recon = 0;                         // which reconstruction
  const std::vector<int32_t>* tokens = nullptr;       // [B·T]
  const std::vector<uint8_t>* keep = nullptr;         // [B·T] 1 where the token is not ignored
  const std::vector<float>* x = nullptr;              // [B·T, d] hook activation of the clean run
  const std::vector<float>* xhat = nullptr;           // [n, d] reconstruction of the kept rows, in row order
  const std::vector<float>* latents = nullptr;        // [n, F] their latents, folded (× ‖W_dec,i‖)
  const std::vector<float>* logits_clean = nullptr;   // [B·T, V]
  const std::vector<float>* logits_zero = nullptr;    // [B·T, V] every position's activation zeroed
  const std::vector<float>* logits_sae = nullptr;     // [B·T, V] kept rows spliced with xhat
};

// ---- SAEBench core's arithmetic on tensors, exposed so that tests compare it with SAEBench ----

// SAEBench's ignore_tokens {BOS, EOS, pad}; saelab adds any other special token.
bool is_ignored_token(const Tokenizer& tok, int32_t id);

// The clean run's log-probabilities and probabilities [rows, V], in f64, shared by every run.
struct CleanLogits {
  std::vector<double> lp, p;
};
CleanLogits clean_logits(const std::vector<float>& logits, int64_t rows, int64_t V);

// CE and KL sums over counted positions (get_downstream_reconstruction_metrics: CE masked by
// mask[:, :-1], KL by mask; torch.cat(...).mean() over all batches = sum / count).
struct CeKlSums {
  double ce = 0, kl = 0;
  int64_t ce_n = 0, kl_n = 0;
};
// One batch: logits, logits_clean [B·T, V], tokens and keep [B·T]. Null logits: the clean run itself
// (its CE; KL 0).
void add_ce_kl(CeKlSums& s, const CleanLogits& clean, const std::vector<float>* logits,
               const std::vector<int32_t>& tokens, const std::vector<uint8_t>& keep, int B, int T, int64_t V);

// get_sparsity_and_variance_metrics' sums, fed one batch at a time: several of its metrics depend on
// the batch (mse divides by the batch's token count, the legacy explained variance centres on the
// batch mean, relative_reconstruction_bias and the new explained variance average per-batch
// values), so saelab's batches are SAEBench's: batch_size contexts, counted rows only.
//   mse                        = mean_t ‖x_t − x̂_t‖² / n_batch
//   explained_variance         = 1 − mean_b mean_t ‖r‖² / (A − (A/d)²), A = mean_b mean_t ‖x‖²
//                                (SAEBench's formula as written: it squares x before averaging
//                                per dimension, so this is not the centred R²)
//   explained_variance_legacy  = mean_t (1 − ‖r_t‖² / ‖x_t − x̄_batch‖²)
//   cossim, l2_ratio           = mean_t cos(x, x̂), mean_t ‖x̂‖/‖x‖ (‖x‖ < 1e-4 divides by 1)
//   relative_reconstruction_bias = mean_b (mean_t ‖x̂‖² / mean_t ⟨x, x̂⟩)
//   l0, l1                     = mean_t #(f ≠ 0), mean_t Σ_i f_i on folded latents f_i‖W_dec,i‖
struct ReconSums {
  int d = 0, F = 0;
  int64_t n = 0;
  int batches = 0;
  double l2_in = 0, l2_out = 0, l2_ratio = 0, l0 = 0, l1 = 0, mse = 0, ev_legacy = 0, cossim = 0;
  double rrb = 0, mean_sq = 0, mean_resid = 0;  // per-batch terms, summed over batches
  double sse = 0, sum_sq = 0;                   // saelab's pooled sums
  std::vector<double> sum_x;                    // [d]
  std::vector<double> fires;                    // [F] counted tokens with latent > 0
};
ReconSums recon_sums(int d, int F);
// One batch's counted rows: x, xhat [n, d], folded latents [n, F].
void add_recon_batch(ReconSums& s, const float* x, const float* xhat, const float* lat, int64_t n);
// Fills r's reconstruction, shrinkage, sparsity and density fields (and misc_metrics' density ones).
void finish_recon(const ReconSums& s, double dense_threshold, CoreEvalResult& r);

// SAEBench's calculate_max_cosine_sim averaged over latents: rows [F, d] (one latent's encoder or
// decoder vector each), mean_i max_{j≠i} cos(row_i, row_j). 0 for F < 2.
double average_max_cosine_sim(const std::vector<float>& rows, int64_t F, int d);

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
CoreEvalResult eval_core(const LanguageModel& model, const Sae& sae, const std::string& hook, const CoreEvalConfig& cfg);

// Several SAEs at one hook over the same contexts: per batch one clean and one zero-ablated forward
// shared by all, then one spliced forward per SAE. result[s] equals eval_core(model, *saes[s], ...)
// (the same contexts, batches and arithmetic; test_eval_core compares them).
std::vector<CoreEvalResult> eval_core_multi(const LanguageModel& model, const std::vector<const Sae*>& saes,
                                            const std::string& hook, const CoreEvalConfig& cfg,
                                            EvalTiming* timing = nullptr);

// The same measurements with any reconstruction in place of an SAE: recon(x [n, d]) -> x̂ [n, d]
// and latents [n, F] (F may be 0). Used by eval_core and by tests (identity, zeros).
using Reconstruct = std::function<void(const std::vector<float>& x, int64_t n, std::vector<float>& xhat,
                                       std::vector<float>& latents)>;
CoreEvalResult eval_core_with(const LanguageModel& model, const std::string& hook, int F, const Reconstruct& recon,
                              const CoreEvalConfig& cfg);
// Several reconstructions (F[s] latents each) sharing the clean and zero-ablated forwards.
std::vector<CoreEvalResult> eval_core_multi_with(const LanguageModel& model, const std::string& hook,
                                                 const std::vector<int>& F, const std::vector<Reconstruct>& recons,
                                                 const CoreEvalConfig& cfg, EvalTiming* timing = nullptr);

// SAEBench "core" result JSON (CoreEvalOutput): the envelope of saebench_json.hpp, eval_config as
// CoreEvalConfig (dataset: the corpus paths joined by ", "; the list under dataset_files),
// eval_result_metrics{model_behavior_preservation, model_performance_preservation,
// reconstruction_quality, shrinkage, sparsity, misc_metrics, token_stats} with saelab's extras
// (mse_per_element, explained_variance_centered, dead/dense fractions, counted-token counts) beside
// SAEBench's fields, and no per-feature details.
nlohmann::json core_result_json(const CoreEvalResult& r, const CoreEvalConfig& cfg, const nlohmann::json& sae_cfg,
                                 const std::string& model_name);

}  // namespace saelab
