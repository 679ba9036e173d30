// The feature-dashboard site (write_dashboard_site): its data files and export on a hand-built
// DashboardData of two SAEs on one hook (a hierarchical one with penalty weights, a flat one), then
// the page itself in headless Chromium: no console errors, the table sorts and filters (the page's
// #selftest hook), a latent page marks its max tokens, a parent page shows its children with their
// shares, and the runs link to each other.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "report/dashboard_site.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/dashboard.hpp"
#include "saelab/error.hpp"
#include "test_util.hpp"

namespace saelab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The fixture's shape.
constexpr int kVocab = 40;
constexpr int32_t kParis = 7;                 // " Paris": the max token of the flat SAE's latent kParisLatent
constexpr int kParents = 20, kChildren = 3;   // hierarchical SAE: F = 80, two chunks
constexpr int kHierF = kParents * (1 + kChildren), kFlatF = 70;
constexpr int kDead = 5, kDense = 6, kParisLatent = 66;  // flat SAE; 66 lies in its second chunk
constexpr int kParentAcrossChunks = 18;       // its children 74..76 lie in the second chunk
constexpr int kTop = 24, kSamples = 40, kWindow = 4;
constexpr int64_t kTokens = 20000;

std::vector<std::string> fixture_vocab() {
  std::vector<std::string> v;
  for (int i = 0; i < kVocab; ++i) v.push_back("w" + std::to_string(i));
  v[0] = "<bos>";
  v[3] = "\n";
  v[kParis] = " Paris";
  v[9] = "<b>&amp;\"";  // must be escaped, not interpreted
  v[11] = "\xe2\x82";   // a byte-level token's partial character: invalid UTF-8 alone
  v[12] = " the";
  return v;
}

LatentExample make_example(std::mt19937& rng, int64_t ctx, float value, int32_t centre_token, int left) {
  std::uniform_int_distribution<int32_t> tok(12, kVocab - 1);
  std::uniform_real_distribution<float> act(0.f, 0.6f);
  LatentExample e;
  e.context = ctx;
  e.centre = left;
  e.position = 10 + left;
  e.value = value;
  for (int k = -left; k <= kWindow; ++k) {
    e.tokens.push_back(k == 0 ? centre_token : (k == -2 ? 9 : (k == 2 ? 11 : tok(rng))));
    e.acts.push_back(k == 0 ? value : (k % 2 ? 0.f : act(rng) * value));
  }
  return e;
}

// A latent that fires `fires` times with maximum `max`; its top example's centre is `max_token`.
LatentSummary make_latent(std::mt19937& rng, int64_t fires, float max, int32_t max_token) {
  LatentSummary l;
  l.hist.assign(kHistBins, 0);
  if (fires == 0) return l;
  l.fires = fires;
  l.max = max;
  l.sum = static_cast<double>(fires) * max / 3.0;
  std::uniform_int_distribution<int32_t> tok(12, kVocab - 1);
  for (int j = 0; j < kTop; ++j)
    l.top.push_back(make_example(rng, 3 * j, max * (1.f - 0.03f * j), j == 0 ? max_token : tok(rng), j == 5 ? 1 : kWindow));
  std::uniform_real_distribution<float> u(0.01f, 1.f);
  std::vector<float> vals;
  for (int j = 0; j < kSamples; ++j) vals.push_back(max * u(rng));
  std::sort(vals.begin(), vals.end());
  for (int j = 0; j < kSamples; ++j) l.samples.push_back(make_example(rng, 100 + j, vals[j], tok(rng), kWindow));
  const double step = (kHistHi - kHistLo) / kHistBins;
  const int top_bin = static_cast<int>((std::log10(max) - kHistLo) / step);
  for (int64_t f = 0; f < fires; ++f) ++l.hist[static_cast<size_t>(std::max(0, top_bin - static_cast<int>(f % 20)))];
  return l;
}

LatentDirection make_direction(int i, int F, int other_F, float match_cos) {
  LatentDirection d;
  for (int k = 0; k < 5; ++k) {
    d.promoted.push_back({12 + (i + k) % 20, 2.f - 0.3f * k});
    d.suppressed.push_back({13 + (i + 2 * k) % 20, -1.5f + 0.2f * k});
  }
  d.neighbours = {{(i + 1) % F, 0.5f}, {(i + 2) % F, 0.4f}};
  d.matches = {{i % other_F, match_cos}};
  return d;
}

