// Harvest throughput: tokenization and the LM forward up to a hook, per model, in tokens/s.
// The forward's FLOP rate is reported as a fraction of the sgemm rate measured in the same run
// at the model's projection shape (N = B*T tokens, K = d).
//
// After the Google Benchmark runs, a side-by-side with Hugging Face transformers (torch, CPU) on the
// real SmolLM2-135M GGUF: saelab's forward stopping at blocks.L.hook_resid_post and
// scripts/reference/bench_transformers_harvest.py (transformers with only the first L+1 decoder
// layers, no final norm, no LM head) on the same token ids (written to a temporary .npy), the same
// B, T and thread count, each timed as `warmup` untimed forwards then the mean over `reps`. It prints
// both rates and saelab/transformers. The Python side is the reference venv's interpreter
// ($SAELAB_REFERENCE_PYTHON, else .venv-reference/bin/python in the source tree; made by
// scripts/reference/setup_venv.sh); without one the comparison prints a note and skips it.
// Options (before any Google Benchmark flag is fine too):
//   --compare-only    skip the Google Benchmark runs     --no-compare   skip the comparison
//   --layers=5,14  --batch=32  --context=128  --threads=N (default: OpenMP's max)  --warmup=2  --reps=5
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "saelab/corpus.hpp"
#include "saelab/lm.hpp"
#include "saelab/npy.hpp"

using namespace saelab;

namespace {

// Matmul FLOPs per token of layers [0, last] (attention scores excluded: they are small at T=128).
double forward_flops_per_token(const ModelConfig& c, int layers) {
  const double qw = c.n_heads * c.head_dim, kw = c.n_kv_heads * c.head_dim;
  const double mlp_mats = c.gated_mlp ? 3.0 : 2.0;
  return 2.0 * layers * (c.d_model * (qw + 2 * kw) + qw * c.d_model + mlp_mats * c.d_model * c.d_ff);
}

void BM_Forward(benchmark::State& st, const std::string& model_dir, const std::string& hook) {
  auto m = load_model(bench::shared_root() + model_dir, cpu_backend());
  const int B = 32, T = 128;
  std::vector<int32_t> toks(static_cast<size_t>(B) * T);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>(3 + (i * 7919) % (m->config().vocab_size - 3));
  Hooks hooks;
  hooks.observe(hook, [](TensorView) {});
  for (auto _ : st) m->forward(toks, B, T, &hooks, false);
  const double tokens = static_cast<double>(st.iterations()) * B * T;
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  const double flops = forward_flops_per_token(m->config(), m->hook_layer(hook) + 1);
  st.counters["GFLOP/s"] = benchmark::Counter(tokens * flops / 1e9, benchmark::Counter::kIsRate);
  const double sgemm = bench::sgemm_gflops(B * T, m->config().d_ff, m->config().d_model);
  st.counters["sgemm_GFLOP/s"] = sgemm;
  st.counters["frac_of_sgemm"] = benchmark::Counter(tokens * flops / 1e9 / sgemm, benchmark::Counter::kIsRate);
}

// Each architecture's forward at one width and depth (SmolLM2-135M's: d 576, 9 heads of 64, 6
// layers, 128-token contexts), so a slow architecture-specific path stands out: the switches come
// from the tiny test model's config.json (tests/data/hf_tiny), the sizes are overridden, the
// weights random. Ungated MLPs (GPT-2, GPT-NeoX) get d_ff 1.5x the gated one, so every MLP costs
// the same FLOPs; GPT-2 / GPT-NeoX have no grouped-query attention (9 KV heads, others 3).
void BM_ArchitectureForward(benchmark::State& st, const std::string& arch) {
  ModelConfig c = parse_hf_config(std::string(SAELAB_SOURCE_DIR) + "/tests/data/hf_tiny/" + arch + "/config.json");
  c.name = arch;
  c.d_model = 576;
  c.n_layers = 6;
  c.n_heads = 9;
  c.head_dim = 64;
  c.n_kv_heads = c.architecture == "gpt2" || c.architecture == "gpt_neox" ? 9 : 3;
  c.d_ff = c.gated_mlp ? 1536 : 2304;
  c.vocab_size = 2048;
  c.max_seq_len = std::max(c.max_seq_len, 128);
  if (c.rotary_dim > 0) c.rotary_dim = c.architecture == "gpt_neox" ? 16 : 64;
  const std::vector<int> tiny = c.window;  // the tiny model's layer pattern, repeated; real windows (4096)
  c.window.assign(6, 0);
  for (int l = 0; l < 6 && !tiny.empty(); ++l) c.window[l] = tiny[l % tiny.size()] > 0 ? 4096 : 0;
  LanguageModel m(c, nullptr, cpu_backend());
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 0.05f);
  for (float& x : m.host_params()) x = nd(rng);
  m.upload();
  const int B = 32, T = 128;
  std::vector<int32_t> toks(static_cast<size_t>(B) * T);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>((i * 7919) % c.vocab_size);
  const std::string hook = hook_name(5, "hook_resid_post");
  Hooks hooks;
  hooks.observe(hook, [](TensorView) {});
  for (auto _ : st) m.forward(toks, B, T, &hooks, false);
  const double tokens = static_cast<double>(st.iterations()) * B * T;
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  const double flops = forward_flops_per_token(c, 6);
  st.counters["GFLOP/s"] = benchmark::Counter(tokens * flops / 1e9, benchmark::Counter::kIsRate);
  const double sgemm = bench::sgemm_gflops(B * T, c.d_ff, c.d_model);
  st.counters["frac_of_sgemm"] = benchmark::Counter(tokens * flops / 1e9 / sgemm, benchmark::Counter::kIsRate);
}

