// The training loop shared by every architecture: batches from the shuffling loader, forward +
// analytic backward, Adam, schedules, latent health, checkpoints, resume, export.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "checkpoint.hpp"
#include "data_parallel.hpp"
#include "method_state.hpp"
#include "update_step.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/comm.hpp"
#include "saelab/progress.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

int64_t round_step(double fraction, int64_t total) {
  return std::clamp<int64_t>(static_cast<int64_t>(std::llround(fraction * static_cast<double>(total))), 1, total);
}

float lr_at(const TrainConfig& c, int64_t step, int64_t total) {
  const double warm = std::max(1.0, c.lr_warmup_fraction * static_cast<double>(total));
  const double decay = c.lr_decay_fraction * static_cast<double>(total);
  double f = std::min(1.0, static_cast<double>(step + 1) / warm);
  if (decay >= 1.0 && static_cast<double>(step) >= static_cast<double>(total) - decay)
    f *= (static_cast<double>(total) - static_cast<double>(step)) / decay;
  return static_cast<float>(c.lr * f);
}

float l1_at(const TrainConfig& c, int64_t step, int64_t total) {
  const double warm = c.l1_warmup_fraction * static_cast<double>(total);
  return warm < 1.0 ? c.l1_coefficient
                    : static_cast<float>(c.l1_coefficient * std::min(1.0, static_cast<double>(step + 1) / warm));
}

const char* kLogHeader =
    "step,tokens,loss,mse,penalty,aux,l0,explained_variance,lr,l1_coefficient,dead_fraction,dense_fraction,tokens_per_s\n";
const char* kAlphaHeader = "step,level,alpha,theta,signal,J,lambda_J\n";

// Keeps the rows of a per-step CSV up to `step` (a resumed run rewrites what follows). The logs are
// appended as training goes, so a killed run may leave a torn last line: only whole rows (newline-
// terminated, the header's field count) survive.
void truncate_log(const std::string& path, int64_t step, const char* header) {
  std::string kept = header;
  const auto fields = std::count(kept.begin(), kept.end(), ',');
  if (file_exists(path)) {
    std::istringstream in(read_file(path));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line) && !in.eof()) {
      if (line.empty() || std::count(line.begin(), line.end(), ',') != fields ||
          line.find_first_not_of("0123456789") != line.find(','))
        continue;
      if (std::stoll(line.substr(0, line.find(','))) <= step) kept += line + "\n";
    }
  }
  write_file_atomic(path, kept);
}

