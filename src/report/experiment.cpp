#include "saelab/experiment.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <fmt/ranges.h>

#include "experiment_absorption.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/alpha_agreement.hpp"
#include "saelab/analysis.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/eval_core.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/seed_statistics.hpp"
#include "saelab/dashboard.hpp"
#include "saelab/sparse_probing.hpp"
#include "saelab/train.hpp"
#include "util/json_number.hpp"
#include "util/stopwatch.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<json> default_experiment_runs() {
  std::vector<json> runs;
  runs.push_back({{"name", "vanilla"}, {"architecture", "standard"}});
  for (double a : {0.0, 0.25, 0.5, 0.75, 1.0})
    runs.push_back({{"name", fmt::format("dual_adaptive_alpha_{:.2f}", a)},
                    {"architecture", "hierarchical"},
                    {"penalty", "dual_adaptive"},
                    {"alpha_mode", "fixed"},
                    {"alpha", a}});
  runs.push_back({{"name", "learnable_dual"},
                  {"architecture", "hierarchical"},
                  {"penalty", "dual_adaptive"},
                  {"alpha_mode", "learned"},
                  {"alpha", 0.5}});
  runs.push_back({{"name", "naive_alpha"},
                  {"architecture", "hierarchical"},
                  {"penalty", "dual_adaptive"},
                  {"alpha_mode", "naive"},
                  {"alpha", 0.5},
                  {"alpha_lr", 0.01}});
  runs.push_back({{"name", "topk"}, {"architecture", "topk"}, {"k", 16}});
  // Prefixes at the hierarchy's levels (train.hpp: matryoshka_widths' default).
  runs.push_back({{"name", "matryoshka"}, {"architecture", "matryoshka_batchtopk"}, {"k", 16}});
  return runs;
}

namespace {

// Seeds from the config file or --seeds: each at most once.
void check_distinct_seeds(const std::vector<uint64_t>& seeds, const std::string& where) {
  for (size_t i = 0; i < seeds.size(); ++i)
    if (std::find(seeds.begin(), seeds.begin() + static_cast<std::ptrdiff_t>(i), seeds[i]) != seeds.begin() + static_cast<std::ptrdiff_t>(i))
      fail("{}: seed {} appears twice", where, seeds[i]);
}

// A list of distinct non-negative integers.
std::vector<uint64_t> parse_seeds(const json& v, const std::string& where) {
  if (!v.is_array() || v.empty()) fail("{}: expected a non-empty list of seeds, e.g. [42, 43, 44], found {}", where, v.dump());
  std::vector<uint64_t> seeds;
  for (const auto& s : v) seeds.push_back(json_int<uint64_t>(s, where));
  check_distinct_seeds(seeds, where);
  return seeds;
}

// The [absorption] table: the AbsorptionConfig settings an experiment may change.
void read_absorption_settings(const json& t, const std::string& path, AbsorptionConfig& a) {
  if (!t.is_object()) fail("'{}': [absorption] must be a table, found {}", path, t.type_name());
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string k = it.key(), where = fmt::format("'{}': [absorption] {}", path, k);
    if (k == "words") a.max_words = json_int<int64_t>(it.value(), where);
    else if (k == "prompt_template") a.prompt_template = it.value().get<std::string>();
    else if (k == "prompt_token_pos") a.prompt_token_pos = json_int<int>(it.value(), where);
    else if (k == "min_probe_f1") a.min_probe_f1 = json_float<double>(it.value(), where);
    else if (k == "min_letters") a.min_letters = json_int<int>(it.value(), where);
    else if (k == "min_words_per_letter") a.min_words_per_letter = json_int<int>(it.value(), where);
    else if (k == "seed") a.seed = json_int<uint64_t>(it.value(), where);
    else fail("'{}': unknown [absorption] setting '{}' (words, prompt_template, prompt_token_pos, min_probe_f1, "
              "min_letters, min_words_per_letter, seed)", path, k);
  }
  if (a.max_words < 0) fail("'{}': [absorption] words must be 0 (all) or positive, found {}", path, a.max_words);
  if (a.prompt_token_pos >= 0)
    fail("'{}': [absorption] prompt_token_pos counts from the prompt's end and must be negative, found {}", path,
         a.prompt_token_pos);
}

}  // namespace

