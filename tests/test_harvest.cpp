#include <gtest/gtest.h>

#include <filesystem>

#include "saelab/activation_store.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"
#include "test_util.hpp"

using namespace saelab;
namespace fs = std::filesystem;

namespace {

HarvestConfig small_config(const std::string& out) {
  HarvestConfig c;
  c.model_path = test::shared_root() + "/models/tinystories-656k";
  c.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
  c.hook_name = "blocks.1.hook_resid_pre";
  c.out_dir = out;
  c.context_size = 32;
  c.batch_size = 5;
  c.max_tokens = 3000;
  c.shard_tokens = 700;
  c.progress = false;
  return c;
}

// All stored activations and tokens, concatenated over shards.
void read_all(const std::string& dir, std::vector<float>& acts, std::vector<int32_t>& toks) {
  const ActivationManifest m = read_activation_manifest(dir);
  acts.clear();
  toks.clear();
  for (size_t i = 0; i < m.shards.size(); ++i) {
    std::vector<float> a;
    std::vector<int32_t> t;
    read_activation_shard(m, i, a, &t);
    acts.insert(acts.end(), a.begin(), a.end());
    toks.insert(toks.end(), t.begin(), t.end());
  }
}

}  // namespace

// Harvested shards hold exactly what a direct forward of the same contexts gives at the hook.
TEST(Harvest, ShardsMatchADirectForward) {
  const HarvestConfig c = small_config(test::make_temp_dir("harvest") + "/acts");
  auto model = load_model(c.model_path, cpu_backend());
  const HarvestResult r = harvest(c, model.get());
  EXPECT_EQ(r.n_tokens, 3000);
  const ActivationManifest m = read_activation_manifest(c.out_dir);
  EXPECT_TRUE(m.complete);
  EXPECT_EQ(m.d_in, 128);
  EXPECT_EQ(m.hook_name, c.hook_name);
  EXPECT_GT(m.shards.size(), 3u);
  for (const auto& s : m.shards) EXPECT_GE(s.n_tokens, 1);

  std::vector<float> acts;
  std::vector<int32_t> toks;
  read_all(c.out_dir, acts, toks);
  ASSERT_EQ(acts.size(), 3000u * 128u);

  CorpusReader reader(expand_corpus_paths(c.corpus));
  ContextStream stream(reader, model->tokenizer(), c.context_size);
  std::vector<float> want;
  std::vector<int32_t> want_toks, ctx;
  Hooks hooks;
  std::vector<float> got;
  hooks.observe(c.hook_name, [&](TensorView a) { got = to_host_f32(cpu_backend(), a); });
  while (static_cast<int64_t>(want_toks.size()) < 3000 && stream.next(ctx)) {
    model->forward(ctx, 1, c.context_size, &hooks, false);
    for (int t = 0; t < c.context_size && want_toks.size() < 3000; ++t) {
      if (model->tokenizer().is_special(ctx[t])) continue;
      want_toks.push_back(ctx[t]);
      want.insert(want.end(), got.begin() + t * 128, got.begin() + (t + 1) * 128);
    }
  }
  EXPECT_EQ(toks, want_toks);
  EXPECT_LE(test::rel_error(acts, want), 1e-6);  // batching may reorder nothing per row: near-exact
}

TEST(Harvest, F16SafetensorsShardsMatchF32) {
  const std::string dir = test::make_temp_dir("harvest");
  HarvestConfig a = small_config(dir + "/f32");
  HarvestConfig b = small_config(dir + "/f16");
  b.dtype = DType::F16;
  b.format = "safetensors";
  harvest(a);
  harvest(b);
  std::vector<float> x, y;
  std::vector<int32_t> tx, ty;
  read_all(a.out_dir, x, tx);
  read_all(b.out_dir, y, ty);
  EXPECT_EQ(tx, ty);
  EXPECT_LE(test::rel_error(y, x), test::kTolF16Storage);
  EXPECT_TRUE(fs::exists(b.out_dir + "/shard_00000.safetensors"));
}

