// The absorption eval (SAEBench's first-letter task): planted cases with known answers, and goldens
// from SAEBench's own functions (scripts/reference/saebench_absorption_goldens.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "saelab/absorption.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/lm.hpp"
#include "saelab/npy.hpp"
#include "saelab/sae_io.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {

// An SAE with the given parameters (W_enc [d, F], b_enc [F], W_dec [F, d]; b_dec = 0 unless given).
Sae make_sae(SaeConfig c, const std::vector<float>& W_enc, const std::vector<float>& b_enc,
             const std::vector<float>& W_dec, std::vector<float> b_dec = {}) {
  c.apply_b_dec_to_input = true;
  Sae s(c, cpu_backend());
  if (b_dec.empty()) b_dec.assign(static_cast<size_t>(c.d_in), 0.f);
  cpu_backend().upload(s.params().W_enc, W_enc.data());
  cpu_backend().upload(s.params().b_enc, b_enc.data());
  cpu_backend().upload(s.params().W_dec, W_dec.data());
  cpu_backend().upload(s.params().b_dec, b_dec.data());
  return s;
}

// Planted letters: 26 orthonormal directions u_l = e_l in d = 32, a marker direction m = e_30.
// Words of letter l: x = a·u_l (+ 2m when marked). Letter latents l < 26: encoder u_l (minus 2m for
// `absorbed`), bias −0.5, decoder u_l. Extra latents are appended by each test.
constexpr int kD = 32, kMarker = 30;
constexpr float kAmp = 3.f;

struct Planted {
  int F = 0;
  std::vector<float> W_enc, b_enc, W_dec;  // [d, F], [F], [F, d]
  void add_latent(const std::vector<float>& enc, float bias, std::vector<float> dec) {
    std::vector<float> We(static_cast<size_t>(kD) * (F + 1));
    for (int j = 0; j < kD; ++j) {
      for (int i = 0; i < F; ++i) We[j * (F + 1) + i] = W_enc[j * F + i];
      We[j * (F + 1) + F] = enc[j];
    }
    W_enc = We;
    b_enc.push_back(bias);
    double n = 0;
    for (float v : dec) n += v * v;
    for (float& v : dec) v = static_cast<float>(v / std::sqrt(n));
    W_dec.insert(W_dec.end(), dec.begin(), dec.end());
    ++F;
  }
};

std::vector<float> unit(int i, float scale = 1.f) {
  std::vector<float> v(kD, 0.f);
  v[i] = scale;
  return v;
}

void add_letter_latents(Planted& p, int absorbed_letter) {
  for (int l = 0; l < kLetters; ++l) {
    std::vector<float> enc = unit(l);
    if (l == absorbed_letter) enc[kMarker] = -2.f;
    p.add_latent(enc, -0.5f, unit(l));
  }
}

// AbsorptionData whose probe is exactly u_l (bias 0) and whose true positives are `n` words of
// letter `letter`, every `marked_every`-th one marked.
AbsorptionData planted_data(int letter, int n, int marked_every) {
  AbsorptionData D;
  D.d = kD;
  D.probe.P = kLetters;
  D.probe.D = kD;
  D.probe.W.assign(static_cast<size_t>(kLetters) * kD, 0.f);
  D.probe.b.assign(kLetters, 0.f);
  for (int l = 0; l < kLetters; ++l) D.probe.W[l * kD + l] = 1.f;
  D.probe_f1.assign(kLetters, 1.0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> x = unit(letter, kAmp);
    if (i % marked_every == 0) x[kMarker] = 2.f;
    D.tp_x.insert(D.tp_x.end(), x.begin(), x.end());
    D.tp_y.push_back(letter);
  }
  return D;
}

// Split features: latent l for letter l.
std::vector<KSparseLetter> letter_splits() {
  std::vector<KSparseLetter> ks(kLetters);
  for (int l = 0; l < kLetters; ++l) ks[l].split_feats = {l};
  return ks;
}

}  // namespace