ExperimentConfig load_experiment_config(const std::string& path, const std::string& shared) {
  ExperimentConfig c;
  c.shared_root = shared;
  json j = json::object();
  if (!path.empty()) {
    if (!file_exists(path)) fail("experiment config '{}' does not exist", path);
    j = read_config_file(path);
  }
  if (!j.is_object()) fail("'{}': expected a table of settings, found {}", path, j.type_name());
  auto where = [&](const std::string& k) { return fmt::format("'{}': [experiment] {}", path, k); };
  try {
    const json e = j.value("experiment", json::object());
    for (auto it = e.begin(); it != e.end(); ++it) {
      const std::string k = it.key();
      if (k == "out_dir") c.out_dir = it.value();
      else if (k == "model") c.model = it.value();
      else if (k == "corpus") c.corpus = it.value().get<std::vector<std::string>>();
      else if (k == "heldout_corpus") c.heldout_corpus = it.value().get<std::vector<std::string>>();
      else if (k == "hook") c.hook = it.value();
      // Counts are range-checked: 1e26 into an int64 is undefined behaviour (found by fuzzing).
      else if (k == "tokens") c.tokens = json_int<int64_t>(it.value(), where(k));
      else if (k == "heldout_tokens") c.heldout_tokens = json_int<int64_t>(it.value(), where(k));
      else if (k == "probing") c.probing = it.value();
      else if (k == "probe_train") c.probe_train = json_int<int>(it.value(), where(k));
      else if (k == "probe_test") c.probe_test = json_int<int>(it.value(), where(k));
      else if (k == "core_contexts") c.core_contexts = json_int<int>(it.value(), where(k));
      else if (k == "core_context") c.core_context = json_int<int>(it.value(), where(k));
      else if (k == "probe_context") c.probe_context = json_int<int>(it.value(), where(k));
      else if (k == "probe_tasks") c.probe_tasks = it.value();
      else if (k == "persistence_texts") c.persistence_texts = json_int<int>(it.value(), where(k));
      else if (k == "seeds") c.seeds = parse_seeds(it.value(), where(k));
      else if (k == "dashboard_tokens") c.dashboard_tokens = json_int<int64_t>(it.value(), where(k));
      else if (k == "absorption") c.absorption = it.value();
      else if (k == "stream") c.stream = it.value();
      else fail("'{}': unknown [experiment] setting '{}'", path, k);
    }
    if (j.contains("train")) c.train = j["train"];
    if (j.contains("absorption")) read_absorption_settings(j["absorption"], path, c.absorption_eval);
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "experiment" && it.key() != "train" && it.key() != "runs" && it.key() != "absorption")
        fail("'{}': unknown section '{}' (expected [experiment], [train], [absorption], [[runs]])", path, it.key());
    if (j.contains("runs")) {
      if (!j["runs"].is_array()) fail("'{}': runs must be a list of tables ([[runs]]), found {}", path, j["runs"].type_name());
      for (const auto& r : j["runs"]) c.runs.push_back(r);
    }
  } catch (const json::exception& ex) {
    fail("'{}': a setting has the wrong type: {}", path, ex.what());
  }
  if (c.core_context < 2)
    fail("'{}': [experiment] core_context must be at least 2 tokens, found {}", path, c.core_context);
  if (c.probe_context < 2)
    fail("'{}': [experiment] probe_context must be at least 2 tokens (BOS and one more), found {}", path,
         c.probe_context);
  if (c.model.empty()) c.model = shared + "/models/smollm2-135m-instruct";
  // A relative model path that names nothing from the working directory is one in the data root
  // ("models/smollm2-135m-instruct"), so configs need not know where the data is mounted.
  if (!fs::path(c.model).is_absolute() && !fs::exists(c.model) && fs::exists(shared + "/" + c.model))
    c.model = shared + "/" + c.model;
  if (c.corpus.empty()) c.corpus = default_corpus_paths(shared);
  if (c.heldout_corpus.empty()) c.heldout_corpus = {shared + "/corpus/inaugural"};
  if (c.runs.empty()) c.runs = default_experiment_runs();
  for (const auto& r : c.runs)
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
      fail("'{}': every run needs a \"name\" string", path.empty() ? "<defaults>" : path);
  return c;
}

