// `saelab train [--config FILE]...`: SAEs on one activation directory, or streamed from the LM with
// --model/--corpus/--hook (see include/saelab/train.hpp). Several --config train their SAEs in one
// pass over the data (train_saes), each into <out>/<the config file's stem>.
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>

#include "commands.hpp"
#include "saelab/comm.hpp"
#include "saelab/corpus.hpp"
#include "saelab/train.hpp"

namespace saelab::cli {

namespace {

void report(const TrainConfig& c, const TrainResult& r) {
  if (r.already_complete) {
    std::printf("%s is already complete (training_summary.json)\n", c.out_dir.c_str());
    return;
  }
  std::printf("trained %s SAE d_sae=%d: L0 %.2f, explained variance %.4f, loss %.5g, dead %.1f%%%s -> %s/sae\n",
              c.architecture.c_str(), r.summary["d_sae"].get<int>(), r.summary["final_l0"].get<double>(),
              r.summary["final_explained_variance"].get<double>(), r.summary["final_loss"].get<double>(),
              100.0 * r.summary["dead_fraction"].get<double>(),
              r.resumed ? fmt::format(" (resumed at step {})", r.resumed_from_step).c_str() : "", c.out_dir.c_str());
}

}  // namespace

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train an SAE from a TOML or JSON config; resumes an interrupted run");
  auto paths = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto acts = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  auto model = std::make_shared<std::string>();
  auto corpus = std::make_shared<std::vector<std::string>>();
  auto hook = std::make_shared<std::string>();
  cmd->add_option("--config", *paths, "config file (.toml or .json); default: every setting at its default. Given "
                                      "more than once: those SAEs train together, one pass over the data");
  cmd->add_option("--out", *out, "output directory (overrides out_dir); with several --config, each run goes to "
                                 "DIR/<config file stem>");
  cmd->add_option("--activations", *acts, "activation directory (overrides activations)");
  cmd->add_option("--model", *model, "stream activations from this LM instead of a directory (overrides model)");
  cmd->add_option("--corpus", *corpus, "corpus files/directories the LM streams (overrides corpus; default with "
                                       "--model: shared/corpus without brown_plain)");
  cmd->add_option("--hook", *hook, "hook point the LM streams, e.g. blocks.9.hook_resid_post (overrides hook)");
  cmd->add_flag("--no-progress", *quiet, "no progress bar");
  cmd->callback([=] {
    std::vector<TrainConfig> cfgs;
    for (const std::string& p : paths->empty() ? std::vector<std::string>{""} : *paths) {
      TrainConfig c = p.empty() ? TrainConfig{} : load_train_config(p);
      if (!out->empty())
        c.out_dir = paths->size() > 1 ? *out + "/" + std::filesystem::path(p).stem().string() : *out;
      if (!acts->empty()) {
        c.activations = *acts;
        c.model.clear();
      }
      if (!model->empty()) {
        c.model = *model;
        c.activations.clear();
      }
      if (!corpus->empty()) c.corpus = *corpus;
      if (!hook->empty()) c.hook = *hook;
      if (!c.model.empty() && c.corpus.empty()) c.corpus = default_corpus_paths(default_shared_root());
      c.progress = !*quiet;
      cfgs.push_back(std::move(c));
    }
    const std::vector<TrainResult> results = train_saes(cfgs);
    if (world().rank() != 0) return;  // under mpirun: one report for the job
    for (size_t i = 0; i < cfgs.size(); ++i) report(cfgs[i], results[i]);
  });
}

}  // namespace saelab::cli
