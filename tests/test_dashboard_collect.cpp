// The dashboard's streaming pass on TinyStories-656K at hook_embed, where the activation of a
// token is its embedding row: an SAE whose latents are planted on known tokens must come out with
// exactly the contexts holding those tokens as its top examples, the right counts and windows.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/dashboard.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {

std::string model_dir() { return test::shared_root() + "/models/tinystories-656k"; }
std::string corpus() { return test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"; }

// Every token's embedding row as the model's hook_embed gives it: [V, d].
std::vector<float> embeddings(const LanguageModel& m) {
  const int V = m.config().vocab_size, d = m.config().d_model, T = 64;
  const int B = (V + T - 1) / T;
  std::vector<int32_t> ids(static_cast<size_t>(B) * T);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % V);
  std::vector<float> e;
  Hooks h;
  h.observe("hook_embed", [&](TensorView a) { e = to_host_f32(m.backend(), a); });
  m.forward(ids, B, T, &h, false);
  e.resize(static_cast<size_t>(V) * d);
  return e;
}

struct Planted {
  int32_t token;
  float value;  // the latent's activation on it (and 0 elsewhere)
};

// Latent `i` fires on `token` only: pre = x·e_t/‖e_t‖² − 1 + ε with ε below the gap to the
// closest other token's projection.
Planted plant(const std::vector<float>& E, int V, int d, int32_t t, std::vector<float>& W_enc, std::vector<float>& b_enc,
              std::vector<float>& W_dec, int i, int F) {
  const float* et = E.data() + static_cast<size_t>(t) * d;
  double nn = 0;
  for (int j = 0; j < d; ++j) nn += double(et[j]) * et[j];
  double m = -1e30;
  for (int y = 0; y < V; ++y) {
    if (y == t) continue;
    double dot = 0;
    for (int j = 0; j < d; ++j) dot += double(E[static_cast<size_t>(y) * d + j]) * et[j];
    m = std::max(m, dot / nn);
  }
  const double eps = m < 1 ? (1 - m) / 2 : -1;
  for (int j = 0; j < d; ++j) {
    W_enc[static_cast<size_t>(j) * F + i] = static_cast<float>(et[j] / nn);
    W_dec[static_cast<size_t>(i) * d + j] = static_cast<float>(et[j] / std::sqrt(nn));
  }
  b_enc[i] = static_cast<float>(eps - 1);
  return {t, static_cast<float>(eps)};
}

// Contexts of the pass (as the dashboard cuts them) holding each token, and its total count.
std::map<int32_t, std::pair<std::set<int64_t>, int64_t>> occurrences(const LanguageModel& m, int T, int64_t contexts) {
  std::map<int32_t, std::pair<std::set<int64_t>, int64_t>> occ;
  CorpusReader r(expand_corpus_paths({corpus()}));
  ContextStream cs(r, m.tokenizer(), T);
  std::vector<int32_t> ctx;
  for (int64_t c = 0; c < contexts && cs.next(ctx); ++c)
    for (int32_t t : ctx) {
      occ[t].first.insert(c);
      ++occ[t].second;
    }
  return occ;
}

}  // namespace

