#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <regex>

#include "saelab/eval_core.hpp"
#include "saelab/harvest.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/lm.hpp"
#include "saelab/npy.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {

CoreEvalConfig small_eval() {
  CoreEvalConfig c;
  c.corpus = {test::shared_root() + "/corpus/inaugural/1789-Washington.txt"};
  c.context_size = 64;
  c.batch_size = 4;
  c.n_contexts = 8;
  c.progress = false;
  return c;
}

const LanguageModel& model() {
  static auto m = load_model(test::shared_root() + "/models/tinystories-656k", cpu_backend());
  return *m;
}

const std::string kHook = "blocks.0.hook_resid_post";

// The multi-SAE pass runs each SAE on the same rows in the same batches as eval_core does alone, so
// the numbers agree to the last bit on a deterministic backend; this leaves room for reordered
// reductions only.
constexpr double kTolMultiSae = 1e-12;

// saelab's f64 arithmetic vs SAEBench's f32 torch on the same f32 inputs (relative; the scores,
// differences of nearby means divided by each other, amplify it).
constexpr double kTolSaeBench = 2e-5;
constexpr double kTolSaeBenchScore = 2e-4;

// A topk SAE trained once for this file's tests (60k tokens of one book, 300k training tokens).
const std::string& trained_topk_sae() {
  static const std::string dir = [] {
    const std::string d = test::make_temp_dir("evalcore");
    HarvestConfig h;
    h.model_path = test::shared_root() + "/models/tinystories-656k";
    h.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
    h.out_dir = d + "/acts";
    h.max_tokens = 60000;
    h.progress = false;
    harvest(h);
    TrainConfig t;
    t.activations = h.out_dir;
    t.out_dir = d + "/run";
    t.architecture = "topk";
    t.d_sae = 512;
    t.k = 16;
    t.batch_size = 512;
    t.total_tokens = 300000;
    t.lr = 1e-3f;
    t.progress = false;
    train_sae(t);
    return t.out_dir + "/sae";
  }();
  return dir;
}

// A standard SAE with seeded random weights: latents fire on some tokens, the reconstruction is poor.
Sae random_sae(int d_sae, uint64_t seed, int d_in = 128, const std::string& hook = kHook) {
  SaeConfig c;
  c.d_in = d_in;
  c.d_sae = d_sae;
  c.hook_name = hook;
  Sae sae(c, cpu_backend());
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.05f);
  std::vector<float> p(static_cast<size_t>(sae.params().flat.numel()));
  for (float& v : p) v = nd(rng);
  cpu_backend().upload(sae.params().flat.view(), p.data());
  return sae;
}

void expect_same(const CoreEvalResult& a, const CoreEvalResult& b, const std::string& who) {
  EXPECT_EQ(a.tokens, b.tokens) << who;
  const std::pair<const char*, std::pair<double, double>> fields[] = {
      {"ce_clean", {a.ce_clean, b.ce_clean}},
      {"ce_sae", {a.ce_sae, b.ce_sae}},
      {"ce_zero", {a.ce_zero, b.ce_zero}},
      {"kl_sae", {a.kl_sae, b.kl_sae}},
      {"kl_zero", {a.kl_zero, b.kl_zero}},
      {"mse", {a.mse, b.mse}},
      {"explained_variance", {a.explained_variance, b.explained_variance}},
      {"explained_variance_legacy", {a.explained_variance_legacy, b.explained_variance_legacy}},
      {"explained_variance_centered", {a.explained_variance_centered, b.explained_variance_centered}},
      {"mse_per_element", {a.mse_per_element, b.mse_per_element}},
      {"l2_ratio", {a.l2_ratio, b.l2_ratio}},
      {"average_max_decoder_cosine_sim", {a.average_max_decoder_cosine_sim, b.average_max_decoder_cosine_sim}},
      {"cossim", {a.cossim, b.cossim}},
      {"l0", {a.l0, b.l0}},
      {"l1", {a.l1, b.l1}},
      {"l2_norm_in", {a.l2_norm_in, b.l2_norm_in}},
      {"l2_norm_out", {a.l2_norm_out, b.l2_norm_out}},
      {"relative_reconstruction_bias", {a.relative_reconstruction_bias, b.relative_reconstruction_bias}},
      {"dead_fraction", {a.dead_fraction, b.dead_fraction}},
      {"dense_fraction", {a.dense_fraction, b.dense_fraction}},
      {"ce_loss_score", {a.ce_loss_score(), b.ce_loss_score()}},
      {"kl_div_score", {a.kl_div_score(), b.kl_div_score()}}};
  for (const auto& [name, v] : fields) {
    if (std::isnan(v.second)) {  // e.g. the zero SAE's 0/0 relative_reconstruction_bias, NaN in SAEBench too
      EXPECT_TRUE(std::isnan(v.first)) << who << " " << name;
      continue;
    }
    EXPECT_NEAR(v.first, v.second, kTolMultiSae * std::max(1.0, std::abs(v.second))) << who << " " << name;
  }
  ASSERT_EQ(a.density.size(), b.density.size()) << who;
  EXPECT_LE(test::rel_error(a.density, b.density), kTolMultiSae) << who;
}

}  // namespace

