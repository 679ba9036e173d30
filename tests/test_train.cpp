#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "train/checkpoint.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/harvest.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"

using namespace saelab;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// One small harvest shared by the tests of this file (TinyStories-656K, layer 0, 40k tokens).
const std::string& activations() {
  static const std::string dir = [] {
    HarvestConfig c;
    c.model_path = test::shared_root() + "/models/tinystories-656k";
    c.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
    c.out_dir = test::make_temp_dir("train") + "/acts";
    c.max_tokens = 40000;
    c.shard_tokens = 8000;
    c.progress = false;
    harvest(c);
    return c.out_dir;
  }();
  return dir;
}

TrainConfig small_config(const std::string& out, const std::string& arch = "standard") {
  TrainConfig c;
  c.activations = activations();
  c.out_dir = out;
  c.architecture = arch;
  c.d_sae = 256;
  c.k = 8;
  c.batch_size = 256;
  c.total_tokens = 60000;  // 234 steps, more than one pass over the data
  c.lr = 1e-3f;
  c.l1_coefficient = 2.f;
  c.buffer_tokens = 4096;
  c.dead_window_tokens = 5000;
  c.progress = false;
  return c;
}

std::string weights(const std::string& run) { return test::exported_sae_weights(run); }

}  // namespace

TEST(Train, StandardSaeLearnsAndExports) {
  const TrainConfig c = small_config(test::make_temp_dir("train") + "/run");
  const TrainResult r = train_sae(c);
  EXPECT_FALSE(r.already_complete);
  EXPECT_EQ(r.steps, 234);
  EXPECT_GT(r.summary["final_explained_variance"].get<double>(), 0.5);
  EXPECT_GT(r.summary["final_l0"].get<double>(), 1.0);
  EXPECT_LT(r.summary["final_l0"].get<double>(), 128.0);
  // The log shows learning: loss at the end well below the start.
  std::ifstream log(c.out_dir + "/train_log.csv");
  std::string header, first, line, last;
  std::getline(log, header);
  std::getline(log, first);
  while (std::getline(log, line)) last = line;
  auto loss = [](const std::string& row) {
    size_t p = row.find(',');
    p = row.find(',', p + 1);
    return std::stod(row.substr(p + 1));
  };
  EXPECT_LT(loss(last), 0.7 * loss(first));
  const json cfg = read_saelens_cfg(c.out_dir + "/sae");
  EXPECT_EQ(cfg["architecture"], "standard");
  EXPECT_EQ(cfg["d_in"], 128);
  EXPECT_EQ(cfg["d_sae"], 256);
  EXPECT_EQ(cfg["hook_name"], "blocks.0.hook_resid_post");
  EXPECT_EQ(cfg["metadata"]["model_name"], "tinystories-656k");
  EXPECT_EQ(cfg["normalize_activations"], "none");
  EXPECT_TRUE(file_exists(c.out_dir + "/sae/sparsity.safetensors"));
  EXPECT_TRUE(train_sae(c).already_complete);
}

// The export takes raw activations: the activation scale is folded into the weights.
TEST(Train, ExportEncodesRawActivationsLikeTheTrainedModel) {
  const TrainConfig c = small_config(test::make_temp_dir("train") + "/run");
  train_sae(c);
  Backend& be = cpu_backend();
  Sae exported = load_saelens(c.out_dir + "/sae", be);
  const ActivationManifest m = read_activation_manifest(c.activations);
  std::vector<float> x;
  read_activation_shard(m, 0, x);
  const int64_t N = 200, d = 128;
  x.resize(N * d);
  const float s = static_cast<float>(read_saelens_cfg(c.out_dir + "/sae")["saelab"]["act_scale_folded"].get<double>());
  EXPECT_GT(s, 0.f);
  // The last checkpoint holds the trained (scaled-space) parameters.
  SaeConfig sc = exported.config();
  Sae trained(sc, be);
  TrainState st;
  st.init(sc, be.device());
  load_checkpoint(list_checkpoints(c.out_dir + "/checkpoints").back(), trained, st);
  std::vector<float> xs(x);
  for (auto& v : xs) v *= s;
  SaeWorkspace w1(sc, N, be.device()), w2(sc, N, be.device());
  exported.encode(to_device(be, {N, d}, x.data()), w1);
  trained.encode(to_device(be, {N, d}, xs.data()), w2);
  EXPECT_LE(test::rel_error(to_host_f32(be, w1.f), to_host_f32(be, w2.f)), 1e-5);
}

