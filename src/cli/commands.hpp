#pragma once
#include <CLI/CLI.hpp>

namespace saelab::cli {
// Each registers a subcommand whose callback does the work (errors propagate to main).
void add_generate(CLI::App& app);
void add_hooks(CLI::App& app);
void add_harvest(CLI::App& app);
void add_train(CLI::App& app);
void add_synth(CLI::App& app);
void add_alpha_agreement(CLI::App& app);
void add_eval(CLI::App& app);
void add_analyze(CLI::App& app);
void add_experiment(CLI::App& app);
void add_dashboard(CLI::App& app);
// The data root (../shared by default): $SAELAB_SHARED, else ../shared beside the working directory.
std::string default_shared_root();
// The default --model: SmolLM2-135M-Instruct (GGUF) under the data root.
std::string default_model_path();
}  // namespace saelab::cli
