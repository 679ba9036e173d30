// `saelab alpha-agreement`: learned (and naive) α vs the best α of a manual sweep, on held-out data.
#include <cstdio>

#include "commands.hpp"
#include "saelab/alpha_agreement.hpp"
#include "saelab/atomic_file.hpp"

namespace saelab::cli {

void add_alpha_agreement(CLI::App& app) {
  auto* cmd = app.add_subcommand("alpha-agreement", "compare learned/naive α with a manual α sweep on held-out J");
  auto c = std::make_shared<AlphaAgreementConfig>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("--heldout", c->heldout, "held-out activation directory")->required();
  cmd->add_option("--runs", c->runs, "run directories: the fixed-α sweep and learned/naive runs")->required();
  cmd->add_option("--max-tokens", c->max_tokens, "held-out activations to use")->capture_default_str();
  cmd->add_option("--grid-step", c->grid_step, "sweep grid step")->capture_default_str();
  cmd->add_option("--out", *out, "write the JSON here (default: stdout only)");
  cmd->callback([=] {
    const auto j = alpha_agreement(*c);
    if (!out->empty()) write_file_atomic(*out, j.dump(2) + "\n");
    std::printf("%s\n", j.dump(2).c_str());
  });
}

}  // namespace saelab::cli
