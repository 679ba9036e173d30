// Reliability (issue 8): numerical faults in data and training, mismatched inputs refused up front,
// and runs killed at random points that resume with every output whole.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "saelab/activation_loader.hpp"
#include "saelab/analysis.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/harvest.hpp"
#include "saelab/npy.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"
#include "train/checkpoint.hpp"

using namespace saelab;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// TinyStories-656K layer 0 over one book: 20k tokens in 4 shards of 5000.
const std::string& clean_activations() {
  static const std::string dir = [] {
    HarvestConfig c;
    c.model_path = test::shared_root() + "/models/tinystories-656k";
    c.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
    c.out_dir = test::make_temp_dir("rel") + "/acts";
    c.max_tokens = 20000;
    c.shard_tokens = 5000;
    c.progress = false;
    harvest(c);
    return c.out_dir;
  }();
  return dir;
}

// A copy of the clean activations with one value of shard 1 replaced.
std::string poisoned_copy(float value, int64_t row, int64_t column) {
  const std::string dir = test::make_temp_dir("rel") + "/acts";
  fs::copy(clean_activations(), dir, fs::copy_options::recursive);
  const ActivationManifest m = read_activation_manifest(dir);
  const std::string shard = dir + "/" + m.shards[1].file;
  NpyArray a = read_npy(shard);
  reinterpret_cast<float*>(a.bytes.data())[row * m.d_in + column] = value;
  write_npy(shard, a.dtype, a.shape, a.bytes.data());
  return dir;
}

TrainConfig small_config(const std::string& acts, const std::string& out) {
  TrainConfig c;
  c.activations = acts;
  c.out_dir = out;
  c.d_sae = 128;
  c.batch_size = 200;
  c.total_tokens = 40000;  // 200 steps, two passes over the data
  c.lr = 1e-3f;
  c.l1_coefficient = 2.f;
  c.buffer_tokens = 2000;
  c.checkpoint_fractions = {0.05, 0.1, 0.25, 0.5, 0.75, 1.0};
  c.progress = false;
  return c;
}