DashboardData fixture() {
  std::mt19937 rng(7);
  DashboardData d;
  d.model_name = "tiny-model";
  d.hook_name = "blocks.3.hook_resid_post";
  d.n_tokens = kTokens;
  d.n_contexts = 200;
  d.context_size = 100;
  d.vocab = fixture_vocab();
  d.cfg.corpus = {"corpus/a.txt"};
  d.cfg.top_k = kTop;
  d.cfg.samples = kSamples;
  d.cfg.window = kWindow;
  d.cfg.quantile_bins = 4;
  d.cfg.dense_threshold = 0.1;
  d.cfg.export_batches = true;

  SaeDashboard h;
  h.name = "hier";
  h.sae_dir = "runs/run_7/sae";
  h.cfg.architecture = SaeArchitecture::Hierarchical;
  h.cfg.d_in = 16;
  h.cfg.d_sae = kHierF;
  h.cfg.n_parents = kParents;
  h.cfg.children_per_parent = kChildren;
  h.cfg.hook_layer = 3;
  std::uniform_int_distribution<int32_t> tok(12, kVocab - 1);
  for (int p = 0; p < kParents; ++p) h.latents.push_back(make_latent(rng, 500 + 10 * p, 2.f + 0.1f * p, tok(rng)));
  for (int p = 0; p < kParents; ++p) {  // children fire on 1/2, 1/4 and none of their parent's firings
    const int64_t pf = h.latents[static_cast<size_t>(p)].fires;
    for (int64_t f : {pf / 2, pf / 4, int64_t{0}}) h.latents.push_back(make_latent(rng, f, 1.f + 0.01f * p, tok(rng)));
  }
  for (int i = 0; i < kHierF; ++i) {
    h.directions.push_back(make_direction(i, kHierF, kFlatF, 0.9f));
    h.w_freq.push_back(1.f + 0.01f * i);
    h.w_mag.push_back(2.f - 0.01f * i);
    h.w_final.push_back(0.25f * h.w_freq.back() + 0.75f * h.w_mag.back());
  }

  SaeDashboard f;
  f.name = "flat";
  f.sae_dir = "runs/run_1/sae";
  f.cfg.architecture = SaeArchitecture::Standard;
  f.cfg.d_in = 16;
  f.cfg.d_sae = kFlatF;
  f.cfg.hook_layer = 3;
  for (int i = 0; i < kFlatF; ++i) {
    const int64_t fires = i == kDead ? 0 : i == kDense ? kTokens / 5 : 20 + 7 * i;
    f.latents.push_back(make_latent(rng, fires, i == kParisLatent ? 50.f : 1.f + 0.05f * i, i == kParisLatent ? kParis : tok(rng)));
    f.directions.push_back(make_direction(i, kFlatF, kHierF, 0.8f));
  }
  d.saes = {std::move(h), std::move(f)};
  return d;
}

// A data file's JSON: `window.SAELAB_DATA["<key>"] = <JSON>;`
json read_data(const std::string& site, const std::string& key) {
  const std::string text = read_file(site + "/data/" + key + ".js");
  const std::string prefix = "window.SAELAB_DATA[\"" + key + "\"] = ";
  EXPECT_EQ(text.substr(0, prefix.size()), prefix);
  EXPECT_EQ(text.substr(text.size() - 2), ";\n");
  return json::parse(text.substr(prefix.size(), text.size() - prefix.size() - 2));
}

// One site for the tests that only read it. SAELAB_KEEP_DASHBOARD=DIR keeps a copy to look at.
const std::string& site() {
  static const std::string dir = [] {
    const std::string d = test::make_temp_dir("dash") + "/site";
    write_dashboard_site(fixture(), d);
    if (const char* keep = std::getenv("SAELAB_KEEP_DASHBOARD")) {
      fs::remove_all(keep);
      fs::copy(d, keep, fs::copy_options::recursive);
    }
    return d;
  }();
  return dir;
}