// One word, by hand: the letter latent off and one aligned latent carrying the probe direction is
// full absorption (fraction 1); the letter latent firing part-way gives the fraction
// absorbed / (absorbed + main); an absorber under the cosine threshold is no absorption.
TEST(Absorption, WordAbsorptionByHand) {
  AbsorptionConfig cfg;
  const std::vector<float> dir = {1, 0, 0, 0};
  const std::vector<float> x = {2, 0, 0, 0};
  const std::vector<float> cos = {1.f, 0.8f, 0.05f, -0.5f};  // main, absorber, weak, anti
  {
    const std::vector<float> f = {0, 2, 0, 1};  // proj: 0, 1.6, 0, −0.5
    const WordAbsorption w = word_absorption(x.data(), f.data(), cos, dir, {0}, cfg);
    EXPECT_DOUBLE_EQ(w.absorption_fraction, 1.0);
    EXPECT_TRUE(w.full_absorption);
    EXPECT_EQ(w.top_feats[0], 1);
    EXPECT_EQ(w.absorbers, std::vector<int>{1});
  }
  {
    const std::vector<float> f = {0.5f, 2, 0, 0};  // main 0.5, unaccounted 1.5 < 1.6 absorbed
    const WordAbsorption w = word_absorption(x.data(), f.data(), cos, dir, {0}, cfg);
    EXPECT_NEAR(w.absorption_fraction, 1.5 / 2.0, 1e-6);
    EXPECT_FALSE(w.full_absorption);  // a main latent fired
  }
  {
    const std::vector<float> f = {0, 0, 20, 0};  // proj 1.0 ≥ 0.4·2, but cos 0.05 < 0.1
    const WordAbsorption w = word_absorption(x.data(), f.data(), cos, dir, {0}, cfg);
    EXPECT_DOUBLE_EQ(w.absorption_fraction, 0.0);
    EXPECT_TRUE(w.full_absorption);  // full absorption asks only cos ≥ 0.025 of the top latent
  }
}

// A planted absorber: letter 's' (18) loses its latent on marked words, where latent 26 (decoder
// ≈ u_s) fires instead. Every 4th of 40 true positives is marked: absorption rate and mean fraction
// exactly 10/40 for 's'; no other letter has true positives.
TEST(Absorption, PlantedAbsorberGivesKnownRate) {
  const int s = 18;
  Planted p;
  add_letter_latents(p, s);
  std::vector<float> dec = unit(s);
  dec[kMarker] = 0.2f;
  p.add_latent(unit(kMarker), -0.5f, dec);
  SaeConfig c;
  c.d_in = kD;
  c.d_sae = p.F;
  const Sae sae = make_sae(c, p.W_enc, p.b_enc, p.W_dec);
  AbsorptionData D = planted_data(s, 40, 4);
  AbsorptionConfig cfg;
  const AbsorptionResult r = absorption_from_split(sae, D, letter_splits(), cfg);
  const LetterAbsorption& L = r.letters[s];
  EXPECT_EQ(L.num_probe_true_positives, 40);
  EXPECT_EQ(L.num_full_absorption, 10);
  EXPECT_DOUBLE_EQ(L.full_absorption_rate, 0.25);
  EXPECT_NEAR(L.mean_absorption_fraction, 0.25, 1e-12);
  for (int l = 0; l < kLetters; ++l) {
    if (l != s) {
      EXPECT_EQ(r.letters[l].num_probe_true_positives, 0);
    }
  }
  EXPECT_FALSE(r.hierarchical);
}

