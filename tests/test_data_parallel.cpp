// Data-parallel training: a batch split into parts gives the whole batch's gradient, and a job of
// two MPI processes ends bit-identical to one process adding the same parts in the same order.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "saelab/backend.hpp"
#include "saelab/comm.hpp"
#include "saelab/synthetic.hpp"
#include "test_util.hpp"
#include "train/data_parallel.hpp"

namespace saelab {
namespace {

using test::kTolF32Op;
using test::rel_error;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<float> random_rows(int64_t n, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n * d));
  for (auto& v : x) v = nd(rng);
  return x;
}

// Hierarchical SAE with dual-adaptive-style weights and a hyper request: every output the trainer
// reads from a step.
TEST(DataParallel, PartsAddUpToTheWholeBatch) {
  Backend& be = cpu_backend();
  SaeConfig c;
  c.architecture = SaeArchitecture::Hierarchical;
  c.d_in = 13;
  c.n_parents = 5;
  c.children_per_parent = 2;
  c.d_sae = 15;
  c.gate_ste_width = 0.5f;
  Sae sae(c, be);
  sae.init(7, 0.3f, std::vector<float>(13, 0.1f));
  const int64_t N = 96;
  const std::vector<float> xh = random_rows(N, c.d_in, 3);
  Tensor X = to_device(be, {N, c.d_in}, xh.data());
  SaeLossTerms terms;
  terms.l1_coefficient = 0.7f;
  for (int i = 0; i < c.d_sae; ++i) terms.penalty_weights.push_back(0.5f + 0.1f * i);

  auto levels_of = [&]() {
    std::vector<SaeParams> v;
    for (size_t l = 0; l < sae.levels().size(); ++l) v.emplace_back(c, be.device());
    return v;
  };
  auto request = [&](SaeParams& gJ, std::vector<SaeParams>& ga) {
    SaeHyperRequest h;
    h.lambda_J = 0.3f;
    h.eps = 0.2f;
    for (int i = 0; i < c.d_sae; ++i) h.dw.push_back(0.05f * (i % 5) - 0.1f);
    h.levels = sae.levels();
    h.grad_J = &gJ;
    h.g_alpha = &ga;
    return h;
  };
  SaeParams g1(c, be.device()), gJ1(c, be.device());
  std::vector<SaeParams> ga1 = levels_of();
  SaeWorkspace ws1(c, N, be.device());
  SaeHyperRequest h1 = request(gJ1, ga1);
  const SaeBatchStats whole = sae.forward_backward(X, terms, g1, ws1, &h1);

  for (int parts : {1, 3, 4}) {
    SCOPED_TRACE(parts);
    DataParallelStep dp(sae, world(), parts, N);
    ASSERT_EQ(dp.local_rows(), N);
    SaeParams g2(c, be.device()), gJ2(c, be.device());
    std::vector<SaeParams> ga2 = levels_of();
    SaeWorkspace ws2(c, dp.part_rows(), be.device());
    SaeHyperRequest h2 = request(gJ2, ga2);
    BatchMoments mom;
    const SaeBatchStats split = dp.forward_backward(X, xh.data(), terms, g2, ws2, &h2, mom);
    EXPECT_EQ(split.n, N);
    EXPECT_EQ(split.fires, whole.fires);  // counts: exact
    EXPECT_LT(rel_error(split.fsum, whole.fsum), kTolF32Op);
    EXPECT_NEAR(split.sse, whole.sse, 1e-5 * whole.sse);
    EXPECT_NEAR(split.penalty, whole.penalty, 1e-5 * whole.penalty);
    EXPECT_EQ(split.l0, whole.l0);
    EXPECT_LT(rel_error(to_host_f32(be, g2.flat), to_host_f32(be, g1.flat)), kTolF32Op);
    EXPECT_LT(rel_error(to_host_f32(be, gJ2.flat), to_host_f32(be, gJ1.flat)), kTolF32Op);
    for (size_t l = 0; l < ga1.size(); ++l)
      EXPECT_LT(rel_error(to_host_f32(be, ga2[l].flat), to_host_f32(be, ga1[l].flat)), kTolF32Op) << "level " << l;
    EXPECT_NEAR(h2.J, h1.J, 1e-5 * h1.J);
    double sq = 0;
    for (float v : xh) sq += double(v) * v;
    EXPECT_NEAR(mom.sq, sq, 1e-9 * sq);
    ASSERT_EQ(mom.sum.size(), static_cast<size_t>(c.d_in));
  }
}

TEST(DataParallel, PartShardsCoverEveryShardOnce) {
  std::vector<int> seen(10, 0);
  for (int p = 0; p < 3; ++p)
    for (size_t s : part_shards(10, p, 3)) ++seen[s];
  for (int v : seen) EXPECT_EQ(v, 1);
  EXPECT_EQ(part_shards(4, 0, 1).size(), 4u);
}

