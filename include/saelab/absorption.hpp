// Feature absorption, SAEBench's first-letter task (sae_bench/evals/absorption, sae-bench 0.6.0):
//  1. vocabulary: every token whose text (leading space allowed) is ASCII letters only (vocab.py);
//  2. prompts: 10 in-context examples "{word} has the first letter: W" from the same pool, then the
//     word's own "{word} has the first letter:", '\n'-separated with a leading '\n' (prompting.py);
//     the LM's hook activation at prompt_token_pos from the end (the word's token) is the feature;
//  3. a 26-way one-vs-rest logistic probe on those activations, 80/20 word split, trained as
//     probing.train_multi_probe (Adam, BCE with pos_weight, L2 coupled into the gradient,
//     exponential LR decay, 50 epochs);
//  4. k-sparse probing on the SAE latents: an L1-penalised 26-way probe picks, per letter and k, the
//     top-k latents by weight; an sklearn L2 logistic (C = 1, class_weight="balanced") on them;
//     test F1 per k; the "split features" of a letter are the top-k of the last k whose F1 rose by
//     more than f1_jump_threshold over the previous best (k_sparse_probing.py);
//  5. for every test word the probe gets right, a fresh prompt, and on its activation the absorption
//     fraction and full absorption (feature_absorption_calculator.py); means per letter over the
//     letters whose probe F1 exceeds min_probe_f1 (main.py).
// Goldens from SAEBench's own functions: tests/data/saebench_absorption.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "saelab/sae.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

class LanguageModel;

struct AbsorptionConfig {
  // SAEBench's AbsorptionEvalConfig defaults.
  std::string prompt_template = "{word} has the first letter:";
  int prompt_token_pos = -6;  // the word's token, counted from the prompt's end
  int max_icl_examples = 10;
  double train_fraction = 0.8;
  int max_k_value = 10;
  double f1_jump_threshold = 0.03;
  double min_probe_f1 = 0.6;  // min_GT_probe_f1: letters with a weaker probe are left out
  int min_letters = 20;       // min_feats_for_eval: fewer such letters and there is no result
  // The first-letter probe (common.train_and_save_probes -> train_linear_probe_for_task).
  int probe_batch_size = 64, probe_epochs = 50;
  double probe_lr = 1e-2, probe_end_lr = 1e-5, probe_weight_decay = 1e-4;
  // The L1 probe of k-sparse probing (train_sparse_multi_probe).
  double ksparse_l1_decay = 0.01, ksparse_lr = 1e-2, ksparse_end_lr = 1e-5, ksparse_l2_decay = 1e-6;
  int ksparse_batch_size = 4096, ksparse_epochs = 50;
  // The calculator's thresholds (feature_absorption.py constants).
  double full_absorption_cos = 0.025;   // top projecting latent's cosine with the probe
  double fraction_cos = 0.1;            // each potential absorber's cosine with the probe
  double projection_proportion = 0.4;   // absorbers' share of the probe projection
  int max_absorbing_latents = 3;
  int topk_feats = 10;
  // saelab's own knobs (not in SAEBench).
  int min_words_per_letter = 2;  // every letter needs this many words in the vocabulary
  int64_t max_words = 0;         // > 0: a seeded subsample of the vocabulary (faster, not SAEBench's)
  int llm_batch_size = 32;
  uint64_t seed = 42;
  bool progress = true;
};

inline constexpr int kLetters = 26;

// ---- vocabulary and prompts (absorption_prompts.cpp) ----

// SAEBench's get_alpha_tokens: per vocabulary id, the token's text (the tokenizer's decode of that
// one id, with the leading space a "▁" stands for kept, as vocab.convert_tokens_to_string does),
// kept when it is one or more ASCII letters after at most one leading space. One entry per id, so a
// text two ids decode to appears twice, as in SAEBench.
std::vector<std::string> alpha_vocab(const Tokenizer& tok);
// 0..25 for the word's first letter (leading space ignored); the word must be alphabetic.
int first_letter_index(const std::string& word);
// " C" for "cat" (prompting.first_letter: a space, then the first letter upper-cased).
std::string first_letter_answer(const std::string& word);
// prompting.create_icl_prompt with the examples already chosen and ordered:
// "\n" + join("\n", template(ex) + answer(ex)) + "\n" + template(word).
std::string icl_prompt(const std::string& word, const std::vector<std::string>& examples, const std::string& tmpl);
// `count` examples drawn without replacement from `pool`, redrawn until `word` is not among them
// (SAEBench's contamination check, at most 1000 attempts; throws Error after).
std::vector<std::string> sample_icl_examples(const std::string& word, const std::vector<std::string>& pool, int count,
                                             std::mt19937_64& rng);

