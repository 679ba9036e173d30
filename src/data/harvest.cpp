#include "saelab/harvest.hpp"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "data/harvest_rows.hpp"
#include "saelab/activation_store.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/lm.hpp"
#include "saelab/npy.hpp"
#include "saelab/progress.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::vector<std::string> absolute_paths(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(fs::absolute(f).lexically_normal().string());
  return out;
}

json settings_json(const HarvestConfig& c, const LanguageModel& m, const std::vector<std::string>& files) {
  return {{"model_name", m.config().name},
          {"model_path", fs::absolute(c.model_path).lexically_normal().string()},
          {"hook_name", c.hook_name},
          {"context_size", c.context_size},
          {"prepend_bos", true},
          {"exclude_special_tokens", c.exclude_special},
          {"dtype", dtype_name(c.dtype)},
          {"format", c.format},
          {"max_tokens", c.max_tokens},
          {"shard_tokens", c.shard_tokens},
          {"corpus", absolute_paths(files)}};
}

void write_shard(ActivationManifest& m, const std::vector<float>& acts, const std::vector<int32_t>& toks) {
  const int64_t n = static_cast<int64_t>(toks.size());
  const std::string stem = fmt::format("shard_{:05d}", m.shards.size());
  std::vector<uint16_t> half;
  const void* data = acts.data();
  if (m.dtype == DType::F16) {
    half.resize(acts.size());
    convert_from_f32(half.data(), DType::F16, acts.data(), acts.size());
    data = half.data();
  }
  ActivationShard s;
  s.n_tokens = n;
  if (m.format == "safetensors") {
    s.file = s.tokens_file = stem + ".safetensors";
    write_safetensors(m.dir + "/" + s.file,
                      {{"activations", m.dtype, {n, m.d_in}, data}, {"tokens", DType::I32, {n}, toks.data()}},
                      {{"hook_name", m.hook_name}, {"model_name", m.model_name}});
  } else {
    s.file = stem + ".npy";
    s.tokens_file = stem + ".tokens.npy";
    write_npy(m.dir + "/" + s.tokens_file, DType::I32, {n}, toks.data());
    write_npy(m.dir + "/" + s.file, m.dtype, {n, m.d_in}, data);
  }
  m.shards.push_back(s);
  m.n_tokens += n;
}

}  // namespace