// Planted data in 6 shards and a learned-α hierarchical config: the most state per step.
std::string write_fixture(const std::string& dir, const std::string& architecture, const std::string& device = "cpu") {
  SyntheticConfig s;
  s.d = 16;
  s.n_features = 8;
  s.children_per_parent = architecture == "hierarchical" ? 2 : 0;
  s.n_tokens = 24000;
  s.shard_tokens = 4000;
  if (!std::filesystem::exists(dir + "/acts/manifest.json")) write_synthetic(s, dir + "/acts");
  const std::string cfg = dir + "/" + architecture + (device == "cpu" ? "" : "_" + device) + ".toml";
  std::string text = "device = \"" + device + "\"\nactivations = \"" + dir + "/acts\"\narchitecture = \"" + architecture +
                     "\"\nd_sae = 48\nbatch_size = 256\nlr = 1e-3\ntotal_tokens = 20480\ngrad_partitions = 2\n";
  if (architecture == "hierarchical")
    text += "children_per_parent = 2\npenalty = \"dual_adaptive\"\nalpha_mode = \"learned\"\nl1_coefficient = 1.0\n";
  else
    text += "k = 4\n";
  if (architecture == "matryoshka_batchtopk") text += "matryoshka_widths = [8, 24, 48]\n";
  test::write_text(cfg, text);
  return cfg;
}

// One OpenMP thread per process in both runs: our reductions are deterministic per thread count.
// Open MPI refuses root and more ranks than cores unless told; CI runs as root on 2 cores.
const char* const kMpiEnv =
    "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
    "OMPI_MCA_rmaps_base_oversubscribe=1 ";

// On GPUs: two processes (NCCL with a GPU each, the host path when they share one) against one
// process, both on CUDA; the same kernels in the same order give the same bits.
TEST(DataParallel, TwoProcessesOnCudaEndBitIdenticalToOneProcess) {
#ifndef SAELAB_MPIEXEC
  GTEST_SKIP() << "this build has no MPI";
#else
  bool cuda = false;
  for (Backend* be : available_backends()) cuda = cuda || be->device() == Device::CUDA;
  if (!cuda) GTEST_SKIP() << "no CUDA backend (build with -DSAELAB_CUDA=ON on a machine with a GPU)";
  const std::string dir = test::make_temp_dir("dp_cuda");
  const std::string env = kMpiEnv;
  for (const std::string arch : {"hierarchical", "topk", "matryoshka_batchtopk", "jumprelu"}) {
    SCOPED_TRACE(arch);
    const std::string cfg = write_fixture(dir, arch, "cuda");
    const std::string one = dir + "/one_" + arch, two = dir + "/two_" + arch;
    ASSERT_EQ(std::system((env + SAELAB_BIN " train --no-progress --config " + cfg + " --out " + one + " >/dev/null").c_str()), 0);
    const std::string mpi = env + SAELAB_MPIEXEC " -n 2 " SAELAB_BIN " train --no-progress --config " + cfg +
                            " --out " + two + " >" + dir + "/mpi.out 2>&1";
    ASSERT_EQ(std::system(mpi.c_str()), 0) << slurp(dir + "/mpi.out");
    const std::string w1 = slurp(one + "/sae/sae_weights.safetensors"), w2 = slurp(two + "/sae/sae_weights.safetensors");
    ASSERT_FALSE(w1.empty());
    EXPECT_TRUE(w1 == w2) << "final weights differ";
  }
#endif
}

TEST(DataParallel, TwoProcessesEndBitIdenticalToOneProcess) {
#ifndef SAELAB_MPIEXEC
  GTEST_SKIP() << "this build has no MPI (install libopenmpi-dev openmpi-bin and reconfigure)";
#else
  const std::string dir = test::make_temp_dir("dp");
  const std::string env = kMpiEnv;
  for (const std::string arch : {"hierarchical", "topk", "matryoshka_batchtopk", "jumprelu"}) {
    SCOPED_TRACE(arch);
    const std::string cfg = write_fixture(dir, arch);
    const std::string one = dir + "/one_" + arch, two = dir + "/two_" + arch;
    ASSERT_EQ(std::system((env + SAELAB_BIN " train --no-progress --config " + cfg + " --out " + one + " >/dev/null").c_str()), 0);
    const std::string mpi = env + SAELAB_MPIEXEC " -n 2 " SAELAB_BIN " train --no-progress --config " + cfg +
                            " --out " + two + " >" + dir + "/mpi.out 2>&1";
    ASSERT_EQ(std::system(mpi.c_str()), 0) << slurp(dir + "/mpi.out");
    EXPECT_EQ(slurp(dir + "/mpi.out").find("trained"), slurp(dir + "/mpi.out").rfind("trained"))
        << "one report per job";
    const std::string w1 = slurp(one + "/sae/sae_weights.safetensors"), w2 = slurp(two + "/sae/sae_weights.safetensors");
    ASSERT_FALSE(w1.empty());
    EXPECT_TRUE(w1 == w2) << "final weights differ";
    EXPECT_TRUE(slurp(one + "/checkpoints/step_40/state.safetensors") ==
                slurp(two + "/checkpoints/step_40/state.safetensors"));
    if (arch == "hierarchical") {
      EXPECT_EQ(slurp(one + "/alpha_log.csv"), slurp(two + "/alpha_log.csv"));
    }
    const auto summary = nlohmann::json::parse(slurp(two + "/training_summary.json"));
    EXPECT_EQ(summary["processes"], 2);
    EXPECT_EQ(summary["grad_partitions"], 2);
  }
  // The same job resumed by one process: the stored config says 2 parts, so it goes on with 2.
  const auto r = test::run_cli("train --no-progress --config " + dir + "/topk.toml --out " + dir + "/two_topk");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("already complete"), std::string::npos);
