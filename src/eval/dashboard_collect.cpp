// The dashboard's streaming pass: contexts cut from the corpus as a harvest cuts them, one LM
// forward per batch up to the hook, every SAE encoded on the same activations, and per latent a
// bounded record (counts, histogram, top-k examples, a reservoir of firings). Memory is O(F·k·window)
// per SAE, whatever the number of tokens.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "dashboard_internal.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/lm.hpp"
#include "saelab/progress.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/sae_io.hpp"
#include "util/stopwatch.hpp"

namespace saelab {

namespace {

using Clock = std::chrono::steady_clock;

// splitmix64: the reservoir's draws depend on (seed, latent, firing number) only, so the result
// does not depend on the thread count or schedule.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int hist_bin(float v) {
  const double b = (std::log10(static_cast<double>(v)) - kHistLo) / (kHistHi - kHistLo) * kHistBins;
  return static_cast<int>(std::clamp(b, 0.0, static_cast<double>(kHistBins - 1)));
}

// One batch's view for the bookkeeping: f [N, F] on the host, the batch's tokens [N], T per context.
struct BatchView {
  const float* f;
  const int32_t* tokens;
  int64_t N, F;
  int T;
  int64_t first_context;  // index of the batch's first context in the pass
};

LatentExample example_at(const BatchView& b, int64_t row, int64_t latent, int window) {
  LatentExample e;
  const int pos = static_cast<int>(row % b.T);
  const int64_t ctx_row0 = row - pos;
  const int lo = std::max(0, pos - window), hi = std::min(b.T - 1, pos + window);
  e.context = b.first_context + row / b.T;
  e.position = pos;
  e.centre = pos - lo;
  e.value = b.f[row * b.F + latent];
  for (int t = lo; t <= hi; ++t) {
    e.tokens.push_back(b.tokens[ctx_row0 + t]);
    e.acts.push_back(b.f[(ctx_row0 + t) * b.F + latent]);
  }
  return e;
}

// The top-k of one latent: at most one example per context (its largest), the smallest replaced.
void offer_top(std::vector<LatentExample>& top, const BatchView& b, int64_t row, int64_t latent, float v,
               const DashboardConfig& cfg) {
  const int64_t ctx = b.first_context + row / b.T;
  for (auto& e : top)
    if (e.context == ctx) {
      if (v > e.value) e = example_at(b, row, latent, cfg.window);
      return;
    }
  if (static_cast<int>(top.size()) < cfg.top_k) {
    top.push_back(example_at(b, row, latent, cfg.window));
    return;
  }
  auto min_it = std::min_element(top.begin(), top.end(), [](const auto& a, const auto& c) { return a.value < c.value; });
  if (v > min_it->value) *min_it = example_at(b, row, latent, cfg.window);
}

// Latents [begin, end) of one SAE over one batch. Rows in order, so a latent's firings are met in
// the order of the pass.
void account_latents(std::vector<LatentSummary>& lat, std::vector<float>& top_min, const BatchView& b, int64_t begin,
                     int64_t end, const DashboardConfig& cfg) {
  for (int64_t n = 0; n < b.N; ++n) {
    const float* row = b.f + n * b.F;
    for (int64_t i = begin; i < end; ++i) {
      const float v = row[i];
      if (!(v > 0.f)) continue;
      LatentSummary& s = lat[i];
      ++s.fires;
      s.sum += v;
      s.max = std::max(s.max, v);
      ++s.hist[hist_bin(v)];
      if (static_cast<int>(s.top.size()) < cfg.top_k || v > top_min[i]) {
        offer_top(s.top, b, n, i, v, cfg);
        if (static_cast<int>(s.top.size()) == cfg.top_k)
          top_min[i] = std::min_element(s.top.begin(), s.top.end(), [](const auto& a, const auto& c) {
                         return a.value < c.value;
                       })->value;
      }
      // Reservoir sampling (Algorithm R) over this latent's firings.
      if (static_cast<int64_t>(s.samples.size()) < cfg.samples) {
        s.samples.push_back(example_at(b, n, i, cfg.window));
      } else {
        const uint64_t r = mix(cfg.seed ^ mix(static_cast<uint64_t>(i) * 0x100000001b3ull ^ static_cast<uint64_t>(s.fires))) %
                           static_cast<uint64_t>(s.fires);
        if (r < static_cast<uint64_t>(cfg.samples)) s.samples[r] = example_at(b, n, i, cfg.window);
      }
    }
  }
}

void finish_latents(std::vector<LatentSummary>& lat) {
  for (auto& s : lat) {
    std::sort(s.top.begin(), s.top.end(), [](const auto& a, const auto& c) {
      return a.value != c.value ? a.value > c.value : a.context < c.context;
    });
    std::sort(s.samples.begin(), s.samples.end(), [](const auto& a, const auto& c) {
      return a.value != c.value ? a.value < c.value : a.context < c.context;
    });
  }
}

void read_penalty_weights(SaeDashboard& s) {
  const std::string p = s.sae_dir + "/penalty_weights.safetensors";
  if (!file_exists(p)) return;
  SafetensorsFile f(p);
  const std::vector<int64_t> shape{s.cfg.d_sae};
  s.w_freq = f.read_f32("w_freq", shape);
  s.w_mag = f.read_f32("w_mag", shape);
  s.w_final = f.read_f32("w", shape);
}

std::string default_name(const std::string& sae_dir) {
  // runs/run_3/sae -> run_3
  std::filesystem::path p = std::filesystem::path(sae_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename() == "sae" && p.has_parent_path()) return p.parent_path().filename().string();
  return p.filename().string();
}

void check_config(const DashboardConfig& c) {
  if (c.sae_dirs.empty()) fail("dashboard needs at least one SAE (--sae)");
  if (c.context_size < 2 || c.batch_size < 1 || c.max_tokens < 1)
    fail("dashboard needs context ≥ 2, batch ≥ 1 and tokens ≥ 1 (got {}, {}, {})", c.context_size, c.batch_size,
         c.max_tokens);
  if (c.top_k < 1 || c.samples < 0 || c.window < 0 || c.quantile_bins < 1)
    fail("dashboard needs top_k ≥ 1, samples ≥ 0, window ≥ 0 and quantile_bins ≥ 1");
  if (!c.names.empty() && c.names.size() != c.sae_dirs.size())
    fail("{} names for {} SAEs", c.names.size(), c.sae_dirs.size());
}

}  // namespace