TEST(DashboardSite, WritesDataFilesThatParse) {
  const std::string& s = site();
  for (const char* f : {"index.html", "data/meta.js", "data/vocab.js", "data/sae0/latents.js", "data/sae0/search.js",
                        "data/sae0/chunk_0.js", "data/sae0/chunk_1.js", "data/sae1/chunk_1.js"})
    EXPECT_TRUE(file_exists(s + "/" + f)) << f;
  EXPECT_FALSE(file_exists(s + "/data/sae0/chunk_2.js"));
  EXPECT_FALSE(fs::exists(s + ".tmp"));
  EXPECT_FALSE(fs::exists(s + ".tmp.old"));

  const json meta = read_data(s, "meta");
  EXPECT_EQ(meta["format"], "saelab_dashboard");
  EXPECT_EQ(meta["n_tokens"], kTokens);
  EXPECT_EQ(meta["chunk_latents"], dashboard::kChunkLatents);
  ASSERT_EQ(meta["saes"].size(), 2u);
  EXPECT_EQ(meta["saes"][0]["architecture"], "hierarchical");
  EXPECT_EQ(meta["saes"][0]["n_parents"], kParents);
  EXPECT_EQ(meta["saes"][0]["children_per_parent"], kChildren);
  EXPECT_EQ(meta["saes"][0]["has_weights"], true);
  EXPECT_EQ(meta["saes"][1]["has_weights"], false);
  EXPECT_EQ(meta["saes"][1]["n_chunks"], 2);

  const json vocab = read_data(s, "vocab");
  ASSERT_EQ(vocab.size(), static_cast<size_t>(kVocab));
  EXPECT_EQ(vocab[kParis], " Paris");
  EXPECT_EQ(vocab[11], "\xef\xbf\xbd");  // the partial character became U+FFFD

  const json t1 = read_data(s, "sae1/latents");
  ASSERT_EQ(t1["fires"].size(), static_cast<size_t>(kFlatF));
  EXPECT_EQ(t1["fires"][kDead], 0);
  EXPECT_EQ(t1["top_tokens"][kParisLatent][0], kParis);
  EXPECT_FALSE(t1.contains("w_freq"));
  const json& dh = t1["density_hist"];
  EXPECT_EQ(dh["dead"], 1);
  int64_t live = 0;
  for (const auto& c : dh["counts"]) live += c.get<int64_t>();
  EXPECT_EQ(live, kFlatF - 1);
  EXPECT_LE(dh["lo"].get<double>(), std::log10(20.0 / kTokens));
  const json t0 = read_data(s, "sae0/latents");
  EXPECT_EQ(t0["w_freq"].size(), static_cast<size_t>(kHierF));
  EXPECT_FLOAT_EQ(t0["w_final"][10].get<float>(), 0.25f * 1.1f + 0.75f * 1.9f);

  const json c1 = read_data(s, "sae1/chunk_1");
  EXPECT_EQ(c1["first"], 64);
  ASSERT_EQ(c1["latents"].size(), static_cast<size_t>(kFlatF - 64));
  const json& paris = c1["latents"][kParisLatent - 64];
  ASSERT_EQ(paris["top"].size(), static_cast<size_t>(kTop));
  const json& ex = paris["top"][0];
  EXPECT_EQ(ex["t"][ex["c"].get<int>()], kParis);
  EXPECT_EQ(ex["a"][ex["c"].get<int>()], 50.0);
  ASSERT_EQ(paris["bins"].size(), 4u);
  size_t n = 0;
  for (const auto& b : paris["bins"]) {
    EXPECT_LE(b["lo"].get<double>(), b["hi"].get<double>());
    n += b["ex"].size();
  }
  EXPECT_EQ(n, static_cast<size_t>(kSamples));
  EXPECT_LE(paris["bins"][0]["hi"].get<double>(), paris["bins"][1]["lo"].get<double>());
  EXPECT_EQ(paris["hist"].size(), static_cast<size_t>(kHistBins));
  ASSERT_EQ(paris["matches"].size(), 1u);
  EXPECT_EQ(paris["matches"][0]["sae"], 0);  // the flat SAE's only other SAE is SAE 0
  EXPECT_EQ(paris["matches"][0]["latent"], kParisLatent % kHierF);
  EXPECT_EQ(read_data(s, "sae0/chunk_0")["latents"][0]["matches"][0]["sae"], 1);

  const json search = read_data(s, "sae1/search");
  ASSERT_EQ(search.size(), static_cast<size_t>(kFlatF));
  EXPECT_EQ(search[kParisLatent].size(), static_cast<size_t>(dashboard::kSearchExamples));
  EXPECT_EQ(search[kDead].size(), 0u);
}

