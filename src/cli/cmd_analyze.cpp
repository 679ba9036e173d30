// `saelab analyze composition|stability|persistence`: analyses of trained runs (include/saelab/analysis.hpp).
#include <cstdio>

#include "commands.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/analysis.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/lm.hpp"
#include "saelab/probe_data.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/sparse_probing.hpp"

namespace saelab::cli {

void add_analyze(CLI::App& app) {
  auto* an = app.add_subcommand("analyze", "analyses of trained runs");
  an->require_subcommand(1);
  auto* comp = an->add_subcommand("composition", "parents vs children of a hierarchical SAE on activations");
  auto run = std::make_shared<std::string>();
  auto acts = std::make_shared<std::string>();
  auto max_tokens = std::make_shared<int64_t>(50000);
  comp->add_option("--run", *run, "run directory (its sae/ is analysed)")->required();
  comp->add_option("--activations", *acts, "activation directory (held-out preferred)")->required();
  comp->add_option("--max-tokens", *max_tokens, "activations to use")->capture_default_str();
  comp->callback([=] {
    Sae sae = load_saelens(*run + "/sae", cpu_backend());
    const ActivationManifest m = read_activation_manifest(*acts);
    const ActivationSample s = sample_activations(m, *max_tokens, *max_tokens);
    const auto j = composition_quality(sae, s.rows, s.n);
    write_file_atomic(*run + "/composition.json", j.dump(2) + "\n");
    std::printf("%s\n", j.dump(2).c_str());
  });
  auto* stab = an->add_subcommand("stability", "decoder matching across a run's checkpoints");
  auto srun = std::make_shared<std::string>();
  stab->add_option("--run", *srun, "run directory")->required();
  stab->callback([=] {
    const auto j = concept_stability(*srun);
    write_file_atomic(*srun + "/stability.json", j.dump(2) + "\n");
    std::printf("%s\n", j.dump(2).c_str());
  });

  auto* per = an->add_subcommand("persistence", "probing tasks' top-k latents across a run's checkpoints");
  auto prun = std::make_shared<std::string>();
  auto pmodel = std::make_shared<std::string>(default_model_path());
  auto ptasks = std::make_shared<std::string>("data/probe_tasks.json");
  auto proot = std::make_shared<std::string>(default_shared_root());
  auto ptexts = std::make_shared<int>(100);
  auto pcfg = std::make_shared<ProbingConfig>();
  per->add_option("--run", *prun, "run directory (its checkpoints/ and sae/)")->required();
  per->add_option("--model", *pmodel, "the LM the SAE was trained on")->capture_default_str();
  per->add_option("--tasks", *ptasks, "task file")->capture_default_str();
  per->add_option("--data-root", *proot, "root the task file's paths are relative to")->capture_default_str();
  per->add_option("--texts", *ptexts, "training texts per task")->capture_default_str();
  per->add_option("--only", pcfg->only_tasks, "run only these tasks (e.g. language/en)");
  per->callback([=] {
    const auto sae_cfg = read_saelens_cfg(*prun + "/sae");
    auto m = load_model(*pmodel, cpu_backend());
    const ProbeSuite suite = load_probe_suite(*ptasks, *proot);
    const auto j = probe_persistence(*m, *prun, sae_cfg.at("hook_name").get<std::string>(), suite, *pcfg, *ptexts);
    write_file_atomic(*prun + "/probe_persistence.json", j.dump(2) + "\n");
    for (const auto& c : j["checkpoints"])
      std::printf("%-16s fraction %.2f  top-k persisting: %s\n", c["checkpoint"].get<std::string>().c_str(),
                  c["fraction"].get<double>(), c["mean_persistence"].dump().c_str());
  });
}

}  // namespace saelab::cli
