// The training loop shared by every architecture: batches from the shuffling loader, forward +
// analytic backward, Adam, schedules, latent health, checkpoints, resume, export; and the pass that
// feeds each batch to several runs in turn (train_saes). What a run settles before its first step
// is in run_setup, the latent edits between steps in latent_surgery, the logs in train_logs and
// the fault report in nonfinite.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <optional>

#include "checkpoint.hpp"
#include "data_parallel.hpp"
#include "latent_surgery.hpp"
#include "method_state.hpp"
#include "nonfinite.hpp"
#include "run_setup.hpp"
#include "train_logs.hpp"
#include "training_data.hpp"
#include "update_step.hpp"
#include "saelab/activation_loader.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/comm.hpp"
#include "saelab/progress.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"

namespace saelab {

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

// λ of the architecture's penalty (L1, or jumprelu's L0), ramped up over l1_warmup_fraction.
float l1_at(const TrainConfig& c, int64_t step, int64_t total) {
  const double warm = c.l1_warmup_fraction * static_cast<double>(total);
  const float lambda = penalty_coefficient(c);
  return warm < 1.0 ? lambda : static_cast<float>(lambda * std::min(1.0, static_cast<double>(step + 1) / warm));
}

// Non-finite rows left out so far by every loader of every process (a collective call).
int64_t dropped_rows(Communicator& comm, const std::vector<std::unique_ptr<MixingBuffer>>& loaders) {
  int64_t mine = 0;
  for (const auto& l : loaders) mine += l->dropped_rows();
  std::vector<int64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather(&mine, all.data(), sizeof mine);
  int64_t n = 0;
  for (int64_t v : all) n += v;
  return n;
}

// The EMAs of the logged batch metrics (the summary's final_* values); checkpointed as "ema".
struct RunningMetrics {
  double loss = 0, mse = 0, l0 = 0, ev = 0;
  void add(int64_t step, const SaeBatchStats& bs, double batch_ev, int64_t N) {
    const double a = step == 0 ? 1.0 : 0.05;
    loss += a * (bs.loss() - loss);
    mse += a * (bs.sse / N - mse);
    l0 += a * (bs.l0 / N - l0);
    ev += a * (batch_ev - ev);
  }
  json to_json() const { return {loss, mse, l0, ev}; }
  void restore(const json& meta) {
    if (!meta.contains("ema")) return;
    loss = meta["ema"][0];
    mse = meta["ema"][1];
    l0 = meta["ema"][2];
    ev = meta["ema"][3];
  }
};

// Explained variance of one batch: 1 − SSE / Σ‖x − x̄‖².
double batch_explained_variance(const BatchMoments& moments, const SaeBatchStats& bs, int64_t N) {
  double msq = 0;
  for (double m : moments.sum) msq += m * m;
  const double var = moments.sq - msq / static_cast<double>(N);
  return var > 0 ? 1.0 - bs.sse / var : 0.0;
}

struct LatentHealth {
  int64_t dead = 0, dense = 0;
};

// Per-latent bookkeeping from this batch's firing counts fires [F]: tokens since each last fired,
// the frequency EMA, and the firing density over the last 20% of training (from density_from).
LatentHealth update_latent_health(TrainState& st, const std::vector<float>& fires, int64_t N, int64_t step,
                                  int64_t density_from, const TrainConfig& cfg) {
  LatentHealth h;
  const int64_t F = static_cast<int64_t>(fires.size());
  for (int64_t i = 0; i < F; ++i) {
    st.tokens_since_fired[i] = fires[i] > 0 ? 0.f : st.tokens_since_fired[i] + static_cast<float>(N);
    const float freq = fires[i] / static_cast<float>(N);
    st.freq_ema[i] = step == 0 ? freq : 0.99f * st.freq_ema[i] + 0.01f * freq;
    if (step >= density_from) st.density_fires[i] += fires[i];
    h.dead += st.tokens_since_fired[i] >= static_cast<float>(cfg.dead_window_tokens);
    h.dense += st.freq_ema[i] > cfg.dense_threshold;
  }
  if (step >= density_from) st.density_tokens += static_cast<double>(N);
  return h;
}

// One training run from its first (or resumed) step to its export, in named phases. Every process
// of a data-parallel run computes the same state; the writer alone writes.
class TrainingRun {
 public:
  TrainingRun(const TrainConfig& cfg, TrainingData& data, Communicator& comm, TrainResult& result)
      : cfg_(cfg),
        data_(data),
        comm_(comm),
        result_(result),
        writer_(comm.rank() == 0),
        be_(backend_named(cfg.device)),
        sc_(sae_config_for(cfg, data, be_)),
        N_(cfg.batch_size),
        d_(sc_.d_in),
        F_(sc_.d_sae),
        S_(std::max<int64_t>(1, (cfg.total_tokens > 0 ? cfg.total_tokens : data.n_tokens) / N_)),
        latest_(latest_checkpoint(cfg.out_dir + "/checkpoints", S_)),
        skip_nonfinite_(cfg.on_nonfinite == "skip_batch") {
    sc_.act_scale = activation_scale(cfg, data, latest_);
  }