namespace {

// One configuration of the plan: its directory and resolved training settings.
struct PlannedRun {
  json run;
  std::string dir;
  TrainConfig train;
  TrainResult trained;
  json sae_cfg() const { return read_saelens_cfg(dir + "/sae"); }
};

TrainConfig run_train_config(const ExperimentConfig& cfg, const json& run, const std::string& dir,
                             const std::string& activations) {
  json tc = cfg.train;
  for (auto it = run.begin(); it != run.end(); ++it) {
    if (it.key() == "name") continue;
    if (it.value().is_object())  // a section ([sae], [train], ...): its keys
      for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) tc[jt.key()] = jt.value();
    else
      tc[it.key()] = it.value();
  }
  if (cfg.stream) {  // the LM over the training corpus (training_corpus_files), no harvest
    tc["model"] = cfg.model;
    tc["corpus"] = training_corpus_files(cfg);
    tc["hook"] = cfg.hook;
    if (tc.value("total_tokens", int64_t{0}) == 0) tc["total_tokens"] = cfg.tokens;
  } else {
    tc["activations"] = activations;
  }
  tc["out_dir"] = dir;
  TrainConfig t = train_config_from_json(tc, "run '" + run["name"].get<std::string>() + "'");
  t.progress = cfg.progress;
  return t;
}


// "run_1, run_3" for the log.
// The runs whose directory lacks `file`: the ones a phase still has to do.
std::vector<PlannedRun*> runs_missing(std::vector<PlannedRun>& runs, const char* file) {
  std::vector<PlannedRun*> todo;
  for (PlannedRun& r : runs)
    if (!file_exists(r.dir + "/" + file)) todo.push_back(&r);
  return todo;
}

std::string run_names(const std::vector<PlannedRun*>& runs) {
  std::string s;
  for (const PlannedRun* r : runs) s += (s.empty() ? "" : ", ") + fs::path(r->dir).filename().string();
  return s;
}

// "== eval core: 9 runs in 812.3 s: LM 700.1 s (86%), SAE 50.2 s, host 60.0 s, other 2.0 s" on stderr.
void log_phase(const ExperimentConfig& cfg, const char* phase, size_t runs, std::chrono::steady_clock::time_point t0,
               const EvalTiming& tm, const char* host_work) {
  if (!cfg.progress) return;
  const double total = seconds_since(t0);
  std::fprintf(stderr, "== %s: %zu run(s) in %.1f s: LM forwards %.1f s (%.0f%%), SAE %.1f s, %s %.1f s, other %.1f s\n",
               phase, runs, total, tm.lm_s, total > 0 ? 100.0 * tm.lm_s / total : 0.0, tm.sae_s, host_work, tm.other_s,
               std::max(0.0, total - tm.lm_s - tm.sae_s - tm.other_s));
}

// Writes a run's run.json and announces it.
void start_run(const ExperimentConfig& cfg, const PlannedRun& r) {
  if (cfg.progress)
    std::fprintf(stderr, "== %s: %s\n", fs::path(r.dir).filename().string().c_str(), r.run["name"].get<std::string>().c_str());
  fs::create_directories(r.dir);
  write_file_atomic(r.dir + "/run.json", r.run.dump(2) + "\n");
}