// A hierarchical export names its own architecture (plain SAELens refuses it; the plugin
// python/saelab_saelens.py gates it) and loads back gated: children never fire without their parent.
// act_scale 2 folds exactly, so the export encodes raw x exactly as the SAE encodes 2x.
TEST(Train, HierarchicalExportRoundTripsAsItsOwnArchitecture) {
  Backend& be = cpu_backend();
  SaeConfig c;
  c.architecture = SaeArchitecture::Hierarchical;
  c.d_in = 16, c.n_parents = 6, c.children_per_parent = 3, c.d_sae = 6 * (1 + 3);
  c.act_scale = 2.f;
  Sae sae(c, be);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.f, 0.3f);
  std::vector<float> b_dec(16);
  for (auto& v : b_dec) v = nd(rng);
  sae.init(11, 1.f, b_dec);
  std::vector<float> b_enc(static_cast<size_t>(c.d_sae));
  for (auto& v : b_enc) v = nd(rng);  // some latents on, some off at init
  be.upload(sae.params().b_enc, b_enc.data());

  const std::string dir = test::make_temp_dir("export") + "/sae";
  export_saelens(sae, dir, std::vector<float>(static_cast<size_t>(c.d_sae), 0.1f));
  const json cfg = read_saelens_cfg(dir);
  EXPECT_EQ(cfg["architecture"], "saelab_hierarchical");
  EXPECT_EQ(cfg["n_parents"], 6);
  EXPECT_EQ(cfg["children_per_parent"], 3);
  EXPECT_EQ(cfg["d_sae"], 24);

  const int64_t N = 64, d = 16, P = 6, m = 3, F = 24;
  std::vector<float> x(static_cast<size_t>(N * d));
  for (auto& v : x) v = nd(rng);
  std::vector<float> x2(x);
  for (auto& v : x2) v *= 2.f;
  auto encode = [&](const Sae& s, const std::vector<float>& in, std::vector<float>* pre) {
    SaeWorkspace ws(s.config(), N, be.device());
    s.encode(to_device(be, {N, d}, in.data()), ws);
    if (pre) *pre = to_host_f32(be, ws.pre.view().rows(0, N));
    return to_host_f32(be, ws.f.view().rows(0, N));
  };
  const std::vector<float> want = encode(sae, x2, nullptr);

  // Read back from this export and from the older layout ("standard" + saelab.hierarchy).
  json old = cfg;
  old["architecture"] = "standard";
  old.erase("n_parents");
  old.erase("children_per_parent");
  old["saelab"]["hierarchy"] = {{"n_parents", 6}, {"children_per_parent", 3}};
  const std::string old_dir = test::make_temp_dir("export") + "/old";
  fs::create_directories(old_dir);
  for (const char* f : {"sae_weights.safetensors", "sparsity.safetensors"}) fs::copy(dir + "/" + f, old_dir + "/" + f);
  test::write_text(old_dir + "/cfg.json", old.dump(2));
  for (const std::string& from : {dir, old_dir}) {
    SCOPED_TRACE(from);
    const Sae back = load_saelens(from, be);
    ASSERT_EQ(back.config().architecture, SaeArchitecture::Hierarchical);
    EXPECT_EQ(back.config().n_parents, P);
    EXPECT_EQ(back.config().children_per_parent, m);
    std::vector<float> pre;
    const std::vector<float> got = encode(back, x, &pre);
    EXPECT_EQ(got, want);
    int64_t gated = 0, orphans = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < P * m; ++j) {
        const bool parent_on = got[n * F + j / m] > 0.f;
        gated += !parent_on && pre[n * F + P + j] > 0.f;
        orphans += !parent_on && got[n * F + P + j] > 0.f;
      }
    EXPECT_GT(gated, 0) << "the inputs never exercise the gate";
    EXPECT_EQ(orphans, 0);
  }
}