// Dead latents get a fresh direction: the normalised residual of a batch row drawn with
// probability ∝ its squared error; the encoder column is that direction at 0.2× the mean live
// encoder norm; b_enc and their Adam moments reset (Anthropic's 2023 resampling, per batch).
int64_t resample_dead(Sae& sae, TrainState& st, const std::vector<float>& x, const std::vector<float>& xhat,
                      int64_t N, int64_t dead_window, uint64_t seed) {
  const SaeConfig& c = sae.config();
  const int64_t d = c.d_in, F = c.d_sae;
  std::vector<int64_t> dead;
  for (int64_t i = 0; i < F; ++i)
    if (st.tokens_since_fired[i] >= static_cast<float>(dead_window)) dead.push_back(i);
  if (dead.empty()) return 0;
  Backend& be = sae.backend();
  std::vector<float> W_enc = to_host_f32(be, sae.params().W_enc), W_dec = to_host_f32(be, sae.params().W_dec),
                     b_enc = to_host_f32(be, sae.params().b_enc);
  std::vector<double> err(static_cast<size_t>(N));
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    double e = 0;
    for (int64_t j = 0; j < d; ++j) e += (x[n * d + j] - xhat[n * d + j]) * (x[n * d + j] - xhat[n * d + j]);
    err[n] = e;
    total += e;
  }
  if (total <= 0) return 0;
  double enc_norm = 0, dec_norm = 0;
  int64_t alive = 0;
  for (int64_t i = 0; i < F; ++i) {
    if (st.tokens_since_fired[i] >= static_cast<float>(dead_window)) continue;
    double en = 0, dn = 0;
    for (int64_t j = 0; j < d; ++j) {
      en += double(W_enc[j * F + i]) * W_enc[j * F + i];
      dn += double(W_dec[i * d + j]) * W_dec[i * d + j];
    }
    enc_norm += std::sqrt(en);
    dec_norm += std::sqrt(dn);
    ++alive;
  }
  enc_norm = alive ? enc_norm / alive : 1.0;
  dec_norm = alive ? dec_norm / alive : 1.0;
  std::mt19937_64 rng(seed);
  std::vector<float> m = to_host_f32(be, st.adam_m.flat), v = to_host_f32(be, st.adam_v.flat);
  const int64_t off_W_enc = 0, off_b_enc = d * F, off_W_dec = d * F + F;
  for (int64_t i : dead) {
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    int64_t n = 0;
    while (n + 1 < N && u > err[n]) u -= err[n++];
    double nrm = std::sqrt(err[n]);
    for (int64_t j = 0; j < d; ++j) {
      const double dir = (x[n * d + j] - xhat[n * d + j]) / nrm;
      W_dec[i * d + j] = static_cast<float>(dir * (c.unit_norm_decoder ? 1.0 : dec_norm));
      W_enc[j * F + i] = static_cast<float>(dir * 0.2 * enc_norm);
      m[off_W_enc + j * F + i] = v[off_W_enc + j * F + i] = 0.f;
      m[off_W_dec + i * d + j] = v[off_W_dec + i * d + j] = 0.f;
    }
    b_enc[i] = 0.f;
    m[off_b_enc + i] = v[off_b_enc + i] = 0.f;
    st.tokens_since_fired[i] = 0.f;
  }
  be.upload(sae.params().W_enc, W_enc.data());
  be.upload(sae.params().W_dec, W_dec.data());
  be.upload(sae.params().b_enc, b_enc.data());
  be.upload(st.adam_m.flat.view(), m.data());
  be.upload(st.adam_v.flat.view(), v.data());
  return static_cast<int64_t>(dead.size());
}

// Convergence analysis of every level's α trajectory in alpha_log.csv (method.md §3).
json alpha_summary(const std::string& path, size_t levels) {
  std::vector<AlphaTrajectory> traj = read_alpha_log(path);
  traj.resize(levels);
  json out = json::array();
  for (size_t l = 0; l < levels; ++l) {
    const AlphaConvergence c = analyze_alpha(traj[l].alpha);
    out.push_back({{"level", l},
                   {"final_alpha", c.final_alpha},
                   {"converged", c.converged},
                   {"t_star", c.t_star},
                   {"final_window_range", c.final_window_range},
                   {"at_bound_low", c.at_bound_low},
                   {"at_bound_high", c.at_bound_high},
                   {"oscillating", c.oscillating},
                   {"sign_change_rate", c.sign_change_rate},
                   {"steps", traj[l].alpha.size()}});
  }
  return out;
}

// When children switch on (parents-first training), every child starts as a noisy copy of its
// parent's encoder, so it fires where its parent fires and specialises from there, and with a small
// random decoder; their Adam moments restart.
void init_children_from_parents(Sae& sae, TrainState& st, uint64_t seed) {
  const SaeConfig& c = sae.config();
  const int64_t d = c.d_in, F = c.d_sae, P = c.n_parents, m = c.children_per_parent;
  Backend& be = sae.backend();
  std::vector<float> W_enc = to_host_f32(be, sae.params().W_enc), b_enc = to_host_f32(be, sae.params().b_enc),
                     W_dec = to_host_f32(be, sae.params().W_dec);
  std::vector<float> mm = to_host_f32(be, st.adam_m.flat), vv = to_host_f32(be, st.adam_v.flat);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t off_b_enc = d * F, off_W_dec = d * F + F;
  for (int64_t j = P; j < F; ++j) {
    const int64_t p = (j - P) / m;
    double pn = 0;
    for (int64_t r = 0; r < d; ++r) pn += double(W_enc[r * F + p]) * W_enc[r * F + p];
    const float noise = static_cast<float>(0.1 * std::sqrt(pn / static_cast<double>(d)));
    for (int64_t r = 0; r < d; ++r) {
      W_enc[r * F + j] = W_enc[r * F + p] + noise * nd(rng);
      mm[r * F + j] = vv[r * F + j] = 0.f;
    }
    b_enc[j] = b_enc[p];
    mm[off_b_enc + j] = vv[off_b_enc + j] = 0.f;
    for (int64_t k = 0; k < d; ++k) {
      W_dec[j * d + k] = 0.01f * nd(rng);
      mm[off_W_dec + j * d + k] = vv[off_W_dec + j * d + k] = 0.f;
    }
  }
  be.upload(sae.params().W_enc, W_enc.data());
  be.upload(sae.params().b_enc, b_enc.data());
  be.upload(sae.params().W_dec, W_dec.data());
  be.upload(st.adam_m.flat.view(), mm.data());
  be.upload(st.adam_v.flat.view(), vv.data());
}