namespace {

// Hierarchical planted SAE: parents [0, 26) the letter latents, one child per parent (latent 26 + l
// belongs to parent l). On marked 's' words the 's' parent fires weakly (encoder u_s − 0.8 m, so
// 3 − 1.6 − 0.5 = 0.9 instead of 2.5) and the absorbing child carries u_s: the child of 's' itself
// (absorber_parent = s), or the child of another parent that the marker switches on.
AbsorptionResult hierarchical_case(int absorber_parent) {
  const int s = 18;
  Planted p;
  for (int l = 0; l < kLetters; ++l) {
    std::vector<float> enc = unit(l);
    if (l == s) enc[kMarker] = -0.8f;
    if (l == absorber_parent && l != s) enc[kMarker] = 1.f;  // fires on the marker
    p.add_latent(enc, -0.5f, unit(l));
  }
  for (int l = 0; l < kLetters; ++l) {
    std::vector<float> dec = unit(l == absorber_parent ? s : l);
    if (l == absorber_parent) dec[kMarker] = 0.3f;
    p.add_latent(l == absorber_parent ? unit(kMarker) : unit(l, 0.f), -0.5f, dec);
  }
  SaeConfig c;
  c.architecture = SaeArchitecture::Hierarchical;
  c.d_in = kD;
  c.n_parents = kLetters;
  c.children_per_parent = 1;
  c.d_sae = p.F;
  const Sae sae = make_sae(c, p.W_enc, p.b_enc, p.W_dec);
  return absorption_from_split(sae, planted_data(s, 20, 2), letter_splits(), AbsorptionConfig{});
}

}  // namespace

TEST(Absorption, HierarchicalAbsorberIsChildOfMainParent) {
  const AbsorptionResult r = hierarchical_case(18);
  const LetterAbsorption& L = r.letters[18];
  ASSERT_TRUE(r.hierarchical);
  EXPECT_EQ(L.main_parent, 18);
  EXPECT_EQ(L.absorbed_words, 10);  // the marked half
  EXPECT_EQ(L.absorbed_by_children, 10);
  EXPECT_GT(L.mean_absorption_fraction, 0.2);
  EXPECT_EQ(L.num_full_absorption, 0);  // the parent fires part-way
}

TEST(Absorption, HierarchicalAbsorberUnderAnotherParentIsNotAChild) {
  const AbsorptionResult r = hierarchical_case(3);
  const LetterAbsorption& L = r.letters[18];
  EXPECT_EQ(L.main_parent, 18);
  EXPECT_EQ(L.absorbed_words, 10);
  EXPECT_EQ(L.absorbed_by_children, 0);
}

// k-sparse probing on clean planted latents beside latents that fire at random: each letter's own latent is the top-1 choice, with a
// perfect probe, and adding latents does not raise F1 by the jump threshold: one split feature.
TEST(Absorption, KSparseProbingFindsPlantedLetterLatents) {
  Planted p;
  add_letter_latents(p, -1);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nd;
  for (int extra = 0; extra < 10; ++extra) {  // noise latents: read dims 26..29, fire at random
    std::vector<float> e(kD, 0.f), dvec(kD);
    for (int j = 26; j < 30; ++j) e[j] = 3.f * nd(rng);
    for (int j = 0; j < kD; ++j) dvec[j] = nd(rng);
    p.add_latent(e, -0.2f, dvec);
  }
  SaeConfig c;
  c.d_in = kD;
  c.d_sae = p.F;
  const Sae sae = make_sae(c, p.W_enc, p.b_enc, p.W_dec);
  AbsorptionData D;
  D.d = kD;
  std::uniform_real_distribution<float> amp(2.f, 4.f);
  for (int i = 0; i < 26 * 24; ++i) {
    const int l = i % kLetters;
    std::vector<float> x(kD);
    for (int j = 0; j < kD; ++j) x[j] = 0.1f * nd(rng);
    x[l] += amp(rng);
    const bool test = (i / kLetters) % 4 == 0;  // 6 test words of every letter
    auto& X = test ? D.test_x : D.train_x;
    (test ? D.test_y : D.train_y).push_back(l);
    X.insert(X.end(), x.begin(), x.end());
  }
  AbsorptionConfig cfg;
  // SAEBench takes 4096 rows a step on ~20k words; on 468 rows that would be 50 steps in all, too
  // few to move the probe from its init (LR decays 1000x): small batches give it ~1500 steps.
  cfg.ksparse_batch_size = 16;
  const std::vector<KSparseLetter> ks = absorption_k_sparse(sae, D, cfg);
  for (int l = 0; l < kLetters; ++l) {
    EXPECT_EQ(ks[l].feats[0], std::vector<int>{l}) << "letter " << l;
    EXPECT_DOUBLE_EQ(ks[l].f1[0], 1.0) << "letter " << l;
    EXPECT_EQ(ks[l].split_feats, std::vector<int>{l}) << "letter " << l;
  }
}