void BM_Tokenize(benchmark::State& st, const std::string& model_dir) {
  auto m = load_model(bench::shared_root() + model_dir, cpu_backend());
  CorpusReader r(expand_corpus_paths({bench::shared_root() + "/corpus/gutenberg/austen-emma.txt"}));
  std::vector<std::string> docs;
  std::string d;
  while (r.next(d) && docs.size() < 2000) docs.push_back(d);
  size_t bytes = 0, tokens = 0;
  for (auto _ : st)
    for (const auto& doc : docs) {
      tokens += m->tokenizer().encode(doc).size();
      bytes += doc.size();
    }
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  st.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}

// ---- saelab vs transformers on SmolLM2-135M (GGUF) ----

const char* const kSmolDir = "/models/smollm2-135m-instruct";

struct CompareOptions {
  bool run_gbench = true, compare = true;
  std::vector<int> layers{5, 14};
  int batch = 32, context = 128, threads = 0, warmup = 2, reps = 5;
};

// Removes this program's own options from argv (Google Benchmark sees the rest).
CompareOptions parse_options(int& argc, char** argv) {
  CompareOptions o;
  auto value = [](const std::string& a, const char* key, std::string& out) {
    const std::string k = std::string("--") + key + "=";
    if (a.rfind(k, 0) != 0) return false;
    out = a.substr(k.size());
    return true;
  };
  int w = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    if (a == "--compare-only") o.run_gbench = false;
    else if (a == "--no-compare") o.compare = false;
    else if (value(a, "layers", v)) {
      o.layers.clear();
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');) o.layers.push_back(std::stoi(x));
    } else if (value(a, "batch", v)) o.batch = std::stoi(v);
    else if (value(a, "context", v)) o.context = std::stoi(v);
    else if (value(a, "threads", v)) o.threads = std::stoi(v);
    else if (value(a, "warmup", v)) o.warmup = std::stoi(v);
    else if (value(a, "reps", v)) o.reps = std::stoi(v);
    else argv[w++] = argv[i];
  }
  argc = w;
  if (o.threads <= 0) o.threads = omp_get_max_threads();
  return o;
}

// B contexts of T tokens cut from the corpus exactly as a harvest cuts them (ContextStream: BOS-led
// contexts, documents separated by BOS). Falls back to fixed pseudo-random ids if the model's tokenizer
// cannot do it.
std::vector<int32_t> harvest_ids(const LanguageModel& m, int B, int T, std::string& source) {
  std::vector<int32_t> ids;
  try {
    const std::string corpus = bench::shared_root() + "/corpus/gutenberg/austen-emma.txt";
    CorpusReader r(expand_corpus_paths({corpus}));
    ContextStream cs(r, m.tokenizer(), T);
    std::vector<int32_t> ctx;
    while (static_cast<int>(ids.size()) < B * T && cs.next(ctx)) ids.insert(ids.end(), ctx.begin(), ctx.end());
    if (static_cast<int>(ids.size()) >= B * T) {
      ids.resize(static_cast<size_t>(B) * T);
      source = corpus + " (ContextStream)";
      return ids;
    }
  } catch (const std::exception& e) {
    std::printf("note: tokenizing the corpus failed (%s); using pseudo-random ids\n", e.what());
  }
  ids.resize(static_cast<size_t>(B) * T);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(3 + (i * 7919) % (m.config().vocab_size - 3));
  source = "pseudo-random ids";
  return ids;
}