std::string error_of(const TrainConfig& c) {
  try {
    train_sae(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

std::vector<float> exported_weights(const std::string& run) {
  std::vector<float> all;
  SafetensorsFile f(run + "/sae/sae_weights.safetensors");
  for (const auto& n : f.names()) {
    const auto v = f.read_f32(n);
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

// Every output under `dir` is whole: JSON parses, safetensors validate and read, npy arrays read,
// CSV logs have one well-formed row per step in increasing order, and no temp file is left.
void expect_outputs_whole(const std::string& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string p = e.path().string(), n = e.path().filename().string();
    EXPECT_EQ(n.find(".tmp"), std::string::npos) << "stale temp " << p;
    if (!e.is_regular_file()) continue;
    const std::string ext = e.path().extension().string();
    if (ext == ".json") {
      EXPECT_NO_THROW(json::parse(read_file(p)).size()) << p;
    } else if (ext == ".safetensors") {
      EXPECT_NO_THROW({
        SafetensorsFile f(p);
        for (const auto& t : f.names())
          if (f.entry(t).dtype_str != "I32" && f.entry(t).dtype_str != "I64") (void)f.read_f32(t);
      }) << p;
    } else if (ext == ".npy") {
      EXPECT_NO_THROW((void)read_npy(p)) << p;
    } else if (ext == ".csv" && (n == "train_log.csv" || n == "alpha_log.csv")) {
      std::istringstream in(read_file(p));
      std::string header, line;
      std::getline(in, header);
      const auto fields = std::count(header.begin(), header.end(), ',');
      int64_t prev = 0;
      while (std::getline(in, line)) {
        EXPECT_EQ(std::count(line.begin(), line.end(), ','), fields) << p << ": " << line;
        const int64_t s = std::stoll(line.substr(0, line.find(',')));
        EXPECT_GE(s, prev) << p;
        prev = s;
      }
    }
  }
}

// Runs the CLI in the background; the pid is saelab's own (exec'd by the shell).
pid_t spawn_cli(const std::string& args, const std::string& log) {
  const std::string cmd = "exec " + std::string(SAELAB_BIN) + " " + args + " >>" + log + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Kills `args` after each delay, then lets it run to the end; returns the final exit code.
int kill_at_then_finish(const std::string& args, const std::string& log, const std::vector<double>& delays_s) {
  for (double t : delays_s) {
    const pid_t pid = spawn_cli(args, log);
    std::this_thread::sleep_for(std::chrono::duration<double>(t));
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
  const pid_t pid = spawn_cli(args, log);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST(NonFinite, NanActivationIsNamedOrItsRowLeftOut) {
  const std::string acts = poisoned_copy(std::nanf(""), 17, 3);
  const std::string dir = test::make_temp_dir("rel");
  const std::string msg = error_of(small_config(acts, dir + "/stop"));
  EXPECT_NE(msg.find("shard_00001.npy"), std::string::npos) << msg;
  const int64_t first = read_activation_manifest(acts).shards[0].n_tokens;
  EXPECT_NE(msg.find(fmt::format("row 17 (token {} ", first + 17)), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("skip_batch"), std::string::npos) << msg;
  EXPECT_FALSE(dir_exists(dir + "/stop/sae"));
  EXPECT_FALSE(file_exists(dir + "/stop/training_summary.json"));

  TrainConfig skip = small_config(acts, dir + "/skip");
  skip.on_nonfinite = "skip_batch";
  const TrainResult r = train_sae(skip);
  EXPECT_GE(r.summary["dropped_nonfinite_rows"].get<int64_t>(), 1);
  EXPECT_EQ(r.summary["skipped_batches"].get<int64_t>(), 0);
  EXPECT_TRUE(all_finite(exported_weights(dir + "/skip")));
}

TEST(NonFinite, DivergingStepStopsWithFaultReportThenResumesFromLastGoodCheckpoint) {
  // A finite row too large for f32 arithmetic: its gradient overflows to Inf.
  const std::string acts = poisoned_copy(1e25f, 40, 0);
  const std::string dir = test::make_temp_dir("rel");
  TrainConfig c = small_config(acts, dir + "/run");
  c.normalize_activations = "none";
  c.b_dec_init = "zeros";
  const std::string msg = error_of(c);
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("training stopped at step"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fault.json"), std::string::npos) << msg;
  const json fault = json::parse(read_file(dir + "/run/fault.json"));
  EXPECT_EQ(fault["where"], "input_row") << fault.dump();
  const int64_t fault_step = fault["step"];
  const auto cks = list_checkpoints(dir + "/run/checkpoints");
  ASSERT_FALSE(cks.empty()) << "the fault came before the first checkpoint (step " << fault_step << ")";
  EXPECT_EQ(fault["last_checkpoint"], cks.back());
  for (const auto& ck : cks) {  // nothing at or after the fault was written, and what was is good
    EXPECT_LT(read_checkpoint_meta(ck)["step"].get<int64_t>(), fault_step);
    EXPECT_TRUE(all_finite(SafetensorsFile(ck + "/state.safetensors").read_f32("flat.params")));
  }
  EXPECT_FALSE(dir_exists(dir + "/run/sae"));
  expect_outputs_whole(dir + "/run");

  // Fixing the data and rerunning resumes from that checkpoint and ends where a clean run ends.
  const ActivationManifest m = read_activation_manifest(acts);
  fs::copy_file(clean_activations() + "/" + m.shards[1].file, acts + "/" + m.shards[1].file,
                fs::copy_options::overwrite_existing);
  const TrainResult resumed = train_sae(c);
  EXPECT_TRUE(resumed.resumed);
  TrainConfig clean = c;
  clean.activations = clean_activations();
  clean.out_dir = dir + "/clean";
  train_sae(clean);
  EXPECT_EQ(read_file(dir + "/run/sae/sae_weights.safetensors"), read_file(dir + "/clean/sae/sae_weights.safetensors"));

  // skip_batch makes no update on that step and finishes with finite weights.
  TrainConfig skip = c;
  skip.activations = poisoned_copy(1e25f, 40, 0);
  skip.out_dir = dir + "/skip";
  skip.on_nonfinite = "skip_batch";
  const TrainResult r = train_sae(skip);
  EXPECT_GE(r.summary["skipped_batches"].get<int64_t>(), 1);
  EXPECT_TRUE(all_finite(exported_weights(dir + "/skip")));
  // ... but only up to max_skipped_batches.
  skip.out_dir = dir + "/skip_limited";
  skip.max_skipped_batches = 0;
  EXPECT_NE(error_of(skip).find("max_skipped_batches"), std::string::npos);
}

TEST(NonFinite, TornLogLinesFromAKilledRunAreDropped) {
  const std::string dir = test::make_temp_dir("rel");
  TrainConfig c = small_config(clean_activations(), dir + "/run");
  c.total_tokens = 20000;
  train_sae(c);
  // Simulate a kill mid-append after the last checkpoint: a torn row at the end of the log.
  fs::remove(dir + "/run/training_summary.json");
  fs::remove_all(dir + "/run/sae");
  fs::remove_all(list_checkpoints(dir + "/run/checkpoints").back());
  std::ofstream(dir + "/run/train_log.csv", std::ios::app) << "9999,12,0.5";
  test::write_text(dir + "/run/config.json.tmp-999999", "{\"torn");
  const TrainResult r = train_sae(c);
  EXPECT_TRUE(r.resumed);
  expect_outputs_whole(dir + "/run");
  EXPECT_EQ(read_file(dir + "/run/train_log.csv").find("9999,12,0.5"), std::string::npos);
}

TEST(Mismatch, RefusedUpFrontNamingBothValues) {
  const std::string dir = test::make_temp_dir("rel");
  TrainConfig c = small_config(clean_activations(), dir + "/run");
  c.total_tokens = 2000;
  train_sae(c);
  const std::string model = test::shared_root() + "/models/tinystories-656k";
  // An SAE applied at a hook other than its own.
  auto r = test::run_cli("eval core --sae " + dir + "/run/sae --model " + model +
                         " --hook blocks.1.hook_resid_post --contexts 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("blocks.0.hook_resid_post"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("blocks.1.hook_resid_post"), std::string::npos) << r.err;
  // A hook the model does not have.
  r = test::run_cli("harvest --model " + model + " --hook blocks.9.hook_resid_post --out " + dir + "/h");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("blocks.9.hook_resid_post"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/h"));
  // A tokenizer with more tokens than the model's vocabulary.
  const std::string bad_model = dir + "/model";
  fs::create_directories(bad_model);
  for (const char* f : {"model.safetensors", "tokenizer.json"}) fs::copy_file(model + "/" + f, bad_model + "/" + f);
  json cfg = json::parse(read_file(model + "/config.json"));
  const int vocab = cfg["vocab_size"];
  cfg["vocab_size"] = vocab - 10;
  test::write_text(bad_model + "/config.json", cfg.dump());
  r = test::run_cli("generate --model " + bad_model + " --prompt Once --steps 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(std::to_string(vocab)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(vocab - 10)), std::string::npos) << r.err;
}

TEST(Mismatch, CompositionRefusesActivationsOfAnotherWidth) {
  const std::string dir = test::make_temp_dir("rel");
  TrainConfig c = small_config(clean_activations(), dir + "/run");
  c.architecture = "hierarchical";
  c.total_tokens = 2000;
  train_sae(c);
  Sae sae = load_saelens(dir + "/run/sae", cpu_backend());
  const int64_t d = sae.config().d_in;
  std::vector<float> rows(static_cast<size_t>(10 * (d + 3)), 0.5f);
  try {
    (void)composition_quality(sae, rows, 10);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("width " + std::to_string(d + 3)), std::string::npos) << m;
    EXPECT_NE(m.find("d_in is " + std::to_string(d)), std::string::npos) << m;
  }
}

TEST(Killed, TrainingKilledAtRandomPointsResumesWhole) {
  const std::string dir = test::make_temp_dir("rel");
  TrainConfig c = small_config(clean_activations(), dir + "/whole");
  c.total_tokens = 200000;
  c.checkpoint_fractions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
  const auto t0 = std::chrono::steady_clock::now();
  train_sae(c);
  const double whole_s = seconds_since(t0);
  json j = train_config_to_json(c);
  j["out_dir"] = dir + "/killed";
  write_file_atomic(dir + "/cfg.json", j.dump());
  std::mt19937 rng(8);
  std::uniform_real_distribution<double> u(0.05, 0.6);
  std::vector<double> delays;
  for (int i = 0; i < 4; ++i) delays.push_back(0.2 + u(rng) * whole_s);  // the CLI also starts up each time
  const int code = kill_at_then_finish("train --no-progress --config " + dir + "/cfg.json", dir + "/log", delays);
  ASSERT_EQ(code, 0) << read_file(dir + "/log");
  expect_outputs_whole(dir + "/killed");
  EXPECT_EQ(read_file(dir + "/whole/sae/sae_weights.safetensors"),
            read_file(dir + "/killed/sae/sae_weights.safetensors"));
  EXPECT_EQ(list_checkpoints(dir + "/killed/checkpoints").size(), 10u);
}

TEST(Killed, ExperimentKilledAtRandomPointsResumesWhole) {
  const std::string dir = test::make_temp_dir("rel");
  const std::string shared = test::shared_root();
  test::write_text(dir + "/exp.toml", "[experiment]\ntokens = 30000\nheldout_tokens = 4000\nprobing = false\n"
                                      "core_contexts = 4\nhook = \"blocks.0.hook_resid_post\"\nmodel = \"" + shared + "/models/tinystories-656k\"\ncorpus = [\"" + shared + "/corpus/gutenberg/carroll-alice.txt\"]\n"
                                      "heldout_corpus = [\"" + shared + "/corpus/inaugural/1789-Washington.txt\", \"" +
                                      shared + "/corpus/inaugural/1793-Washington.txt\"]\n"
                                      "[train]\nexpansion_factor = 2\nbatch_size = 512\nlr = 0.001\nl1_coefficient = 2.0\n"
                                      "[[runs]]\nname = \"vanilla\"\narchitecture = \"standard\"\n"
                                      "[[runs]]\nname = \"learned\"\narchitecture = \"hierarchical\"\n"
                                      "penalty = \"dual_adaptive\"\nalpha_mode = \"learned\"\n");
  const std::string args = "experiment --config " + dir + "/exp.toml --out ";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(kill_at_then_finish(args + dir + "/whole", dir + "/log_whole", {}), 0) << read_file(dir + "/log_whole");
  const double whole_s = seconds_since(t0);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.05, 0.7);
  std::vector<double> delays;
  for (int i = 0; i < 4; ++i) delays.push_back(u(rng) * whole_s);
  ASSERT_EQ(kill_at_then_finish(args + dir + "/killed", dir + "/log", delays), 0) << read_file(dir + "/log");
  std::fprintf(stderr, "whole run %.1f s; killed at %.1f, %.1f, %.1f, %.1f s\n", whole_s, delays[0], delays[1],
               delays[2], delays[3]);
  expect_outputs_whole(dir + "/killed");
  for (const char* f : {"experiment.json", "summary.json", "report.html", "report.json", "run_1/eval_core.json",
                        "run_2/composition.json", "run_2/alpha_summary.json"})
    EXPECT_TRUE(file_exists(dir + "/killed/" + f)) << f;
  for (const char* run : {"run_1", "run_2"})
    EXPECT_EQ(read_file(dir + "/whole/" + std::string(run) + "/sae/sae_weights.safetensors"),
              read_file(dir + "/killed/" + std::string(run) + "/sae/sae_weights.safetensors"))
        << run;
  EXPECT_EQ(json::parse(read_file(dir + "/whole/summary.json")), json::parse(read_file(dir + "/killed/summary.json")));
}