#endif
}

// Streamed from the LM: each process forwards its own parts' strides of the corpus' contexts, and
// a job of two SAEs in one pass over 2 processes ends bit-identical to one process with the same
// 2 parts (the cached path's guarantee; the statistics come from the unsplit stream in both).
TEST(DataParallel, StreamedTwoProcessesEndBitIdenticalToOneProcess) {
#ifndef SAELAB_MPIEXEC
  GTEST_SKIP() << "this build has no MPI (install libopenmpi-dev openmpi-bin and reconfigure)";
#else
  const std::string dir = test::make_temp_dir("dp_stream");
  const std::string shared = "model = \"" + test::shared_root() + "/models/tinystories-656k\"\ncorpus = [\"" +
                             test::shared_root() + "/corpus/gutenberg/carroll-alice.txt\"]\n"
                             "hook = \"blocks.1.hook_resid_pre\"\ncontext_size = 64\nlm_batch_size = 4\n"
                             "batch_size = 256\ntotal_tokens = 7680\nbuffer_tokens = 2048\ngrad_partitions = 2\n";
  test::write_text(dir + "/standard.toml", shared + "d_sae = 128\nlr = 1e-3\n");
  test::write_text(dir + "/topk.toml", shared + "architecture = \"topk\"\nd_sae = 96\nk = 8\n");
  const std::string args = " train --no-progress --config " + dir + "/standard.toml --config " + dir + "/topk.toml";
  const std::string env = kMpiEnv;
  ASSERT_EQ(std::system((env + SAELAB_BIN + args + " --out " + dir + "/one >/dev/null").c_str()), 0);
  const std::string mpi = env + SAELAB_MPIEXEC " -n 2 " SAELAB_BIN + args + " --out " + dir + "/two >" + dir +
                          "/mpi.out 2>&1";
  ASSERT_EQ(std::system(mpi.c_str()), 0) << slurp(dir + "/mpi.out");
  for (const std::string run : {"/standard", "/topk"}) {
    SCOPED_TRACE(run);
    const std::string w1 = slurp(dir + "/one" + run + "/sae/sae_weights.safetensors");
    ASSERT_FALSE(w1.empty());
    EXPECT_TRUE(w1 == slurp(dir + "/two" + run + "/sae/sae_weights.safetensors")) << "final weights differ";
    const auto summary = nlohmann::json::parse(slurp(dir + "/two" + run + "/training_summary.json"));
    EXPECT_EQ(summary["processes"], 2);
  }
#endif
}

TEST(DataParallel, UnusablePartitionsAreRefusedByName) {
  const std::string dir = test::make_temp_dir("dp_bad");
  SyntheticConfig s;
  s.d = 8;
  s.n_features = 4;
  s.n_tokens = 3000;
  s.shard_tokens = 1000;
  write_synthetic(s, dir + "/acts");
  TrainConfig c;
  c.activations = dir + "/acts";
  c.batch_size = 64;
  c.progress = false;
  c.grad_partitions = 4;  // 3 shards
  c.out_dir = dir + "/a";
  try {
    train_sae(c);
    FAIL() << "4 parts over 3 shards were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has 3 shard(s); 4 data-parallel parts"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/a/sae"));
  c.grad_partitions = 3;
  c.out_dir = dir + "/b";
  try {
    train_sae(c);
    FAIL() << "batch 64 over 3 parts was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size 64 must be a multiple of grad_partitions 3"), std::string::npos)
        << e.what();
  }
  const std::string bad = dir + "/bad.toml";
  test::write_text(bad, "activations = \"" + dir + "/acts\"\ngrad_partitions = 2\nresample_every_steps = 10\n");
  const auto r = test::run_cli("train --config " + bad + " --out " + dir + "/c");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("resample_every_steps"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace saelab