  int64_t steps() const { return S_; }

  // Resumes from the latest checkpoint or initialises; returns the first step this run trains.
  int64_t begin() {
    sae_ = std::make_unique<Sae>(sc_, be_);
    st_.init(sae_->config(), be_.device());
    method_ = std::make_unique<MethodState>(cfg_, *sae_);
    first_step_ = start(*sae_, st_, *method_);
    dp_ = std::make_unique<DataParallelStep>(*sae_, comm_, cfg_.grad_partitions, N_);
    b_ = std::make_unique<Buffers>(*this, *sae_, *dp_, *method_);
    open_logs(*method_, first_step_);
    t0_ = std::chrono::steady_clock::now();
    return first_step_;
  }

  // One step on this process's rows [Nl, d] (unscaled, part after part) of the batch; `feed`
  // counts the dropped rows at the last step (a collective call).
  void train_step(int64_t step, const float* rows, const BatchFeed& feed) {
    if (step < first_step_) return;  // a run resumed from a later checkpoint than the pass
    Sae& sae = *sae_;
    MethodState& method = *method_;
    Buffers& b = *b_;
    const float scale = sc_.act_scale;
    for (size_t i = 0; i < b.xh.size(); ++i) b.xh[i] = rows[i] * scale;
    be_.upload(b.X.view(), b.xh.data());
    schedule_children(sae, st_, method, step);
    SaeLossTerms terms = method.terms(l1_at(cfg_, step, S_));
    if (sae_is_topk_family(sc_.architecture)) mark_dead(terms, st_);
    sae.set_sparse(sparse_step(cfg_, sc_, be_, step, metrics_.l0));
    BatchMoments moments;
    const SaeBatchStats bs = dp_->forward_backward(b.X, b.xh.data(), terms, b.grads, b.ws, method.hyper_request(), moments);
    if (!finite_or_skip(sae, b, step, bs)) return;
    update(sae, st_, method, b, terms, bs, step);
    const LatentHealth health = update_latent_health(st_, bs.fires, N_, step, density_from(), cfg_);
    maybe_resample(sae, st_, method, b, step);
    const double ev = batch_explained_variance(moments, bs, N_);
    metrics_.add(step, bs, ev, N_);
    tokens_this_run_ += N_;
    report_step(method, step, bs, terms, ev, health);
    result_.steps = step + 1;
    const int64_t dropped = step + 1 == S_ ? dropped_rows(comm_, feed.loaders) : 0;
    if (step + 1 == S_ && writer_) export_final(sae, st_, method, health, dropped);
    maybe_checkpoint(sae, st_, method, step);
  }

  void finish() {
    comm_.barrier();  // every output is written before any process returns
    if (!writer_ && result_.steps == S_ && file_exists(cfg_.out_dir + "/training_summary.json"))
      result_.summary = json::parse(read_file(cfg_.out_dir + "/training_summary.json"));
    if (progress_) progress_->finish(fmt::format("loss {:.4g} L0 {:.1f} EV {:.3f}", metrics_.loss, metrics_.l0, metrics_.ev));
  }