TEST(DashboardSite, QuantileBinsSplitTheSamplesIntoEqualGroups) {
  std::vector<LatentExample> s(10);
  for (int i = 0; i < 10; ++i) s[static_cast<size_t>(i)].value = static_cast<float>(i);
  const auto bins = dashboard::quantile_bins(s, 4);
  ASSERT_EQ(bins.size(), 4u);
  size_t next = 0;
  for (const auto& b : bins) {
    EXPECT_EQ(b.begin, next);
    EXPECT_TRUE(b.end - b.begin == 2 || b.end - b.begin == 3);
    EXPECT_EQ(b.lo, s[b.begin].value);
    EXPECT_EQ(b.hi, s[b.end - 1].value);
    next = b.end;
  }
  EXPECT_EQ(next, 10u);
  EXPECT_EQ(dashboard::quantile_bins(std::vector<LatentExample>(2), 4).size(), 2u);  // no empty groups
  EXPECT_TRUE(dashboard::quantile_bins({}, 4).empty());
}

// SAEDashboard's NeuronpediaDashboardBatch JSON, keys in its to_dict order.
TEST(DashboardSite, ExportsSaeDashboardBatches) {
  const std::string& s = site();
  EXPECT_TRUE(file_exists(s + "/export/sae0/batch-0.json"));
  EXPECT_FALSE(file_exists(s + "/export/sae0/batch-1.json"));  // 80 latents: one batch of 128
  const auto skipped = json::parse(read_file(s + "/export/sae1/skipped_indexes.json"));
  EXPECT_EQ(skipped["skipped_indexes"].size(), 0u);
  const auto b = nlohmann::ordered_json::parse(read_file(s + "/export/sae1/batch-0.json"));
  std::vector<std::string> keys;
  for (const auto& [k, v] : b.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"model_id", "layer", "sae_set", "sae_id_suffix", "features"}));
  EXPECT_EQ(b["model_id"], "tiny-model");
  EXPECT_EQ(b["layer"], 3);
  EXPECT_EQ(b["sae_set"], "flat");
  EXPECT_TRUE(b["sae_id_suffix"].is_null());
  ASSERT_EQ(b["features"].size(), static_cast<size_t>(kFlatF));
  const auto& f = b["features"][kParisLatent];
  keys.clear();
  for (const auto& [k, v] : f.items()) keys.push_back(k);
  EXPECT_EQ(keys,
            (std::vector<std::string>{
                "feature_index", "neuron_alignment_indices", "neuron_alignment_values", "neuron_alignment_l1",
                "correlated_neurons_indices", "correlated_neurons_l1", "correlated_neurons_pearson",
                "correlated_features_indices", "correlated_features_l1", "correlated_features_pearson", "neg_str",
                "neg_values", "pos_str", "pos_values", "frac_nonzero", "freq_hist_data_bar_values",
                "freq_hist_data_bar_heights", "logits_hist_data_bar_heights", "logits_hist_data_bar_values",
                "n_prompts_total", "n_tokens_in_prompt", "dataset", "decoder_weights_dist", "activations", "vector"}));
  EXPECT_EQ(f["feature_index"], kParisLatent);
  EXPECT_EQ(f["n_prompts_total"], 200);
  EXPECT_EQ(f["n_tokens_in_prompt"], 100);
  EXPECT_DOUBLE_EQ(f["frac_nonzero"].get<double>(), (20.0 + 7 * kParisLatent) / kTokens);
  EXPECT_EQ(f["pos_str"][0], fixture_vocab()[12 + kParisLatent % 20]);
  EXPECT_EQ(f["pos_values"][0], 2.0);
  EXPECT_EQ(f["neg_values"][0], -1.5);
  EXPECT_EQ(f["freq_hist_data_bar_values"].size(), f["freq_hist_data_bar_heights"].size());
  int64_t hist_total = 0;
  for (const auto& h : f["freq_hist_data_bar_heights"]) hist_total += h.get<int64_t>();
  EXPECT_EQ(hist_total, 20 + 7 * kParisLatent);
  ASSERT_EQ(f["activations"].size(), static_cast<size_t>(kTop + kSamples));
  const auto& a0 = f["activations"][0];
  keys.clear();
  for (const auto& [k, v] : a0.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"bin_min", "bin_max", "bin_contains", "tokens", "values",
                                            "qualifying_token_index"}));
  EXPECT_EQ(a0["bin_min"], -1);
  EXPECT_EQ(a0["bin_max"], 50.0);
  EXPECT_EQ(a0["bin_contains"], -1);
  EXPECT_EQ(a0["tokens"][a0["qualifying_token_index"].get<int>()], " Paris");
  EXPECT_EQ(a0["values"][a0["qualifying_token_index"].get<int>()], 50.0);
  // the quantile groups follow, highest first, each with its share of all tokens
  const auto& q0 = f["activations"][kTop];
  const auto& q_last = f["activations"][kTop + kSamples - 1];
  EXPECT_GT(q0["bin_min"].get<double>(), q_last["bin_max"].get<double>());
  EXPECT_NEAR(q0["bin_contains"].get<double>(), f["frac_nonzero"].get<double>() / 4, 1e-12);
  // a dead latent: no activations, no histogram
  EXPECT_EQ(b["features"][kDead]["activations"].size(), 0u);
  EXPECT_EQ(b["features"][kDead]["freq_hist_data_bar_values"].size(), 0u);
}