// A harvest killed after some shards were committed resumes and ends byte-identical to one
// uninterrupted run. The kill is simulated by rolling the manifest back to an earlier commit point
// and leaving a stray temp file, as a crash mid-write would.
TEST(Harvest, ResumeAfterInterruptionIsIdentical) {
  const std::string dir = test::make_temp_dir("harvest");
  HarvestConfig full = small_config(dir + "/full");
  HarvestConfig cut = small_config(dir + "/cut");
  harvest(full);
  harvest(cut);
  ActivationManifest m = read_activation_manifest(cut.out_dir);
  const size_t keep = 2;
  ASSERT_GT(m.shards.size(), keep);
  int64_t contexts = 0;
  {
    // The contexts of the first `keep` shards: replay the same commit rule.
    HarvestConfig probe = small_config(dir + "/probe");
    probe.max_tokens = 0;
    int64_t tokens = 0;
    for (size_t i = 0; i < keep; ++i) tokens += m.shards[i].n_tokens;
    probe.max_tokens = tokens;
    contexts = harvest(probe).contexts;
  }
  for (size_t i = keep; i < m.shards.size(); ++i) fs::remove(cut.out_dir + "/" + m.shards[i].file);
  m.shards.resize(keep);
  m.n_tokens = m.shards[0].n_tokens + m.shards[1].n_tokens;
  m.contexts_done = contexts;
  m.complete = false;
  write_activation_manifest(m);
  test::write_text(cut.out_dir + "/shard_00002.npy.tmp-99999", "half-written garbage");

  const HarvestResult r = harvest(cut);
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.new_tokens, 3000 - m.n_tokens);
  const ActivationManifest a = read_activation_manifest(full.out_dir), b = read_activation_manifest(cut.out_dir);
  ASSERT_EQ(a.shards.size(), b.shards.size());
  for (size_t i = 0; i < a.shards.size(); ++i)
    EXPECT_EQ(read_file(full.out_dir + "/" + a.shards[i].file), read_file(cut.out_dir + "/" + b.shards[i].file)) << i;
  // A complete harvest is not redone; other settings are refused without touching the files.
  EXPECT_TRUE(harvest(cut).already_complete);
  HarvestConfig other = cut;
  other.hook_name = "blocks.0.hook_mlp_out";
  const std::string before = read_file(cut.out_dir + "/manifest.json");
  EXPECT_THROW(harvest(other), Error);
  EXPECT_EQ(read_file(cut.out_dir + "/manifest.json"), before);
}

TEST(Harvest, Llama2cModelHarvestsToo) {
  HarvestConfig c = small_config(test::make_temp_dir("harvest") + "/s260");
  c.model_path = test::shared_root() + "/models/stories260K";
  c.hook_name = "blocks.2.hook_mlp_out";
  c.max_tokens = 500;
  const HarvestResult r = harvest(c);
  EXPECT_EQ(r.n_tokens, 500);
  EXPECT_EQ(read_activation_manifest(c.out_dir).d_in, 64);
}

// BadInput: defects found while writing the fuzz targets (fuzz/, docs/reliability.md "Bad inputs
// found by fuzzing"). Each must be a saelab::Error naming the manifest.
TEST(BadInput, ManifestCountsAndShardNamesAreChecked) {
  const std::string dir = test::make_temp_dir("fuzz");
  auto manifest_error = [&](const std::string& d_in, const std::string& n, const std::string& file) {
    write_file_atomic(dir + "/manifest.json",
                      R"({"saelab_activations": 1, "settings": {"model_name": "m", "hook_name": "h", "format": "npy",
                          "dtype": "f32"}, "d_in": )" + d_in + R"(, "n_tokens": )" + n +
                          R"(, "contexts_done": 1, "complete": true,
                          "shards": [{"file": ")" + file + R"(", "tokens_file": "t.npy", "n_tokens": )" + n + "}]}");
    try {
      read_activation_manifest(dir);
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("manifest.json"), std::string::npos) << m;
      return m;
    }
    return std::string("<no error>");
  };
  EXPECT_EQ(manifest_error("4", "8", "shard_00000.npy"), "<no error>");
  // A float d_in converted to int (undefined behaviour for 1e300); shard sizes could overflow the sum.
  EXPECT_NE(manifest_error("1e300", "8", "shard_00000.npy").find("d_in: expected an integer"), std::string::npos);
  EXPECT_NE(manifest_error("4", "-8", "shard_00000.npy").find("n_tokens must be in [0,"), std::string::npos);
  EXPECT_NE(manifest_error("4", "9223372036854775807", "shard_00000.npy").find("n_tokens must be in [0,"),
            std::string::npos);
  // Shard names are plain file names in the directory, not paths to anywhere.
  EXPECT_NE(manifest_error("4", "8", "../../etc/passwd").find("not a plain file name"), std::string::npos);
}

// Found by fuzzing in CI: a float manifest version was converted to int (undefined behaviour).
TEST(FuzzRegression, ManifestFloatVersionIsAUserError) {
  const std::string dir = saelab::test::make_temp_dir("manifest");
  saelab::test::write_text(dir + "/manifest.json", R"({"saelab_activations": 1e300, "settings": {}})");
  EXPECT_THROW(saelab::read_activation_manifest(dir), saelab::Error);
}
