// Several SAEs in one pass over streamed activations (train_saes, `saelab train --config A --config
// B`): each ends bit-identical to itself trained alone, a killed pass resumes exactly, and runs that
// cannot share a pass are refused by the key they differ in. Also the LM stream's data-parallel
// parts: part g of G forwards contexts g, g + G, ... (the MPI job itself: test_data_parallel).
#include <gtest/gtest.h>

#include <filesystem>

#include "saelab/activation_stream.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/backend.hpp"
#include "saelab/lm.hpp"
#include "saelab/synthetic.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"

using namespace saelab;
namespace fs = std::filesystem;

namespace {

std::string model_path() { return test::shared_root() + "/models/tinystories-656k"; }
std::string corpus_file() { return test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"; }
constexpr const char* kHook = "blocks.1.hook_resid_pre";
constexpr int kContext = 64, kLmBatch = 8;

// The settings every run of the pass shares (kPassKeys): 40 steps of 256 rows, buffer refilled and
// reshuffled many times.
std::string shared_toml() {
  return "model = \"" + model_path() + "\"\ncorpus = [\"" + corpus_file() + "\"]\nhook = \"" + kHook +
         "\"\ncontext_size = " + std::to_string(kContext) + "\nlm_batch_size = " + std::to_string(kLmBatch) +
         "\nbatch_size = 256\ntotal_tokens = 10240\nbuffer_tokens = 2048\nseed = 7\n";
}

// Two SAEs that differ in everything a pass allows: architecture, width, rates, normalisation (so
// act_scale differs too) and checkpoints.
std::vector<std::string> write_configs(const std::string& dir) {
  test::write_text(dir + "/vanilla.toml", shared_toml() + "d_sae = 256\nlr = 1e-3\nl1_coefficient = 2.0\n"
                                                          "dead_window_tokens = 5000\ncheckpoint_fractions = [0.4, 1.0]\n");
  test::write_text(dir + "/topk.toml", shared_toml() + "architecture = \"topk\"\nd_sae = 128\nk = 12\nlr = 2e-3\n"
                                                       "normalize_activations = \"none\"\nb_dec_init = \"mean\"\n"
                                                       "checkpoint_fractions = [0.25, 0.75, 1.0]\n");
  return {dir + "/vanilla.toml", dir + "/topk.toml"};
}

TrainConfig load(const std::string& path, const std::string& out, int parts = 0) {
  TrainConfig c = load_train_config(path);
  c.out_dir = out;
  c.grad_partitions = parts;
  c.progress = false;
  return c;
}

std::string weights(const std::string& run) { return test::exported_sae_weights(run); }

}  // namespace

// The CLI trains both configs in one pass into <out>/<stem>; each SAE equals itself trained alone.
TEST(TrainingPass, EachSaeEndsAsItWouldAlone) {
  const std::string tmp = test::make_temp_dir("pass");
  const std::vector<std::string> cfgs = write_configs(tmp);
  const auto r = test::run_cli("train --no-progress --config " + cfgs[0] + " --config " + cfgs[1] + " --out " + tmp +
                               "/pass");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string name : {"vanilla", "topk"}) {
    SCOPED_TRACE(name);
    const TrainResult alone = train_sae(load(tmp + "/" + name + ".toml", tmp + "/alone_" + name));
    EXPECT_FALSE(alone.already_complete);
    ASSERT_TRUE(fs::exists(tmp + "/pass/" + name + "/sae/sae_weights.safetensors")) << r.out;
    EXPECT_TRUE(weights(tmp + "/pass/" + name) == weights(tmp + "/alone_" + name));
  }
  EXPECT_FALSE(weights(tmp + "/pass/vanilla") == weights(tmp + "/pass/topk"));
}

// A pass killed after some checkpoints (each run has its own fractions, so they stand at different
// steps) resumes each run from its own checkpoint and ends bit-identical to the uninterrupted pass:
// with one data-parallel part and with two in one process (the parts' strided streams replayed).
TEST(TrainingPass, ResumedPassIsBitIdentical) {
  const std::string tmp = test::make_temp_dir("pass");
  const std::vector<std::string> files = write_configs(tmp);
  for (const int parts : {1, 2}) {
    SCOPED_TRACE(parts);
    const std::string whole = tmp + "/whole" + std::to_string(parts), part = tmp + "/part" + std::to_string(parts);
    train_saes({load(files[0], whole + "/a", parts), load(files[1], whole + "/b", parts)});
    // What a kill at step 30 of 40 leaves: a's checkpoint at 16 (0.4), b's at 10 and 30 (0.25, 0.75).
    fs::copy(whole, part, fs::copy_options::recursive);
    for (const std::string run : {"/a", "/b"}) test::rewind_to_penultimate_checkpoint(part + run);  // step_40 goes
    const std::vector<TrainResult> r = train_saes({load(files[0], part + "/a", parts), load(files[1], part + "/b", parts)});
    EXPECT_EQ(r[0].resumed_from_step, 16);
    EXPECT_EQ(r[1].resumed_from_step, 30);
    EXPECT_TRUE(weights(whole + "/a") == weights(part + "/a"));
    EXPECT_TRUE(weights(whole + "/b") == weights(part + "/b"));
  }
  EXPECT_FALSE(weights(tmp + "/whole1/a") == weights(tmp + "/whole2/a")) << "two parts read other batches";
}

