// `saelab generate` and `saelab hooks`: look at a model before harvesting from it.
#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "saelab/lm.hpp"

namespace saelab::cli {

std::string default_shared_root() {
  if (const char* e = std::getenv("SAELAB_SHARED"); e && *e) return e;
  return "../shared";  // run from the repository root, beside shared/
}

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "greedy text generation (checks a model loads and runs)");
  auto model = std::make_shared<std::string>(default_shared_root() + "/models/tinystories-656k");
  auto prompt = std::make_shared<std::string>();
  auto steps = std::make_shared<int>(60);
  cmd->add_option("--model", *model, "HF model directory or llama2.c .bin")->capture_default_str();
  cmd->add_option("--prompt", *prompt, "prompt text (empty: start from BOS)");
  cmd->add_option("--steps", *steps, "tokens to generate")->capture_default_str();
  cmd->callback([=] {
    auto m = load_model(*model, cpu_backend());
    std::vector<int32_t> ids{m->tokenizer().bos_id()};
    for (int32_t t : m->tokenizer().encode(*prompt)) ids.push_back(t);
    ids = generate_greedy(*m, ids, *steps);
    std::printf("%s\n", m->tokenizer().decode(ids, true).c_str());
  });
}

void add_hooks(CLI::App& app) {
  auto* cmd = app.add_subcommand("hooks", "list a model's hook points and shapes");
  auto model = std::make_shared<std::string>(default_shared_root() + "/models/tinystories-656k");
  cmd->add_option("--model", *model, "HF model directory or llama2.c .bin")->capture_default_str();
  cmd->callback([=] {
    auto m = load_model(*model, cpu_backend());
    const auto& c = m->config();
    std::printf("%s (%s): d=%d ff=%d layers=%d heads=%d kv_heads=%d vocab=%d max_seq=%d\n", c.name.c_str(),
                c.source_format.c_str(), c.d_model, c.d_ff, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
                c.max_seq_len);
    for (const auto& n : m->hook_names()) std::printf("%s [N, %d]\n", n.c_str(), c.d_model);
  });
}

}  // namespace saelab::cli
