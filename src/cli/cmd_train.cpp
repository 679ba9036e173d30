// `saelab train [--config FILE]`: one SAE on one activation directory, or streamed from the LM with
// --model/--corpus/--hook (see include/saelab/train.hpp).
#include <cstdio>
#include <fmt/format.h>

#include "commands.hpp"
#include "saelab/comm.hpp"
#include "saelab/corpus.hpp"
#include "saelab/train.hpp"

namespace saelab::cli {

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train an SAE from a TOML or JSON config; resumes an interrupted run");
  auto path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto acts = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  auto model = std::make_shared<std::string>();
  auto corpus = std::make_shared<std::vector<std::string>>();
  auto hook = std::make_shared<std::string>();
  cmd->add_option("--config", *path, "config file (.toml or .json); default: every setting at its default");
  cmd->add_option("--out", *out, "output directory (overrides out_dir)");
  cmd->add_option("--activations", *acts, "activation directory (overrides activations)");
  cmd->add_option("--model", *model, "stream activations from this LM instead of a directory (overrides model)");
  cmd->add_option("--corpus", *corpus, "corpus files/directories the LM streams (overrides corpus; default with "
                                       "--model: shared/corpus without brown_plain)");
  cmd->add_option("--hook", *hook, "hook point the LM streams, e.g. blocks.9.hook_resid_post (overrides hook)");
  cmd->add_flag("--no-progress", *quiet, "no progress bar");
  cmd->callback([=] {
    TrainConfig c = path->empty() ? TrainConfig{} : load_train_config(*path);
    if (!out->empty()) c.out_dir = *out;
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
    const TrainResult r = train_sae(c);
    if (world().rank() != 0) return;  // under mpirun: one report for the job
    if (r.already_complete) {
      std::printf("%s is already complete (training_summary.json)\n", c.out_dir.c_str());
      return;
    }
    std::printf("trained %s SAE d_sae=%d: L0 %.2f, explained variance %.4f, loss %.5g, dead %.1f%%%s -> %s/sae\n",
                c.architecture.c_str(), r.summary["d_sae"].get<int>(), r.summary["final_l0"].get<double>(),
                r.summary["final_explained_variance"].get<double>(), r.summary["final_loss"].get<double>(),
                100.0 * r.summary["dead_fraction"].get<double>(),
                r.resumed ? fmt::format(" (resumed at step {})", r.resumed_from_step).c_str() : "", c.out_dir.c_str());
  });
}

}  // namespace saelab::cli