// ---- in the browser

struct Page {
  std::string dom;
  std::vector<std::string> console;  // the page's console messages and uncaught errors
};

bool have_chromium() { return std::system("command -v chromium >/dev/null 2>&1") == 0; }

// --enable-logging=stderr makes Chromium print every console message and uncaught exception of the
// page as an "INFO:CONSOLE" line on stderr; --dump-dom prints the DOM once the virtual time budget
// (scripts, timers, the data files it inserts) has run out.
Page open_page(const std::string& site_dir, const std::string& hash) {
  const std::string tmp = test::make_temp_dir("chromium");
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=10000 "
                          "--enable-logging=stderr --dump-dom 'file://" + site_dir + "/index.html#" + hash + "' >" +
                          tmp + "/dom.html 2>" + tmp + "/stderr.txt";
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = std::system(cmd.c_str());
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[chromium] #" << hash << ": " << sec << " s\n";
  EXPECT_EQ(rc, 0) << cmd;
  Page p;
  p.dom = read_file(tmp + "/dom.html");
  std::istringstream err(read_file(tmp + "/stderr.txt"));
  for (std::string line; std::getline(err, line);)
    if (line.find(":CONSOLE") != std::string::npos) p.console.push_back(line);
  return p;
}

void expect_clean(const Page& p) {
  EXPECT_TRUE(p.console.empty()) << p.console.front();
  // load and script errors are reported into <div id="errors">
  const std::string empty = "<div id=\"errors\"></div>";
  const size_t e = p.dom.find("<div id=\"errors\">");
  EXPECT_EQ(p.dom.substr(e, empty.size()), empty) << p.dom.substr(e, 300);
  EXPECT_NE(p.dom.find("</html>"), std::string::npos);
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// The text of the element starting at the first `marker` after `from`.
std::string element_text(const std::string& dom, const std::string& marker, size_t from = 0) {
  const size_t p = dom.find(marker, from);
  if (p == std::string::npos) return "<none>";
  const size_t a = dom.find('>', p) + 1;
  return dom.substr(a, dom.find('<', a) - a);
}

std::string section(const std::string& dom, const std::string& id) {
  const size_t a = dom.find("<section id=\"" + id + "\"");
  if (a == std::string::npos) return "";
  return dom.substr(a, dom.find("</section>", a) - a);
}

TEST(DashboardSite, IndexSortsFiltersAndBrowsesTheTreeInChromium) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed";
  const Page p = open_page(site(), "selftest");
  expect_clean(p);
  const std::string result = element_text(p.dom, "<pre id=\"selftest\"");
  EXPECT_EQ(result.substr(0, 4), "PASS") << result;
  for (const char* check : {"ok sort max descending", "ok sort max ascending", "ok sort density descending",
                            "ok sort index ascending", "ok search", "ok filter dead", "ok filter all",
                            "ok tree expands children", "ok SAE selector"})
    EXPECT_NE(result.find(check), std::string::npos) << check << " in\n" << result;
}