// Mean tokens/s over `reps` timed forwards after `warmup` untimed ones (as the Python side does).
double saelab_tokens_per_s(const LanguageModel& m, const std::vector<int32_t>& ids, int B, int T, int layer, int warmup,
                           int reps) {
  Hooks hooks;
  hooks.observe(hook_name(layer, "hook_resid_post"), [](TensorView) {});
  for (int i = 0; i < warmup; ++i) m.forward(ids, B, T, &hooks, false);
  m.backend().synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) m.forward(ids, B, T, &hooks, false);
  m.backend().synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(reps) * B * T / s;
}

// The same check the Python side runs with --check: saelab's residual stream after blocks 0, 5 and 29 on
// the golden sentence against the goldens beside the model, as max |error| / row L2 norm.
void check_goldens(const LanguageModel& m) {
  const std::string dir = bench::shared_root() + kSmolDir + "/golden/";
  const std::vector<int32_t> ids{504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30};  // no BOS
  const int n = static_cast<int>(ids.size()), d = m.config().d_model;
  std::map<int, std::vector<float>> got;
  Hooks hooks;
  for (int L : {0, 5, 29})
    hooks.observe(hook_name(L, "hook_resid_post"), [&, L](TensorView a) { got[L] = to_host_f32(m.backend(), a); });
  m.forward(ids, 1, n, &hooks, false);
  for (auto& [L, v] : got) {
    const NpyArray g = read_npy(dir + "act_blocks." + std::to_string(L) + ".hook_resid_post.npy");
    const float* gold = reinterpret_cast<const float*>(g.bytes.data());
    double worst = 0;
    for (int r = 0; r < n; ++r) {
      double l2 = 0, e = 0;
      for (int c = 0; c < d; ++c) {
        const double x = gold[r * d + c];
        l2 += x * x;
        e = std::max(e, std::abs(v[static_cast<size_t>(r) * d + c] - x));
      }
      worst = std::max(worst, e / std::sqrt(l2));
    }
    std::printf("saelab check blocks.%d.hook_resid_post: max abs err / row L2 = %.3g%s\n", L, worst,
                worst <= 1e-4 ? "" : "  (ABOVE 1e-4: saelab and the goldens disagree)");
  }
}

// Runs the Python side; returns layer -> its JSON line (empty on failure, with a note printed).
std::map<int, nlohmann::json> run_transformers(const CompareOptions& o, const std::string& python,
                                               const std::string& ids_npy) {
  const std::string script = std::string(SAELAB_SOURCE_DIR) + "/scripts/reference/bench_transformers_harvest.py";
  std::string cmd = "OMP_NUM_THREADS=" + std::to_string(o.threads) + " " + bench::shell_quote(python) + " " +
                    bench::shell_quote(script) + " --check --model-dir " +
                    bench::shell_quote(bench::shared_root() + kSmolDir) + " --ids " + bench::shell_quote(ids_npy) +
                    " --threads " + std::to_string(o.threads) + " --batch " +
                    std::to_string(o.batch) + " --context " + std::to_string(o.context) + " --warmup " +
                    std::to_string(o.warmup) + " --reps " + std::to_string(o.reps);
  for (int L : o.layers) cmd += " --layer " + std::to_string(L);
  std::printf("transformers: %s\n", cmd.c_str());
  std::fflush(stdout);
  std::map<int, nlohmann::json> out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    std::printf("note: could not start the reference Python; comparison skipped\n");
    return out;
  }
  char buf[4096];
  std::string line;
  while (std::fgets(buf, sizeof buf, p)) {
    line += buf;
    if (line.empty() || line.back() != '\n') continue;
    std::printf("  py> %s", line.c_str());
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("tokens_per_s") && j.contains("layers")) out[j["layers"].get<int>() - 1] = j;
    line.clear();
  }
  const int rc = ::pclose(p);
  if (rc != 0)
    std::printf("note: the reference script failed (%s %d)\n", WIFEXITED(rc) ? "exit status" : "wait status",
                WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
  std::fflush(stdout);
  return out;
}

