#include "test_util.hpp"

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/synthetic.hpp"
#include "train/checkpoint.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace saelab::test {

namespace fs = std::filesystem;

std::string shared_root() {
  if (const char* e = std::getenv("SAELAB_SHARED"); e && *e) return e;
  return SAELAB_SHARED_DEFAULT;
}

std::string test_data(const std::string& name) { return std::string(SAELAB_TEST_DATA) + "/" + name; }

namespace {
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}
}  // namespace

std::string make_temp_dir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("saelab_" + tag + "_XXXXXX")).string();
  char* p = ::mkdtemp(tmpl.data());
  if (!p) std::abort();
  temp_dirs().dirs.push_back(p);
  return p;
}

void write_text(const std::string& path, const std::string& s) {
  std::ofstream(path, std::ios::binary) << s;
}

double rel_error(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  return rel_error(a, std::vector<double>(b.begin(), b.end()));
}

void write_planted_hierarchy(const std::string& out_dir, int64_t tokens, uint64_t seed) {
  SyntheticConfig s;
  s.d = 64;
  s.n_features = 12;
  s.children_per_parent = 3;
  s.freq_min = 0.05;
  s.freq_max = 0.15;
  s.child_prob_min = 0.25;
  s.child_prob_max = 0.5;
  s.mag_min = 2;
  s.mag_max = 4;
  s.child_mag_min = 0.7;
  s.child_mag_max = 1.4;
  s.n_tokens = tokens;
  s.seed = seed;
  write_synthetic(s, out_dir);
}

TrainConfig planted_hierarchy_training(const std::string& activations, const std::string& out_dir,
                                       int64_t total_tokens) {
  TrainConfig c;
  c.activations = activations;
  c.out_dir = out_dir;
  c.architecture = "hierarchical";
  c.n_parents = 12;
  c.children_per_parent = 4;
  c.batch_size = 512;
  c.total_tokens = total_tokens;
  c.lr = 1e-3f;
  c.l1_coefficient = 0.5f;
  c.b_dec_init = "zeros";
  c.progress = false;
  return c;
}

ExperimentConfig small_experiment(const std::string& out_dir) {
  const std::string dir = make_temp_dir("expcfg");
  write_text(dir + "/exp.toml", R"([experiment]
model = "models/tinystories-656k"
hook = "blocks.0.hook_resid_post"
tokens = 60000
heldout_tokens = 5000
probing = false
core_contexts = 4
dashboard_tokens = 4096
[train]
expansion_factor = 2
batch_size = 512
lr = 0.001
l1_coefficient = 2.0
[[runs]]
name = "vanilla"
architecture = "standard"
[[runs]]
name = "dual_fixed"
architecture = "hierarchical"
penalty = "dual_adaptive"
alpha = 0.25
[[runs]]
name = "learned"
architecture = "hierarchical"
penalty = "dual_adaptive"
alpha_mode = "learned"
)");
  ExperimentConfig c = load_experiment_config(dir + "/exp.toml", shared_root());
  c.corpus = {shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
  c.heldout_corpus = {shared_root() + "/corpus/inaugural/1789-Washington.txt",
                      shared_root() + "/corpus/inaugural/1793-Washington.txt"};
  c.out_dir = out_dir;
  c.progress = false;
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

CliResult run_cli(const std::string& args) {
  const std::string dir = make_temp_dir("cli");
  const std::string out = dir + "/out", err = dir + "/err";
  const std::string cmd = std::string(SAELAB_BIN) + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream o(out), e(err);
  std::stringstream so, se;
  so << o.rdbuf();
  se << e.rdbuf();
  r.out = so.str();
  r.err = se.str();
  return r;
}

std::string exported_sae_weights(const std::string& run) { return read_file(run + "/sae/sae_weights.safetensors"); }

size_t rewind_to_penultimate_checkpoint(const std::string& run) {
  const std::vector<std::string> cks = list_checkpoints(run + "/checkpoints");
  if (!cks.empty()) fs::remove_all(cks.back());
  fs::remove_all(run + "/sae");
  fs::remove(run + "/training_summary.json");
  return cks.size();
}

}  // namespace saelab::test
