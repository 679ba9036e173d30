// Streamed training (`saelab train --model`): the LM fills the mixing buffer as training goes. The
// stream holds exactly the rows of a harvest, trains to exactly the weights of a run on that harvest
// when rows arrive in the same order, resumes exactly, and refuses bad settings at the start.
#include <gtest/gtest.h>

#include <filesystem>

#include "saelab/activation_loader.hpp"
#include "saelab/activation_stream.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/backend.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"

using namespace saelab;
namespace fs = std::filesystem;

namespace {

std::string model_path() { return test::shared_root() + "/models/tinystories-656k"; }
std::string corpus_file() { return test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"; }
constexpr const char* kHook = "blocks.1.hook_resid_pre";
constexpr int kContext = 64, kLmBatch = 8;

// An f32 harvest of the stream's first `tokens` rows, with the stream's context and batch sizes.
std::string harvest_dir(const std::string& out, int64_t tokens) {
  HarvestConfig c;
  c.model_path = model_path();
  c.corpus = {corpus_file()};
  c.hook_name = kHook;
  c.out_dir = out;
  c.context_size = kContext;
  c.batch_size = kLmBatch;
  c.max_tokens = tokens;
  c.shard_tokens = 1500;  // several shards, none aligned with the LM's batches
  c.progress = false;
  harvest(c);
  return out;
}

TrainConfig small_config(const std::string& out) {
  TrainConfig c;
  c.out_dir = out;
  c.d_sae = 256;
  c.batch_size = 256;
  c.lr = 1e-3f;
  c.l1_coefficient = 2.f;
  c.dead_window_tokens = 5000;
  c.progress = false;
  return c;
}

TrainConfig streamed(TrainConfig c) {
  c.model = model_path();
  c.corpus = {corpus_file()};
  c.hook = kHook;
  c.context_size = kContext;
  c.lm_batch_size = kLmBatch;
  return c;
}

std::string weights(const std::string& run) { return test::exported_sae_weights(run); }

}  // namespace

// The stream's rows, chunk after chunk, are the harvest's rows in shard order, bit for bit.
TEST(ActivationStream, RowsEqualTheHarvestedRows) {
  const std::string dir = harvest_dir(test::make_temp_dir("stream") + "/acts", 3000);
  const ActivationManifest m = read_activation_manifest(dir);
  std::vector<float> harvested, shard;
  for (size_t i = 0; i < m.shards.size(); ++i) {
    read_activation_shard(m, i, shard);
    harvested.insert(harvested.end(), shard.begin(), shard.end());
  }
  std::shared_ptr<const LanguageModel> model = load_model(model_path(), backend_named("cpu"));
  LmRowSource src(model, {{corpus_file()}, kHook, kContext, kLmBatch, true});
  std::vector<float> streamed, chunk;
  while (streamed.size() < harvested.size()) {
    src.next_chunk(chunk);
    streamed.insert(streamed.end(), chunk.begin(), chunk.end());
  }
  streamed.resize(harvested.size());
  EXPECT_EQ(src.d(), m.d_in);
  EXPECT_TRUE(streamed == harvested);
}

// The done-when: with the rows in the same order (no shuffle), training straight from the LM
// and training on the harvest of the same token stream give the same weights bit for bit. act_scale
// and b_dec (geometric median) come from the same rows on both paths.
TEST(StreamedTraining, MatchesTrainingOnItsHarvestBitForBit) {
  const std::string tmp = test::make_temp_dir("stream");
  const int64_t tokens = 256 * 40;
  TrainConfig cached = small_config(tmp + "/cached");
  cached.activations = harvest_dir(tmp + "/acts", tokens);
  cached.total_tokens = tokens;
  cached.buffer_tokens = tokens;  // the statistics' prefix is every row on both paths
  cached.shuffle = false;
  TrainConfig stream = streamed(cached);
  stream.activations.clear();
  stream.out_dir = tmp + "/stream";
  const TrainResult a = train_sae(cached), b = train_sae(stream);
  EXPECT_EQ(a.summary["act_scale"], b.summary["act_scale"]);
  EXPECT_EQ(a.summary["final_loss"], b.summary["final_loss"]);
  EXPECT_TRUE(weights(tmp + "/cached") == weights(tmp + "/stream"));
  // and the rows matter: a run over other rows (another hook) ends elsewhere
  TrainConfig other = stream;
  other.hook = "blocks.0.hook_resid_pre";  // (blocks.0.hook_resid_post is blocks.1.hook_resid_pre itself)
  other.out_dir = tmp + "/other";
  train_sae(other);
  EXPECT_FALSE(weights(tmp + "/other") == weights(tmp + "/stream"));
}

// A streamed run stopped after a checkpoint resumes to exactly the uninterrupted run's weights: the
// corpus position and the shuffled buffer are rebuilt by replaying the stream up to that step.
TEST(StreamedTraining, ResumedRunIsBitIdentical) {
  const std::string tmp = test::make_temp_dir("stream");
  TrainConfig c = streamed(small_config(tmp + "/whole"));
  c.total_tokens = 256 * 60;
  c.buffer_tokens = 2048;  // refilled (and reshuffled) many times before the checkpoint
  c.checkpoint_fractions = {0.4, 1.0};
  train_sae(c);
  // The state a kill after the first checkpoint leaves: that checkpoint, nothing after it.
  fs::copy(tmp + "/whole", tmp + "/part", fs::copy_options::recursive);
  ASSERT_EQ(test::rewind_to_penultimate_checkpoint(tmp + "/part"), 2u);
  TrainConfig resumed = c;
  resumed.out_dir = tmp + "/part";
  const TrainResult r = train_sae(resumed);
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.resumed_from_step, 24);
  EXPECT_TRUE(weights(tmp + "/whole") == weights(tmp + "/part"));
}