TEST(Train, SameSeedIsBitIdentical) {
  const std::string dir = test::make_temp_dir("train");
  train_sae(small_config(dir + "/a"));
  train_sae(small_config(dir + "/b"));
  EXPECT_EQ(weights(dir + "/a"), weights(dir + "/b"));
  TrainConfig other = small_config(dir + "/c");
  other.seed = 7;
  train_sae(other);
  EXPECT_NE(weights(dir + "/a"), weights(dir + "/c"));
}

// A run killed (SIGKILL) after its first checkpoint resumes from it and ends with exactly the
// weights of an uninterrupted run.
TEST(Train, KilledRunResumesToIdenticalWeights) {
  const std::string dir = test::make_temp_dir("train");
  TrainConfig c = small_config(dir + "/whole");
  c.total_tokens = 400000;  // long enough to kill mid-way
  c.checkpoint_fractions = {0.2, 0.4, 0.6, 0.8, 1.0};
  train_sae(c);
  json j = train_config_to_json(c);
  j["out_dir"] = dir + "/killed";
  write_file_atomic(dir + "/cfg.json", j.dump());
  const std::string cmd = std::string(SAELAB_BIN) + " train --no-progress --config " + dir + "/cfg.json >" + dir +
                          "/log 2>&1 & echo $! > " + dir + "/pid";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const int pid = std::stoi(read_file(dir + "/pid"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (list_checkpoints(dir + "/killed/checkpoints").empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(list_checkpoints(dir + "/killed/checkpoints").empty()) << read_file(dir + "/log");
  ASSERT_FALSE(file_exists(dir + "/killed/training_summary.json")) << "the run finished before it was killed";
  TrainConfig resumed = c;
  resumed.out_dir = dir + "/killed";
  const TrainResult r = train_sae(resumed);
  EXPECT_TRUE(r.resumed);
  EXPECT_GT(r.resumed_from_step, 0);
  EXPECT_EQ(weights(dir + "/whole"), weights(dir + "/killed"));
  // The log has one row per logged step, no duplicates from the killed part.
  std::ifstream log(dir + "/killed/train_log.csv");
  std::string line;
  int64_t prev = 0, rows = 0;
  std::getline(log, line);
  while (std::getline(log, line)) {
    const int64_t s = std::stoll(line.substr(0, line.find(',')));
    EXPECT_GT(s, prev);
    prev = s;
    ++rows;
  }
  EXPECT_EQ(rows, (400000 / 256) / 10 + 1);
}

TEST(Train, TopkKeepsKActiveAndUnitNormDecoder) {
  const TrainConfig c = small_config(test::make_temp_dir("train") + "/run", "topk");
  const TrainResult r = train_sae(c);
  EXPECT_DOUBLE_EQ(r.summary["final_l0"].get<double>(), 8.0);
  EXPECT_GT(r.summary["final_explained_variance"].get<double>(), 0.6);
  SafetensorsFile ck(list_checkpoints(c.out_dir + "/checkpoints").back() + "/state.safetensors");
  const std::vector<float> W = ck.read_f32("W_dec", {256, 128});
  for (int i = 0; i < 256; ++i) {
    double ss = 0;
    for (int j = 0; j < 128; ++j) ss += double(W[i * 128 + j]) * W[i * 128 + j];
    EXPECT_NEAR(std::sqrt(ss), 1.0, 1e-5) << "row " << i;
  }
  EXPECT_EQ(read_saelens_cfg(c.out_dir + "/sae")["k"], 8);
}

// The thresholded architectures train end to end on real activations, export as SAELens' jumprelu
// with a threshold per latent, and reload as jumprelu encoding raw activations exactly as the
// trained SAE (from its last checkpoint) encodes scaled ones. batchtopk's threshold is one value,
// and inference with it keeps about k latents a token on the training data.
TEST(Train, ThresholdedArchitecturesTrainExportAndReload) {
  for (const std::string arch : {"batchtopk", "jumprelu", "matryoshka_batchtopk"}) {
    TrainConfig c = small_config(test::make_temp_dir("train") + "/" + arch, arch);
    if (arch == "matryoshka_batchtopk") c.matryoshka_widths = {32, 96, 256};
    c.l0_coefficient = 0.05f;
    const TrainResult r = train_sae(c);
    const json& sm = r.summary;
    EXPECT_GT(sm["final_explained_variance"].get<double>(), 0.5) << arch;
    if (arch != "jumprelu") {
      EXPECT_DOUBLE_EQ(sm["final_l0"].get<double>(), 8.0) << arch;
    }
    const json cfg = read_saelens_cfg(c.out_dir + "/sae");
    EXPECT_EQ(cfg["architecture"], "jumprelu") << arch;
    EXPECT_EQ(cfg["saelab"]["trained_architecture"], arch);
    Backend& be = cpu_backend();
    Sae exported = load_saelens(c.out_dir + "/sae", be);
    ASSERT_EQ(exported.config().architecture, SaeArchitecture::JumpReLU);
    const std::vector<float> th = to_host_f32(be, exported.params().threshold);
    EXPECT_GT(*std::min_element(th.begin(), th.end()), 0.f) << arch;
    if (arch != "jumprelu") {  // one global threshold
      EXPECT_EQ(*std::min_element(th.begin(), th.end()), *std::max_element(th.begin(), th.end()));
    }
    SaeConfig sc = exported.config();
    sc.architecture = sae_architecture_from_name(arch);
    sc.k = c.k;
    sc.matryoshka_widths = c.matryoshka_widths;
    Sae trained(sc, be);
    TrainState st;
    st.init(sc, be.device());
    load_checkpoint(list_checkpoints(c.out_dir + "/checkpoints").back(), trained, st);
    const ActivationManifest m = read_activation_manifest(c.activations);
    std::vector<float> x;
    read_activation_shard(m, 0, x);
    const int64_t N = 2000, d = 128;
    x.resize(N * d);
    const float s = static_cast<float>(cfg["saelab"]["act_scale_folded"].get<double>());
    std::vector<float> xs(x);
    for (auto& v : xs) v *= s;
    SaeWorkspace w1(exported.config(), N, be.device()), w2(sc, N, be.device());
    exported.encode(to_device(be, {N, d}, x.data()), w1);
    trained.encode(to_device(be, {N, d}, xs.data()), w2);
    const std::vector<float> f1 = to_host_f32(be, w1.f), f2 = to_host_f32(be, w2.f);
    EXPECT_LE(test::rel_error(f1, f2), 1e-5) << arch;
    int64_t fired_1 = 0, fired_2 = 0;
    for (size_t e = 0; e < f1.size(); ++e) fired_1 += f1[e] > 0, fired_2 += f2[e] > 0;
    EXPECT_EQ(fired_1, fired_2) << arch << ": the same latents fire";
    if (arch == "batchtopk") {
      EXPECT_NEAR(static_cast<double>(fired_2) / N, 8.0, 2.0) << "inference L0 with θ";
    }
  }
}

// Resuming a thresholded run from a checkpoint ends with exactly the weights, thresholds included,
// of the uninterrupted run: the thresholds live in the parameters the checkpoint stores.
TEST(Train, ThresholdedRunsResumeExactly) {
  for (const std::string arch : {"batchtopk", "jumprelu"}) {
    const std::string dir = test::make_temp_dir("train");
    TrainConfig c = small_config(dir + "/whole", arch);
    c.checkpoint_fractions = {0.5, 1.0};
    train_sae(c);
    fs::copy(dir + "/whole", dir + "/part", fs::copy_options::recursive);
    ASSERT_EQ(test::rewind_to_penultimate_checkpoint(dir + "/part"), 2u);
    TrainConfig resumed = c;
    resumed.out_dir = dir + "/part";
    const TrainResult r = train_sae(resumed);
    EXPECT_TRUE(r.resumed) << arch;
    EXPECT_EQ(weights(dir + "/whole"), weights(dir + "/part")) << arch;
  }
}

// decode = "auto" starts a standard run dense and switches to the sparse step once its running L0
// falls to the backend's sparse_step_max_l0_fraction() of F; a run resumed from its middle
// checkpoint replays the same choices (the running L0 is checkpointed) and ends with exactly the
// same weights. The hierarchical SAE (whose children keep L0 above that here) trains on the sparse
// step throughout (decode = "sparse"), straight-through gate included, and resumes exactly too.
TEST(Train, AutoDecodeSwitchesToSparseAndResumesExactly) {
  using Run = std::pair<std::string, std::string>;  // architecture, decode
  for (const auto& [arch, decode] : {Run{"standard", "auto"}, Run{"hierarchical", "sparse"}}) {
    const std::string dir = test::make_temp_dir("train");
    TrainConfig c = small_config(dir + "/whole", arch);
    c.checkpoint_fractions = {0.5, 1.0};
    c.l1_coefficient = 10.f;  // with F = 512: L0 below 5% of F well inside the run
    c.d_sae = 512;
    c.decode = decode;
    const TrainResult whole = train_sae(c);
    const double l0 = whole.summary.at("final_l0"), F = whole.summary.at("d_sae");
    if (decode == "auto") {
      EXPECT_LT(l0, backend_named(c.device).sparse_step_max_l0_fraction() * F)
          << arch << ": the run never reached the sparse step";
    }
    fs::copy(dir + "/whole", dir + "/part", fs::copy_options::recursive);
    ASSERT_EQ(test::rewind_to_penultimate_checkpoint(dir + "/part"), 2u);
    TrainConfig resumed = c;
    resumed.out_dir = dir + "/part";
    const TrainResult r = train_sae(resumed);
    EXPECT_TRUE(r.resumed) << arch;
    EXPECT_EQ(weights(dir + "/whole"), weights(dir + "/part")) << arch;
  }
}

TEST(Train, CheckpointsAtTheConfiguredFractions) {
  TrainConfig c = small_config(test::make_temp_dir("train") + "/run");
  train_sae(c);
  std::vector<int64_t> steps;
  for (const auto& ck : list_checkpoints(c.out_dir + "/checkpoints")) steps.push_back(read_checkpoint_meta(ck)["step"]);
  EXPECT_EQ(steps, (std::vector<int64_t>{23, 59, 117, 176, 234}));  // 10/25/50/75/100% of 234 steps
}

TEST(Train, ResamplingRevivesDeadLatents) {
  TrainConfig c = small_config(test::make_temp_dir("train") + "/run");
  c.l1_coefficient = 20.f;  // strong sparsity kills latents
  c.dead_window_tokens = 2560;
  train_sae(c);
  TrainConfig r = c;
  r.out_dir += "_resampled";
  r.resample_every_steps = 20;
  r.resample_until_fraction = 0.9f;
  train_sae(r);
  const double dead_plain = json::parse(read_file(c.out_dir + "/training_summary.json"))["dead_fraction"];
  const double dead_resampled = json::parse(read_file(r.out_dir + "/training_summary.json"))["dead_fraction"];
  EXPECT_GT(dead_plain, 0.05);
  EXPECT_LT(dead_resampled, dead_plain);
}

TEST(TrainConfig, TomlAndJsonAgreeAndUnknownKeysAreNamed) {
  const std::string dir = test::make_temp_dir("cfg");
  test::write_text(dir + "/a.toml", "[data]\nactivations = \"x\"\n[sae]\narchitecture = \"topk\"\nk = 12\n"
                                    "[train]\nlr = 0.002\ncheckpoint_fractions = [0.5, 1.0]\n");
  test::write_text(dir + "/a.json", R"({"activations": "x", "architecture": "topk", "k": 12, "lr": 0.002,
                                        "checkpoint_fractions": [0.5, 1.0]})");
  EXPECT_EQ(train_config_to_json(load_train_config(dir + "/a.toml")), train_config_to_json(load_train_config(dir + "/a.json")));
  test::write_text(dir + "/bad.toml", "learning_rate = 0.1\n");
  const std::string unknown = test::error_of([&] { load_train_config(dir + "/bad.toml"); });
  EXPECT_NE(unknown.find("unknown setting 'learning_rate'"), std::string::npos) << unknown;
  test::write_text(dir + "/bad2.toml", "architecture = \"gated\"\n");
  EXPECT_THROW(load_train_config(dir + "/bad2.toml"), Error);
  test::write_text(dir + "/bad3.toml", "lr = [\n");
  EXPECT_THROW(load_train_config(dir + "/bad3.toml"), Error);
  // α per level: one entry per level of the architecture, each in [0, 1].
  test::write_text(dir + "/levels.toml", "architecture = \"hierarchical\"\nalpha_per_level = [0.25, 1.0, 0.5]\n");
  const std::string levels = test::error_of([&] { load_train_config(dir + "/levels.toml"); });
  EXPECT_NE(levels.find("needs 2 entries (parents, children), got 3"), std::string::npos) << levels;
  test::write_text(dir + "/levels2.toml", "alpha_per_level = [0.25, 0.5]\n");
  EXPECT_THROW(load_train_config(dir + "/levels2.toml"), Error);  // standard: one level
  test::write_text(dir + "/levels3.toml", "architecture = \"hierarchical\"\nalpha_per_level = [0.25, 1.5]\n");
  EXPECT_THROW(load_train_config(dir + "/levels3.toml"), Error);
  // The sparse step is for every architecture but jumprelu (a case of the error table below).
  test::write_text(dir + "/decode.toml", "architecture = \"hierarchical\"\ndecode = \"sparse\"\n");
  EXPECT_EQ(load_train_config(dir + "/decode.toml").decode, "sparse");
  test::write_text(dir + "/decode2.toml", "architecture = \"topk\"\ndecode = \"sparse\"\n");
  EXPECT_EQ(load_train_config(dir + "/decode2.toml").decode, "sparse");
  // A Matryoshka config expresses its prefixes as a list of integers, in TOML and JSON alike.
  test::write_text(dir + "/m.toml", "architecture = \"matryoshka_batchtopk\"\nd_sae = 64\nk = 4\n"
                                    "matryoshka_widths = [8, 32, 64]\n");
  test::write_text(dir + "/m.json", R"({"architecture": "matryoshka_batchtopk", "d_sae": 64, "k": 4,
                                        "matryoshka_widths": [8, 32, 64]})");
  EXPECT_EQ(load_train_config(dir + "/m.toml").matryoshka_widths, (std::vector<int>{8, 32, 64}));
  EXPECT_EQ(train_config_to_json(load_train_config(dir + "/m.toml")), train_config_to_json(load_train_config(dir + "/m.json")));
}

// The thresholded architectures' bad settings, each one error at load time naming the key, what
// was expected and what was found.
TEST(BadInput, ThresholdedArchitectureSettings) {
  struct Case { const char* text; std::vector<std::string> says; };
  const Case cases[] = {
      {"architecture = \"batchtopk\"\nd_sae = 64\nk = 65\n", {"k must be at most d_sae = 64", "found k = 65"}},
      {"architecture = \"topk\"\nd_sae = 64\nk = 100\n", {"k must be at most d_sae = 64", "found k = 100"}},
      {"architecture = \"batchtopk\"\nk = 0\n", {"k must be positive", "found 0"}},
      {"architecture = \"jumprelu\"\njumprelu_init_threshold = 0.0\n", {"jumprelu_init_threshold must be positive", "found 0"}},
      {"architecture = \"jumprelu\"\njumprelu_init_threshold = -0.5\n", {"jumprelu_init_threshold must be positive", "found -0.5"}},
      {"architecture = \"jumprelu\"\njumprelu_bandwidth = 0.0\n", {"jumprelu_bandwidth must be positive"}},
      {"architecture = \"jumprelu\"\ndecode = \"sparse\"\n", {"decode = \"sparse\" cannot train a jumprelu SAE"}},
      {"architecture = \"matryoshka_batchtopk\"\nd_sae = 64\nmatryoshka_widths = [8, 32]\n",
       {"matryoshka_widths must end at d_sae = 64", "found [8, 32]"}},
      {"architecture = \"matryoshka_batchtopk\"\nd_sae = 64\nmatryoshka_widths = [32, 8, 64]\n",
       {"matryoshka_widths must be positive and strictly increasing", "found [32, 8, 64]"}},
      {"architecture = \"batchtopk\"\nmatryoshka_widths = [8, 64]\n", {"matryoshka_widths is a setting of"}},
      {"architecture = \"batchtopk\"\ntopk_threshold_lr = 0.0\n", {"topk_threshold_lr must be in (0, 1]"}},
      {"architecture = \"jumprelu\"\npenalty = \"dual_adaptive\"\n", {"needs an L1-penalised SAE", "not jumprelu"}},
  };
  const std::string dir = test::make_temp_dir("cfg");
  for (const Case& cs : cases) {
    test::write_text(dir + "/c.toml", cs.text);
    const std::string m = test::error_of([&] { load_train_config(dir + "/c.toml"); });
    for (const std::string& part : cs.says) EXPECT_NE(m.find(part), std::string::npos) << cs.text << " -> " << m;
  }
  // No widths: the hierarchical SAE's split, [n_parents, d_sae].
  test::write_text(dir + "/c.toml", "architecture = \"matryoshka_batchtopk\"\nd_sae = 64\n");
  TrainConfig two_level = load_train_config(dir + "/c.toml");
  EXPECT_EQ(resolved_matryoshka_widths(two_level, 4608), (std::vector<int>{921, 4608}));  // m = 4: 4608 / 5
  two_level.n_parents = 100;
  EXPECT_EQ(resolved_matryoshka_widths(two_level, 4608), (std::vector<int>{100, 4608}));
  two_level.matryoshka_widths = {8, 64};
  EXPECT_EQ(resolved_matryoshka_widths(two_level, 64), (std::vector<int>{8, 64}));
  // d_sae from expansion_factor · d_in is known once the activations are read: checked then, before training.
  TrainConfig c = small_config(test::make_temp_dir("train") + "/run", "matryoshka_batchtopk");
  c.d_sae = 0;
  c.expansion_factor = 2;  // d_in 128: F = 256
  c.matryoshka_widths = {32, 128};
  std::string m = test::error_of([&] { train_sae(c); });
  EXPECT_NE(m.find("matryoshka_widths must end at d_sae = 256"), std::string::npos) << m;
  EXPECT_FALSE(file_exists(c.out_dir + "/config.json")) << "refused before the run directory is written";
  c.matryoshka_widths = {32, 256};
  c.k = 300;
  m = test::error_of([&] { train_sae(c); });
  EXPECT_NE(m.find("k must be at most d_sae = 256"), std::string::npos) << m;
}

TEST(ActivationLoader, SkipReplaysTheSameBatchesAndScaleApplies) {
  const ActivationManifest m = read_activation_manifest(activations());
  ActivationLoader a(m, 5000, 3, 2.0f), b(m, 5000, 3, 2.0f), c(m, 5000, 3, 1.0f);
  std::vector<float> xa(100 * 128), xb(100 * 128), xc(100 * 128);
  for (int i = 0; i < 37; ++i) a.next(100, xa.data());
  b.skip(37, 100);
  c.skip(37, 100);
  a.next(100, xa.data());
  b.next(100, xb.data());
  c.next(100, xc.data());
  EXPECT_EQ(xa, xb);
  for (size_t i = 0; i < xa.size(); ++i) ASSERT_EQ(xa[i], 2.0f * xc[i]);
}

TEST(ActivationLoader, GeometricMedianResistsOutliers) {
  std::vector<float> rows;
  for (int i = 0; i < 50; ++i) rows.insert(rows.end(), {1.0f + 0.01f * (i % 5), 2.0f});
  rows.insert(rows.end(), {1000.f, -1000.f});
  const auto gm = geometric_median(rows, 51, 2);
  EXPECT_NEAR(gm[0], 1.02, 0.05);
  EXPECT_NEAR(gm[1], 2.0, 0.05);
}

// FuzzRegression: inputs the fuzz targets found; BadInput: defects found while writing them (fuzz/,
// docs/reliability.md "Bad inputs found by fuzzing"). Each must be a saelab::Error naming the file.
namespace {
std::string config_error(const std::string& name, const std::string& text, bool experiment = false) {
  const std::string path = test::make_temp_dir("cfg") + "/" + name;
  test::write_text(path, text);
  try {
    if (experiment) load_experiment_config(path, test::shared_root());
    else load_train_config(path);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(name), std::string::npos) << m;
    return m;
  }
  return "<no error>";
}
}  // namespace