// ---- probes (absorption_probe.cpp) ----

// Rows of a matrix [n, D], dense (row-major) or sparse (CSR: SAE latents, mostly zero).
struct ProbeRows {
  int64_t n = 0;
  int D = 0;
  const float* dense = nullptr;              // [n, D] or null
  const std::vector<int64_t>* ptr = nullptr;  // CSR [n + 1]
  const std::vector<int32_t>* col = nullptr;  // CSR [nnz]
  const std::vector<float>* val = nullptr;    // CSR [nnz]
  float dot(int64_t i, const float* w) const;
  void axpy(int64_t i, float c, float* g) const;  // g += c · x_i
};

// P one-vs-rest linear probes on D features: logit_p(x) = W_p · x + b_p.
struct MultiProbe {
  int P = 0, D = 0;
  std::vector<float> W;  // [P, D]
  std::vector<float> b;  // [P]
  float logit(const ProbeRows& X, int64_t i, int p) const { return X.dot(i, W.data() + int64_t{p} * D) + b[p]; }
};

// probing.train_multi_probe: one-hot targets from labels [n] in [0, P); BCE-with-logits with
// pos_weight_p = (n − n_p) / n_p, averaged over the batch and the P outputs; plus l1_decay ·
// mean_p Σ_j |W_pj| (k-sparse probing); torch Adam with weight_decay added to the gradient (bias
// included); LR lr · γ^epoch, γ = (end_lr / lr)^(1/epochs); minibatches of batch_size, reshuffled
// every epoch unless shuffle is false (the goldens' fixed order). Init: nn.Linear's U(±1/√D) from
// `seed`, or `init` when given. float32 throughout, as torch.
struct MultiProbeOptions {
  double lr = 1e-2, end_lr = 1e-5, weight_decay = 1e-6, l1_decay = 0;
  int batch_size = 4096, epochs = 50;
  bool shuffle = true;
  uint64_t seed = 42;
  const MultiProbe* init = nullptr;
};
MultiProbe train_multi_probe(const ProbeRows& X, const std::vector<int>& labels, int P, const MultiProbeOptions& opt);

// ---- k-sparse probing (absorption_ksparse.cpp) ----

struct KSparseLetter {
  std::vector<std::vector<int>> feats;  // [max_k][k]: the top-k latents by L1-probe weight, best first
  std::vector<double> f1;               // [max_k]: test F1 of the k-sparse logistic probe
  std::vector<int> split_feats;         // add_feature_splits_to_metrics_df
};
// Per letter: top-k by the L1 probe's weights, sklearn-style logistic (C = 1, balanced) on those
// latents of train, F1 on test; then the split features.
std::vector<KSparseLetter> k_sparse_probing(const MultiProbe& l1_probe, const ProbeRows& train,
                                            const std::vector<int>& train_y, const ProbeRows& test,
                                            const std::vector<int>& test_y, int max_k, double f1_jump_threshold);
// add_feature_splits_to_metrics_df for one letter: walk k = 1.. while F1 rises by more than the
// threshold over the best so far; the split features are the last such k's features.
std::vector<int> split_features(const std::vector<std::vector<int>>& feats, const std::vector<double>& f1,
                                double f1_jump_threshold);

// ---- the absorption calculation (absorption_calc.cpp) ----