TEST(DashboardSite, IndexFlagsDeadAndDenseLatentsAndShowsWeights) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed";
  const Page flat = open_page(site(), "sae=1");
  expect_clean(flat);
  EXPECT_EQ(count(flat.dom, "<tr data-latent="), static_cast<size_t>(kFlatF));
  EXPECT_NE(flat.dom.find("data-latent=\"" + std::to_string(kDead) + "\" data-fires=\"0\""), std::string::npos);
  const size_t dense = flat.dom.find("data-latent=\"" + std::to_string(kDense) + "\"");
  ASSERT_NE(dense, std::string::npos);
  EXPECT_NE(flat.dom.substr(dense, 200).find("data-dense=\"1\""), std::string::npos);
  EXPECT_NE(flat.dom.find("<svg id=\"density-hist\""), std::string::npos);
  EXPECT_EQ(flat.dom.find("data-key=\"w_freq\""), std::string::npos);
  EXPECT_NE(flat.dom.find("<select id=\"sae-select\""), std::string::npos);
  const Page hier = open_page(site(), "sae=0");
  expect_clean(hier);
  EXPECT_NE(hier.dom.find("data-key=\"w_freq\""), std::string::npos);
  EXPECT_NE(hier.dom.find("data-key=\"w_final\""), std::string::npos);
}

TEST(DashboardSite, LatentPageMarksTheMaxTokenAndLinksTheOtherRun) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed";
  const Page p = open_page(site(), "sae=1&latent=" + std::to_string(kParisLatent));
  expect_clean(p);
  const std::string top = section(p.dom, "top");
  EXPECT_EQ(count(top, "<div class=\"ex\""), static_cast<size_t>(kTop));
  EXPECT_EQ(count(top, "class=\"tok max\""), static_cast<size_t>(kTop));
  const size_t m = top.find("class=\"tok max\"");
  ASSERT_NE(m, std::string::npos);
  EXPECT_EQ(element_text(top, "class=\"tok max\""), " Paris");
  EXPECT_NE(top.substr(m, 200).find("title=\"50 · token 7\""), std::string::npos) << top.substr(m, 200);
  EXPECT_NE(top.find("background:rgba(255,110,0,1.000)"), std::string::npos);  // the max token at full intensity
  EXPECT_NE(top.find("&lt;b&gt;&amp;amp;\""), std::string::npos);               // token text escaped
  EXPECT_EQ(count(section(p.dom, "quantiles"), "<div class=\"bin\""), 4u);
  EXPECT_NE(section(p.dom, "hist").find("<svg id=\"act-hist\""), std::string::npos);
  EXPECT_EQ(count(section(p.dom, "logits"), "<tr>"), 10u);
  EXPECT_NE(section(p.dom, "neighbours").find("href=\"#sae=1&amp;latent=67\""), std::string::npos);
  const std::string matches = section(p.dom, "matches");
  EXPECT_NE(matches.find("href=\"#sae=0&amp;latent=" + std::to_string(kParisLatent % kHierF) + "\""), std::string::npos)
      << matches;
  EXPECT_NE(matches.find("cos 0.800"), std::string::npos);
  const Page other = open_page(site(), "sae=0&latent=3");
  expect_clean(other);
  EXPECT_NE(section(other.dom, "matches").find("href=\"#sae=1&amp;latent=3\""), std::string::npos);
  EXPECT_NE(section(other.dom, "matches").find("cos 0.900"), std::string::npos);
}