// Where a non-finite loss or gradient came from, for the fault report: the first parameter holding
// NaN/Inf (named with its latent), else the first non-finite latent activation, else the batch row
// whose reconstruction error is non-finite. `params_bad` tells whether skipping the batch can help.
json diagnose_nonfinite(const Sae& sae, SaeWorkspace& ws, const float* x, int64_t N, bool& params_bad) {
  Backend& be = sae.backend();
  const int64_t d = sae.config().d_in, F = sae.config().d_sae;
  params_bad = false;
  for (const auto& [name, view] : sae.params().named()) {
    const std::vector<float> v = to_host_f32(be, view);
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::isfinite(v[i])) continue;
      params_bad = true;
      const int64_t k = static_cast<int64_t>(i);
      const int64_t latent = name == "W_enc" ? k % F : name == "b_enc" ? k : name == "W_dec" ? k / d : -1;
      json j = {{"where", "parameter"}, {"parameter", name}, {"index", k}, {"value", fmt::format("{}", v[i])}};
      if (latent >= 0) j["latent"] = latent;
      return j;
    }
  }
  const std::vector<float> f = to_host_f32(be, ws.f.view().rows(0, N));  // [N, F]
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i)
      if (!std::isfinite(f[n * F + i]))
        return {{"where", "latent_activation"}, {"latent", i}, {"batch_row", n}, {"value", fmt::format("{}", f[n * F + i])}};
  const std::vector<float> xhat = to_host_f32(be, ws.xhat.view().rows(0, N));  // [N, d]
  for (int64_t n = 0; n < N; ++n) {
    float e = 0, xx = 0;
    for (int64_t j = 0; j < d; ++j) {
      e += (x[n * d + j] - xhat[n * d + j]) * (x[n * d + j] - xhat[n * d + j]);
      xx += x[n * d + j] * x[n * d + j];
    }
    if (!std::isfinite(e))
      return {{"where", "input_row"}, {"batch_row", n}, {"squared_norm", fmt::format("{}", xx)},
              {"squared_error", fmt::format("{}", e)}};
  }
  return {{"where", "penalty_or_gradient"}};
}

std::string describe_fault(const json& j) {
  const std::string w = j.value("where", "");
  if (w == "parameter")
    return fmt::format("parameter {} holds {} at index {}{}", j["parameter"].get<std::string>(),
                       j["value"].get<std::string>(), j["index"].get<int64_t>(),
                       j.contains("latent") ? fmt::format(" (latent {})", j["latent"].get<int64_t>()) : "");
  if (w == "latent_activation")
    return fmt::format("latent {} is {} on batch row {}", j["latent"].get<int64_t>(), j["value"].get<std::string>(),
                       j["batch_row"].get<int64_t>());
  if (w == "input_row")
    return fmt::format("batch row {} has squared norm {} and squared error {} (activations too large for f32; "
                       "normalize them)", j["batch_row"].get<int64_t>(), j["squared_norm"].get<std::string>(),
                       j["squared_error"].get<std::string>());
  return "parameters, activations and reconstruction are finite: the penalty or a gradient is not";
}