// Splicing the activation itself recovers everything; splicing zeros recovers nothing.
TEST(EvalCore, IdentityScoresOneAndZerosScoreZero) {
  auto identity = [](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
    xh = x;
    lat.clear();
  };
  const CoreEvalResult id = eval_core_with(model(), kHook, 0, identity, small_eval());
  EXPECT_GT(id.tokens, 400);
  EXPECT_DOUBLE_EQ(id.ce_sae, id.ce_clean);
  EXPECT_DOUBLE_EQ(id.ce_loss_score(), 1.0);
  EXPECT_NEAR(id.kl_sae, 0.0, 1e-12);
  EXPECT_NEAR(id.explained_variance, 1.0, 1e-12);
  EXPECT_NEAR(id.cossim, 1.0, 1e-9);
  EXPECT_GT(id.ce_zero, id.ce_clean + 1.0);  // ablating the residual stream hurts a lot

  auto zeros = [](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
    xh.assign(x.size(), 0.f);
    lat.clear();
  };
  // A zero reconstruction is spliced where tokens are counted only; BOS keeps its activation. Zero
  // ablation zeroes BOS too (SAEBench), so the two runs differ, and the zero reconstruction keeps
  // a little of the clean loss.
  const CoreEvalResult z = eval_core_with(model(), kHook, 0, zeros, small_eval());
  EXPECT_NEAR(z.ce_zero, id.ce_zero, 1e-9);
  EXPECT_GT(std::abs(z.ce_sae - z.ce_zero), 1e-3);
  EXPECT_LT(z.ce_loss_score(), 0.5);
}

