// saelab command line: parses arguments and calls the library. User and file errors arrive as
// saelab::Error and are printed as one line with a non-zero exit status.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.hpp"
#include "saelab/backend.hpp"
#include "saelab/comm.hpp"
#include "saelab/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"saelab: sparse autoencoders on language-model activations"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "saelab 0.1.0");
  saelab::cli::add_generate(app);
  saelab::cli::add_hooks(app);
  saelab::cli::add_harvest(app);
  saelab::cli::add_train(app);
  saelab::cli::add_synth(app);
  saelab::cli::add_alpha_agreement(app);
  saelab::cli::add_eval(app);
  saelab::cli::add_analyze(app);
  saelab::cli::add_experiment(app);
  saelab::cli::add_dashboard(app);
  if (const std::string w = saelab::blas_kernel_warning(); !w.empty())
    std::fprintf(stderr, "saelab: warning: %s\n", w.c_str());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "saelab: error: %s\n", e.what());
    if (saelab::world().size() > 1) saelab::world().abort(2);
    return 2;
  }
  return 0;
}
