#include "experiment_absorption.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>

#include "saelab/absorption.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/experiment.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "util/stopwatch.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

AbsorptionConfig absorption_config(const ExperimentConfig& cfg) {
  AbsorptionConfig ac = cfg.absorption_eval;
  ac.progress = cfg.progress;
  return ac;
}

void write_skipped(const std::vector<std::string>& dirs, const std::string& why) {
  for (const std::string& d : dirs) write_file_atomic(d + "/absorption_skipped.json", json{{"reason", why}}.dump(2) + "\n");
}

}  // namespace

void absorption_phase(const ExperimentConfig& cfg, const LanguageModel& model, const std::vector<std::string>& all) {
  std::vector<std::string> dirs;
  for (const std::string& d : all)
    if (!file_exists(d + "/eval_absorption.json") && !file_exists(d + "/absorption_skipped.json")) dirs.push_back(d);
  if (dirs.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.progress) std::fprintf(stderr, "== feature absorption: %zu run(s)\n", dirs.size());
  const AbsorptionConfig ac = absorption_config(cfg);
  AbsorptionData data;
  try {
    data = absorption_data(model, cfg.hook, ac);
  } catch (const Error& e) {
    // A vocabulary short of words for some letter, or a tokenizer that splits the template: the
    // experiment's other results stand; each run records why it has no absorption.
    if (cfg.progress) std::fprintf(stderr, "   absorption skipped: %s\n", e.what());
    write_skipped(dirs, e.what());
    return;
  }
  const double lm_s = seconds_since(t0);
  for (const std::string& d : dirs) {
    const Sae sae = load_saelens(d + "/sae", cpu_backend());
    const AbsorptionResult r = absorption_eval(sae, data, ac);
    if (!r.evaluated) {
      // Every SAE shares the probe, so none can be evaluated: say why once and in every run.
      const std::string why = fmt::format(
          "fewer than {} letters have a first-letter probe with test F1 > {} on {} at {} (SAEBench's "
          "min_feats_for_eval): the model does not represent first letters well enough there",
          ac.min_letters, ac.min_probe_f1, model.config().name, cfg.hook);
      if (cfg.progress) std::fprintf(stderr, "   absorption skipped: %s\n", why.c_str());
      write_skipped(dirs, why);
      return;
    }
    const json j = absorption_json(r, data, ac, model.config().name, read_saelens_cfg(d + "/sae"));
    write_file_atomic(d + "/eval_absorption.json", j.dump(2) + "\n");
  }
  if (cfg.progress)
    std::fprintf(stderr, "== feature absorption: %zu run(s) in %.1f s (LM prompts and first-letter probe %.1f s, %zu words)\n",
                 dirs.size(), seconds_since(t0), lm_s, data.vocab.size());
}

void add_absorption_fields(const std::string& dir, json& row) {
  if (!file_exists(dir + "/eval_absorption.json")) return;
  const json a = json::parse(read_file(dir + "/eval_absorption.json"));
  const json& m = a["eval_result_metrics"]["mean"];
  row["absorption_fraction"] = m["mean_absorption_fraction_score"];
  row["full_absorption"] = m["mean_full_absorption_score"];
  row["absorption_split_features"] = m["mean_num_split_features"];
  const json& u = a.value("eval_result_unstructured", json::object());
  if (u.contains("saelab_hierarchy") && u["saelab_hierarchy"]["share"].is_number())
    row["absorption_by_children"] = u["saelab_hierarchy"]["share"];
}

}  // namespace saelab