 private:
  // The step's device and host buffers and (forward-mode hypergradients) the shadow
  // SAE that evaluates the training gradient at shifted parameters on the same batch.
  struct Buffers {
    SaeWorkspace ws;
    SaeParams grads;
    Tensor X;                  // [Nl, d] this process's rows, scaled
    std::vector<float> xh;     // [Nl, d] the same on the host
    int64_t Np, Nl;            // rows per part, rows in this process
    std::unique_ptr<Sae> shadow;
    std::unique_ptr<DataParallelStep> shadow_dp;
    std::unique_ptr<SaeWorkspace> shadow_ws;
    Buffers(const TrainingRun& r, const Sae& sae, const DataParallelStep& dp, const MethodState& method)
        : ws(sae.config(), dp.part_rows(), r.be_.device()),
          grads(sae.config(), r.be_.device()),
          X({dp.local_rows(), r.d_}, DType::F32, r.be_.device()),
          xh(static_cast<size_t>(dp.local_rows() * r.d_)),
          Np(dp.part_rows()),
          Nl(dp.local_rows()) {
      if (method.needs_gradient_at()) {
        shadow = std::make_unique<Sae>(sae.config(), r.be_);
        shadow_dp = std::make_unique<DataParallelStep>(*shadow, r.comm_, r.cfg_.grad_partitions, r.N_);
        shadow_ws = std::make_unique<SaeWorkspace>(sae.config(), Np, r.be_.device());
      }
    }
  };

  int64_t density_from() const { return S_ - std::max<int64_t>(1, S_ / 5); }  // density over the last 20%

  // Resumes from the latest checkpoint or initialises; returns the first step to run.
  int64_t start(Sae& sae, TrainState& st, MethodState& method) {
    if (!latest_) {
      init_fresh(sae, cfg_, data_);
      return 0;
    }
    const int64_t step = load_checkpoint(*latest_, sae, st);
    const json meta = read_checkpoint_meta(*latest_);
    method.load(SafetensorsFile(*latest_ + "/state.safetensors"), meta);
    result_.resumed = true;
    result_.resumed_from_step = step;
    skipped_ = meta.value("skipped_batches", int64_t{0});
    metrics_.restore(meta);
    last_checkpoint_ = *latest_;
    return step;
  }

  void open_logs(const MethodState& method, int64_t step) {
    if (!writer_) return;
    const std::string& out = cfg_.out_dir;
    truncate_log(out + "/train_log.csv", step, kLogHeader);
    if (method.dual()) truncate_log(out + "/alpha_log.csv", step, kAlphaHeader);
    log_.open(out + "/train_log.csv", std::ios::app);
    if (method.dual()) alpha_log_.open(out + "/alpha_log.csv", std::ios::app);
    if (cfg_.progress) progress_ = std::make_unique<Progress>(fmt::format("train {} F={}", cfg_.architecture, F_), S_ * N_);
  }

  // Hierarchical SAEs train parents alone until children_start_fraction, then (from_parent)
  // initialise the children from their parents.
  void schedule_children(Sae& sae, TrainState& st, MethodState& method, int64_t step) {
    if (sc_.architecture != SaeArchitecture::Hierarchical) return;
    const int64_t start = static_cast<int64_t>(std::ceil(cfg_.children_start_fraction * static_cast<double>(S_)));
    children_on_ = step >= start;
    sae.set_children_on(children_on_);
    if (step == start && start > 0 && cfg_.children_init == "from_parent") {
      init_children_from_parents(sae, st, cfg_.seed ^ 0xC41D5ull);
      method.reset_tangents();
    }
  }

  // The top-k family's auxiliary loss revives latents dead for dead_window_tokens.
  void mark_dead(SaeLossTerms& terms, const TrainState& st) const {
    terms.dead.assign(static_cast<size_t>(F_), 0.f);
    for (int64_t i = 0; i < F_; ++i)
      terms.dead[i] = st.tokens_since_fired[i] >= static_cast<float>(cfg_.dead_window_tokens) ? 1.f : 0.f;
  }