TEST(Absorption, SplitFeaturesFollowTheF1Jumps) {
  const std::vector<std::vector<int>> feats = {{5}, {5, 7}, {5, 7, 9}, {5, 7, 9, 1}};
  EXPECT_EQ(split_features(feats, {0.5, 0.6, 0.61, 0.9}, 0.03), (std::vector<int>{5, 7}));  // stops at the first small rise
  EXPECT_EQ(split_features(feats, {0.9, 0.9, 0.95, 0.99}, 0.03), std::vector<int>{5});
  EXPECT_EQ(split_features(feats, {0.1, 0.2, 0.3, 0.4}, 0.03), (std::vector<int>{5, 7, 9, 1}));
}

// ---------------------------------------------------------------------------------------------
// Goldens from SAEBench's own code (tests/data/saebench_absorption, README there).
namespace golden {

// The first-letter probe: the same 500 Adam steps from the same init in the same order; float32
// sums in another order (measured 2e-7 relative on W and b).
constexpr double kTolProbeWeights = 1e-5;
// Absorption fractions and rates: float32 projections of the same inputs.
constexpr double kTolAbsorption = 1e-5;

std::string dir() { return test::test_data("saebench_absorption"); }
const nlohmann::json& meta() {
  static const nlohmann::json j = nlohmann::json::parse(read_file(dir() + "/goldens.json"));
  return j;
}
template <typename T>
std::vector<T> load(const std::string& name, std::vector<int64_t>* shape = nullptr) {
  return test::load_npy<T>(dir() + "/" + name + ".npy", shape);
}
std::vector<int> i32(const std::string& name) {
  const std::vector<int32_t> v = load<int32_t>(name);
  return {v.begin(), v.end()};
}
MultiProbe probe(const std::string& w, const std::string& b) {
  MultiProbe p;
  std::vector<int64_t> shape;
  p.W = load<float>(w, &shape);
  p.b = load<float>(b);
  p.P = static_cast<int>(shape[0]);
  p.D = static_cast<int>(shape[1]);
  return p;
}

// The planted data with SAEBench's probe, its true positives from saelab's scoring.
AbsorptionData data() {
  AbsorptionData D;
  std::vector<int64_t> shape;
  D.train_x = load<float>("train_x", &shape);
  D.d = static_cast<int>(shape[1]);
  D.test_x = load<float>("test_x");
  D.train_y = i32("train_y");
  D.test_y = i32("test_y");
  D.test_words = meta()["test_words"].get<std::vector<std::string>>();
  D.probe = probe("probe_W", "probe_b");
  score_probe(D);
  const std::vector<float> tp_all = load<float>("tp_x");  // [n_test, d]
  for (int64_t row : D.tp_test_row)
    D.tp_x.insert(D.tp_x.end(), tp_all.begin() + row * D.d, tp_all.begin() + (row + 1) * D.d);
  return D;
}

Sae sae() {
  std::vector<int64_t> shape;
  const std::vector<float> W_enc = load<float>("W_enc", &shape);
  SaeConfig c;
  c.d_in = static_cast<int>(shape[0]);
  c.d_sae = static_cast<int>(shape[1]);
  return make_sae(c, W_enc, load<float>("b_enc"), load<float>("W_dec"), load<float>("b_dec"));
}

}  // namespace golden

TEST(SaebenchAbsorptionGoldens, VocabularyMatchesGetAlphaTokens) {
  const std::map<std::string, std::string> dirs = {
      {"tinystories-656k", test::shared_root() + "/models/tinystories-656k"},
      {"hf_tiny/gpt2", test::test_data("hf_tiny/gpt2")},
      {"hf_tiny/mistral", test::test_data("hf_tiny/mistral")}};
  for (const auto& [name, path] : dirs) {
    const auto model = load_model(path, cpu_backend());
    std::vector<std::string> got = alpha_vocab(model->tokenizer());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, golden::meta()["vocab"][name].get<std::vector<std::string>>()) << name;
  }
}