TEST(DashboardSite, ParentPageShowsItsChildrenWithTheirShares) {
  if (!have_chromium()) GTEST_SKIP() << "chromium is not installed";
  const Page p = open_page(site(), "sae=0&latent=" + std::to_string(kParentAcrossChunks));
  expect_clean(p);
  const std::string kids = section(p.dom, "children");
  ASSERT_EQ(count(kids, "<div class=\"kid\""), static_cast<size_t>(kChildren)) << kids.substr(0, 500);
  const int first = kParents + kParentAcrossChunks * kChildren;
  const char* shares[] = {"50.0%", "25.0%", "0.0%"};
  for (int j = 0; j < kChildren; ++j) {
    const size_t k = kids.find("<div class=\"kid\" data-latent=\"" + std::to_string(first + j) + "\"");
    ASSERT_NE(k, std::string::npos) << "child " << first + j;
    EXPECT_NE(kids.substr(k, 400).find(std::string("fires on ") + shares[j]), std::string::npos) << kids.substr(k, 400);
  }
  EXPECT_EQ(count(kids, "<div class=\"ex\""), 2u * 10u);  // the two live children's top contexts, 10 each
  // a child's page names its parent and its share
  const Page c = open_page(site(), "sae=0&latent=" + std::to_string(first + 1));
  expect_clean(c);
  EXPECT_NE(element_text(c.dom, "<dd id=\"parent\""), "<none>");
  EXPECT_NE(c.dom.find("href=\"#sae=0&amp;latent=" + std::to_string(kParentAcrossChunks) + "\""), std::string::npos);
  EXPECT_NE(c.dom.find("<span class=\"share\">25.0%</span>"), std::string::npos);
}

// ---- errors and atomicity

TEST(DashboardSite, UnwritableOutDirIsAClearError) {
  const std::string dir = test::make_temp_dir("dash_err");
  test::write_text(dir + "/file", "x");
  const std::string msg = test::error_of([&] { write_dashboard_site(fixture(), dir + "/file/site"); });
  EXPECT_NE(msg.find("cannot write the dashboard to '" + dir + "/file/site'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;
  if (::geteuid() != 0) {  // root writes anywhere
    fs::create_directories(dir + "/ro");
    fs::permissions(dir + "/ro", fs::perms::owner_read | fs::perms::owner_exec);
    const std::string m2 = test::error_of([&] { write_dashboard_site(fixture(), dir + "/ro/site"); });
    fs::permissions(dir + "/ro", fs::perms::owner_all);
    EXPECT_NE(m2.find("Permission denied"), std::string::npos) << m2;
  }
}

TEST(DashboardSite, RefusesToReplaceADirectoryThatIsNotADashboard) {
  const std::string dir = test::make_temp_dir("dash_other");
  test::write_text(dir + "/precious.txt", "keep me");
  const std::string msg = test::error_of([&] { write_dashboard_site(fixture(), dir); });
  EXPECT_NE(msg.find("not a saelab dashboard"), std::string::npos) << msg;
  EXPECT_TRUE(file_exists(dir + "/precious.txt"));
}

TEST(DashboardSite, ReplacesAnEarlierSiteAndKeepsItWhenTheNewDataIsBad) {
  const std::string dir = test::make_temp_dir("dash_replace") + "/site";
  DashboardData d = fixture();
  write_dashboard_site(d, dir);
  d.model_name = "second";
  write_dashboard_site(d, dir);
  EXPECT_EQ(read_data(dir, "meta")["model_name"], "second");
  d.model_name = "third";
  d.saes[1].latents[3].top[2].acts.pop_back();
  const std::string msg = test::error_of([&] { write_dashboard_site(d, dir); });
  EXPECT_NE(msg.find("SAE 1 ('flat') latent 3: top example 2 has 9 tokens but 8 activations"), std::string::npos) << msg;
  EXPECT_EQ(read_data(dir, "meta")["model_name"], "second");
  d = fixture();
  d.saes[0].cfg.children_per_parent = 2;
  EXPECT_NE(test::error_of([&] { write_dashboard_site(d, dir); }).find("2 children"), std::string::npos);
  d = fixture();
  d.saes[1].latents[0].top[0].tokens[0] = kVocab;
  EXPECT_NE(test::error_of([&] { write_dashboard_site(d, dir); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_TRUE(file_exists(dir + "/index.html"));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  EXPECT_FALSE(fs::exists(dir + ".tmp.old"));
}

}  // namespace
}  // namespace saelab