  // A finite loss and gradient: true. Otherwise the batch is skipped (false) where on_nonfinite =
  // "skip_batch" allows it, or training stops with fault.json and one error naming the cause.
  bool finite_or_skip(const Sae& sae, Buffers& b, int64_t step, const SaeBatchStats& bs) {
    const double grad_sq = be_.sum_squares(b.grads.flat);
    if (std::isfinite(bs.loss()) && std::isfinite(grad_sq)) return true;
    bool params_bad = false;
    json fault = diagnose_nonfinite(sae, b.ws, b.xh.data() + (b.Nl - b.Np) * d_, b.Np, params_bad);  // ws: last part
    fault["step"] = step + 1;
    fault["loss"] = fmt::format("{}", bs.loss());
    fault["gradient_squared_norm"] = fmt::format("{}", grad_sq);
    const std::string what =
        fmt::format("step {}: loss {}, gradient ‖g‖² {}; {}", step + 1, bs.loss(), grad_sq, describe_fault(fault));
    if (skip_nonfinite_ && !params_bad && skipped_ < cfg_.max_skipped_batches) {
      if (++skipped_ <= 10 && writer_) std::fprintf(stderr, "\nskipping the batch of %s\n", what.c_str());
      result_.steps = step + 1;
      return false;
    }
    fault["last_checkpoint"] = last_checkpoint_;
    fault["skipped_batches"] = skipped_;
    if (writer_) write_file_atomic(cfg_.out_dir + "/fault.json", fault.dump(2) + "\n");
    fail("training stopped at {}{}. Nothing after the last checkpoint ({}) was written; details in '{}/fault.json'. "
         "Fix the cause and rerun to resume from that checkpoint{}",
         what, skipped_ >= cfg_.max_skipped_batches && skip_nonfinite_ ? " (max_skipped_batches reached)" : "",
         last_checkpoint_.empty() ? "none yet" : last_checkpoint_, cfg_.out_dir,
         params_bad ? " (the parameters themselves are non-finite, so skipping batches cannot help)"
                    : ", or set on_nonfinite = \"skip_batch\"");
  }

  // α's step, Adam, projections, statistics (update_step.hpp); then α's log row.
  void update(Sae& sae, TrainState& st, MethodState& method, Buffers& b, const SaeLossTerms& terms,
              const SaeBatchStats& bs, int64_t step) {
    const GradientAt gradient_at = [&](TensorView params, SaeParams& out) {
      be_.copy(b.shadow->params().flat, params);
      b.shadow->set_children_on(children_on_);
      b.shadow->set_sparse(sae.sparse());
      BatchMoments unused;
      b.shadow_dp->forward_backward(b.X, b.xh.data(), terms, out, *b.shadow_ws, nullptr, unused);
    };
    lr_ = lr_at(cfg_, step, S_);
    apply_update(sae, b.grads, st.adam_m, st.adam_v, method, cfg_, {bs, terms, gradient_at, lr_, step + 1});
    if (!writer_ || !method.dual()) return;
    const auto alphas = method.alphas();
    for (size_t l = 0; l < alphas.size(); ++l)
      alpha_log_ << fmt::format("{},{},{:.8g},{:.8g},{:.6g},{:.6g},{:.6g}\n", step + 1, l, alphas[l],
                                method.alpha().theta[l], method.alpha().last_signal[l], method.last_J(),
                                method.last_lambda_J());
  }

  // Anthropic-style resampling of dead latents every resample_every_steps (until its fraction).
  void maybe_resample(Sae& sae, TrainState& st, MethodState& method, Buffers& b, int64_t step) {
    if (cfg_.resample_every_steps <= 0 || step == 0 || step % cfg_.resample_every_steps != 0 ||
        static_cast<double>(step) >= cfg_.resample_until_fraction * static_cast<double>(S_))
      return;
    sae.decode(b.ws, N_);
    if (resample_dead(sae, st, b.xh, to_host_f32(be_, b.ws.xhat.view().rows(0, N_)), N_, cfg_.dead_window_tokens,
                      cfg_.seed ^ (0xA5A5A5A5ull * static_cast<uint64_t>(step + 1))) > 0)
      method.reset_tangents();
  }