TEST(SaebenchAbsorptionGoldens, PromptsMatchCreateIclPrompt) {
  const auto& m = golden::meta();
  for (const auto& c : m["prompts"])
    EXPECT_EQ(icl_prompt(c["word"], c["examples"].get<std::vector<std::string>>(), m["template"]),
              c["prompt"].get<std::string>());
  for (const auto& [word, answer] : m["answers"].items()) EXPECT_EQ(first_letter_answer(word), answer.get<std::string>());
}

TEST(SaebenchAbsorptionGoldens, FirstLetterProbeMatchesTrainMultiProbe) {
  const AbsorptionData D = golden::data();
  MultiProbe init = golden::probe("probe_init_W", "probe_init_b");
  AbsorptionConfig cfg;
  MultiProbeOptions o;
  o.lr = cfg.probe_lr;
  o.end_lr = cfg.probe_end_lr;
  o.weight_decay = cfg.probe_weight_decay;
  o.batch_size = cfg.probe_batch_size;
  o.epochs = cfg.probe_epochs;
  o.shuffle = false;  // the goldens' DataLoader runs in order
  o.init = &init;
  const ProbeRows X{static_cast<int64_t>(D.train_y.size()), D.d, D.train_x.data()};
  const MultiProbe got = train_multi_probe(X, D.train_y, kLetters, o);
  std::printf("first-letter probe vs SAEBench: rel error W %.2e, b %.2e\n", test::rel_error(got.W, D.probe.W),
              test::rel_error(got.b, D.probe.b));
  EXPECT_LT(test::rel_error(got.W, D.probe.W), golden::kTolProbeWeights);
  EXPECT_LT(test::rel_error(got.b, D.probe.b), golden::kTolProbeWeights);
}

TEST(SaebenchAbsorptionGoldens, KSparseProbingAndAbsorptionMatchSaebench) {
  const auto& m = golden::meta();
  const AbsorptionData D = golden::data();
  const Sae sae = golden::sae();
  const MultiProbe l1_init = golden::probe("l1_init_W", "l1_init_b");
  AbsorptionConfig cfg;
  const std::vector<KSparseLetter> ks = absorption_k_sparse(sae, D, cfg, &l1_init);
  for (int l = 0; l < kLetters; ++l) {
    const auto& want = m["letters"][l];
    EXPECT_NEAR(D.probe_f1[l], want["f1_probe"].get<double>(), 1e-12) << "letter " << l;
    EXPECT_EQ(ks[l].feats, want["feats"].get<std::vector<std::vector<int>>>()) << "letter " << l;
    const std::vector<double> f1 = want["f1_sparse"];
    for (size_t k = 0; k < f1.size(); ++k) EXPECT_NEAR(ks[l].f1[k], f1[k], 1e-12) << "letter " << l << " k " << k + 1;
    EXPECT_EQ(ks[l].split_feats, want["split_feats"].get<std::vector<int>>()) << "letter " << l;
  }
  const AbsorptionResult r = absorption_from_split(sae, D, ks, cfg);
  const nlohmann::json j = absorption_json(r, D, cfg, "planted", nlohmann::json::object());
  const auto& details = j["eval_result_details"];
  ASSERT_EQ(details.size(), m["eval_result_details"].size());
  for (size_t i = 0; i < details.size(); ++i) {
    const auto &got = details[i], &want = m["eval_result_details"][i];
    EXPECT_EQ(got["first_letter"], want["first_letter"]);
    for (const char* key : {"num_full_absorption", "num_probe_true_positives", "num_split_features"})
      EXPECT_EQ(got[key], want[key]) << want["first_letter"] << " " << key;
    for (const char* key : {"mean_absorption_fraction", "full_absorption_rate"})
      EXPECT_NEAR(got[key].get<double>(), want[key].get<double>(), golden::kTolAbsorption)
          << want["first_letter"] << " " << key;
  }
  for (const auto& [key, want] : m["mean"].items())
    EXPECT_NEAR(j["eval_result_metrics"]["mean"][key].get<double>(), want.get<double>(), golden::kTolAbsorption) << key;
  EXPECT_EQ(j["eval_type_id"], "absorption_first_letter");
  for (const char* key : {"eval_config", "eval_id", "datetime_epoch_millis", "eval_result_unstructured",
                          "sae_bench_commit_hash", "sae_lens_id", "sae_lens_release_id", "sae_lens_version", "sae_cfg_dict"})
    EXPECT_TRUE(j.contains(key)) << key;
}