// Non-finite rows left out so far by every loader of every process (a collective call).
int64_t dropped_rows(Communicator& comm, const std::vector<ActivationLoader>& loaders) {
  int64_t mine = 0;
  for (const auto& l : loaders) mine += l.dropped_rows();
  std::vector<int64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather(&mine, all.data(), sizeof mine);
  int64_t n = 0;
  for (int64_t v : all) n += v;
  return n;
}

}  // namespace

TrainResult train_sae(const TrainConfig& user_cfg) {
  TrainResult result;
  Communicator& comm = world();
  const bool writer = comm.rank() == 0;  // one process writes every output; all compute the same state
  TrainConfig cfg = user_cfg;
  if (cfg.grad_partitions == 0) cfg.grad_partitions = comm.size();
  if (cfg.activations.empty()) fail("no activation directory given (set 'activations' in the config)");
  const ActivationManifest manifest = read_activation_manifest(cfg.activations);
  if (!manifest.complete)
    fail("activation directory '{}' is incomplete ({} tokens so far); finish it with `saelab harvest`", cfg.activations,
         manifest.n_tokens);
  const int G = cfg.grad_partitions;
  if (G % comm.size() != 0)
    fail("grad_partitions = {} cannot be split over {} processes; use a multiple of the process count", G, comm.size());
  if (cfg.batch_size % G != 0) fail("batch_size {} must be a multiple of grad_partitions {}", cfg.batch_size, G);
  if (manifest.shards.size() < static_cast<size_t>(G))
    fail("activation directory '{}' has {} shard(s); {} data-parallel parts need at least one each (harvest with a "
         "smaller shard size)", cfg.activations, manifest.shards.size(), G);
  if (G > 1 && cfg.resample_every_steps > 0)
    fail("resample_every_steps needs the whole batch in one process; it cannot be combined with {} parts", G);
  const std::string out = cfg.out_dir;
  // Settings that change nothing about a fault-free run may differ on resume (e.g. switching to
  // on_nonfinite = "skip_batch" after a stop). Runs from before grad_partitions existed had one part.
  const auto comparable = [](json j) {
    for (const char* k : {"out_dir", "on_nonfinite", "max_skipped_batches", "progress", "device"}) j.erase(k);
    if (j.value("grad_partitions", 1) == 1) j.erase("grad_partitions");
    return j;
  };
  if (writer) {
    fs::create_directories(out + "/checkpoints");
    remove_stale_temps(out);
    const json resolved = comparable(train_config_to_json(cfg));
    if (file_exists(out + "/config.json")) {
      const json old = comparable(json::parse(read_file(out + "/config.json")));
      if (old != resolved)
        fail("'{}' holds a run with another config; use another out_dir (stored: {})", out, old.dump());
    }
    write_file_atomic(out + "/config.json", train_config_to_json(cfg).dump(2) + "\n");
  }
  comm.barrier();  // the other processes read the run directory only once it is set up
  if (file_exists(out + "/training_summary.json") && dir_exists(out + "/sae")) {
    result.already_complete = true;
    result.summary = json::parse(read_file(out + "/training_summary.json"));
    return result;
  }

  Backend& be = backend_named(cfg.device);
  SaeConfig sc;
  sc.architecture = sae_architecture_from_name(cfg.architecture);
  sc.d_in = manifest.d_in;
  sc.d_sae = cfg.d_sae > 0 ? cfg.d_sae : cfg.expansion_factor * manifest.d_in;
  if (sc.architecture == SaeArchitecture::Hierarchical) sc.d_sae = 0;  // set below from the hierarchy
  sc.k = cfg.k;
  sc.k_aux = cfg.k_aux;
  sc.aux_coefficient = cfg.aux_coefficient;
  sc.unit_norm_decoder = sc.architecture == SaeArchitecture::TopK;
  // auto: sparse at 8·k ≤ F. Measured (bench_train, 2 CPU cores, k = 32, sgemm 245 GFLOP/s): the
  // whole topk step 1.21× faster at d = 128, F = 1024 (k = F/32) and 1.85× at d = 512, F = 4096;
  // the sparse products scan all of f and read W_dec rows at random, so the gain shrinks as k/F grows.
  sc.sparse_decode = cfg.decode == "sparse" ||
                     (cfg.decode == "auto" && sc.architecture == SaeArchitecture::TopK && 8 * sc.k <= sc.d_sae);
  if (sc.architecture == SaeArchitecture::Hierarchical) {
    sc.children_per_parent = cfg.children_per_parent;
    sc.gate_ste_width = cfg.gate_ste_width;
    const int wanted = cfg.d_sae > 0 ? cfg.d_sae : cfg.expansion_factor * manifest.d_in;
    sc.n_parents = cfg.n_parents > 0 ? cfg.n_parents : std::max(1, wanted / (1 + cfg.children_per_parent));
  }
  sc.model_name = manifest.model_name;
  sc.hook_name = manifest.hook_name;
  if (manifest.hook_name.rfind("blocks.", 0) == 0)
    sc.hook_layer = std::atoi(manifest.hook_name.c_str() + 7);
  sc.context_size = manifest.settings.value("context_size", 128);
  sc.dataset_path = fs::absolute(cfg.activations).lexically_normal().string();
  if (sc.architecture == SaeArchitecture::Hierarchical) sc.d_sae = sc.n_parents * (1 + sc.children_per_parent);
  const int64_t N = cfg.batch_size, d = sc.d_in, F = sc.d_sae;
  const int64_t total_tokens = cfg.total_tokens > 0 ? cfg.total_tokens : manifest.n_tokens;
  const int64_t S = std::max<int64_t>(1, total_tokens / N);

  // Resume from the latest checkpoint, or initialise from data statistics.
  const auto latest = latest_checkpoint(out + "/checkpoints", S);
  TrainState st;
  if (latest) {
    sc.act_scale = static_cast<float>(read_checkpoint_meta(*latest).at("act_scale").get<double>());
  } else if (cfg.normalize_activations == "expected_average_only_in") {
    const ActivationSample s = sample_activations(manifest, 100000, 1, cfg.on_nonfinite == "skip_batch");
    sc.act_scale = static_cast<float>(std::sqrt(static_cast<double>(d) / std::max(s.mean_sq_norm, 1e-30)));
  }
  Sae sae(sc, be);
  st.init(sae.config(), be.device());
  MethodState method(cfg, sae);
  int64_t step = 0;
  if (latest) {
    step = load_checkpoint(*latest, sae, st);
    method.load(SafetensorsFile(*latest + "/state.safetensors"), read_checkpoint_meta(*latest));
    result.resumed = true;
    result.resumed_from_step = step;
  } else {
    std::vector<float> b_dec;
    if (cfg.b_dec_init != "zeros") {
      const ActivationSample s = sample_activations(manifest, manifest.n_tokens, 8192, cfg.on_nonfinite == "skip_batch");
      std::vector<float> rows = s.rows;
      for (auto& v : rows) v *= sc.act_scale;
      if (cfg.b_dec_init == "mean") {
        b_dec.assign(static_cast<size_t>(d), 0.f);
        for (int64_t r = 0; r < s.n; ++r)
          for (int64_t j = 0; j < d; ++j) b_dec[j] += rows[r * d + j] / static_cast<float>(s.n);
      } else {
        b_dec = geometric_median(rows, s.n, static_cast<int>(d));
      }
    }
    sae.init(cfg.seed, sc.unit_norm_decoder ? 1.0f : cfg.decoder_init_norm, b_dec);
  }
  if (writer) {
    truncate_log(out + "/train_log.csv", step, kLogHeader);
    if (method.dual()) truncate_log(out + "/alpha_log.csv", step, kAlphaHeader);
  }

  const bool skip_nonfinite = cfg.on_nonfinite == "skip_batch";
  DataParallelStep dp(sae, comm, G, N);
  const int64_t Np = dp.part_rows(), Nl = dp.local_rows();  // rows per part, rows in this process
  // One loader per part of this process; replay: the batch sequence is a function of the seed only.
  std::vector<ActivationLoader> loaders;
  for (int p = dp.first_part(); p < dp.first_part() + dp.local_parts(); ++p) {
    loaders.emplace_back(manifest, G == 1 ? cfg.buffer_tokens : std::max(cfg.buffer_tokens / G, Np),
                         cfg.seed + static_cast<uint64_t>(p), sae.config().act_scale, skip_nonfinite,
                         part_shards(manifest.shards.size(), p, G));
    loaders.back().skip(step, Np);
  }
  SaeWorkspace ws(sae.config(), Np, be.device());
  SaeParams grads(sae.config(), be.device());
  // Forward-mode hypergradients: the training gradient at shifted parameters, on the same batch
  // with the same loss terms, from a second SAE of the same shape.
  std::unique_ptr<Sae> shadow;
  std::unique_ptr<DataParallelStep> shadow_dp;
  std::unique_ptr<SaeWorkspace> shadow_ws;
  if (method.needs_gradient_at()) {
    shadow = std::make_unique<Sae>(sae.config(), be);
    shadow_dp = std::make_unique<DataParallelStep>(*shadow, comm, G, N);
    shadow_ws = std::make_unique<SaeWorkspace>(sae.config(), Np, be.device());
  }
  bool children_on = true;
  Tensor X({Nl, d}, DType::F32, be.device());
  std::vector<float> xh(static_cast<size_t>(Nl * d));
  std::vector<int64_t> ck_steps;
  for (double f : cfg.checkpoint_fractions) ck_steps.push_back(round_step(f, S));
  const int64_t density_from = S - std::max<int64_t>(1, S / 5);  // firing density over the last 20%

  const bool progress = cfg.progress && writer;
  Progress bar(fmt::format("train {} F={}", cfg.architecture, F), S * N);
  std::ofstream log, alpha_log;
  if (writer) log.open(out + "/train_log.csv", std::ios::app);
  if (writer && method.dual()) alpha_log.open(out + "/alpha_log.csv", std::ios::app);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_this_run = 0;
  double ema_loss = 0, ema_mse = 0, ema_l0 = 0, ema_ev = 0;
  int64_t skipped = 0;  // steps that made no update (skip_batch)
  std::string last_checkpoint = latest ? *latest : "";
  if (latest) {
    const json meta = read_checkpoint_meta(*latest);
    skipped = meta.value("skipped_batches", int64_t{0});
    if (meta.contains("ema")) {
      ema_loss = meta["ema"][0];
      ema_mse = meta["ema"][1];
      ema_l0 = meta["ema"][2];
      ema_ev = meta["ema"][3];
    }
  }
  for (; step < S; ++step) {
    for (size_t p = 0; p < loaders.size(); ++p) loaders[p].next(Np, xh.data() + p * Np * d);
    be.upload(X.view(), xh.data());
    if (sc.architecture == SaeArchitecture::Hierarchical) {
      const int64_t start = static_cast<int64_t>(std::ceil(cfg.children_start_fraction * static_cast<double>(S)));
      children_on = step >= start;
      sae.set_children_on(children_on);
      if (step == start && start > 0 && cfg.children_init == "from_parent") {
        init_children_from_parents(sae, st, cfg.seed ^ 0xC41D5ull);
        method.reset_tangents();
      }
    }
    SaeLossTerms terms = method.terms(l1_at(cfg, step, S));
    if (sc.architecture == SaeArchitecture::TopK) {
      terms.dead.assign(static_cast<size_t>(F), 0.f);
      for (int64_t i = 0; i < F; ++i)
        terms.dead[i] = st.tokens_since_fired[i] >= static_cast<float>(cfg.dead_window_tokens) ? 1.f : 0.f;
    }
    SaeHyperRequest* hyper = method.hyper_request();
    BatchMoments moments;
    const SaeBatchStats bs = dp.forward_backward(X, xh.data(), terms, grads, ws, hyper, moments);
    const double grad_sq = be.sum_squares(grads.flat);
    if (!std::isfinite(bs.loss()) || !std::isfinite(grad_sq)) {
      bool params_bad = false;
      json fault = diagnose_nonfinite(sae, ws, xh.data() + (Nl - Np) * d, Np, params_bad);  // ws: last part
      fault["step"] = step + 1;
      fault["loss"] = fmt::format("{}", bs.loss());
      fault["gradient_squared_norm"] = fmt::format("{}", grad_sq);
      const std::string what = fmt::format("step {}: loss {}, gradient ‖g‖² {}; {}", step + 1, bs.loss(), grad_sq,
                                           describe_fault(fault));
      if (skip_nonfinite && !params_bad && skipped < cfg.max_skipped_batches) {
        if (++skipped <= 10 && writer) std::fprintf(stderr, "\nskipping the batch of %s\n", what.c_str());
        result.steps = step + 1;
        continue;
      }
      fault["last_checkpoint"] = last_checkpoint;
      fault["skipped_batches"] = skipped;
      if (writer) write_file_atomic(out + "/fault.json", fault.dump(2) + "\n");
      fail("training stopped at {}{}. Nothing after the last checkpoint ({}) was written; details in '{}/fault.json'. "
           "Fix the cause and rerun to resume from that checkpoint{}",
           what, skipped >= cfg.max_skipped_batches && skip_nonfinite ? " (max_skipped_batches reached)" : "",
           last_checkpoint.empty() ? "none yet" : last_checkpoint, out,
           params_bad ? " (the parameters themselves are non-finite, so skipping batches cannot help)"
                      : ", or set on_nonfinite = \"skip_batch\"");
    }
    const GradientAt gradient_at = [&](TensorView params, SaeParams& out) {
      be.copy(shadow->params().flat, params);
      shadow->set_children_on(children_on);
      BatchMoments unused;
      shadow_dp->forward_backward(X, xh.data(), terms, out, *shadow_ws, nullptr, unused);
    };
    const float lr = lr_at(cfg, step, S);
    apply_update(sae, grads, st.adam_m, st.adam_v, method, cfg, {bs, terms, gradient_at, lr, step + 1});
    if (writer && method.dual()) {
      const auto alphas = method.alphas();
      for (size_t l = 0; l < alphas.size(); ++l)
        alpha_log << fmt::format("{},{},{:.8g},{:.8g},{:.6g},{:.6g},{:.6g}\n", step + 1, l, alphas[l],
                                 method.alpha().theta[l], method.alpha().last_signal[l], method.last_J(),
                                 method.last_lambda_J());
    }

    // Latent health from this batch's firing counts.
    const std::vector<float>& nf = bs.fires;
    int64_t dead = 0, dense = 0;
    for (int64_t i = 0; i < F; ++i) {
      st.tokens_since_fired[i] = nf[i] > 0 ? 0.f : st.tokens_since_fired[i] + static_cast<float>(N);
      const float freq = nf[i] / static_cast<float>(N);
      st.freq_ema[i] = step == 0 ? freq : 0.99f * st.freq_ema[i] + 0.01f * freq;
      if (step >= density_from) st.density_fires[i] += nf[i];
      dead += st.tokens_since_fired[i] >= static_cast<float>(cfg.dead_window_tokens);
      dense += st.freq_ema[i] > cfg.dense_threshold;
    }
    if (step >= density_from) st.density_tokens += static_cast<double>(N);
    if (cfg.resample_every_steps > 0 && step > 0 && step % cfg.resample_every_steps == 0 &&
        static_cast<double>(step) < cfg.resample_until_fraction * static_cast<double>(S)) {
      sae.decode(ws, N);
      if (resample_dead(sae, st, xh, to_host_f32(be, ws.xhat.view().rows(0, N)), N, cfg.dead_window_tokens,
                        cfg.seed ^ (0xA5A5A5A5ull * static_cast<uint64_t>(step + 1))) > 0)
        method.reset_tangents();
    }

    // Explained variance of this batch: 1 − SSE / Σ‖x − x̄‖².
    double msq = 0;
    for (double m : moments.sum) msq += m * m;
    const double var = moments.sq - msq / static_cast<double>(N);
    const double ev = var > 0 ? 1.0 - bs.sse / var : 0.0;
    const double a = step == 0 ? 1.0 : 0.05;
    ema_loss += a * (bs.loss() - ema_loss);
    ema_mse += a * (bs.sse / N - ema_mse);
    ema_l0 += a * (bs.l0 / N - ema_l0);
    ema_ev += a * (ev - ema_ev);
    tokens_this_run += N;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (writer && ((step + 1) % cfg.log_every == 0 || step + 1 == S)) {
      log << fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.4g},{:.5f},{:.4g},{:.4g},{:.4f},{:.4f},{:.0f}\n",
                         step + 1, (step + 1) * N, bs.loss(), bs.sse / N, bs.penalty / N, bs.aux / N, bs.l0 / N, ev,
                         lr, terms.l1_coefficient, double(dead) / F, double(dense) / F, tokens_this_run / secs);
      log.flush();
    }
    if (progress) {
      std::string extra = fmt::format("loss {:.4g} L0 {:.1f} EV {:.3f} dead {:.1f}%", ema_loss, ema_l0, ema_ev,
                                      100.0 * dead / F);
      if (method.dual()) {
        extra += " α";
        for (double a : method.alphas()) extra += fmt::format(" {:.3f}", a);
      }
      bar.update((step + 1) * N, extra);
    }
    result.steps = step + 1;
    const int64_t dropped = step + 1 == S ? dropped_rows(comm, loaders) : 0;
    if (step + 1 == S && writer) {  // export before the final checkpoint: a final checkpoint implies a finished export
      std::vector<float> density(static_cast<size_t>(F));
      for (int64_t i = 0; i < F; ++i) density[i] = static_cast<float>(st.density_fires[i] / std::max(1.0, st.density_tokens));
      result.summary = {{"architecture", cfg.architecture},
                        {"d_in", d},
                        {"d_sae", F},
                        {"steps", S},
                        {"tokens", S * N},
                        {"act_scale", sae.config().act_scale},
                        {"final_loss", ema_loss},
                        {"final_mse", ema_mse},
                        {"final_l0", ema_l0},
                        {"final_explained_variance", ema_ev},
                        {"dead_fraction", double(dead) / F},
                        {"dense_fraction", double(dense) / F},
                        {"tokens_per_s_this_run", tokens_this_run / secs},
                        {"skipped_batches", skipped},
                        {"dropped_nonfinite_rows", dropped},
                        {"processes", comm.size()},
                        {"grad_partitions", G},
                        {"resumed_from_step", result.resumed_from_step}};
      json extra = {{"training", result.summary}, {"config", train_config_to_json(cfg)}};
      if (method.dual()) {
        alpha_log.flush();
        result.summary["alpha_mode"] = cfg.alpha_mode;
        result.summary["final_alpha"] = method.alphas();
        result.summary["alpha"] = alpha_summary(out + "/alpha_log.csv", method.alphas().size());
        write_file_atomic(out + "/alpha_summary.json", result.summary["alpha"].dump(2) + "\n");
        extra["training"] = result.summary;
        extra["penalty"] = {{"type", "dual_adaptive"}, {"alpha_mode", cfg.alpha_mode}, {"alpha", method.alphas()},
                            {"gamma", cfg.gamma}};
      }
      export_saelens(sae, out + "/sae", density, extra);
      write_file_atomic(out + "/training_summary.json", result.summary.dump(2) + "\n");
    }
    if (writer && std::find(ck_steps.begin(), ck_steps.end(), step + 1) != ck_steps.end()) {
      json meta = {{"act_scale", sae.config().act_scale},
                   {"tokens", (step + 1) * N},
                   {"fraction", double(step + 1) / S},
                   {"ema", {ema_loss, ema_mse, ema_l0, ema_ev}},
                   {"skipped_batches", skipped}};
      std::vector<std::pair<std::string, std::vector<float>>> extra;
      method.save(extra, meta);
      if (method.dual()) alpha_log.flush();
      last_checkpoint = save_checkpoint(out + "/checkpoints", step + 1, sae, st, meta, extra);
    }
  }
  comm.barrier();  // every output is written before any process returns
  if (!writer && result.steps == S && file_exists(out + "/training_summary.json"))
    result.summary = json::parse(read_file(out + "/training_summary.json"));
  if (progress) bar.finish(fmt::format("loss {:.4g} L0 {:.1f} EV {:.3f}", ema_loss, ema_l0, ema_ev));
  return result;
}

}  // namespace saelab