DashboardData collect_dashboard(const DashboardConfig& cfg, const LanguageModel* model_in) {
  check_config(cfg);
  const auto t_start = Clock::now();
  std::unique_ptr<LanguageModel> owned;
  if (!model_in) owned = load_model(cfg.model_path, backend_named(cfg.device));
  const LanguageModel* model = model_in ? model_in : owned.get();
  Backend& be = model->backend();
  std::vector<Sae> saes;
  DashboardData out;
  out.cfg = cfg;
  out.model_name = model->config().name;
  out.context_size = cfg.context_size;
  for (size_t s = 0; s < cfg.sae_dirs.size(); ++s) {
    saes.push_back(load_saelens(cfg.sae_dirs[s], be));
    const Sae& sae = saes.back();
    if (sae.config().d_in != model->config().d_model)
      fail("SAE '{}' has d_in {}, but model '{}' has width {}", cfg.sae_dirs[s], sae.config().d_in, out.model_name,
           model->config().d_model);
    if (s == 0) out.hook_name = sae.config().hook_name;
    if (sae.config().hook_name != out.hook_name)
      fail("the SAEs of one dashboard share a hook: '{}' reads '{}', '{}' reads '{}'", cfg.sae_dirs[0], out.hook_name,
           cfg.sae_dirs[s], sae.config().hook_name);
    SaeDashboard d;
    d.name = cfg.names.empty() ? default_name(cfg.sae_dirs[s]) : cfg.names[s];
    d.sae_dir = cfg.sae_dirs[s];
    d.cfg = sae.config();
    d.latents.resize(static_cast<size_t>(d.cfg.d_sae));
    for (auto& l : d.latents) l.hist.assign(kHistBins, 0);
    read_penalty_weights(d);
    out.saes.push_back(std::move(d));
  }
  model->check_hook(out.hook_name);
  if (cfg.context_size > model->config().max_seq_len)
    fail("context length {} exceeds the maximum {} of model '{}'", cfg.context_size, model->config().max_seq_len,
         out.model_name);
  const Tokenizer& tok = model->tokenizer();
  out.vocab.resize(static_cast<size_t>(model->config().vocab_size));
  for (int32_t id = 0; id < tok.vocab_size(); ++id) out.vocab[id] = tok.decode({id});

  const int T = cfg.context_size;
  const int64_t d = model->config().d_model;
  CorpusReader reader(expand_corpus_paths(cfg.corpus));
  ContextStream stream(reader, tok, T);
  Tensor X({static_cast<int64_t>(cfg.batch_size) * T, d}, DType::F32, be.device());
  Hooks hooks;
  hooks.observe(out.hook_name, [&](TensorView act) { be.copy(X.view().rows(0, act.dim(0)), act); });
  std::vector<std::unique_ptr<SaeWorkspace>> ws;
  for (const Sae& sae : saes)
    ws.push_back(std::make_unique<SaeWorkspace>(sae.config(), static_cast<int64_t>(cfg.batch_size) * T, be.device()));
  std::vector<std::vector<float>> top_min(saes.size());
  for (size_t s = 0; s < saes.size(); ++s) top_min[s].assign(static_cast<size_t>(saes[s].config().d_sae), 0.f);
  std::vector<float> f_host;
  std::vector<int32_t> batch, ctx;
  Progress bar(fmt::format("dashboard {}", out.hook_name), cfg.max_tokens);
  while (out.n_tokens < cfg.max_tokens) {
    batch.clear();
    int B = 0;
    // Whole contexts until at least max_tokens are covered.
    while (B < cfg.batch_size && out.n_tokens + static_cast<int64_t>(B) * T < cfg.max_tokens && stream.next(ctx)) {
      batch.insert(batch.end(), ctx.begin(), ctx.end());
      ++B;
    }
    if (B == 0) break;
    const int64_t N = static_cast<int64_t>(B) * T;
    auto t0 = Clock::now();
    model->forward(batch, B, T, &hooks, /*want_logits=*/false);
    be.synchronize();
    out.seconds_lm += seconds_since(t0);
    for (size_t s = 0; s < saes.size(); ++s) {
      t0 = Clock::now();
      const int64_t F = saes[s].config().d_sae;
      saes[s].encode(X.view().rows(0, N), *ws[s]);
      f_host.resize(static_cast<size_t>(N * F));
      be.download(f_host.data(), ws[s]->f.view().rows(0, N));
      out.seconds_sae += seconds_since(t0);
      t0 = Clock::now();
      const BatchView bv{f_host.data(), batch.data(), N, F, T, out.n_contexts};
      auto& lat = out.saes[s].latents;
      const int64_t chunk = 64;
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t c0 = 0; c0 < F; c0 += chunk) account_latents(lat, top_min[s], bv, c0, std::min(F, c0 + chunk), cfg);
      out.seconds_bookkeeping += seconds_since(t0);
    }
    out.n_contexts += B;
    out.n_tokens += N;
    if (cfg.progress) bar.update(std::min(out.n_tokens, cfg.max_tokens), "");
  }
  if (out.n_tokens == 0)
    fail("the corpus yields no complete context of {} tokens for model '{}'", T, out.model_name);
  for (auto& s : out.saes) finish_latents(s.latents);
  const auto t_dir = Clock::now();
  add_latent_directions(*model, saes, out, cfg);
  out.seconds_directions = seconds_since(t_dir);
  out.seconds_total = seconds_since(t_start);
  if (cfg.progress) bar.finish(fmt::format("{} contexts", out.n_contexts));
  return out;
}

}  // namespace saelab