// ---------------------------------------------------------------------------------------------
// On a real LM (the tiny GPT-2 fixture, 191 single-token words): the whole pipeline, the check
// that the word is at prompt_token_pos, and the JSON in SAEBench's layout with saelab's extras.
TEST(Absorption, EndToEndOnTinyGpt2) {
  const auto model = load_model(test::test_data("hf_tiny/gpt2"), cpu_backend());
  const std::string hook = "blocks.1.hook_resid_post";
  AbsorptionConfig cfg;
  cfg.progress = false;
  cfg.min_probe_f1 = -1;  // a random 2-layer model: report every letter with true positives
  cfg.min_letters = 1;
  // SAEBench's template at −6 needs " has the first letter:" to be 5 tokens; this 420-token
  // vocabulary splits it, and saelab refuses to read another token than the word.
  const std::string e = test::error_of([&] { absorption_data(*model, hook, cfg); });
  EXPECT_NE(e.find("is not the word"), std::string::npos) << e;
  cfg.prompt_template = "{word}:";  // the calculator's own default template, the word at −2
  cfg.prompt_token_pos = -2;
  const AbsorptionData D = absorption_data(*model, hook, cfg);
  const int d = model->config().d_model;
  EXPECT_EQ(D.vocab.size(), 191u);
  EXPECT_EQ(D.train_words.size(), 152u);  // int(191 · 0.8)
  EXPECT_EQ(D.test_x.size(), D.test_words.size() * d);
  EXPECT_EQ(D.tp_x.size(), D.tp_words.size() * d);
  EXPECT_GT(D.tp_words.size(), 0u);
  EXPECT_LT(D.word_position_mismatches, 10);
  SaeConfig c;
  c.d_in = d;
  c.d_sae = 128;
  c.hook_name = hook;
  Sae sae(c, cpu_backend());
  sae.init(7, 1.0f, std::vector<float>(d, 0.f));
  const AbsorptionResult r = absorption_eval(sae, D, cfg);
  const nlohmann::json j = absorption_json(r, D, cfg, model->config().name, {{"d_sae", 128}});
  EXPECT_EQ(j["eval_type_id"], "absorption_first_letter");
  EXPECT_EQ(j["eval_config"]["prompt_template"], "{word}:");
  EXPECT_GT(j["eval_result_details"].size(), 0u);
  for (const auto& det : j["eval_result_details"]) {
    EXPECT_GE(det["mean_absorption_fraction"].get<double>(), 0.0);
    EXPECT_LE(det["mean_absorption_fraction"].get<double>(), 1.0);
    EXPECT_GE(det["num_split_features"].get<int>(), 1);
  }
  EXPECT_EQ(j["eval_result_unstructured"]["saelab_per_letter"].size(), 26u);
  EXPECT_FALSE(j["eval_result_unstructured"].contains("saelab_hierarchy"));  // a standard SAE
}