// Streamed: the runs of each seed in one pass of the LM (train_saes), in plan order.
size_t train_passes(const ExperimentConfig& cfg, std::vector<PlannedRun>& runs) {
  size_t trained = 0;
  std::vector<bool> done(runs.size(), false);
  for (size_t i = 0; i < runs.size(); ++i) {
    if (done[i]) continue;
    std::vector<size_t> pass;
    for (size_t j = i; j < runs.size(); ++j)
      if (runs[j].train.seed == runs[i].train.seed) pass.push_back(j);
    std::vector<TrainConfig> cfgs;
    for (size_t j : pass) {
      start_run(cfg, runs[j]);
      cfgs.push_back(runs[j].train);
      done[j] = true;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<TrainResult> res = train_saes(cfgs);
    for (size_t k = 0; k < pass.size(); ++k) {
      runs[pass[k]].trained = res[k];
      trained += !res[k].already_complete;
    }
    if (cfg.progress)
      std::fprintf(stderr, "== seed %llu: %zu run(s) in one LM pass, %.1f s\n",
                   static_cast<unsigned long long>(runs[i].train.seed), pass.size(), seconds_since(t0));
  }
  return trained;
}

// (b) Trains every run (train_sae finds finished ones complete and returns their summary); streamed,
// a seed's runs at once.
void train_phase(const ExperimentConfig& cfg, std::vector<PlannedRun>& runs) {
  const auto t_all = std::chrono::steady_clock::now();
  size_t trained = 0;
  if (cfg.stream)
    trained = train_passes(cfg, runs);
  else
    for (PlannedRun& r : runs) {
      const auto t0 = std::chrono::steady_clock::now();
      start_run(cfg, r);
      r.trained = train_sae(r.train);
      trained += !r.trained.already_complete;
      if (cfg.progress && !r.trained.already_complete)
        std::fprintf(stderr, "== %s trained in %.1f s\n", fs::path(r.dir).filename().string().c_str(), seconds_since(t0));
    }
  if (cfg.progress && trained > 0) std::fprintf(stderr, "== train: %zu run(s) in %.1f s\n", trained, seconds_since(t_all));
}

// (c) eval_core for every run without eval_core.json: one pass over the held-out contexts.
void core_phase(const ExperimentConfig& cfg, const LanguageModel& model, std::vector<PlannedRun>& runs) {
  const std::vector<PlannedRun*> todo = runs_missing(runs, "eval_core.json");
  if (todo.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.progress) std::fprintf(stderr, "== eval core: %s\n", run_names(todo).c_str());
  Backend& be = cpu_backend();
  std::vector<Sae> saes;
  saes.reserve(todo.size());
  for (const PlannedRun* r : todo) saes.push_back(load_saelens(r->dir + "/sae", be));
  std::vector<const Sae*> ptrs;
  for (const Sae& s : saes) ptrs.push_back(&s);
  CoreEvalConfig cc;
  cc.corpus = cfg.heldout_corpus;
  cc.n_contexts = cfg.core_contexts;
  cc.context_size = cfg.core_context;
  cc.progress = cfg.progress;
  EvalTiming tm;
  const std::vector<CoreEvalResult> res = eval_core_multi(model, ptrs, cfg.hook, cc, &tm);
  for (size_t i = 0; i < todo.size(); ++i)
    write_file_atomic(todo[i]->dir + "/eval_core.json",
                      core_result_json(res[i], cc, todo[i]->sae_cfg(), model.config().name).dump(2) + "\n");
  log_phase(cfg, "eval core", todo.size(), t0, tm, "CE/KL on the host");
}

// The probe suite, loaded on first use.
const ProbeSuite& probe_suite(const ExperimentConfig& cfg, std::unique_ptr<ProbeSuite>& suite) {
  if (!suite) suite = std::make_unique<ProbeSuite>(load_probe_suite(cfg.probe_tasks, cfg.shared_root));
  return *suite;
}

// (d) sparse probing for every run without eval_sparse_probing.json: per task one LM pass.
void probing_phase(const ExperimentConfig& cfg, const LanguageModel& model, std::vector<PlannedRun>& runs,
                   std::unique_ptr<ProbeSuite>& suite) {
  const std::vector<PlannedRun*> todo = runs_missing(runs, "eval_sparse_probing.json");
  if (todo.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.progress) std::fprintf(stderr, "== sparse probing: %s\n", run_names(todo).c_str());
  Backend& be = cpu_backend();
  std::vector<Sae> saes;
  saes.reserve(todo.size());
  std::vector<const Sae*> ptrs;
  std::vector<json> sae_cfgs;
  for (const PlannedRun* r : todo) {
    saes.push_back(load_saelens(r->dir + "/sae", be));
    sae_cfgs.push_back(r->sae_cfg());
  }
  for (const Sae& s : saes) ptrs.push_back(&s);
  ProbingConfig pc;
  pc.n_train = cfg.probe_train;
  pc.n_test = cfg.probe_test;
  pc.context_size = cfg.probe_context;
  pc.progress = cfg.progress;
  EvalTiming tm;
  const std::vector<json> res = sparse_probing_multi(model, ptrs, cfg.hook, probe_suite(cfg, suite), pc, sae_cfgs, &tm);
  for (size_t i = 0; i < todo.size(); ++i)
    write_file_atomic(todo[i]->dir + "/eval_sparse_probing.json", res[i].dump(2) + "\n");
  log_phase(cfg, "sparse probing", todo.size(), t0, tm, "probe fits");
}

// (e) probe persistence for every run without probe_persistence.json: per task one LM pass feeds
// every checkpoint of every such run.
void persistence_phase(const ExperimentConfig& cfg, const LanguageModel& model, std::vector<PlannedRun>& runs,
                       std::unique_ptr<ProbeSuite>& suite) {
  const std::vector<PlannedRun*> todo = runs_missing(runs, "probe_persistence.json");
  std::vector<std::string> dirs;
  for (const PlannedRun* r : todo) dirs.push_back(r->dir);
  if (todo.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.progress) std::fprintf(stderr, "== probe persistence: %s\n", run_names(todo).c_str());
  ProbingConfig pc;
  pc.context_size = cfg.probe_context;
  pc.progress = cfg.progress;
  EvalTiming tm;
  const std::vector<json> res =
      probe_persistence_multi(model, dirs, cfg.hook, probe_suite(cfg, suite), pc, cfg.persistence_texts, {1, 5, 20}, &tm);
  for (size_t i = 0; i < todo.size(); ++i)
    write_file_atomic(todo[i]->dir + "/probe_persistence.json", res[i].dump(2) + "\n");
  log_phase(cfg, "probe persistence", todo.size(), t0, tm, "checkpoint loading and top-k");
}

// (f) stability and composition where missing, and the summary row.
json finish_run(const ExperimentConfig& cfg, const PlannedRun& r, const std::string& heldout,
                std::unique_ptr<ActivationSample>& sample) {
  const std::string& dir = r.dir;
  if (!file_exists(dir + "/stability.json"))
    write_file_atomic(dir + "/stability.json", concept_stability(dir).dump(2) + "\n");
  if (sae_architecture_from_name(r.train.architecture) == SaeArchitecture::Hierarchical &&
      !file_exists(dir + "/composition.json")) {
    if (!sample)
      sample = std::make_unique<ActivationSample>(
          sample_activations(read_activation_manifest(heldout), cfg.heldout_tokens, cfg.heldout_tokens));
    const Sae sae = load_saelens(dir + "/sae", cpu_backend());
    write_file_atomic(dir + "/composition.json", composition_quality(sae, sample->rows, sample->n).dump(2) + "\n");
  }
  const TrainConfig& t = r.train;
  const json core = json::parse(read_file(dir + "/eval_core.json"))["eval_result_metrics"];
  json row = {{"run", fs::path(dir).filename().string()},
              {"name", r.run["name"]},
              {"seed", t.seed},
              {"architecture", t.architecture},
              {"alpha_mode", t.penalty == "dual_adaptive" ? t.alpha_mode : "-"},
              {"final_alpha", r.trained.summary.value("final_alpha", json(nullptr))},
              {"l0", core["sparsity"]["l0"]},
              {"explained_variance", core["reconstruction_quality"]["explained_variance"]},
              // SAEBench's explained variance divides by E‖x‖² − (E‖x‖²/d)², which is not a variance
              // and turns negative when E‖x‖² > d² (TinyStories-656K's residual: scores above 1);
              // the centred R² 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² is the one the report judges by.
              {"explained_variance_centered", core["reconstruction_quality"].value("explained_variance_centered", 0.0)},
              {"ce_loss_score", core["model_performance_preservation"]["ce_loss_score"]},
              {"kl_div_score", core["model_behavior_preservation"]["kl_div_score"]}};
  if (file_exists(dir + "/eval_sparse_probing.json")) {
    const json p = json::parse(read_file(dir + "/eval_sparse_probing.json"))["eval_result_metrics"]["sae"];
    row["probe_accuracy"] = p["sae_test_accuracy"];
    row["probe_f1"] = p["sae_test_f1"];
    row["probe_top1_accuracy"] = p["sae_top_1_test_accuracy"];
    row["probe_top1_f1"] = p["sae_top_1_test_f1"];
  }
  add_absorption_fields(dir, row);
  return row;
}

// Phases (b)–(f) over `plan` (run, directory); returns one summary row per run.
// (e) one feature dashboard for every run of the plan, unless <out>/dashboard_runs.json already
// lists exactly these runs: <out>/dashboard/index.html#sae=k is run k's.
void dashboard_phase(const ExperimentConfig& cfg, const LanguageModel& model, const std::vector<PlannedRun>& runs) {
  if (cfg.dashboard_tokens <= 0 || runs.empty()) return;
  json listed = json::array();
  for (const PlannedRun& r : runs) listed.push_back(fs::path(r.dir).filename().string());
  const std::string record = cfg.out_dir + "/dashboard_runs.json";
  if (file_exists(record) && json::parse(read_file(record)) == listed) return;
  const auto t0 = std::chrono::steady_clock::now();
  DashboardConfig dc;
  dc.model_path = cfg.model;
  dc.corpus = training_corpus_files(cfg);
  dc.max_tokens = cfg.dashboard_tokens;
  dc.progress = cfg.progress;
  // Nine SAEs of 4608 latents: fewer examples than the CLI's defaults keep the site near 30 MB a
  // run (each latent still shows 20 top contexts and 16 sampled firings).
  dc.top_k = 20;
  dc.samples = 16;
  dc.window = 8;
  for (const PlannedRun& r : runs) {
    dc.sae_dirs.push_back(r.dir + "/sae");
    dc.names.push_back(fmt::format("{} ({})", fs::path(r.dir).filename().string(), r.run["name"].get<std::string>()));
  }
  if (cfg.progress) std::fprintf(stderr, "== dashboard: %zu runs, %lld tokens\n", runs.size(), (long long)dc.max_tokens);
  const DashboardData data = collect_dashboard(dc, &model);
  write_dashboard_site(data, cfg.out_dir + "/dashboard");
  write_file_atomic(record, listed.dump() + "\n");
  if (cfg.progress)
    std::fprintf(stderr, "   dashboard: %.1f s (LM %.1f s, SAEs %.1f s, bookkeeping %.1f s, decoders %.1f s)\n",
                 seconds_since(t0), data.seconds_lm, data.seconds_sae, data.seconds_bookkeeping, data.seconds_directions);
}

json run_plan(const ExperimentConfig& cfg, const LanguageModel& model, const std::vector<std::pair<json, std::string>>& plan,
              const std::string& activations, const std::string& heldout) {
  std::vector<PlannedRun> runs;
  for (const auto& [run, dir] : plan) {
    PlannedRun r;
    r.run = run;
    r.dir = dir;
    r.train = run_train_config(cfg, run, dir, activations);
    runs.push_back(std::move(r));
  }
  train_phase(cfg, runs);
  core_phase(cfg, model, runs);
  std::unique_ptr<ProbeSuite> suite;
  if (cfg.probing) {
    probing_phase(cfg, model, runs, suite);
    persistence_phase(cfg, model, runs, suite);
  }
  if (cfg.absorption) {
    std::vector<std::string> dirs;
    for (const PlannedRun& r : runs) dirs.push_back(r.dir);
    absorption_phase(cfg, model, dirs);
  }
  dashboard_phase(cfg, model, runs);
  std::unique_ptr<ActivationSample> sample;
  json rows = json::array();
  for (const PlannedRun& r : runs) rows.push_back(finish_run(cfg, r, heldout, sample));
  return rows;
}

}  // namespace

