#include "saelab/experiment.hpp"

#include <filesystem>
#include <sstream>

#include "saelab/activation_loader.hpp"
#include "saelab/alpha_agreement.hpp"
#include "saelab/analysis.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/eval_core.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/sparse_probing.hpp"
#include "saelab/train.hpp"
#include "util/json_number.hpp"

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
  return runs;
}

namespace {


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
      else if (k == "probe_tasks") c.probe_tasks = it.value();
      else if (k == "persistence_texts") c.persistence_texts = json_int<int>(it.value(), where(k));
      else fail("'{}': unknown [experiment] setting '{}'", path, k);
    }
    if (j.contains("train")) c.train = j["train"];
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "experiment" && it.key() != "train" && it.key() != "runs")
        fail("'{}': unknown section '{}' (expected [experiment], [train], [[runs]])", path, it.key());
    if (j.contains("runs")) {
      if (!j["runs"].is_array()) fail("'{}': runs must be a list of tables ([[runs]]), found {}", path, j["runs"].type_name());
      for (const auto& r : j["runs"]) c.runs.push_back(r);
    }
  } catch (const json::exception& ex) {
    fail("'{}': a setting has the wrong type: {}", path, ex.what());
  }
  if (c.model.empty()) c.model = shared + "/models/tinystories-656k";
  if (c.corpus.empty()) c.corpus = default_corpus_paths(shared);
  if (c.heldout_corpus.empty()) c.heldout_corpus = {shared + "/corpus/inaugural"};
  if (c.runs.empty()) c.runs = default_experiment_runs();
  for (const auto& r : c.runs)
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
      fail("'{}': every run needs a \"name\" string", path.empty() ? "<defaults>" : path);
  return c;
}

json run_one(const ExperimentConfig& cfg, const LlamaModel& model, const json& run, const std::string& dir,
             const std::string& activations, const std::string& heldout) {
  json tc = cfg.train;
  for (auto it = run.begin(); it != run.end(); ++it) {
    if (it.key() == "name") continue;
    if (it.value().is_object())  // a section ([sae], [train], ...): its keys
      for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) tc[jt.key()] = jt.value();
    else
      tc[it.key()] = it.value();
  }
  tc["activations"] = activations;
  tc["out_dir"] = dir;
  TrainConfig t = train_config_from_json(tc, "run '" + run["name"].get<std::string>() + "'");
  t.progress = cfg.progress;
  fs::create_directories(dir);
  write_file_atomic(dir + "/run.json", run.dump(2) + "\n");
  const TrainResult tr = train_sae(t);

  Backend& be = cpu_backend();
  const json sae_cfg = read_saelens_cfg(dir + "/sae");
  Sae sae = load_saelens(dir + "/sae", be);
  if (!file_exists(dir + "/eval_core.json")) {
    CoreEvalConfig cc;
    cc.corpus = cfg.heldout_corpus;
    cc.n_contexts = cfg.core_contexts;
    cc.progress = cfg.progress;
    const CoreEvalResult r = eval_core(model, sae, cfg.hook, cc);
    write_file_atomic(dir + "/eval_core.json", core_result_json(r, cc, sae_cfg, model.config().name).dump(2) + "\n");
  }
  if (cfg.probing && !file_exists(dir + "/eval_sparse_probing.json")) {
    ProbingConfig pc;
    pc.n_train = cfg.probe_train;
    pc.n_test = cfg.probe_test;
    pc.progress = cfg.progress;
    const ProbeSuite suite = load_probe_suite(cfg.probe_tasks, cfg.shared_root);
    write_file_atomic(dir + "/eval_sparse_probing.json",
                      sparse_probing(model, sae, cfg.hook, suite, pc, sae_cfg).dump(2) + "\n");
  }
  if (cfg.probing && !file_exists(dir + "/probe_persistence.json")) {
    ProbingConfig pc;
    pc.progress = cfg.progress;
    const ProbeSuite suite = load_probe_suite(cfg.probe_tasks, cfg.shared_root);
    write_file_atomic(dir + "/probe_persistence.json",
                      probe_persistence(model, dir, cfg.hook, suite, pc, cfg.persistence_texts).dump(2) + "\n");
  }
  if (!file_exists(dir + "/stability.json"))
    write_file_atomic(dir + "/stability.json", concept_stability(dir).dump(2) + "\n");
  if (sae.config().architecture == SaeArchitecture::Hierarchical && !file_exists(dir + "/composition.json")) {
    const ActivationSample s = sample_activations(read_activation_manifest(heldout), cfg.heldout_tokens, cfg.heldout_tokens);
    write_file_atomic(dir + "/composition.json", composition_quality(sae, s.rows, s.n).dump(2) + "\n");
  }

  const json core = json::parse(read_file(dir + "/eval_core.json"))["eval_result_metrics"];
  json row = {{"run", fs::path(dir).filename().string()},
              {"name", run["name"]},
              {"architecture", t.architecture},
              {"alpha_mode", t.penalty == "dual_adaptive" ? t.alpha_mode : "-"},
              {"final_alpha", tr.summary.value("final_alpha", json(nullptr))},
              {"l0", core["sparsity"]["l0"]},
              {"explained_variance", core["reconstruction_quality"]["explained_variance"]},
              {"ce_loss_score", core["model_performance_preservation"]["ce_loss_score"]},
              {"kl_div_score", core["model_behavior_preservation"]["kl_div_score"]}};
  if (file_exists(dir + "/eval_sparse_probing.json")) {
    const json p = json::parse(read_file(dir + "/eval_sparse_probing.json"))["eval_result_metrics"]["sae"];
    row["probe_accuracy"] = p["sae_test_accuracy"];
    row["probe_f1"] = p["sae_test_f1"];
    row["probe_top1_accuracy"] = p["sae_top_1_test_accuracy"];
    row["probe_top1_f1"] = p["sae_top_1_test_f1"];
  }
  return row;
}