TEST(Absorption, BadInputIsAClearError) {
  const auto model = load_model(test::test_data("hf_tiny/gpt2"), cpu_backend());
  AbsorptionConfig cfg;
  cfg.progress = false;
  cfg.min_words_per_letter = 50;  // the tiny GPT-2 has 191 words in all
  const std::string e = test::error_of([&] { absorption_data(*model, "blocks.0.hook_resid_post", cfg); });
  EXPECT_NE(e.find("single-token alphabetic word(s) starting with"), std::string::npos) << e;
  EXPECT_NE(e.find("min_words_per_letter"), std::string::npos) << e;
  EXPECT_NE(test::error_of([&] { absorption_data(*model, "blocks.7.hook_resid_post", AbsorptionConfig{}); }),
            "<no error>");
  // An SAE trained at another hook, or of another width.
  AbsorptionData D;
  D.d = 64;
  D.hook = "blocks.0.hook_resid_post";
  SaeConfig c;
  c.d_in = 64;
  c.d_sae = 32;
  c.hook_name = "blocks.1.hook_resid_post";
  const std::string hook_err = test::error_of([&] { absorption_k_sparse(Sae(c, cpu_backend()), D, AbsorptionConfig{}); });
  EXPECT_NE(hook_err.find("blocks.1.hook_resid_post"), std::string::npos) << hook_err;
  c.d_in = 32;
  c.hook_name = D.hook;
  const std::string d_err = test::error_of([&] { absorption_k_sparse(Sae(c, cpu_backend()), D, AbsorptionConfig{}); });
  EXPECT_NE(d_err.find("d_in = 32"), std::string::npos) << d_err;
}

// The CLI: an SAE export at the tiny GPT-2's blocks.1.hook_resid_post; with SAEBench's template the
// run stops with one error line and writes nothing, with a template the tokenizer keeps whole it
// writes the JSON atomically.
TEST(Absorption, CliWritesTheJsonOrOneError) {
  const std::string dir = test::make_temp_dir("absorption_cli");
  const std::string model = test::test_data("hf_tiny/gpt2");
  SaeConfig c;
  c.d_in = 64;
  c.d_sae = 128;
  c.hook_name = "blocks.1.hook_resid_post";
  Sae sae(c, cpu_backend());
  sae.init(3, 1.0f, std::vector<float>(64, 0.f));
  export_saelens(sae, dir + "/sae", std::vector<float>(128, 0.01f));
  const std::string base = "eval absorption --sae " + dir + "/sae --model " + model + " --out " + dir + "/abs.json";
  const test::CliResult bad = test::run_cli(base);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("is not the word"), std::string::npos) << bad.err;
  EXPECT_FALSE(file_exists(dir + "/abs.json"));
  const test::CliResult ok =
      test::run_cli(base + " --prompt-template '{word}:' --prompt-token-pos -2 --min-letters 1 --min-probe-f1 -1");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const nlohmann::json j = nlohmann::json::parse(read_file(dir + "/abs.json"));
  EXPECT_EQ(j["eval_type_id"], "absorption_first_letter");
  EXPECT_EQ(j["sae_cfg_dict"]["hook_name"], "blocks.1.hook_resid_post");
  if (const char* keep = std::getenv("SAELAB_KEEP_ABSORPTION_JSON")) write_file_atomic(keep, j.dump(2));

  // Several SAEs share one LM pass; each result lands beside its SAE, equal to its own run's.
  Sae other(c, cpu_backend());
  other.init(4, 1.0f, std::vector<float>(64, 0.f));
  export_saelens(other, dir + "/b/sae", std::vector<float>(128, 0.01f));
  const std::string opts = " --model " + model + " --prompt-template '{word}:' --prompt-token-pos -2 --min-letters 1 "
                           "--min-probe-f1 -1";
  const test::CliResult two = test::run_cli("eval absorption --sae " + dir + "/sae --sae " + dir + "/b/sae" + opts);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const nlohmann::json first = nlohmann::json::parse(read_file(dir + "/eval_absorption.json"));
  EXPECT_EQ(first["eval_result_metrics"], j["eval_result_metrics"]);
  EXPECT_TRUE(file_exists(dir + "/b/eval_absorption.json"));
  const test::CliResult both_out =
      test::run_cli("eval absorption --sae " + dir + "/sae --sae " + dir + "/b/sae --out " + dir + "/x.json" + opts);
  EXPECT_NE(both_out.exit_code, 0);
  EXPECT_NE(both_out.err.find("--out names one result file"), std::string::npos) << both_out.err;
}