json run_one(const ExperimentConfig& cfg, const LanguageModel& model, const json& run, const std::string& dir,
             const std::string& activations, const std::string& heldout) {
  return run_plan(cfg, model, {{run, dir}}, activations, heldout)[0];
}

std::vector<std::string> training_corpus_files(const ExperimentConfig& cfg) {
  std::set<std::string> heldout;
  for (const auto& f : expand_corpus_paths(cfg.heldout_corpus)) heldout.insert(fs::weakly_canonical(f).string());
  std::vector<std::string> out;
  for (const auto& f : expand_corpus_paths(cfg.corpus))
    if (!heldout.count(fs::weakly_canonical(f).string())) out.push_back(f);
  if (out.empty())
    fail("the training corpus ({}) holds only held-out files ({}): give the experiment a corpus with text to "
         "train on besides its held-out evaluation text",
         fmt::join(cfg.corpus, ", "), fmt::join(cfg.heldout_corpus, ", "));
  return out;
}

void prepare_activations(const ExperimentConfig& cfg, const LanguageModel& model, std::string& train_dir,
                         std::string& heldout_dir) {
  HarvestConfig h;
  h.model_path = cfg.model;
  h.corpus = training_corpus_files(cfg);
  h.hook_name = cfg.hook;
  h.max_tokens = cfg.tokens;
  h.out_dir = cfg.out_dir + "/activations";
  h.progress = cfg.progress;
  if (!cfg.stream) harvest(h, &model);
  HarvestConfig ho = h;
  ho.corpus = cfg.heldout_corpus;
  ho.max_tokens = cfg.heldout_tokens;
  ho.out_dir = cfg.out_dir + "/heldout";
  harvest(ho, &model);
  train_dir = cfg.stream ? "" : h.out_dir;
  heldout_dir = ho.out_dir;
}

