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

std::string default_model_path() { return default_shared_root() + "/models/smollm2-135m-instruct"; }

namespace {
// The text of ids as the tokenizer decodes it without special tokens, except that special tokens
// the model generated (at index >= first_generated) appear as their text, so an end-of-generation
// stop or a chat turn is visible. Runs between them decode on their own: the first run keeps the
// BOS, whose presence decoders use (SentencePiece drops the leading space after it).
std::string decode_showing_special(const Tokenizer& tok, const std::vector<int32_t>& ids, size_t first_generated) {
  std::string out;
  std::vector<int32_t> run;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i >= first_generated && tok.is_special(ids[i])) {
      out += tok.decode(run, true) + tok.piece(ids[i]);
      run.clear();
    } else {
      run.push_back(ids[i]);
    }
  }
  return out + tok.decode(run, true);
}
}  // namespace

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "greedy text generation (checks a model loads and runs)");
  auto model = std::make_shared<std::string>(default_model_path());
  auto prompt = std::make_shared<std::string>();
  auto steps = std::make_shared<int>(60);
  auto no_stop = std::make_shared<bool>(false);
  cmd->add_option("--model", *model, "HF model directory, .gguf file (or a directory holding one) or llama2.c .bin")
      ->capture_default_str();
  cmd->add_option("--prompt", *prompt, "prompt text (empty: start from BOS)");
  cmd->add_option("--steps", *steps, "most tokens to generate")->capture_default_str();
  cmd->add_flag("--no-stop", *no_stop,
                "go on past end-of-generation tokens (EOS, <|im_end|>, ...) instead of stopping at the first");
  cmd->callback([=] {
    auto m = load_model(*model, cpu_backend());
    const Tokenizer& tok = m->tokenizer();
    // BOS only where the model's own tokenizer adds one (or nothing else would start the sequence).
    std::vector<int32_t> ids;
    const bool bos = tok.bos_id() >= 0 && (tok.adds_bos() || prompt->empty());
    if (bos) ids.push_back(tok.bos_id());
    for (int32_t t : tok.encode(*prompt)) ids.push_back(t);
    const size_t prompt_len = ids.size();
    ids = generate_greedy(*m, ids, *steps, /*stop_at_eog=*/!*no_stop);
    std::printf("%s\n", decode_showing_special(tok, ids, prompt_len).c_str());
  });
}

void add_hooks(CLI::App& app) {
  auto* cmd = app.add_subcommand("hooks", "list a model's hook points and shapes");
  auto model = std::make_shared<std::string>(default_model_path());
  cmd->add_option("--model", *model, "HF model directory (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gpt2, gpt_neox), .gguf file or llama2.c .bin")->capture_default_str();
  cmd->callback([=] {
    auto m = load_model(*model, cpu_backend());
    const auto& c = m->config();
    std::printf("%s (%s, %s): d=%d ff=%d layers=%d heads=%d kv_heads=%d head_dim=%d vocab=%d max_seq=%d\n",
                c.name.c_str(), c.architecture.c_str(), c.source_format.c_str(), c.d_model, c.d_ff, c.n_layers,
                c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.max_seq_len);
    for (const auto& n : m->hook_names()) std::printf("%s [N, %d]\n", n.c_str(), c.d_model);
  });
}

}  // namespace saelab::cli
