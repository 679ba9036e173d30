// Harvest throughput: tokenization and the LM forward up to a hook, per model, in tokens/s.
// The forward's FLOP rate is reported as a fraction of the sgemm rate measured in the same run
// at the model's projection shape (N = B*T tokens, K = d).
#include <benchmark/benchmark.h>

#include <cstdio>

#include "bench_util.hpp"
#include "saelab/corpus.hpp"
#include "saelab/lm.hpp"

using namespace saelab;

namespace {

// Matmul FLOPs per token of layers [0, last] (attention scores excluded: they are small at T=128).
double forward_flops_per_token(const LlamaConfig& c, int layers) {
  const double qw = c.n_heads * c.head_dim, kw = c.n_kv_heads * c.head_dim;
  return 2.0 * layers * (c.d_model * (qw + 2 * kw) + qw * c.d_model + 3.0 * c.d_model * c.d_ff);
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

}  // namespace

BENCHMARK_CAPTURE(BM_Forward, tinystories656k_L0_resid_post, "/models/tinystories-656k", "blocks.0.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, tinystories656k_L1_resid_post, "/models/tinystories-656k", "blocks.1.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Forward, stories260K_L2_resid_post, "/models/stories260K", "blocks.2.hook_resid_post")
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Tokenize, tinystories656k_hf_bpe, "/models/tinystories-656k")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Tokenize, stories260K_llama2c, "/models/stories260K")->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) { return bench::run_main(argc, argv); }
