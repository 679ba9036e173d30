// `saelab synth`: planted activations with known features (see include/saelab/synthetic.hpp).
#include <cstdio>

#include "commands.hpp"
#include "saelab/synthetic.hpp"

namespace saelab::cli {

void add_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "write planted synthetic activations (known features) for checks");
  auto c = std::make_shared<SyntheticConfig>();
  auto out = std::make_shared<std::string>("synthetic");
  cmd->add_option("--out", *out, "output activation directory")->capture_default_str();
  cmd->add_option("--d", c->d, "width")->capture_default_str();
  cmd->add_option("--features", c->n_features, "features (parents when --children > 0)")->capture_default_str();
  cmd->add_option("--children", c->children_per_parent, "children per parent (0: flat)")->capture_default_str();
  cmd->add_option("--freq-min", c->freq_min)->capture_default_str();
  cmd->add_option("--freq-max", c->freq_max)->capture_default_str();
  cmd->add_option("--mag-min", c->mag_min)->capture_default_str();
  cmd->add_option("--mag-max", c->mag_max)->capture_default_str();
  cmd->add_option("--child-prob-min", c->child_prob_min)->capture_default_str();
  cmd->add_option("--child-prob-max", c->child_prob_max)->capture_default_str();
  cmd->add_option("--child-mag-min", c->child_mag_min)->capture_default_str();
  cmd->add_option("--child-mag-max", c->child_mag_max)->capture_default_str();
  cmd->add_option("--noise", c->noise)->capture_default_str();
  cmd->add_option("--freqs", c->freqs, "explicit per-feature firing probabilities");
  cmd->add_option("--mags", c->mags, "explicit per-feature magnitudes");
  cmd->add_option("--tokens", c->n_tokens)->capture_default_str();
  cmd->add_option("--shard-tokens", c->shard_tokens, "rows per shard file")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", c->seed, "seed of the planted features")->capture_default_str();
  cmd->add_option("--sample-seed", c->sample_seed, "seed of the draws (0: --seed); held-out data: same --seed, "
                                                   "another --sample-seed")->capture_default_str();
  cmd->callback([=] {
    const SyntheticTruth t = write_synthetic(*c, *out);
    std::printf("wrote %lld planted activations (d=%d, %d features) to %s\n", (long long)c->n_tokens, c->d, t.n(),
                out->c_str());
  });
}

}  // namespace saelab::cli
