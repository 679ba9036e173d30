// The seed's experiment as one command (method.md §5): harvest once, then train and evaluate every
// configuration of the plan into <out>/run_1 .. run_N with the same model, hook, corpus, token
// budget and seed; runs already complete are skipped, a killed experiment resumes.
// Phases: (a) harvest, (b) train every run, then for all runs lacking the output at once, so LM work
// is done once per experiment and not once per SAE: (c) eval_core (one clean and one zero-ablated
// forward per batch, one spliced forward per SAE), (d) sparse probing (one LM pass per task feeds
// every SAE), (e) probe persistence (one LM pass per task feeds every checkpoint of every run),
// (f) feature absorption (one LM pass over the first-letter prompts feeds every SAE), (g) stability,
// composition and the summary rows. Each output file is written atomically when its
// phase ends; a re-run skips what exists. With `progress`, each phase's time split (LM forwards,
// SAE work, host math) goes to stderr.
//   <out>/experiment.json         the resolved plan
//   <out>/activations/            training activations (not with stream);  <out>/heldout/  held-out activations
//   <out>/run_i/                  train outputs (train.hpp) + run.json + eval_core.json
//                                 + eval_sparse_probing.json + stability.json (+ composition.json)
//   <out>/alpha_agreement.json    learned / naive α vs the manual sweep (held-out J); with several
//                                 seeds {"per_seed": [...], "across_seeds": seed_statistics.hpp}
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/absorption.hpp"

namespace saelab {

struct ExperimentConfig {
  std::string out_dir = "runs";
  std::string shared_root;              // data root for defaults and the probe suite's paths
  std::string model;  // default: <shared>/models/smollm2-135m-instruct; relative paths also tried in <shared>
  // Training text; default: shared/corpus without brown_plain (probing data). Files of the held-out
  // corpus are taken out of it (training_corpus_files).
  std::vector<std::string> corpus;
  std::vector<std::string> heldout_corpus;  // default: shared/corpus/inaugural (core eval, held-out J)
  std::string hook = "blocks.9.hook_resid_post";  // a third of SmolLM2's depth (configs/experiment.toml says why)
  int64_t tokens = 1000000, heldout_tokens = 50000;
  // true: no training activations on disk; each seed's runs train together from one LM pass over
  // the training corpus (train_saes: `tokens` rows, unless [train] sets total_tokens), so they must
  // agree on the keys that decide the batches (kPassKeys). The held-out activations are harvested
  // either way. false: harvest <out>/activations once and train every run on it.
  bool stream = false;
  nlohmann::json train = nlohmann::json::object();  // TrainConfig keys shared by every run
  std::vector<nlohmann::json> runs;                 // each: {"name": ..., TrainConfig overrides}
  bool probing = true;
  int probe_train = 400, probe_test = 200, core_contexts = 64;
  int persistence_texts = 100;  // training texts per task for the top-k persistence across checkpoints
  int probe_context = 128;      // tokens per probing text (BOS included), probing and persistence
  int core_context = 128;       // tokens per eval_core context
  std::string probe_tasks = "data/probe_tasks.json";
  // Training seeds: every run of the plan is trained and evaluated once per seed, seed j's runs in
  // run_{j·R+1} .. run_{(j+1)·R} (R runs in the plan). Empty: one seed, [train]'s (42 by default).
  // A finished experiment takes more seeds by appending to the list: it trains only the new ones.
  std::vector<uint64_t> seeds;
  // Feature dashboard of every run (one LM pass for all of them over the training corpus) in
  // <out>/dashboard, linked from the report; 0 tokens: none.
  int64_t dashboard_tokens = 100000;
  // Feature absorption (SAEBench's first-letter task) of every run: one LM pass over the prompts for
  // all of them. Settings from the config's [absorption] table: words (a seeded subsample of the
  // vocabulary's single-token words; 0: all, as SAEBench, ~80 prompt tokens a word), prompt_template,
  // prompt_token_pos, min_probe_f1, min_letters, min_words_per_letter, seed.
  bool absorption = true;
  AbsorptionConfig absorption_eval;
  bool progress = true;
};

// The plan of method.md §5 (vanilla, dual-adaptive α ∈ {0, .25, .5, .75, 1}, learnable-dual,
// naive-α, topk, and Matryoshka BatchTopK nested at the hierarchy's levels) over `base` train settings.
std::vector<nlohmann::json> default_experiment_runs();

ExperimentConfig load_experiment_config(const std::string& path, const std::string& shared_root);

// The training corpus's files without any file of the held-out corpus: evaluation text stays out of
// training by construction, whatever the two lists name. Throws Error when nothing is left.
std::vector<std::string> training_corpus_files(const ExperimentConfig& cfg);

class LanguageModel;

// Harvests (or resumes) <out>/activations (train_dir; "" when streamed) and <out>/heldout.
void prepare_activations(const ExperimentConfig& cfg, const LanguageModel& model, std::string& train_dir,
                         std::string& heldout_dir);
// Trains and evaluates one run into `run_dir` (skipping finished steps); returns its summary row.
// The same phases as run_experiment, over one run.
nlohmann::json run_one(const ExperimentConfig& cfg, const LanguageModel& model, const nlohmann::json& run,
                       const std::string& run_dir, const std::string& activations, const std::string& heldout);

// The seeds the experiment trains: cfg.seeds, else [train]'s seed (42 when it names none).
std::vector<uint64_t> experiment_seeds(const ExperimentConfig& cfg);

// Everything; returns the summary table (one row per run) also written to <out>/summary.json.
nlohmann::json run_experiment(const ExperimentConfig& cfg);

}  // namespace saelab
