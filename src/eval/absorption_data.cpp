// The SAE-independent half of the absorption eval: vocabulary, word split, prompts, the LM's
// activations at the word's token, the first-letter probe, and its true positives re-prompted.
#include <algorithm>
#include <array>
#include <cstdio>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"
#include "saelab/lm.hpp"
#include "saelab/progress.hpp"

namespace saelab {

namespace {

// Whether the token at prompt_token_pos of a prompt's ids (BOS first) is the word.
bool word_at(const Tokenizer& tok, const std::vector<int32_t>& ids, int pos, const std::string& word) {
  const int t = static_cast<int>(ids.size()) + pos;
  if (t < 0) return false;
  std::string at = tok.decode({ids[t]}), w = word;
  at.erase(0, at.find_first_not_of(' '));
  w.erase(0, w.find_first_not_of(' '));
  return at == w;
}

// SAEBench reads position prompt_token_pos whatever the tokenizer makes of the template (its
// config says to check it per tokenizer); saelab checks on the first prompts and refuses when the
// word is mostly elsewhere, naming the position where it is.
void check_token_position(const Tokenizer& tok, const std::vector<std::string>& prompts,
                          const std::vector<std::string>& words, const AbsorptionConfig& cfg) {
  const size_t n = std::min<size_t>(prompts.size(), 50);
  int wrong = 0, found = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::vector<int32_t> ids = tok.encode(prompts[i]);
    if (word_at(tok, ids, cfg.prompt_token_pos, words[i])) continue;
    ++wrong;
    for (int t = static_cast<int>(ids.size()) - 1; t >= 0 && !found; --t)
      if (word_at(tok, ids, t - static_cast<int>(ids.size()), words[i])) found = t - static_cast<int>(ids.size());
  }
  if (2 * wrong > static_cast<int>(n))
    fail("absorption: in {} of {} prompts the token at prompt_token_pos {} is not the word (this tokenizer splits "
         "the template '{}' differently){}",
         wrong, n, cfg.prompt_token_pos, cfg.prompt_template,
         found ? fmt::format("; the word is at {} here: pass --prompt-token-pos {}", found, found) : std::string());
}

// Hook activations [n, d] of each prompt at `pos` from its end (BOS first, as TransformerLens'
// run_with_cache prepends it). Prompts of one batch are right-padded; causal attention keeps the
// padding out of every read position. Counts prompts whose token there is not the word.
std::vector<float> activations_at(const LanguageModel& model, const std::string& hook,
                                  const std::vector<std::string>& prompts, const std::vector<std::string>& words,
                                  const AbsorptionConfig& cfg, const std::string& label, int64_t& mismatches) {
  const Tokenizer& tok = model.tokenizer();
  const int d = model.config().d_model;
  const int64_t n = static_cast<int64_t>(prompts.size());
  std::vector<float> out(static_cast<size_t>(n) * d);
  std::unique_ptr<Progress> bar;
  if (cfg.progress) bar = std::make_unique<Progress>(label, n, "prompts");
  const int32_t pad = tok.eos_id() >= 0 ? tok.eos_id() : std::max(tok.bos_id(), 0);
  for (int64_t b0 = 0; b0 < n; b0 += cfg.llm_batch_size) {
    const int B = static_cast<int>(std::min<int64_t>(cfg.llm_batch_size, n - b0));
    std::vector<std::vector<int32_t>> ids(static_cast<size_t>(B));
    int T = 1;
    for (int b = 0; b < B; ++b) {
      if (tok.bos_id() >= 0) ids[b].push_back(tok.bos_id());
      for (int32_t t : tok.encode(prompts[b0 + b])) ids[b].push_back(t);
      if (static_cast<int>(ids[b].size()) < -cfg.prompt_token_pos)
        fail("absorption: the prompt for '{}' has {} tokens, fewer than prompt_token_pos {} reaches back",
             words[b0 + b], ids[b].size(), cfg.prompt_token_pos);
      T = std::max<int>(T, static_cast<int>(ids[b].size()));
    }
    if (T > model.config().max_seq_len && model.config().max_seq_len > 0)
      fail("absorption: prompts of {} tokens exceed the model's {} positions (fewer in-context examples?)", T,
           model.config().max_seq_len);
    std::vector<int32_t> flat(static_cast<size_t>(B) * T, pad);
    for (int b = 0; b < B; ++b) std::copy(ids[b].begin(), ids[b].end(), flat.begin() + int64_t{b} * T);
    std::vector<float> act;  // [B, T, d]
    Hooks hooks;
    hooks.observe(hook, [&](TensorView a) { act = to_host_f32(model.backend(), a); });
    model.forward(flat, B, T, &hooks, /*want_logits=*/false);
    for (int b = 0; b < B; ++b) {
      const int t = static_cast<int>(ids[b].size()) + cfg.prompt_token_pos;
      mismatches += !word_at(tok, ids[b], cfg.prompt_token_pos, words[b0 + b]);
      std::copy(act.begin() + (int64_t{b} * T + t) * d, act.begin() + (int64_t{b} * T + t + 1) * d,
                out.begin() + (b0 + b) * d);
    }
    if (bar) bar->update(b0 + B);
  }
  if (bar) bar->finish();
  return out;
}

// Prompts for `words`, each with fresh examples from `pool` (probing.create_dataset_probe_training
// and the calculator's _build_prompts).
std::vector<std::string> prompts_for(const std::vector<std::string>& words, const std::vector<std::string>& pool,
                                     const AbsorptionConfig& cfg, std::mt19937_64& rng) {
  std::vector<std::string> out;
  out.reserve(words.size());
  for (const std::string& w : words)
    out.push_back(icl_prompt(w, sample_icl_examples(w, pool, cfg.max_icl_examples, rng), cfg.prompt_template));
  return out;
}

void check_vocabulary(const std::vector<std::string>& vocab, const std::string& model_name, const AbsorptionConfig& cfg) {
  std::array<int, kLetters> count{};
  for (const std::string& w : vocab) ++count[static_cast<size_t>(first_letter_index(w))];
  for (int l = 0; l < kLetters; ++l)
    if (count[l] < cfg.min_words_per_letter)
      fail("absorption: the vocabulary of {} has {} single-token alphabetic word(s) starting with '{}', expected at "
           "least {} (min_words_per_letter); the first-letter task needs every letter",
           model_name, count[l], static_cast<char>('a' + l), cfg.min_words_per_letter);
}

}  // namespace