TEST(Dashboard, PlantedLatentsTopContextsAreExactlyTheContextsWithTheirToken) {
  auto m = load_model(model_dir(), cpu_backend());
  const int V = m->config().vocab_size, d = m->config().d_model, T = 32;
  const int64_t contexts = 96;
  const auto occ = occurrences(*m, T, contexts);
  const std::vector<float> E = embeddings(*m);
  // Two tokens found in 3..12 contexts (top_k = 16 holds them all), planted on latents 0 and 3;
  // latent 1 always fires (bias only), latent 2 never.
  const int F = 4;
  SaeConfig sc;
  sc.d_in = d;
  sc.d_sae = F;
  sc.hook_name = "hook_embed";
  Sae sae(sc, cpu_backend());
  std::vector<float> W_enc(static_cast<size_t>(d) * F, 0.f), b_enc(F, 0.f), W_dec(static_cast<size_t>(F) * d, 0.f),
      b_dec(d, 0.f);
  std::vector<Planted> planted;
  for (const auto& [tok, o] : occ) {
    if (planted.size() == 2) break;
    if (o.first.size() < 3 || o.first.size() > 12 || tok == m->tokenizer().bos_id()) continue;
    const int latent = planted.empty() ? 0 : 3;
    const Planted p = plant(E, V, d, tok, W_enc, b_enc, W_dec, latent, F);
    if (p.value <= 0) continue;  // another token's embedding projects as far: not separable
    planted.push_back(p);
  }
  ASSERT_EQ(planted.size(), 2u);
  b_enc[1] = 0.5f;
  W_dec[1 * d] = 1.f;
  b_enc[2] = -1.f;
  W_dec[2 * d + 1] = 1.f;
  cpu_backend().upload(sae.params().W_enc, W_enc.data());
  cpu_backend().upload(sae.params().b_enc, b_enc.data());
  cpu_backend().upload(sae.params().W_dec, W_dec.data());
  cpu_backend().upload(sae.params().b_dec, b_dec.data());
  const std::string dir = test::make_temp_dir("dash") + "/run_planted/sae";
  export_saelens(sae, dir, std::vector<float>(F, 0.f));

  DashboardConfig cfg;
  cfg.model_path = model_dir();
  cfg.corpus = {corpus()};
  cfg.sae_dirs = {dir, dir};
  cfg.names = {"a", "b"};
  cfg.context_size = T;
  cfg.batch_size = 7;  // contexts straddle batches
  cfg.max_tokens = contexts * T;
  cfg.top_k = 16;
  cfg.samples = 10;
  cfg.window = 5;
  cfg.progress = false;
  const DashboardData data = collect_dashboard(cfg);
  ASSERT_EQ(data.n_contexts, contexts);
  EXPECT_EQ(data.n_tokens, contexts * T);
  EXPECT_EQ(data.hook_name, "hook_embed");
  ASSERT_EQ(data.saes.size(), 2u);
  const SaeDashboard& s = data.saes[0];
  EXPECT_EQ(s.name, "a");

  for (size_t p = 0; p < planted.size(); ++p) {
    const int latent = p == 0 ? 0 : 3;
    const LatentSummary& l = s.latents[latent];
    const auto& [ctxs, count] = occ.at(planted[p].token);
    EXPECT_EQ(l.fires, count) << "latent " << latent;
    std::set<int64_t> got;
    for (const LatentExample& e : l.top) {
      got.insert(e.context);
      ASSERT_LT(e.centre, static_cast<int>(e.tokens.size()));
      EXPECT_EQ(e.tokens[e.centre], planted[p].token);
      EXPECT_NEAR(e.value, planted[p].value, 1e-5f);
      EXPECT_EQ(e.acts[e.centre], e.value);
      EXPECT_LE(e.tokens.size(), 11u);  // 2·window + 1
      for (size_t k = 0; k < e.tokens.size(); ++k)
        EXPECT_EQ(e.acts[k] > 0, e.tokens[k] == planted[p].token) << "only the planted token fires";
    }
    EXPECT_EQ(got, ctxs) << "top contexts of latent " << latent << " are exactly the contexts with its token";
    EXPECT_EQ(l.samples.size(), std::min<size_t>(10, static_cast<size_t>(count)));
  }
  const LatentSummary& always = s.latents[1];
  EXPECT_EQ(always.fires, contexts * T);
  EXPECT_EQ(always.top.size(), 16u);  // one per context, at most top_k
  EXPECT_EQ(always.samples.size(), 10u);
  EXPECT_NEAR(always.mean(), 0.5, 1e-6);
  uint64_t hist_total = 0;
  for (uint32_t h : always.hist) hist_total += h;
  EXPECT_EQ(hist_total, static_cast<uint64_t>(contexts * T));
  EXPECT_EQ(s.latents[2].fires, 0);
  EXPECT_TRUE(s.latents[2].top.empty());

  // The decoder: latent 0's nearest latent is never itself; the copy's best match is the same latent.
  ASSERT_EQ(s.directions.size(), static_cast<size_t>(F));
  for (int i = 0; i < F; ++i) {
    for (const auto& [j, c] : s.directions[i].neighbours) EXPECT_NE(j, i);
    ASSERT_EQ(s.directions[i].matches.size(), 1u);
    EXPECT_EQ(s.directions[i].matches[0].first, i);
    EXPECT_NEAR(s.directions[i].matches[0].second, 1.0, 1e-5);
    ASSERT_EQ(s.directions[i].promoted.size(), 10u);
    EXPECT_GE(s.directions[i].promoted[0].second, s.directions[i].promoted[9].second);
    EXPECT_LE(s.directions[i].suppressed[0].second, s.directions[i].suppressed[9].second);
  }
  // Same SAE twice: same statistics.
  EXPECT_EQ(data.saes[1].latents[3].fires, s.latents[3].fires);

  // The site written from it shows the same contexts on latent 0's page data.
  const std::string site = test::make_temp_dir("dash_site") + "/site";
  write_dashboard_site(data, site);
  std::string js = read_file(site + "/data/sae0/chunk_0.js");
  js = js.substr(js.find('=') + 1);
  js = js.substr(0, js.rfind(';'));
  const auto chunk = nlohmann::json::parse(js);
  std::set<int64_t> shown;
  for (const auto& e : chunk["latents"][0]["top"]) {
    shown.insert(e["ctx"].get<int64_t>());
    EXPECT_EQ(e["t"][e["c"].get<int>()].get<int32_t>(), planted[0].token);
  }
  EXPECT_EQ(shown, occ.at(planted[0].token).first);
}