std::vector<uint64_t> experiment_seeds(const ExperimentConfig& cfg) {
  check_distinct_seeds(cfg.seeds, "the experiment's seeds");
  if (!cfg.seeds.empty()) return cfg.seeds;
  return {cfg.train.contains("seed") ? json_int<uint64_t>(cfg.train["seed"], "[train] seed") : TrainConfig{}.seed};
}

namespace {

// Writes <out>/experiment.json, refusing a directory that holds another plan. The seeds may grow:
// an experiment whose seeds are a prefix of this one's is the same experiment, resumed.
void record_plan(const ExperimentConfig& cfg, const std::vector<uint64_t>& seeds) {
  json plan = {{"model", cfg.model}, {"hook", cfg.hook}, {"tokens", cfg.tokens}, {"corpus", cfg.corpus},
               {"heldout_corpus", cfg.heldout_corpus}, {"train", cfg.train}, {"runs", cfg.runs}};
  if (cfg.stream) plan["stream"] = true;  // (absent in cached plans, as before the key existed)
  const std::string path = cfg.out_dir + "/experiment.json";
  if (file_exists(path)) {
    json old = json::parse(read_file(path));
    const std::vector<uint64_t> old_seeds =
        old.contains("seeds") ? old["seeds"].get<std::vector<uint64_t>>() : std::vector<uint64_t>{seeds.front()};
    old.erase("seeds");
    if (old != plan) fail("'{}' holds an experiment with another plan; use another output directory", cfg.out_dir);
    if (old_seeds.size() > seeds.size() || !std::equal(old_seeds.begin(), old_seeds.end(), seeds.begin()))
      fail("'{}' holds this experiment with seeds [{}]; a resumed experiment may only append seeds (asked for [{}])",
           cfg.out_dir, fmt::join(old_seeds, ", "), fmt::join(seeds, ", "));
  }
  plan["seeds"] = seeds;
  write_file_atomic(path, plan.dump(2) + "\n");
}

// α agreement per seed over that seed's dual-adaptive runs; with several seeds, also across them.
void write_alpha_agreement(const ExperimentConfig& cfg, const std::vector<uint64_t>& seeds,
                           const std::vector<std::vector<std::string>>& dual_runs,
                           const std::map<std::string, std::string>& name_of_run, const std::string& heldout) {
  std::vector<json> per_seed;
  for (const auto& runs : dual_runs) {
    if (runs.size() < 2) return;
    AlphaAgreementConfig ac;
    ac.heldout = heldout;
    ac.runs = runs;
    ac.max_tokens = cfg.heldout_tokens;
    per_seed.push_back(alpha_agreement(ac));
  }
  const json out = seeds.size() == 1 ? per_seed.front()
                                     : json{{"seeds", seeds},
                                            {"per_seed", per_seed},
                                            {"across_seeds", alpha_agreement_across_seeds(per_seed, name_of_run, seeds)}};
  write_file_atomic(cfg.out_dir + "/alpha_agreement.json", out.dump(2) + "\n");
}

}  // namespace

