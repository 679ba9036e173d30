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

}  // namespace

json probe_persistence(const LlamaModel& model, const std::string& run_dir, const std::string& hook,
                       const ProbeSuite& suite, const ProbingConfig& cfg, int texts_per_task,
                       const std::vector<int>& k_values) {
  Backend& be = cpu_backend();
  const SaeConfig base = load_saelens(run_dir + "/sae", be).config();
  if (base.d_in != model.config().d_model)
    fail("run '{}': SAE d_in {} does not match the width {} of model '{}'", run_dir, base.d_in,
         model.config().d_model, model.config().name);
  const json run_cfg = json::parse(read_file(run_dir + "/config.json"));
  const double children_from = run_cfg.value("children_start_fraction", 0.0);
  const int64_t F = base.d_sae, d = base.d_in;

  std::vector<CheckpointSae> cks;
  for (const std::string& path : list_checkpoints(run_dir + "/checkpoints")) {
    const json meta = read_checkpoint_meta(path);
    if (meta.at("d_sae").get<int64_t>() != F || meta.at("d_in").get<int64_t>() != d)
      fail("checkpoint '{}' is for d_in={} d_sae={}, the run's SAE has d_in={} d_sae={}", path, meta["d_in"].dump(),
           meta["d_sae"].dump(), d, F);
    CheckpointSae c;
    c.fraction = meta.value("fraction", 0.0);
    c.name = fs::path(path).filename().string();
    c.scale = static_cast<float>(meta.value("act_scale", 1.0));
    c.sae = std::make_unique<Sae>(base, be);
    SafetensorsFile st(path + "/state.safetensors");
    be.upload(c.sae->params().flat.view(), st.read_f32("flat.params", {c.sae->params().flat.numel()}).data());
    if (base.architecture == SaeArchitecture::Hierarchical) c.sae->set_children_on(c.fraction >= children_from);
    c.unit_dec = unit_rows(to_host_f32(be, c.sae->params().W_dec), F, d);
    cks.push_back(std::move(c));
  }
  if (cks.size() < 2) fail("'{}' has {} checkpoints; persistence needs at least two", run_dir, cks.size());
  std::vector<const Sae*> saes;
  std::vector<float> scales;
  for (const auto& c : cks) {
    saes.push_back(c.sae.get());
    scales.push_back(c.scale);
  }
  const size_t C = cks.size(), K = k_values.size();
  const int k_max = *std::max_element(k_values.begin(), k_values.end());

  std::vector<std::vector<double>> mean(C, std::vector<double>(K, 0.0));  // [checkpoint][k] sums over tasks
  json tasks = json::array();
  std::vector<const ProbeTask*> selected;
  for (const auto& t : suite.tasks)
    if (cfg.only_tasks.empty() || std::find(cfg.only_tasks.begin(), cfg.only_tasks.end(), t.name) != cfg.only_tasks.end())
      selected.push_back(&t);
  if (selected.empty()) fail("no probing task selected");
  Progress bar("probe persistence", static_cast<int64_t>(selected.size()), "tasks");
  for (const ProbeTask* t : selected) {
    const ProbeSplit sp = make_probe_split(suite.dataset(t->dataset), t->positive, texts_per_task, 0, cfg.seed);
    std::vector<std::vector<float>> pooled;
    pool_features_multi(model, saes, scales, hook, sp.train_text, cfg.context_size, cfg.batch_size, pooled);
    std::vector<std::vector<int>> top(C);
    for (size_t c = 0; c < C; ++c) top[c] = top_k_by_mean_difference(pooled[c], sp.train_label, static_cast<int>(F), k_max);
    json per_k = json::object();
    for (size_t ki = 0; ki < K; ++ki) {
      const int k = std::min<int>(k_values[ki], static_cast<int>(F));
      json curve = json::array();
      for (size_t c = 0; c < C; ++c) {
        int kept = 0;
        for (int a = 0; a < k; ++a) {
          const float* u = cks.back().unit_dec.data() + static_cast<int64_t>(top.back()[a]) * d;
          double best = 0;
          for (int b = 0; b < k; ++b) {
            const float* v = cks[c].unit_dec.data() + static_cast<int64_t>(top[c][b]) * d;
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
    tasks.push_back({{"task", t->name}, {"family", t->family}, {"final_top_latents", top.back()},
                     {"persistence", per_k}});
    if (cfg.progress) bar.update(static_cast<int64_t>(tasks.size()), t->name);
  }
  if (cfg.progress) bar.finish();
  json checkpoints = json::array();
  for (size_t c = 0; c < C; ++c) {
    json m = json::object();
    for (size_t ki = 0; ki < K; ++ki) m[std::to_string(k_values[ki])] = mean[c][ki] / static_cast<double>(selected.size());
    checkpoints.push_back({{"fraction", cks[c].fraction}, {"checkpoint", cks[c].name}, {"mean_persistence", m}});
  }
  return {{"run", run_dir},
          {"k_values", k_values},
          {"texts_per_task", texts_per_task},
          {"selection", "top-k latents by |mean(pos) - mean(neg)| of mean-pooled latents on training texts"},
          {"persists_if", "a checkpoint top-k latent has decoder cosine > 0.7 with the final top-k latent"},
          {"checkpoints", checkpoints},
          {"tasks", tasks}};
}

}  // namespace saelab