TEST(EvalCore, TrainedSaeRecoversMostOfTheLossAndWritesSaeBenchJson) {
  Sae sae = load_saelens(trained_topk_sae(), cpu_backend());
  const CoreEvalConfig c = small_eval();
  const CoreEvalResult r = eval_core(model(), sae, kHook, c);
  // On this out-of-domain text (a 1789 speech) the spliced SAE lowers the CE a little below the clean
  // run's, so the score may pass 1 slightly.
  EXPECT_GT(r.ce_loss_score(), 0.7);
  EXPECT_LE(r.ce_loss_score(), 1.1) << "CE clean " << r.ce_clean << ", SAE " << r.ce_sae << ", zero " << r.ce_zero;
  EXPECT_GT(r.explained_variance, 0.5);
  EXPECT_NEAR(r.l0, 16.0, 0.5);  // topk: exactly k active unless some of the k are ≤ 0
  EXPECT_EQ(r.density.size(), 512u);

  const auto j = core_result_json(r, c, read_saelens_cfg(trained_topk_sae()), "tinystories-656k");
  EXPECT_EQ(j["eval_type_id"], "core");
  EXPECT_TRUE(std::regex_match(j["eval_id"].get<std::string>(),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  EXPECT_GT(j["datetime_epoch_millis"].get<int64_t>(), 1700000000000);
  const auto& m = j["eval_result_metrics"];
  for (const char* group : {"model_behavior_preservation", "model_performance_preservation", "reconstruction_quality",
                            "shrinkage", "sparsity", "misc_metrics", "token_stats"})
    EXPECT_TRUE(m.contains(group)) << group;
  EXPECT_DOUBLE_EQ(m["model_performance_preservation"]["ce_loss_score"].get<double>(), r.ce_loss_score());
  EXPECT_EQ(j["sae_cfg_dict"]["d_sae"], 512);
  EXPECT_EQ(nlohmann::json::parse(j.dump()), j);  // round-trips
}

// Several SAEs in one pass over the contexts (one clean and one zero-ablated forward per batch, one
// spliced forward per SAE) give each SAE the numbers eval_core gives it alone.
TEST(EvalCore, MultiSaePassMatchesOneSaeAtATime) {
  const Sae trained = load_saelens(trained_topk_sae(), cpu_backend());
  const Sae noisy = random_sae(256, 7), wide = random_sae(384, 8);
  SaeConfig zc;
  zc.d_in = 128;
  zc.d_sae = 64;
  zc.hook_name = kHook;
  const Sae zero(zc, cpu_backend());  // reconstructs zeros: the spliced run is the zero-ablated one
  CoreEvalConfig c = small_eval();
  c.batch_size = 3;  // a last, partial batch too
  EvalTiming tm;
  const std::vector<const Sae*> saes{&trained, &noisy, &zero, &wide};
  const std::vector<CoreEvalResult> multi = eval_core_multi(model(), saes, kHook, c, &tm);
  ASSERT_EQ(multi.size(), saes.size());
  const char* names[] = {"trained", "noisy", "zero", "wide"};
  for (size_t s = 0; s < saes.size(); ++s) expect_same(multi[s], eval_core(model(), *saes[s], kHook, c), names[s]);
  EXPECT_GT(multi[0].ce_loss_score(), 0.7);
  EXPECT_LT(multi[2].ce_loss_score(), 0.5);  // zeros where counted; BOS keeps its activation
  EXPECT_GT(tm.lm_s, 0.0);
  EXPECT_GT(tm.sae_s, 0.0);
  // A reconstruction function and its SAE agree too (eval_core_with is the one-SAE case).
  const std::vector<CoreEvalResult> with = eval_core_multi_with(
      model(), kHook, {0}, {[](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
        xh = x;
        lat.clear();
      }},
      c);
  EXPECT_DOUBLE_EQ(with[0].ce_sae, multi[0].ce_clean);
  EXPECT_NEAR(with[0].ce_zero, multi[0].ce_zero, kTolMultiSae * multi[0].ce_zero);
}

TEST(EvalCore, WidthMismatchIsRefusedNamingBothValues) {
  SaeConfig c;
  c.d_in = 64;
  c.d_sae = 16;
  Sae sae(c, cpu_backend());
  try {
    eval_core(model(), sae, kHook, small_eval());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d_in 64"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("128"), std::string::npos) << e.what();
  }
}

// ---- SAEBench's own code as the reference (tests/data/saebench_core; see
// scripts/reference/saebench_core_goldens.py for how the goldens are made) ----

namespace {

const std::string kGoldenHook = "blocks.1.hook_resid_post";

const LanguageModel& stories260k() {
  static auto m = load_model(test::shared_root() + "/models/stories260K", cpu_backend());
  return *m;
}

// Short documents, so that BOS separators fall inside contexts as well as at their starts.
CoreEvalConfig golden_eval() {
  const std::string dir = test::make_temp_dir("sbcore");
  std::string text;
  const char* docs[] = {"Tom had a red ball.", "The cat sat on the mat. It was warm.", "Lily saw a big dog.",
                        "One day, a bird sang a song.", "Sam and Mia went to the park to play.",
                        "The sun was hot.", "Ben ate an apple."};
  for (const char* d : docs) text += std::string(d) + "\n\n";
  test::write_text(dir + "/docs.txt", text);
  CoreEvalConfig c;
  c.corpus = {dir + "/docs.txt"};
  c.context_size = 12;
  c.batch_size = 2;
  c.n_contexts = 4;
  c.progress = false;
  return c;
}

// saelab's tensors for saebench_core_goldens.py: every batch of golden_eval() with a seeded SAE,
// reconstructions and latents at every row (x̂ = x and f = 0 where a token is ignored: SAEBench
// masks those rows, and its splice keeps x there), plus the SAE's weights and a sample JSON.
void write_golden_inputs(const std::string& dir) {
  const Sae sae = random_sae(48, 11, 64, kGoldenHook);
  std::vector<int32_t> tokens;
  std::vector<float> x, xhat, lat, lc, ls, lz;
  int nb = 0, B = 0, T = 0, d = 0, F = 0;
  int64_t V = 0;
  CoreEvalConfig c = golden_eval();
  c.on_batch = [&](const CoreBatchView& v) {
    ++nb, B = v.B, T = v.T, d = v.d, F = v.F, V = v.V;
    tokens.insert(tokens.end(), v.tokens->begin(), v.tokens->end());
    x.insert(x.end(), v.x->begin(), v.x->end());
    int64_t k = 0;
    for (int64_t row = 0; row < int64_t(v.B) * v.T; ++row) {
      const bool kept = (*v.keep)[row];
      const float* xr = v.x->data() + row * d;
      xhat.insert(xhat.end(), kept ? v.xhat->data() + k * d : xr, (kept ? v.xhat->data() + k * d : xr) + d);
      for (int i = 0; i < F; ++i) lat.push_back(kept ? (*v.latents)[k * F + i] : 0.f);
      k += kept;
    }
    lc.insert(lc.end(), v.logits_clean->begin(), v.logits_clean->end());
    ls.insert(ls.end(), v.logits_sae->begin(), v.logits_sae->end());
    lz.insert(lz.end(), v.logits_zero->begin(), v.logits_zero->end());
  };
  const CoreEvalResult r = eval_core(stories260k(), sae, kGoldenHook, c);
  ASSERT_EQ(nb, 2);
  write_npy(dir + "/tokens.npy", DType::I32, {nb, B, T}, tokens.data());
  write_npy(dir + "/x.npy", DType::F32, {nb, B, T, d}, x.data());
  write_npy(dir + "/xhat.npy", DType::F32, {nb, B, T, d}, xhat.data());
  write_npy(dir + "/latents.npy", DType::F32, {nb, B, T, F}, lat.data());
  write_npy(dir + "/logits_clean.npy", DType::F32, {nb, B, T, V}, lc.data());
  write_npy(dir + "/logits_sae.npy", DType::F32, {nb, B, T, V}, ls.data());
  write_npy(dir + "/logits_zero.npy", DType::F32, {nb, B, T, V}, lz.data());
  write_npy(dir + "/W_enc.npy", DType::F32, {d, F}, to_host_f32(sae.backend(), sae.params().W_enc).data());
  write_npy(dir + "/W_dec.npy", DType::F32, {F, d}, to_host_f32(sae.backend(), sae.params().W_dec).data());
  const Tokenizer& tok = stories260k().tokenizer();
  nlohmann::json ignore = nlohmann::json::array();
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (is_ignored_token(tok, id)) ignore.push_back(id);
  write_file_atomic(dir + "/meta.json", nlohmann::json{{"hook", kGoldenHook}, {"ignore_token_ids", ignore}}.dump(1));
  const std::string exported = test::make_temp_dir("sbcore_sae") + "/sae";
  export_saelens(sae, exported, r.density);
  write_file_atomic(dir + "/eval_core_sample.json",
                    core_result_json(r, c, read_saelens_cfg(exported), "stories260K").dump(2) + "\n");
}

struct GoldenInputs {
  int nb = 0, B = 0, T = 0, d = 0, F = 0;
  int64_t V = 0;
  std::vector<int32_t> tokens;
  std::vector<float> x, xhat, lat, lc, ls, lz, W_enc, W_dec;
};

std::vector<float> npy_f32(const std::string& path) {
  const NpyArray a = read_npy(path);
  EXPECT_EQ(a.dtype, DType::F32) << path;
  std::vector<float> v(a.bytes.size() / sizeof(float));
  std::memcpy(v.data(), a.bytes.data(), a.bytes.size());
  return v;
}

GoldenInputs read_golden_inputs(const std::string& dir) {
  GoldenInputs g;
  const NpyArray t = read_npy(dir + "/tokens.npy");
  g.nb = int(t.shape[0]), g.B = int(t.shape[1]), g.T = int(t.shape[2]);
  g.tokens.resize(t.bytes.size() / sizeof(int32_t));
  std::memcpy(g.tokens.data(), t.bytes.data(), t.bytes.size());
  g.d = int(read_npy(dir + "/x.npy").shape[3]);
  g.F = int(read_npy(dir + "/latents.npy").shape[3]);
  g.V = read_npy(dir + "/logits_clean.npy").shape[3];
  g.x = npy_f32(dir + "/x.npy"), g.xhat = npy_f32(dir + "/xhat.npy"), g.lat = npy_f32(dir + "/latents.npy");
  g.lc = npy_f32(dir + "/logits_clean.npy"), g.ls = npy_f32(dir + "/logits_sae.npy");
  g.lz = npy_f32(dir + "/logits_zero.npy");
  g.W_enc = npy_f32(dir + "/W_enc.npy"), g.W_dec = npy_f32(dir + "/W_dec.npy");
  return g;
}

// A batch's slice [b·rows·width, (b+1)·rows·width) of a per-batch array.
std::vector<float> batch_of(const std::vector<float>& a, int b, int64_t per_batch) {
  return {a.begin() + b * per_batch, a.begin() + (b + 1) * per_batch};
}

void expect_rel(double got, double want, double tol, const std::string& what) {
  EXPECT_NEAR(got, want, tol * std::max(1.0, std::abs(want))) << what;
}

}  // namespace

// saelab's metric arithmetic on the tensors saelab dumped agrees with SAEBench's functions run on
// the same tensors (expected.json). SAELAB_WRITE_SAEBENCH_CORE_INPUTS=DIR rewrites the inputs.
TEST(EvalCore, MatchesSaeBenchGoldens) {
  if (const char* out = std::getenv("SAELAB_WRITE_SAEBENCH_CORE_INPUTS")) {
    write_golden_inputs(out);
    GTEST_SKIP() << "wrote the inputs to " << out << "; now run scripts/reference/saebench_core_goldens.py " << out;
  }
  const std::string dir = test::test_data("saebench_core");
  const GoldenInputs g = read_golden_inputs(dir);
  const auto want = nlohmann::json::parse(read_file(dir + "/expected.json"));
  const std::vector<int> ignore = want["ignore_token_ids"].get<std::vector<int>>();
  const int64_t rows = int64_t(g.B) * g.T;
  CeKlSums clean, sae_run, zero;
  ReconSums rs = recon_sums(g.d, g.F);
  int64_t ignored_inside = 0;  // ignored tokens past a context's first position
  for (int b = 0; b < g.nb; ++b) {
    const std::vector<int32_t> tok(g.tokens.begin() + b * rows, g.tokens.begin() + (b + 1) * rows);
    std::vector<uint8_t> keep(static_cast<size_t>(rows));
    std::vector<float> xs, xh, lat;
    for (int64_t r = 0; r < rows; ++r) {
      keep[r] = std::find(ignore.begin(), ignore.end(), tok[r]) == ignore.end();
      ignored_inside += !keep[r] && r % g.T != 0;
      if (!keep[r]) continue;
      const int64_t o = (b * rows + r);
      xs.insert(xs.end(), g.x.begin() + o * g.d, g.x.begin() + (o + 1) * g.d);
      xh.insert(xh.end(), g.xhat.begin() + o * g.d, g.xhat.begin() + (o + 1) * g.d);
      lat.insert(lat.end(), g.lat.begin() + o * g.F, g.lat.begin() + (o + 1) * g.F);
    }
    const CleanLogits cl = clean_logits(batch_of(g.lc, b, rows * g.V), rows, g.V);
    add_ce_kl(clean, cl, nullptr, tok, keep, g.B, g.T, g.V);
    const std::vector<float> ls = batch_of(g.ls, b, rows * g.V), lz = batch_of(g.lz, b, rows * g.V);
    add_ce_kl(sae_run, cl, &ls, tok, keep, g.B, g.T, g.V);
    add_ce_kl(zero, cl, &lz, tok, keep, g.B, g.T, g.V);
    add_recon_batch(rs, xs.data(), xh.data(), lat.data(), int64_t(xs.size()) / g.d);
    // SAEBench's hooks: the ablation zeroed every position, BOS included; the SAE was spliced
    // exactly where saelab counts (exclude_special_tokens_from_reconstruction).
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(want["hook_zeroed"][b][r / g.T][r % g.T].get<int>(), 1) << "batch " << b << " row " << r;
      EXPECT_EQ(want["hook_replaced"][b][r / g.T][r % g.T].get<int>(), int(keep[r])) << "batch " << b << " row " << r;
    }
  }
  EXPECT_GT(ignored_inside, 0) << "the goldens should hold an ignored token inside a context";
  const auto& rc = want["reconstruction"];
  expect_rel(clean.ce / clean.ce_n, rc["ce_loss_without_sae"].get<double>(), kTolSaeBench, "ce_loss_without_sae");
  expect_rel(sae_run.ce / sae_run.ce_n, rc["ce_loss_with_sae"].get<double>(), kTolSaeBench, "ce_loss_with_sae");
  expect_rel(zero.ce / zero.ce_n, rc["ce_loss_with_ablation"].get<double>(), kTolSaeBench, "ce_loss_with_ablation");
  expect_rel(sae_run.kl / sae_run.kl_n, rc["kl_div_with_sae"].get<double>(), kTolSaeBench, "kl_div_with_sae");
  expect_rel(zero.kl / zero.kl_n, rc["kl_div_with_ablation"].get<double>(), kTolSaeBench, "kl_div_with_ablation");
  CoreEvalResult r;
  r.ce_clean = clean.ce / clean.ce_n, r.ce_sae = sae_run.ce / sae_run.ce_n, r.ce_zero = zero.ce / zero.ce_n;
  r.kl_sae = sae_run.kl / sae_run.kl_n, r.kl_zero = zero.kl / zero.kl_n;
  expect_rel(r.ce_loss_score(), rc["ce_loss_score"].get<double>(), kTolSaeBenchScore, "ce_loss_score");
  expect_rel(r.kl_div_score(), rc["kl_div_score"].get<double>(), kTolSaeBenchScore, "kl_div_score");

  finish_recon(rs, 0.1, r);
  const auto& sv = want["sparsity_variance"];
  const std::pair<const char*, double> got[] = {
      {"l2_norm_in", r.l2_norm_in}, {"l2_norm_out", r.l2_norm_out}, {"l2_ratio", r.l2_ratio},
      {"relative_reconstruction_bias", r.relative_reconstruction_bias}, {"l0", r.l0}, {"l1", r.l1},
      {"explained_variance", r.explained_variance}, {"explained_variance_legacy", r.explained_variance_legacy},
      {"mse", r.mse}, {"cossim", r.cossim}};
  for (const auto& [name, v] : got) expect_rel(v, sv[name].get<double>(), kTolSaeBench, name);
  EXPECT_LE(test::rel_error(r.density, want["feature_density"].get<std::vector<float>>()), kTolSaeBench);
  std::vector<float> enc_rows(g.W_enc.size());
  for (int j = 0; j < g.d; ++j)
    for (int i = 0; i < g.F; ++i) enc_rows[size_t(i) * g.d + j] = g.W_enc[size_t(j) * g.F + i];
  r.average_max_encoder_cosine_sim = average_max_cosine_sim(enc_rows, g.F, g.d);
  r.average_max_decoder_cosine_sim = average_max_cosine_sim(g.W_dec, g.F, g.d);
  const auto& mm = want["misc_metrics"];
  const std::pair<const char*, double> misc[] = {
      {"frac_alive", r.frac_alive}, {"freq_over_1_percent", r.freq_over_1_percent},
      {"freq_over_10_percent", r.freq_over_10_percent},
      {"normalized_freq_over_1_percent", r.normalized_freq_over_1_percent},
      {"normalized_freq_over_10_percent", r.normalized_freq_over_10_percent},
      {"average_max_encoder_cosine_sim", r.average_max_encoder_cosine_sim},
      {"average_max_decoder_cosine_sim", r.average_max_decoder_cosine_sim}};
  for (const auto& [name, v] : misc) expect_rel(v, mm[name].get<double>(), kTolSaeBench, name);
}

// The whole evaluation's zero-ablated run is the LM with every position of the hook activation
// zeroed, BOS included. Keeping BOS (as the spliced runs do) changes the logits by far more than the
// tolerance, so this fails if ablation skips BOS.
TEST(EvalCore, ZeroAblationZeroesEveryPositionBosIncluded) {
  CoreEvalConfig c = small_eval();
  c.n_contexts = 2;
  c.batch_size = 2;
  std::vector<int32_t> tokens;
  std::vector<float> seen;
  int B = 0, T = 0;
  c.on_batch = [&](const CoreBatchView& v) { tokens = *v.tokens, seen = *v.logits_zero, B = v.B, T = v.T; };
  auto identity = [](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
    xh = x;
    lat.clear();
  };
  eval_core_with(model(), kHook, 0, identity, c);
  ASSERT_EQ(tokens[0], model().tokenizer().bos_id());
  auto zeroed = [&](bool keep_bos) {
    Hooks h;
    h.splice(kHook, [&](TensorView a) {
      std::vector<float> act = to_host_f32(model().backend(), a);
      const int d = model().config().d_model;
      for (size_t r = 0; r < tokens.size(); ++r)
        if (!(keep_bos && tokens[r] == model().tokenizer().bos_id()))
          std::fill_n(act.begin() + int64_t(r) * d, d, 0.f);
      model().backend().upload(a, act.data());
    });
    return to_host_f32(model().backend(), model().forward(tokens, B, T, &h));
  };
  EXPECT_LE(test::rel_error(seen, zeroed(false)), test::kTolF32Op);
  EXPECT_GT(test::rel_error(seen, zeroed(true)), 100 * test::kTolF32Op);
}

namespace {

enum class JsonKind { String, StringOrNull, Int, Number, Bool, Object, ObjectOrNull, Array };

bool is_kind(const nlohmann::json& v, JsonKind k) {
  switch (k) {
    case JsonKind::String: return v.is_string();
    case JsonKind::StringOrNull: return v.is_string() || v.is_null();
    case JsonKind::Int: return v.is_number_integer();
    case JsonKind::Number: return v.is_number();
    case JsonKind::Bool: return v.is_boolean();
    case JsonKind::Object: return v.is_object();
    case JsonKind::ObjectOrNull: return v.is_object() || v.is_null();
    case JsonKind::Array: return v.is_array();
  }
  return false;
}

// Every required field of SAEBench's CoreEvalOutput (sae-bench 0.6.0, core/eval_output.py and
// base_eval_output.py) with the JSON type its pydantic class accepts. CI runs no Python: this is
// the guard that validate_saebench_json.py keeps passing.
void expect_core_schema(const nlohmann::json& j, const std::string& who) {
  using K = JsonKind;
  const std::pair<const char*, K> fields[] = {
      {"/eval_type_id", K::String}, {"/eval_config", K::Object}, {"/eval_id", K::String},
      {"/datetime_epoch_millis", K::Int}, {"/eval_result_metrics", K::Object}, {"/eval_result_details", K::Array},
      {"/sae_bench_commit_hash", K::String}, {"/sae_lens_id", K::StringOrNull},
      {"/sae_lens_release_id", K::StringOrNull}, {"/sae_lens_version", K::StringOrNull},
      {"/sae_cfg_dict", K::ObjectOrNull},
      {"/eval_config/model_name", K::String}, {"/eval_config/llm_dtype", K::String},
      {"/eval_config/batch_size_prompts", K::Int}, {"/eval_config/n_eval_reconstruction_batches", K::Int},
      {"/eval_config/n_eval_sparsity_variance_batches", K::Int}, {"/eval_config/dataset", K::String},
      {"/eval_config/context_size", K::Int}, {"/eval_config/compute_kl", K::Bool},
      {"/eval_config/compute_ce_loss", K::Bool}, {"/eval_config/compute_l2_norms", K::Bool},
      {"/eval_config/compute_sparsity_metrics", K::Bool}, {"/eval_config/compute_variance_metrics", K::Bool},
      {"/eval_config/compute_featurewise_density_statistics", K::Bool},
      {"/eval_config/compute_featurewise_weight_based_metrics", K::Bool},
      {"/eval_config/exclude_special_tokens_from_reconstruction", K::Bool}, {"/eval_config/verbose", K::Bool}};
  for (const auto& [path, kind] : fields) {
    const nlohmann::json::json_pointer p(path);
    ASSERT_TRUE(j.contains(p)) << who << ": " << path << " missing";
    EXPECT_TRUE(is_kind(j.at(p), kind)) << who << ": " << path << " is " << j.at(p).type_name();
  }
  const std::pair<const char*, std::vector<const char*>> metrics[] = {
      {"model_behavior_preservation", {"kl_div_score", "kl_div_with_ablation", "kl_div_with_sae"}},
      {"model_performance_preservation",
       {"ce_loss_score", "ce_loss_with_ablation", "ce_loss_with_sae", "ce_loss_without_sae"}},
      {"reconstruction_quality", {"explained_variance", "explained_variance_legacy", "mse", "cossim"}},
      {"shrinkage", {"l2_norm_in", "l2_norm_out", "l2_ratio", "relative_reconstruction_bias"}},
      {"sparsity", {"l0", "l1"}},
      {"misc_metrics",
       {"freq_over_1_percent", "freq_over_10_percent", "normalized_freq_over_1_percent",
        "normalized_freq_over_10_percent", "average_max_encoder_cosine_sim", "average_max_decoder_cosine_sim",
        "frac_alive"}},
      {"token_stats", {"total_tokens_eval_reconstruction", "total_tokens_eval_sparsity_variance"}}};
  for (const auto& [group, names] : metrics)
    for (const char* name : names) {
      const nlohmann::json::json_pointer p(std::string("/eval_result_metrics/") + group + "/" + name);
      ASSERT_TRUE(j.contains(p)) << who << ": " << p.to_string() << " missing";
      const bool want_int = std::string(group) == "token_stats";
      EXPECT_TRUE(want_int ? j.at(p).is_number_integer() : j.at(p).is_number())
          << who << ": " << p.to_string() << " is " << j.at(p).type_name();
      // Metrics are flat (BaseMetrics refuses dicts); a NaN would be written as null.
    }
}

}  // namespace

// The JSON core_result_json writes, and the sample validate_saebench_json.py passed (committed beside
// the goldens), have every field SAEBench requires with its type.
TEST(EvalCore, CoreJsonHasEveryFieldSaeBenchRequires) {
  CoreEvalResult r;
  r.ce_clean = 2, r.ce_sae = 2.5, r.ce_zero = 6, r.kl_sae = 0.3, r.kl_zero = 4;
  r.tokens = r.total_tokens = 100;
  CoreEvalConfig c = small_eval();
  c.corpus.push_back("b.txt");
  const nlohmann::json j = core_result_json(r, c, nlohmann::json{{"d_sae", 4}}, "m");
  expect_core_schema(j, "core_result_json");
  EXPECT_EQ(j["eval_config"]["dataset"], c.corpus[0] + ", b.txt");
  EXPECT_EQ(j["eval_config"]["dataset_files"], c.corpus);
  expect_core_schema(nlohmann::json::parse(read_file(test::test_data("saebench_core/eval_core_sample.json"))),
                     "eval_core_sample.json");
  // The provenance fields the sparse-probing JSON shares.
  const nlohmann::json p = with_saebench_provenance({{"eval_type_id", "sparse_probing"}});
  EXPECT_TRUE(p["sae_bench_commit_hash"].is_string());
  for (const char* k : {"sae_lens_id", "sae_lens_release_id", "sae_lens_version"}) EXPECT_TRUE(p[k].is_null()) << k;
}
