// `saelab analyze composition|stability`: analyses of trained runs (include/saelab/analysis.hpp).
#include <cstdio>

#include "commands.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/analysis.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/sae_io.hpp"

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
}

}  // namespace saelab::cli