void prepare_activations(const ExperimentConfig& cfg, const LlamaModel& model, std::string& train_dir,
                         std::string& heldout_dir) {
  HarvestConfig h;
  h.model_path = cfg.model;
  h.corpus = cfg.corpus;
  h.hook_name = cfg.hook;
  h.max_tokens = cfg.tokens;
  h.out_dir = cfg.out_dir + "/activations";
  h.progress = cfg.progress;
  harvest(h, &model);
  HarvestConfig ho = h;
  ho.corpus = cfg.heldout_corpus;
  ho.max_tokens = cfg.heldout_tokens;
  ho.out_dir = cfg.out_dir + "/heldout";
  harvest(ho, &model);
  train_dir = h.out_dir;
  heldout_dir = ho.out_dir;
}

json run_experiment(const ExperimentConfig& cfg) {
  fs::create_directories(cfg.out_dir);
  remove_stale_temps(cfg.out_dir);
  json plan = {{"model", cfg.model}, {"hook", cfg.hook}, {"tokens", cfg.tokens}, {"corpus", cfg.corpus},
               {"heldout_corpus", cfg.heldout_corpus}, {"train", cfg.train}, {"runs", cfg.runs}};
  if (file_exists(cfg.out_dir + "/experiment.json")) {
    const json old = json::parse(read_file(cfg.out_dir + "/experiment.json"));
    if (old != plan) fail("'{}' holds an experiment with another plan; use another output directory", cfg.out_dir);
  }
  write_file_atomic(cfg.out_dir + "/experiment.json", plan.dump(2) + "\n");
  auto model = load_model(cfg.model, cpu_backend());
  std::string acts, heldout;
  prepare_activations(cfg, *model, acts, heldout);

  json rows = json::array();
  std::vector<std::string> dual_runs;
  for (size_t i = 0; i < cfg.runs.size(); ++i) {
    const std::string dir = fmt::format("{}/run_{}", cfg.out_dir, i + 1);
    if (cfg.progress) std::fprintf(stderr, "== run_%zu: %s\n", i + 1, cfg.runs[i]["name"].get<std::string>().c_str());
    rows.push_back(run_one(cfg, *model, cfg.runs[i], dir, acts, heldout));
    if (cfg.runs[i].value("penalty", cfg.train.value("penalty", std::string("l1"))) == "dual_adaptive")
      dual_runs.push_back(dir);
  }
  if (dual_runs.size() >= 2) {
    AlphaAgreementConfig ac;
    ac.heldout = heldout;
    ac.runs = dual_runs;
    ac.max_tokens = cfg.heldout_tokens;
    write_file_atomic(cfg.out_dir + "/alpha_agreement.json", alpha_agreement(ac).dump(2) + "\n");
  }
  write_file_atomic(cfg.out_dir + "/summary.json", rows.dump(2) + "\n");
  return rows;
}

}  // namespace saelab