// The CLI as a user runs it: two SAEs compared, the site written, the timing line printed.
TEST(Dashboard, CliWritesTheSite) {
  const std::string dir = test::make_temp_dir("dash_cli");
  auto m = load_model(model_dir(), cpu_backend());
  SaeConfig sc;
  sc.d_in = m->config().d_model;
  sc.d_sae = 16;
  sc.hook_name = "blocks.0.hook_resid_post";
  Sae sae(sc, cpu_backend());
  sae.init(3, 1.f, std::vector<float>(static_cast<size_t>(sc.d_in), 0.f));
  export_saelens(sae, dir + "/run_a/sae", std::vector<float>(16, 0.f));
  export_saelens(sae, dir + "/run_b/sae", std::vector<float>(16, 0.f));
  const auto r = test::run_cli("dashboard --no-progress --sae " + dir + "/run_a/sae --sae " + dir + "/run_b/sae --model " +
                               model_dir() + " --corpus " + corpus() + " --tokens 2000 --context 32 --export --out " +
                               dir + "/dash");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("dashboard of 2 SAE(s) over 2016 tokens"), std::string::npos) << r.out;
  EXPECT_TRUE(file_exists(dir + "/dash/index.html"));
  EXPECT_TRUE(file_exists(dir + "/dash/data/sae1/chunk_0.js"));
  EXPECT_TRUE(file_exists(dir + "/dash/export/sae0/batch-0.json"));
  const auto bad = test::run_cli("dashboard --no-progress --sae " + dir + "/nope --model " + model_dir() + " --out " +
                                 dir + "/dash2");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/dash2"));
}

// logit_effects is the unembedding of a residual through the final norm's weight: spliced in as
// the last block's output, a direction h gives logits = logit_effects(h) / rms(h).
TEST(Dashboard, LogitEffectsAreTheUnembeddingThroughTheFinalNorm) {
  auto m = load_model(model_dir(), cpu_backend());
  const int d = m->config().d_model, V = m->config().vocab_size, L = m->config().n_layers;
  std::vector<float> h(d);
  for (int j = 0; j < d; ++j) h[j] = std::sin(0.37f * j) + 0.1f;
  double ss = 0;
  for (float x : h) ss += double(x) * x;
  const double rms = std::sqrt(ss / d + m->config().norm_eps);
  Hooks hooks;
  hooks.splice(hook_name(L - 1, "hook_resid_post"), [&](TensorView a) {
    std::vector<float> rows(static_cast<size_t>(a.numel()));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = h[i % d];
    m->backend().upload(a, rows.data());
  });
  const std::vector<float> logits = to_host_f32(m->backend(), m->forward({1, 5}, 1, 2, &hooks));
  const std::vector<float> eff = m->logit_effects(h, 1);
  ASSERT_EQ(eff.size(), static_cast<size_t>(V));
  std::vector<double> expect(eff.begin(), eff.end());
  for (auto& x : expect) x /= rms;
  EXPECT_LE(test::rel_error(std::vector<float>(logits.begin() + V, logits.end()), expect), 1e-5);
}