HarvestResult harvest(const HarvestConfig& c, const LanguageModel* model_in) {
  if (c.out_dir.empty()) fail("harvest needs an output directory (--out)");
  if (c.context_size < 2) fail("context length must be at least 2, got {}", c.context_size);
  if (c.batch_size < 1) fail("batch size must be at least 1, got {}", c.batch_size);
  if (c.dtype != DType::F32 && c.dtype != DType::F16) fail("activation dtype must be f32 or f16, got {}", dtype_name(c.dtype));
  if (c.format != "npy" && c.format != "safetensors") fail("shard format must be npy or safetensors, got '{}'", c.format);
  std::unique_ptr<LanguageModel> owned;
  if (!model_in) owned = load_model(c.model_path, backend_named(c.device));
  const LanguageModel& model = model_in ? *model_in : *owned;
  const auto t0 = std::chrono::steady_clock::now();  // the rate excludes loading the model
  check_hook_and_context(model, c.hook_name, c.context_size);
  const std::vector<std::string> files = expand_corpus_paths(c.corpus);

  ActivationManifest m;
  m.dir = c.out_dir;
  m.settings = settings_json(c, model, files);
  m.model_name = model.config().name;
  m.hook_name = c.hook_name;
  m.format = c.format;
  m.dtype = c.dtype;
  m.d_in = model.config().d_model;
  HarvestResult r;
  if (file_exists(c.out_dir + "/manifest.json")) {
    ActivationManifest old = read_activation_manifest(c.out_dir);
    if (old.settings != m.settings)
      fail("'{}' holds a harvest with other settings ({}); use another --out directory", c.out_dir,
           old.settings.dump());
    if (old.complete) {
      r.n_tokens = old.n_tokens;
      r.already_complete = true;
      return r;
    }
    m = old;
    r.resumed = true;
    remove_stale_temps(c.out_dir);
  } else {
    CorpusReader probe_reader(files);  // refuse an empty corpus before creating anything
    ContextStream probe(probe_reader, model.tokenizer(), c.context_size);
    std::vector<int32_t> first;
    if (!probe.next(first))
      fail("the corpus ({} file{}, first '{}') yields no complete context of {} tokens", files.size(),
           files.size() == 1 ? "" : "s", files.front(), c.context_size);
    fs::create_directories(c.out_dir);
    write_activation_manifest(m);
  }

  const int T = c.context_size, d = m.d_in;
  const int64_t target = c.max_tokens > 0 ? c.max_tokens : 0;
  CorpusReader reader(files);
  ContextStream stream(reader, model.tokenizer(), T);
  std::vector<int32_t> ctx;
  for (int64_t i = 0; i < m.contexts_done; ++i)  // resume: replay the deterministic stream
    if (!stream.next(ctx)) fail("'{}': the corpus is shorter than the {} contexts already harvested", c.out_dir, m.contexts_done);

  std::vector<float> batch_acts(static_cast<size_t>(c.batch_size) * T * d);
  Hooks hooks;
  hooks.observe(c.hook_name, [&](TensorView act) { model.backend().download(batch_acts.data(), act); });
  std::vector<float> shard_acts;
  std::vector<int32_t> shard_toks, batch_tokens;
  const Tokenizer& tok = model.tokenizer();
  Progress bar(fmt::format("harvest {}", c.hook_name), target > 0 ? target : 0);
  int64_t contexts_in_shard = 0;
  bool corpus_done = false;
  while (!corpus_done && (target == 0 || m.n_tokens + static_cast<int64_t>(shard_toks.size()) < target)) {
    const int B = next_context_batch(stream, c.batch_size, batch_tokens);
    if (B < c.batch_size) corpus_done = true;
    if (B == 0) break;
    model.forward(batch_tokens, B, T, &hooks, /*want_logits=*/false);
    // Non-finite activations (corrupt weights) or values f16 cannot hold are refused before any of
    // this batch is stored.
    check_finite_batch(model, c.hook_name, batch_acts.data(), static_cast<int64_t>(B) * T, d, T,
                       m.contexts_done + contexts_in_shard);
    const float f16_max = 65504.f;
    for (size_t i = 0; c.dtype == DType::F16 && i < static_cast<size_t>(B) * T * d; ++i) {
      const float v = batch_acts[i];
      if (std::fabs(v) <= f16_max) continue;
      const int64_t row = static_cast<int64_t>(i) / d;
      const int64_t context = m.contexts_done + contexts_in_shard + row / T;
      fail("activation {} at hook '{}' (context {}, position {}, column {}) exceeds the f16 range (±65504); "
           "harvest with dtype f32",
           v, c.hook_name, context, row % T, static_cast<int64_t>(i) % d);
    }
    for (int64_t row = 0; row < static_cast<int64_t>(B) * T; ++row) {
      const int32_t t = batch_tokens[row];
      if (!keeps_position(tok, t, c.exclude_special)) continue;
      shard_toks.push_back(t);
      shard_acts.insert(shard_acts.end(), batch_acts.begin() + row * d, batch_acts.begin() + (row + 1) * d);
    }
    r.contexts += B;
    contexts_in_shard += B;
    if (target > 0 && m.n_tokens + static_cast<int64_t>(shard_toks.size()) >= target) {
      const size_t keep = static_cast<size_t>(target - m.n_tokens);  // the final shard ends exactly at max_tokens
      shard_toks.resize(keep);
      shard_acts.resize(keep * d);
    }
    const bool last = corpus_done || (target > 0 && m.n_tokens + static_cast<int64_t>(shard_toks.size()) >= target);
    if (static_cast<int64_t>(shard_toks.size()) >= c.shard_tokens || (last && !shard_toks.empty())) {
      r.new_tokens += static_cast<int64_t>(shard_toks.size());
      write_shard(m, shard_acts, shard_toks);
      m.contexts_done += contexts_in_shard;
      contexts_in_shard = 0;
      shard_toks.clear();
      shard_acts.clear();
      write_activation_manifest(m);
    }
    if (c.progress) bar.update(m.n_tokens + static_cast<int64_t>(shard_toks.size()), fmt::format("shards {}", m.shards.size()));
  }
  if (m.n_tokens == 0) fail("the corpus ({} files) yielded no complete context of {} tokens", files.size(), T);
  m.complete = true;
  write_activation_manifest(m);
  r.n_tokens = m.n_tokens;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (c.progress) bar.finish(fmt::format("shards {}", m.shards.size()));
  return r;
}

}  // namespace saelab