TEST(FuzzRegression, TomlNonAsciiWhereTomlppHitsUndefinedBehaviour) {
  // toml++ 3.3 reached __builtin_unreachable classifying these characters (fuzz_train_config_toml:
  // the value `1é`; the bare key `α` is what a user of this project might well write).
  EXPECT_NE(config_error("key.toml", "α = 0.5\n").find("line 1 has a non-ASCII character outside a string"),
            std::string::npos);
  EXPECT_NE(config_error("value.toml", "lr = 0.1\nk = 1é\n").find("line 2 has a non-ASCII"), std::string::npos);
  // Upstream issue #190: a non-ASCII character after a line-ending backslash in a multi-line
  // string. Strings and comments may hold any text: it reaches the parser escaped.
  EXPECT_EQ(config_error("ok.toml", "# α, β\nactivations = \"\"\"\\\n§ ü\"\"\"\nout_dir = 'é\\x'\n"
                                    "architecture = '''\nstandard'''  # ☃\n"),
            "<no error>");
  const std::string dir = test::make_temp_dir("cfg");
  test::write_text(dir + "/ok.toml", "activations = \"\"\"\\\n§ ü\"\"\"\nout_dir = 'é\\x\"'\n");
  const TrainConfig c = load_train_config(dir + "/ok.toml");
  EXPECT_EQ(c.activations, "§ ü");
  EXPECT_EQ(c.out_dir, "é\\x\"");
  EXPECT_NE(config_error("bad_utf8.toml", "a = \"\xff\"\n").find("not valid UTF-8"), std::string::npos);
}