// A pass over a harvested directory (two epochs of shuffled shards) works the same way: each SAE
// as it ends alone, here with a hierarchical learned-α run beside a batchtopk one.
TEST(TrainingPass, CachedActivationsShareAPassToo) {
  const std::string tmp = test::make_temp_dir("pass");
  SyntheticConfig sc;
  sc.d = 16;
  sc.n_features = 8;
  sc.children_per_parent = 2;
  sc.n_tokens = 6000;
  sc.shard_tokens = 1000;
  write_synthetic(sc, tmp + "/acts");
  TrainConfig a;
  a.activations = tmp + "/acts";
  a.batch_size = 128;
  a.total_tokens = 7680;  // 60 steps: into the second epoch
  a.buffer_tokens = 1500;
  a.progress = false;
  a.architecture = "hierarchical";
  a.d_sae = 40;
  a.children_per_parent = 3;
  a.penalty = "dual_adaptive";
  a.alpha_mode = "learned";
  TrainConfig b = a;
  b.architecture = "batchtopk";
  b.penalty = "l1";
  b.alpha_mode = "fixed";
  b.k = 4;
  a.out_dir = tmp + "/pass/a";
  b.out_dir = tmp + "/pass/b";
  train_saes({a, b});
  for (TrainConfig c : {a, b}) {
    const std::string pass = c.out_dir;
    c.out_dir = tmp + "/alone_" + fs::path(pass).filename().string();
    train_sae(c);
    EXPECT_TRUE(weights(pass) == weights(c.out_dir)) << pass;
  }
}

// Runs that would read other rows cannot share a pass: one error naming the key, nothing written.
TEST(BadInput, TrainingPassThatCannotBeShared) {
  const std::string tmp = test::make_temp_dir("pass");
  const std::vector<std::string> files = write_configs(tmp);
  const auto refused = [&](TrainConfig b) {
    const TrainConfig a = load(files[0], tmp + "/a");
    const std::string e = test::error_of([&] { train_saes({a, b}); });
    EXPECT_FALSE(fs::exists(tmp + "/a")) << e;
    return e;
  };
  TrainConfig seed = load(files[1], tmp + "/b");
  seed.seed = 8;
  EXPECT_NE(refused(seed).find("must agree on 'seed': it is 7 for"), std::string::npos) << refused(seed);
  TrainConfig batch = load(files[1], tmp + "/b");
  batch.batch_size = 512;
  EXPECT_NE(refused(batch).find("'batch_size'"), std::string::npos) << refused(batch);
  TrainConfig hook = load(files[1], tmp + "/b");
  hook.hook = "blocks.0.hook_resid_pre";
  EXPECT_NE(refused(hook).find("'hook'"), std::string::npos) << refused(hook);
  const TrainConfig same_dir = load(files[1], tmp + "/a");
  EXPECT_NE(refused(same_dir).find("both write to"), std::string::npos) << refused(same_dir);
}

// Part g of G forwards the stream's contexts g, g + G, ...: with one context a forward, the parts'
// chunks are the unsplit stream's chunks dealt out in turn, bit for bit.
TEST(ActivationStream, PartsDealOutTheContexts) {
  std::shared_ptr<const LanguageModel> model = load_model(model_path(), backend_named("cpu"));
  StreamSettings s{{corpus_file()}, kHook, kContext, 1, true};
  LmRowSource whole(model, s);
  s.parts = 3;
  std::vector<std::unique_ptr<LmRowSource>> parts;
  for (s.part = 0; s.part < 3; ++s.part) parts.push_back(std::make_unique<LmRowSource>(model, s));
  std::vector<float> a, b;
  for (int i = 0; i < 12; ++i) {
    whole.next_chunk(a);
    parts[i % 3]->next_chunk(b);
    ASSERT_TRUE(a == b) << "context " << i;
  }
  EXPECT_EQ(parts[1]->forwarded(), 4);
  // A corpus with fewer contexts than parts is refused by name.
  const std::string tiny = test::make_temp_dir("pass") + "/tiny.txt";
  test::write_text(tiny, read_file(corpus_file()).substr(0, 2000));
  StreamSettings t{{tiny}, kHook, kContext, 1, true, 0, 1000};
  const std::string e = test::error_of([&] { LmRowSource src(model, t); });
  EXPECT_NE(e.find("1000 data-parallel parts need at least one each"), std::string::npos) << e;
}