  // train_log.csv every log_every steps and the progress bar.
  void report_step(const MethodState& method, int64_t step, const SaeBatchStats& bs, const SaeLossTerms& terms,
                   double ev, const LatentHealth& health) {
    if (!writer_) return;
    const double secs = seconds();
    if ((step + 1) % cfg_.log_every == 0 || step + 1 == S_) {
      log_ << fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.4g},{:.5f},{:.4g},{:.4g},{:.4f},{:.4f},{:.0f}\n",
                          step + 1, (step + 1) * N_, bs.loss(), bs.sse / N_, bs.penalty / N_, bs.aux / N_, bs.l0 / N_,
                          ev, lr_, terms.l1_coefficient, double(health.dead) / F_, double(health.dense) / F_,
                          tokens_this_run_ / secs);
      log_.flush();
    }
    if (!progress_) return;
    std::string extra = fmt::format("loss {:.4g} L0 {:.1f} EV {:.3f} dead {:.1f}%", metrics_.loss, metrics_.l0,
                                    metrics_.ev, 100.0 * health.dead / F_);
    if (method.dual()) {
      extra += " α";
      for (double a : method.alphas()) extra += fmt::format(" {:.3f}", a);
    }
    progress_->update((step + 1) * N_, extra);
  }

  // The SAELens export and training_summary.json, before the final checkpoint: a final checkpoint
  // implies a finished export.
  void export_final(const Sae& sae, const TrainState& st, MethodState& method, const LatentHealth& health,
                    int64_t dropped) {
    std::vector<float> density(static_cast<size_t>(F_));
    for (int64_t i = 0; i < F_; ++i)
      density[i] = static_cast<float>(st.density_fires[i] / std::max(1.0, st.density_tokens));
    json& sm = result_.summary;
    sm = {{"architecture", cfg_.architecture},
          {"d_in", d_},
          {"d_sae", F_},
          {"steps", S_},
          {"tokens", S_ * N_},
          {"act_scale", sae.config().act_scale},
          {"final_loss", metrics_.loss},
          {"final_mse", metrics_.mse},
          {"final_l0", metrics_.l0},
          {"final_explained_variance", metrics_.ev},
          {"dead_fraction", double(health.dead) / F_},
          {"dense_fraction", double(health.dense) / F_},
          {"tokens_per_s_this_run", tokens_this_run_ / seconds()},
          {"skipped_batches", skipped_},
          {"dropped_nonfinite_rows", dropped},
          {"processes", comm_.size()},
          {"grad_partitions", cfg_.grad_partitions},
          {"resumed_from_step", result_.resumed_from_step}};
    json extra = {{"training", sm}, {"config", train_config_to_json(cfg_)}};
    const std::string& out = cfg_.out_dir;
    if (method.dual()) {
      alpha_log_.flush();
      sm["alpha_mode"] = cfg_.alpha_mode;
      sm["final_alpha"] = method.alphas();
      sm["alpha"] = alpha_summary(out + "/alpha_log.csv", method.alphas().size());
      write_file_atomic(out + "/alpha_summary.json", sm["alpha"].dump(2) + "\n");
      extra["training"] = sm;
      extra["penalty"] = {{"type", "dual_adaptive"}, {"alpha_mode", cfg_.alpha_mode}, {"alpha", method.alphas()},
                          {"gamma", cfg_.gamma}};
    }
    export_saelens(sae, out + "/sae", density, extra);
    if (method.dual()) {  // for dashboards: what each latent's penalty weighed at the end
      std::vector<float> wf, wm, w;
      method.penalty_weights(wf, wm, w);
      write_safetensors(out + "/sae/penalty_weights.safetensors",
                        {{"w_freq", DType::F32, {F_}, wf.data()}, {"w_mag", DType::F32, {F_}, wm.data()},
                         {"w", DType::F32, {F_}, w.data()}},
                        {{"alpha", json(method.alphas()).dump()}});
    }
    write_file_atomic(out + "/training_summary.json", sm.dump(2) + "\n");
  }

  void maybe_checkpoint(const Sae& sae, const TrainState& st, const MethodState& method, int64_t step) {
    if (!writer_) return;
    bool due = false;
    for (double f : cfg_.checkpoint_fractions) due = due || round_step(f, S_) == step + 1;
    if (!due) return;
    json meta = {{"act_scale", sae.config().act_scale},
                 {"tokens", (step + 1) * N_},
                 {"fraction", double(step + 1) / S_},
                 {"ema", metrics_.to_json()},
                 {"skipped_batches", skipped_}};
    std::vector<std::pair<std::string, std::vector<float>>> extra;
    method.save(extra, meta);
    if (method.dual()) alpha_log_.flush();
    last_checkpoint_ = save_checkpoint(cfg_.out_dir + "/checkpoints", step + 1, sae, st, meta, extra);
  }

  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

  const TrainConfig& cfg_;
  TrainingData& data_;
  Communicator& comm_;
  TrainResult& result_;
  const bool writer_;  // one process writes every output
  Backend& be_;
  SaeConfig sc_;
  const int64_t N_, d_, F_, S_;  // batch rows, width, latents, steps
  const std::optional<std::string> latest_;
  const bool skip_nonfinite_;
  bool children_on_ = true;
  float lr_ = 0;
  RunningMetrics metrics_;
  int64_t skipped_ = 0;  // steps that made no update (skip_batch)
  int64_t tokens_this_run_ = 0;
  std::string last_checkpoint_;
  std::ofstream log_, alpha_log_;
  std::unique_ptr<Progress> progress_;
  std::chrono::steady_clock::time_point t0_;
  // The run's state from begin() on.
  std::unique_ptr<Sae> sae_;
  TrainState st_;
  std::unique_ptr<MethodState> method_;
  std::unique_ptr<DataParallelStep> dp_;
  std::unique_ptr<Buffers> b_;
  int64_t first_step_ = 0;
};

}  // namespace

