// Persistence of the probing tasks' top-k latents across a run's training checkpoints.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "saelab/analysis.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/lm.hpp"
#include "saelab/progress.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/sparse_probing.hpp"
#include "train/checkpoint.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr double kPersistCos = 0.7;

// One checkpoint as an SAE over raw hook activations times `scale`, with its unit decoder rows.
struct CheckpointSae {
  double fraction = 0;
  std::string name;
  std::unique_ptr<Sae> sae;
  float scale = 1;
  std::vector<float> unit_dec;  // [F, d]
};

// A run's checkpoints, oldest first, each with its decoder rows unit-normed.
struct RunCheckpoints {
  std::string dir;
  int64_t F = 0, d = 0;
  std::vector<CheckpointSae> cks;
};

RunCheckpoints load_run_checkpoints(const LanguageModel& model, const std::string& run_dir) {
  Backend& be = cpu_backend();
  const SaeConfig base = load_saelens(run_dir + "/sae", be).config();
  if (base.d_in != model.config().d_model)
    fail("run '{}': SAE d_in {} does not match the width {} of model '{}'", run_dir, base.d_in,
         model.config().d_model, model.config().name);
  const json run_cfg = json::parse(read_file(run_dir + "/config.json"));
  const double children_from = run_cfg.value("children_start_fraction", 0.0);
  RunCheckpoints r;
  r.dir = run_dir;
  r.F = base.d_sae;
  r.d = base.d_in;
  for (const std::string& path : list_checkpoints(run_dir + "/checkpoints")) {
    const json meta = read_checkpoint_meta(path);
    if (meta.at("d_sae").get<int64_t>() != r.F || meta.at("d_in").get<int64_t>() != r.d)
      fail("checkpoint '{}' is for d_in={} d_sae={}, the run's SAE has d_in={} d_sae={}", path, meta["d_in"].dump(),
           meta["d_sae"].dump(), r.d, r.F);
    CheckpointSae c;
    c.fraction = meta.value("fraction", 0.0);
    c.name = fs::path(path).filename().string();
    c.scale = static_cast<float>(meta.value("act_scale", 1.0));
    c.sae = std::make_unique<Sae>(base, be);
    SafetensorsFile st(path + "/state.safetensors");
    be.upload(c.sae->params().flat.view(), st.read_f32("flat.params", {c.sae->params().flat.numel()}).data());
    if (base.architecture == SaeArchitecture::Hierarchical) c.sae->set_children_on(c.fraction >= children_from);
    c.unit_dec = unit_rows(to_host_f32(be, c.sae->params().W_dec), r.F, r.d);
    r.cks.push_back(std::move(c));
  }
  if (r.cks.size() < 2) fail("'{}' has {} checkpoints; persistence needs at least two", run_dir, r.cks.size());
  return r;
}

// Per k: the fraction of the final checkpoint's top-k latents that persist at each checkpoint.
// top[c]: checkpoint c's latents by |mean difference|, best first (at least max k of them).
json persistence_curves(const RunCheckpoints& run, const std::vector<std::vector<int>>& top,
                        const std::vector<int>& k_values, std::vector<std::vector<double>>& mean) {
  const size_t C = run.cks.size();
  const int64_t d = run.d;
  json per_k = json::object();
  for (size_t ki = 0; ki < k_values.size(); ++ki) {
    const int k = std::min<int>(k_values[ki], static_cast<int>(run.F));
    json curve = json::array();
    for (size_t c = 0; c < C; ++c) {
      int kept = 0;
      for (int a = 0; a < k; ++a) {
        const float* u = run.cks.back().unit_dec.data() + static_cast<int64_t>(top.back()[a]) * d;
        double best = 0;
        for (int b = 0; b < k; ++b) {
          const float* v = run.cks[c].unit_dec.data() + static_cast<int64_t>(top[c][b]) * d;
          double dot = 0;
          for (int64_t j = 0; j < d; ++j) dot += double(u[j]) * v[j];
          best = std::max(best, dot);
        }
        kept += best > kPersistCos;
      }
      const double frac = static_cast<double>(kept) / k;
      curve.push_back(frac);
      mean[c][ki] += frac;
    }
    per_k[std::to_string(k_values[ki])] = curve;
  }
  return per_k;
}

}  // namespace

