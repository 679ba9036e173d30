// `saelab experiment` (the whole plan of method.md §5) and `saelab run` (one configuration of it).
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/experiment.hpp"
#include "saelab/lm.hpp"
#include "saelab/report.hpp"
#include "saelab/train.hpp"

namespace saelab::cli {

namespace {
void print_table(const nlohmann::json& rows) {
  std::printf("%-8s %-28s %-8s %-10s %7s %7s %8s %8s %8s\n", "run", "name", "alpha", "", "L0", "EV", "CE score",
              "probe", "probe F1");
  for (const auto& r : rows) {
    std::string alpha = "-";
    if (r["final_alpha"].is_array()) {
      alpha.clear();
      for (const auto& a : r["final_alpha"]) alpha += fmt::format("{}{:.2f}", alpha.empty() ? "" : "/", a.get<double>());
    }
    std::printf("%-8s %-28s %-8s %-10s %7.2f %7.4f %8.4f %8.4f %8.4f\n", r["run"].get<std::string>().c_str(),
                r["name"].get<std::string>().c_str(), alpha.c_str(), r["alpha_mode"].get<std::string>().c_str(),
                r["l0"].get<double>(), r["explained_variance"].get<double>(), r["ce_loss_score"].get<double>(),
                r.value("probe_accuracy", 0.0), r.value("probe_f1", 0.0));
  }
}
}  // namespace

void add_experiment(CLI::App& app) {
  auto* ex = app.add_subcommand("experiment", "harvest, train and evaluate the whole plan into run_1..run_N");
  auto path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto tokens = std::make_shared<int64_t>(0);
  auto no_probing = std::make_shared<bool>(false);
  auto seeds = std::make_shared<std::vector<uint64_t>>();
  ex->add_option("--config", *path, "experiment config (.toml/.json), e.g. configs/experiment.toml; default: method.md's plan on SmolLM2");
  ex->add_option("--out", *out, "output directory (default: runs)");
  ex->add_option("--tokens", *tokens, "training activations (default: the config's tokens, else 1M)");
  ex->add_flag("--no-probing", *no_probing, "skip sparse probing");
  ex->add_option("--seeds", *seeds,
                 "training seeds, e.g. 42,43,44: every run once per seed, the report gives mean ± standard error "
                 "(default: the config's seeds, else one)")
      ->delimiter(',');
  ex->callback([=] {
    ExperimentConfig c = load_experiment_config(*path, default_shared_root());
    if (!out->empty()) c.out_dir = *out;
    if (*tokens > 0) c.tokens = *tokens;
    if (*no_probing) c.probing = false;
    if (!seeds->empty()) c.seeds = *seeds;
    const auto rows = run_experiment(c);
    print_table(rows);
    std::printf("experiment: %s (summary.json, alpha_agreement.json, run_*/)\n", c.out_dir.c_str());
    std::printf("report: %s\n", write_report(c.out_dir).c_str());
  });

  auto* rep = app.add_subcommand("report", "write report.html (inline SVG) + report.json/.csv for an experiment");
  auto rdir = std::make_shared<std::string>("runs");
  rep->add_option("--experiment", *rdir, "experiment directory")->capture_default_str();
  rep->callback([=] { std::printf("report: %s\n", write_report(*rdir).c_str()); });

  auto* run = app.add_subcommand("run", "train and evaluate one configuration into --out_dir");
  auto rpath = std::make_shared<std::string>();
  auto rout = std::make_shared<std::string>();
  auto epath = std::make_shared<std::string>();
  run->add_option("--config", *rpath, "the run: {name, TrainConfig keys} (.toml/.json)")->required();
  run->add_option("--out_dir,--out-dir", *rout, "run directory, e.g. runs/run_1")->required();
  run->add_option("--experiment", *epath, "experiment config for shared settings (model, hook, corpus, tokens)");
  run->callback([=] {
    ExperimentConfig c = load_experiment_config(*epath, default_shared_root());
    // Activations live beside the run, shared by its siblings.
    c.out_dir = std::filesystem::path(*rout).parent_path().string();
    if (c.out_dir.empty()) c.out_dir = ".";
    nlohmann::json r = read_config_file(*rpath);
    if (!r.contains("name")) r["name"] = std::filesystem::path(*rout).filename().string();
    auto model = load_model(c.model, cpu_backend());
    std::string acts, heldout;
    prepare_activations(c, *model, acts, heldout);
    print_table(nlohmann::json::array({run_one(c, *model, r, *rout, acts, heldout)}));
  });
}

}  // namespace saelab::cli