std::vector<TrainResult> train_saes(const std::vector<TrainConfig>& user_cfgs) {
  Communicator& comm = world();
  const bool writer = comm.rank() == 0;
  std::vector<TrainConfig> cfgs = user_cfgs;
  for (TrainConfig& c : cfgs)
    if (c.grad_partitions == 0) c.grad_partitions = comm.size();
  check_shared_pass(cfgs);
  const std::unique_ptr<TrainingData> data = open_training_data(cfgs.front());
  for (const TrainConfig& c : cfgs) check_resolved_width(c, *data);
  for (const TrainConfig& c : cfgs) check_and_record_config(c, *data, comm.size(), writer);
  comm.barrier();  // the other processes read the run directories only once they are set up
  std::vector<TrainResult> results(cfgs.size());
  std::vector<std::unique_ptr<TrainingRun>> runs;  // the pass's unfinished runs
  for (size_t i = 0; i < cfgs.size(); ++i) {
    const std::string& out = cfgs[i].out_dir;
    if (file_exists(out + "/training_summary.json") && dir_exists(out + "/sae")) {
      results[i].already_complete = true;
      results[i].summary = json::parse(read_file(out + "/training_summary.json"));
      continue;
    }
    cfgs[i].progress = cfgs[i].progress && runs.empty();  // one progress bar for the pass
    runs.push_back(std::make_unique<TrainingRun>(cfgs[i], *data, comm, results[i]));
  }
  if (runs.empty()) return results;
  // Every run has the same steps (check_shared_pass); the pass starts at the earliest checkpoint and
  // each run joins at its own (they may checkpoint at different fractions).
  int64_t first = runs.front()->steps();
  for (const auto& r : runs) first = std::min(first, r->begin());
  const TrainConfig& c = cfgs.front();
  const int local = c.grad_partitions / comm.size();
  BatchFeed feed(*data, c, comm.rank() * local, local, first);
  for (int64_t step = first; step < runs.front()->steps(); ++step) {
    const float* rows = feed.next();
    for (const auto& r : runs) r->train_step(step, rows, feed);
  }
  for (const auto& r : runs) r->finish();
  return results;
}

TrainResult train_sae(const TrainConfig& cfg) { return train_saes({cfg}).front(); }

}  // namespace saelab