std::vector<json> probe_persistence_multi(const LanguageModel& model, const std::vector<std::string>& run_dirs,
                                          const std::string& hook, const ProbeSuite& suite, const ProbingConfig& cfg,
                                          int texts_per_task, const std::vector<int>& k_values, EvalTiming* timing) {
  if (k_values.empty()) fail("probe persistence needs at least one k");
  EvalTiming local;
  EvalTiming& tm = timing ? *timing : local;
  std::vector<RunCheckpoints> runs;
  std::vector<const Sae*> saes;  // every checkpoint of every run, run by run
  std::vector<float> scales;
  {
    TimeInto t(&tm.other_s);
    for (const std::string& dir : run_dirs) runs.push_back(load_run_checkpoints(model, dir));
    for (const auto& r : runs)
      for (const auto& c : r.cks) {
        saes.push_back(c.sae.get());
        scales.push_back(c.scale);
      }
  }
  const size_t K = k_values.size();
  const int k_max = *std::max_element(k_values.begin(), k_values.end());

  std::vector<std::vector<std::vector<double>>> mean;  // [run][checkpoint][k] sums over tasks
  for (const auto& r : runs) mean.emplace_back(r.cks.size(), std::vector<double>(K, 0.0));
  std::vector<json> tasks(runs.size(), json::array());
  std::vector<const ProbeTask*> selected;
  for (const auto& t : suite.tasks)
    if (cfg.only_tasks.empty() || std::find(cfg.only_tasks.begin(), cfg.only_tasks.end(), t.name) != cfg.only_tasks.end())
      selected.push_back(&t);
  if (selected.empty()) fail("no probing task selected");
  std::vector<ProbeSplit> splits;
  std::vector<std::vector<std::string>> texts;
  for (const ProbeTask* t : selected) {
    splits.push_back(make_probe_split(suite.dataset(t->dataset), t->positive, t->negatives, texts_per_task, 0, cfg.seed));
    texts.push_back(splits.back().train_text);
  }
  Progress bar("probe persistence", static_cast<int64_t>(selected.size()), "tasks");
  // One LM pass per task (over texts an earlier task did not run) feeds every checkpoint of every run.
  auto select = [&](size_t ti, const std::vector<float>&, const std::vector<std::vector<float>>& pooled) {
    TimeInto t_sel(&tm.other_s);
    const ProbeTask* t = selected[ti];
    size_t first = 0;  // index of the run's first checkpoint in `pooled`
    for (size_t r = 0; r < runs.size(); ++r) {
      const size_t C = runs[r].cks.size();
      std::vector<std::vector<int>> top(C);
      for (size_t c = 0; c < C; ++c)
        top[c] = top_k_by_mean_difference(pooled[first + c], splits[ti].train_label, static_cast<int>(runs[r].F), k_max);
      first += C;
      const json per_k = persistence_curves(runs[r], top, k_values, mean[r]);
      tasks[r].push_back({{"task", t->name}, {"family", t->family}, {"final_top_latents", top.back()},
                          {"persistence", per_k}});
    }
    if (cfg.progress) bar.update(static_cast<int64_t>(ti + 1), t->name);
  };
  pool_text_lists(model, saes, scales, hook, texts, cfg.context_size, cfg.batch_size, select, &tm);
  if (cfg.progress) bar.finish();
  std::vector<json> results;
  for (size_t r = 0; r < runs.size(); ++r) {
    json checkpoints = json::array();
    for (size_t c = 0; c < runs[r].cks.size(); ++c) {
      json m = json::object();
      for (size_t ki = 0; ki < K; ++ki)
        m[std::to_string(k_values[ki])] = mean[r][c][ki] / static_cast<double>(selected.size());
      checkpoints.push_back(
          {{"fraction", runs[r].cks[c].fraction}, {"checkpoint", runs[r].cks[c].name}, {"mean_persistence", m}});
    }
    results.push_back({{"run", runs[r].dir},
                       {"k_values", k_values},
                       {"texts_per_task", texts_per_task},
                       {"selection", "top-k latents by |mean(pos) - mean(neg)| of mean-pooled latents on training texts"},
                       {"persists_if", "a checkpoint top-k latent has decoder cosine > 0.7 with the final top-k latent"},
                       {"checkpoints", checkpoints},
                       {"tasks", std::move(tasks[r])}});
  }
  return results;
}

json probe_persistence(const LanguageModel& model, const std::string& run_dir, const std::string& hook,
                       const ProbeSuite& suite, const ProbingConfig& cfg, int texts_per_task,
                       const std::vector<int>& k_values) {
  return probe_persistence_multi(model, {run_dir}, hook, suite, cfg, texts_per_task, k_values)[0];
}

}  // namespace saelab
