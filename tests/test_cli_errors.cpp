// Bad input gives one clear error line on stderr and a non-zero exit, and creates no output.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "saelab/backend.hpp"
#include "test_util.hpp"

using saelab::test::run_cli;
namespace fs = std::filesystem;

namespace {

// Warnings about the machine (a BLAS running generic kernels) may come first; the error is one line.
void expect_one_line_error(const saelab::test::CliResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  std::string err = r.err;
  while (err.rfind("saelab: warning: ", 0) == 0) err.erase(0, err.find('\n') + 1);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(err.rfind("saelab: error: ", 0), 0u) << r.err;
  EXPECT_NE(err.find(needle), std::string::npos) << r.err;
}

std::string model656k() { return saelab::test::shared_root() + "/models/tinystories-656k"; }

}  // namespace

TEST(CliErrors, MissingModel) {
  const std::string out = saelab::test::make_temp_dir("cli") + "/acts";
  expect_one_line_error(run_cli("harvest --no-progress --model /nonexistent/model --out " + out),
                        "'/nonexistent/model' does not exist");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliErrors, WrongHookName) {
  const std::string out = saelab::test::make_temp_dir("cli") + "/acts";
  expect_one_line_error(run_cli("harvest --no-progress --model " + model656k() + " --hook blocks.5.hook_resid_post --out " + out),
                        "hook 'blocks.5.hook_resid_post' is not in model 'tinystories-656k'");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliErrors, UnknownArchitecture) {
  const std::string dir = saelab::test::make_temp_dir("cli");
  saelab::test::write_text(dir + "/config.json", R"({"model_type": "t5", "hidden_size": 512})");
  expect_one_line_error(run_cli("harvest --no-progress --model " + dir + " --out " + dir + "/acts"),
                        "model_type 't5' is not supported");
  EXPECT_FALSE(fs::exists(dir + "/acts"));
}

TEST(CliErrors, EmptyCorpus) {
  const std::string dir = saelab::test::make_temp_dir("cli");
  saelab::test::write_text(dir + "/empty.txt", "");
  expect_one_line_error(run_cli("harvest --no-progress --model " + model656k() + " --corpus " + dir + "/empty.txt --out " + dir + "/acts"),
                        "yields no complete context");
  EXPECT_FALSE(fs::exists(dir + "/acts"));
}

TEST(CliErrors, MissingCorpusFileAndBadDtype) {
  const std::string dir = saelab::test::make_temp_dir("cli");
  expect_one_line_error(run_cli("harvest --no-progress --model " + model656k() + " --corpus " + dir + "/nope.txt --out " + dir + "/a"),
                        "corpus path");
  expect_one_line_error(run_cli("harvest --no-progress --model " + model656k() + " --dtype f64 --out " + dir + "/a"),
                        "unknown dtype 'f64'");
}

TEST(Cli, GenerateAndHooksWork) {
  auto r = run_cli("generate --model " + saelab::test::shared_root() + "/models/stories260K --steps 20");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl", 0), 0u) << r.out;
  r = run_cli("hooks --model " + model656k());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("blocks.1.hook_mlp_out"), std::string::npos);
}

TEST(Cli, HarvestRunsAndReports) {
  const std::string dir = saelab::test::make_temp_dir("cli");
  saelab::test::write_text(dir + "/t.txt", "Once upon a time there was a dog. It liked to run in the park.\n\n"
                                           "The cat sat on the mat and looked at the dog all day long.\n");
  const auto r = run_cli("harvest --no-progress --model " + model656k() + " --corpus " + dir + "/t.txt --context 8 --out " + dir + "/acts");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("harvested"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir + "/acts/manifest.json"));
}

// Without a usable GPU, asking for one says why, and nothing is created.
TEST(CliErrors, CudaDeviceWithoutAGpu) {
  for (saelab::Backend* be : saelab::available_backends())
    if (be->device() == saelab::Device::CUDA) GTEST_SKIP() << "a GPU is present";
  const std::string dir = saelab::test::make_temp_dir("cli");
  expect_one_line_error(run_cli("harvest --no-progress --device cuda --model " + model656k() + " --out " + dir + "/acts"),
                        "no CUDA device available");
  EXPECT_FALSE(fs::exists(dir + "/acts"));
  expect_one_line_error(run_cli("harvest --no-progress --device tpu --model " + model656k() + " --out " + dir + "/acts"),
                        "device must be cpu or cuda, got 'tpu'");
}