struct WordAbsorption {
  double absorption_fraction = 0;
  bool full_absorption = false;
  double probe_projection = 0;  // x · probe direction (unit)
  std::vector<int> top_feats;   // the latents with the largest probe projection f_i cos_i, best first
  std::vector<int> absorbers;   // the potential absorbers summed into the fraction, largest first
};
// FeatureAbsorptionCalculator.calculate_absorption for one word: x [d] its activation, f [F] its
// SAE latents (as SAEBench's folded SAE gives them), cos [F] the cosine of each decoder row with the
// probe direction, probe_dir [d] unit, main_feats the letter's split features.
WordAbsorption word_absorption(const float* x, const float* f, const std::vector<float>& cos,
                               const std::vector<float>& probe_dir, const std::vector<int>& main_feats,
                               const AbsorptionConfig& cfg);
// Cosine of every decoder row W_dec [F, d] with `dir` [d]: [F] (torch's cosine_similarity, eps 1e-8).
std::vector<float> decoder_cosines(const std::vector<float>& W_dec, int F, int d, const std::vector<float>& dir);

// ---- the eval (absorption.cpp) ----

// What the LM gives, independent of the SAE (one per model and hook; shared by every SAE there).
struct AbsorptionData {
  int d = 0;
  std::string hook;
  std::vector<std::string> vocab;
  std::vector<std::string> train_words, test_words;
  std::vector<int> train_y, test_y;        // first-letter index
  std::vector<float> train_x, test_x;      // [n_train, d], [n_test, d] at prompt_token_pos
  MultiProbe probe;                        // [26, d]
  std::vector<double> probe_f1;            // [26] on test, logit > 0
  // The probe's true positives (test words of a letter with logit > 0), re-prompted with fresh
  // examples from the whole vocabulary: their activations [n_tp, d] and letters.
  std::vector<std::string> tp_words;
  std::vector<int> tp_y;
  std::vector<int64_t> tp_test_row;  // [n_tp] the word's row in test_x
  std::vector<float> tp_x;
  int64_t word_position_mismatches = 0;    // prompts whose token at prompt_token_pos is not the word's id
};

// Builds the vocabulary, prompts, activations and probe. Throws Error for a vocabulary with fewer
// than min_words_per_letter words of some letter, or a hook the model does not have.
AbsorptionData absorption_data(const LanguageModel& model, const std::string& hook, const AbsorptionConfig& cfg);
// From test_x, test_y and the probe: probe_f1 per letter (logit > 0, sklearn's F1) and the true
// positives tp_words, tp_y, tp_test_row (tp_x is left to the caller).
void score_probe(AbsorptionData& data);

// Per letter, what SAEBench writes into eval_result_details.
struct LetterAbsorption {
  int letter = 0;
  double probe_f1 = 0;
  int num_probe_true_positives = 0;
  double mean_absorption_fraction = 0, full_absorption_rate = 0;
  int num_full_absorption = 0;
  std::vector<int> split_feats;
  std::vector<double> k_f1;  // [max_k]
  // Hierarchical SAEs: the letter's main parent (the parent of its first split feature, or that
  // feature itself), and among the words with absorption, how many absorbers were its children.
  int main_parent = -1;
  int absorbed_words = 0, absorbed_by_children = 0;
};
struct AbsorptionResult {
  std::vector<LetterAbsorption> letters;  // all 26
  bool evaluated = false;                 // enough letters pass min_probe_f1
  bool hierarchical = false;              // the SAE is; main_parent and absorbed_* are filled
};
// The SAE-dependent part: k-sparse probing (the L1 probe from `l1_init` when given, else from
// cfg.seed), then absorption on the true positives with each letter's split features.
AbsorptionResult absorption_eval(const Sae& sae, const AbsorptionData& data, const AbsorptionConfig& cfg,
                                 const MultiProbe* l1_init = nullptr);
std::vector<KSparseLetter> absorption_k_sparse(const Sae& sae, const AbsorptionData& data, const AbsorptionConfig& cfg,
                                               const MultiProbe* l1_init = nullptr);
AbsorptionResult absorption_from_split(const Sae& sae, const AbsorptionData& data, const std::vector<KSparseLetter>& ks,
                                       const AbsorptionConfig& cfg);
// SAEBench's "absorption_first_letter" output, plus saelab's per-letter extras and the hierarchy
// section under eval_result_unstructured.
nlohmann::json absorption_json(const AbsorptionResult& r, const AbsorptionData& data, const AbsorptionConfig& cfg,
                               const std::string& model_name, const nlohmann::json& sae_cfg);

}  // namespace saelab