json run_experiment(const ExperimentConfig& cfg) {
  fs::create_directories(cfg.out_dir);
  remove_stale_temps(cfg.out_dir);
  const std::vector<uint64_t> seeds = experiment_seeds(cfg);
  record_plan(cfg, seeds);
  auto t0 = std::chrono::steady_clock::now();
  auto model = load_model(cfg.model, cpu_backend());
  if (cfg.progress) std::fprintf(stderr, "== model '%s' loaded in %.1f s\n", cfg.model.c_str(), seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  std::string acts, heldout;
  prepare_activations(cfg, *model, acts, heldout);
  if (cfg.progress) std::fprintf(stderr, "== harvest (or its check): %.1f s\n", seconds_since(t0));

  // Seed j's runs are run_{j·R+1} .. run_{(j+1)·R}: adding a seed leaves the earlier directories be.
  std::vector<std::pair<json, std::string>> plan_runs;
  std::vector<std::vector<std::string>> dual_runs(seeds.size());
  std::map<std::string, std::string> name_of_run;
  for (size_t j = 0; j < seeds.size(); ++j)
    for (size_t i = 0; i < cfg.runs.size(); ++i) {
      const std::string dir = fmt::format("{}/run_{}", cfg.out_dir, j * cfg.runs.size() + i + 1);
      json run = cfg.runs[i];
      run["seed"] = seeds[j];
      plan_runs.emplace_back(run, dir);
      name_of_run[dir] = run["name"].get<std::string>();
      if (run.value("penalty", cfg.train.value("penalty", std::string("l1"))) == "dual_adaptive")
        dual_runs[j].push_back(dir);
    }
  const json rows = run_plan(cfg, *model, plan_runs, acts, heldout);
  write_alpha_agreement(cfg, seeds, dual_runs, name_of_run, heldout);
  write_file_atomic(cfg.out_dir + "/summary.json", rows.dump(2) + "\n");
  return rows;
}

}  // namespace saelab