void compare_with_transformers(const CompareOptions& o) {
  std::printf("\n== saelab vs Hugging Face transformers: SmolLM2-135M-Instruct Q4_1 GGUF, B=%d T=%d threads=%d, "
              "warmup %d + mean of %d forwards ==\n",
              o.batch, o.context, o.threads, o.warmup, o.reps);
  omp_set_num_threads(o.threads);
  openblas_set_num_threads(o.threads);
  // OpenBLAS picks its kernels by CPU model; one it does not know falls back to the SSE3 "Prescott"
  // kernels (about 4x slower sgemm on AVX-512 machines). OPENBLAS_CORETYPE overrides the choice.
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_corename(), coretype ? coretype : "unset");
  std::unique_ptr<LanguageModel> m;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    m = load_model(bench::shared_root() + kSmolDir, cpu_backend());
    std::printf("saelab: loaded %s in %.2f s\n", (bench::shared_root() + kSmolDir).c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    std::printf("note: saelab cannot load the GGUF model (%s); comparison skipped\n", e.what());
    return;
  }
  try {
    check_goldens(*m);
  } catch (const std::exception& e) {
    std::printf("note: saelab golden check failed to run: %s\n", e.what());
  }
  std::string source;
  const std::vector<int32_t> ids = harvest_ids(*m, o.batch, o.context, source);
  std::printf("token ids: %s\n", source.c_str());
  std::map<int, double> ours;
  for (int L : o.layers) {
    m->check_hook(hook_name(L, "hook_resid_post"));
    ours[L] = saelab_tokens_per_s(*m, ids, o.batch, o.context, L, o.warmup, o.reps);
    std::printf("saelab blocks.%d.hook_resid_post: %.1f tokens/s\n", L, ours[L]);
    std::fflush(stdout);
  }
  m.reset();  // free its memory before torch loads its copy

  const std::string python = bench::reference_python();
  std::map<int, nlohmann::json> theirs;
  if (python.empty()) {
    std::printf("note: no reference Python (set SAELAB_REFERENCE_PYTHON or run scripts/reference/setup_venv.sh "
                "to make .venv-reference); transformers side skipped\n");
  } else {
    const std::string npy = (std::filesystem::temp_directory_path() /
                             ("saelab_bench_harvest_ids_" + std::to_string(::getpid()) + ".npy")).string();
    write_npy(npy, DType::I32, {o.batch, o.context}, ids.data());
    theirs = run_transformers(o, python, npy);
    std::filesystem::remove(npy);
  }
  std::printf("\n%-28s %16s %18s %18s\n", "hook", "saelab tok/s", "transformers tok/s", "saelab/transformers");
  for (int L : o.layers) {
    const std::string hook = hook_name(L, "hook_resid_post");
    auto it = theirs.find(L);
    if (it == theirs.end()) {
      std::printf("%-28s %16.1f %18s %18s\n", hook.c_str(), ours[L], "-", "-");
      continue;
    }
    const double t = it->second["tokens_per_s"].get<double>();
    std::printf("%-28s %16.1f %18.1f %18.2f\n", hook.c_str(), ours[L], t, ours[L] / t);
  }
  if (!theirs.empty()) {
    const auto& j = theirs.begin()->second;
    std::printf("transformers %s, torch %s, attention %s\n", j.value("transformers", "?").c_str(),
                j.value("torch", "?").c_str(), j.value("attn_implementation", "?").c_str());
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_Forward, tinystories656k_L0_resid_post, "/models/tinystories-656k", "blocks.0.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, tinystories656k_L1_resid_post, "/models/tinystories-656k", "blocks.1.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, stories260K_L2_resid_post, "/models/stories260K", "blocks.2.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, smollm2_135m_L5_resid_post, "/models/smollm2-135m-instruct", "blocks.5.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(5.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, smollm2_135m_L14_resid_post, "/models/smollm2-135m-instruct", "blocks.14.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(5.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, llama, "llama3")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, mistral, "mistral")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, qwen2, "qwen2")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, qwen3, "qwen3")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, gemma2, "gemma2")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, gemma3_text, "gemma3")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, gpt2, "gpt2")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_ArchitectureForward, gpt_neox, "pythia")->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Tokenize, smollm2_gguf_bpe, "/models/smollm2-135m-instruct")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Tokenize, tinystories656k_hf_bpe, "/models/tinystories-656k")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Tokenize, stories260K_llama2c, "/models/stories260K")->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  const CompareOptions o = parse_options(argc, argv);
  if (o.run_gbench) bench::run_main(argc, argv);
  if (o.compare) compare_with_transformers(o);
  return 0;
}