TEST(FuzzRegression, ExperimentCountThatIsAHugeFloat) {
  // fuzz_train_config_json: "tokens": 1.8e26 converted to int64 (undefined behaviour).
  const std::string m = config_error("exp.json", R"({"experiment": {"tokens": 184467440737095516161000000}})", true);
  EXPECT_NE(m.find("[experiment] tokens: expected an integer"), std::string::npos) << m;
}

TEST(BadInput, TrainSettingsOutOfTheirTypesRange) {
  // Each converted silently or with undefined behaviour: a float into an int, 2^40 into an int,
  // a negative seed into uint64, and a TOML nan that passes every `<= 0` check.
  EXPECT_NE(config_error("a.json", R"({"batch_size": 1e300})").find("batch_size: expected an integer"), std::string::npos);
  EXPECT_NE(config_error("b.json", R"({"k": 1099511627776})").find("k: expected an integer"), std::string::npos);
  EXPECT_NE(config_error("c.json", R"({"seed": -1})").find("seed: expected an integer in [0,"), std::string::npos);
  EXPECT_NE(config_error("d.toml", "lr = nan\n").find("lr: expected a finite number"), std::string::npos);
  EXPECT_NE(config_error("e.json", R"({"checkpoint_fractions": [0.5, "x"]})").find("checkpoint_fractions"), std::string::npos);
  EXPECT_NE(config_error("f.json", "[1, 2]").find("expected a table of settings, found array"), std::string::npos);
  // Integral floats, as JSON writers produce them, still read.
  EXPECT_EQ(config_error("g.json", R"({"batch_size": 1024.0, "total_tokens": 1e6})"), "<no error>");
}