void score_probe(AbsorptionData& D) {
  const ProbeRows te{static_cast<int64_t>(D.test_y.size()), D.d, D.test_x.data()};
  SAELAB_ASSERT(D.probe.P == kLetters && D.probe.D == D.d && static_cast<int64_t>(D.test_x.size()) == te.n * D.d,
                "score_probe shapes");
  std::array<int64_t, kLetters> tp{}, fp{}, fn{};
  D.tp_words.clear();
  D.tp_y.clear();
  D.tp_test_row.clear();
  for (int64_t i = 0; i < te.n; ++i)
    for (int l = 0; l < kLetters; ++l) {
      const bool pred = D.probe.logit(te, i, l) > 0.f, truth = D.test_y[i] == l;
      tp[l] += pred && truth;
      fp[l] += pred && !truth;
      fn[l] += !pred && truth;
      if (pred && truth) {
        D.tp_words.push_back(D.test_words.empty() ? std::string() : D.test_words[i]);
        D.tp_y.push_back(l);
        D.tp_test_row.push_back(i);
      }
    }
  D.probe_f1.clear();
  for (int l = 0; l < kLetters; ++l)
    D.probe_f1.push_back(tp[l] ? 2.0 * tp[l] / static_cast<double>(2 * tp[l] + fp[l] + fn[l]) : 0.0);
}

AbsorptionData absorption_data(const LanguageModel& model, const std::string& hook, const AbsorptionConfig& cfg) {
  model.check_hook(hook);
  if (cfg.prompt_token_pos >= 0) fail("absorption: prompt_token_pos must be negative (from the end), got {}", cfg.prompt_token_pos);
  if (cfg.prompt_template.find("{word}") == std::string::npos)
    fail("absorption: the prompt template '{}' has no {{word}}", cfg.prompt_template);
  if (cfg.llm_batch_size < 1) fail("absorption: llm_batch_size must be at least 1, got {}", cfg.llm_batch_size);
  AbsorptionData D;
  D.d = model.config().d_model;
  D.hook = hook;
  std::mt19937_64 rng(cfg.seed);
  D.vocab = alpha_vocab(model.tokenizer());
  std::shuffle(D.vocab.begin(), D.vocab.end(), rng);  // random.sample(vocab, len(vocab))
  if (cfg.max_words > 0 && static_cast<int64_t>(D.vocab.size()) > cfg.max_words) D.vocab.resize(cfg.max_words);
  check_vocabulary(D.vocab, model.config().name, cfg);
  const size_t split = static_cast<size_t>(static_cast<double>(D.vocab.size()) * cfg.train_fraction);
  D.train_words.assign(D.vocab.begin(), D.vocab.begin() + static_cast<std::ptrdiff_t>(split));
  D.test_words.assign(D.vocab.begin() + static_cast<std::ptrdiff_t>(split), D.vocab.end());
  for (const auto& w : D.train_words) D.train_y.push_back(first_letter_index(w));
  for (const auto& w : D.test_words) D.test_y.push_back(first_letter_index(w));
  // Train prompts draw examples from the train words, test prompts from the test words.
  const std::vector<std::string> train_prompts = prompts_for(D.train_words, D.train_words, cfg, rng);
  check_token_position(model.tokenizer(), train_prompts, D.train_words, cfg);
  D.train_x = activations_at(model, hook, train_prompts, D.train_words, cfg, "absorption train prompts",
                             D.word_position_mismatches);
  D.test_x = activations_at(model, hook, prompts_for(D.test_words, D.test_words, cfg, rng), D.test_words, cfg,
                            "absorption test prompts", D.word_position_mismatches);
  MultiProbeOptions po;
  po.lr = cfg.probe_lr;
  po.end_lr = cfg.probe_end_lr;
  po.weight_decay = cfg.probe_weight_decay;
  po.batch_size = cfg.probe_batch_size;
  po.epochs = cfg.probe_epochs;
  po.seed = cfg.seed;
  const ProbeRows tr{static_cast<int64_t>(D.train_words.size()), D.d, D.train_x.data()};
  D.probe = train_multi_probe(tr, D.train_y, kLetters, po);
  score_probe(D);
  // The calculator prompts each true positive again, with examples from the whole vocabulary.
  D.tp_x = activations_at(model, hook, prompts_for(D.tp_words, D.vocab, cfg, rng), D.tp_words, cfg,
                          "absorption true positives", D.word_position_mismatches);
  return D;
}

}  // namespace saelab