// Bad settings are one clear error before anything is written.
TEST(BadInput, StreamedTrainingSettings) {
  const std::string tmp = test::make_temp_dir("stream");
  const auto error = [&](TrainConfig c) {
    c.out_dir = tmp + "/run";
    const std::string e = test::error_of([&] { train_sae(c); });
    EXPECT_FALSE(fs::exists(c.out_dir)) << e;
    return e;
  };
  TrainConfig c = streamed(small_config(""));
  c.total_tokens = 256 * 10;
  TrainConfig no_hook = c;
  no_hook.hook = "blocks.7.hook_resid_post";
  EXPECT_NE(error(no_hook).find("hook 'blocks.7.hook_resid_post' is not in model"), std::string::npos)
      << error(no_hook);
  TrainConfig small_buffer = c;
  small_buffer.buffer_tokens = 100;
  EXPECT_NE(error(small_buffer).find("buffer_tokens = 100 is smaller than one batch (batch_size = 256)"),
            std::string::npos) << error(small_buffer);
  TrainConfig no_length = c;
  no_length.total_tokens = 0;
  EXPECT_NE(error(no_length).find("needs total_tokens > 0"), std::string::npos) << error(no_length);
  TrainConfig both = c;
  both.activations = tmp;
  EXPECT_NE(error(both).find("not both"), std::string::npos) << error(both);
  TrainConfig neither = small_config("");
  EXPECT_NE(error(neither).find("no activations given"), std::string::npos) << error(neither);
}

// Skipping batches of a fresh buffer over the LM (a resume) leaves exactly the state that serving
// them leaves, while forwarding only the chunks whose rows the buffer still holds.
TEST(ActivationStream, SkipRecomputesOnlyTheHeldRows) {
  std::shared_ptr<const LanguageModel> model = load_model(model_path(), backend_named("cpu"));
  const StreamSettings s{{corpus_file()}, kHook, kContext, kLmBatch, true};
  for (const bool shuffle : {true, false}) {
    auto a_src = std::make_unique<LmRowSource>(model, s), b_src = std::make_unique<LmRowSource>(model, s);
    LmRowSource* b_raw = b_src.get();
    MixingBuffer a(std::move(a_src), 600, 5, 0.5f, shuffle), b(std::move(b_src), 600, 5, 0.5f, shuffle);
    const int64_t N = 100, skipped = 120;  // 40 refills; the oldest held rows are ~10 refills old
    std::vector<float> x(static_cast<size_t>(N * a.d())), y(x.size());
    for (int64_t i = 0; i < skipped; ++i) a.next(N, x.data());
    b.skip(skipped, N);
    EXPECT_LT(b_raw->forwarded(), b_raw->contexts()) << "skip forwarded every chunk again";
    for (int i = 0; i < 30; ++i) {
      a.next(N, x.data());
      b.next(N, y.data());
      ASSERT_TRUE(x == y) << "batch " << i << " after the skip, shuffle " << shuffle;
    }
  }
}
