// `saelab train`: one SAE on one activation directory, or on activations streamed from the LM
// (`model`, below); several SAEs in one pass over the same data (train_saes). Defaults live here
// and nowhere else; every run writes its resolved config next to its outputs.
//   <out_dir>/config.json            the resolved TrainConfig
//   <out_dir>/train_log.csv          step, tokens, loss, mse, penalty, aux, l0, explained_variance, lr, λ,
//                                    dead and dense fractions, tokens/s (every log_every steps)
//   <out_dir>/checkpoints/step_N/    state.safetensors + trainer.json at each checkpoint fraction
//   <out_dir>/sae/                   the final SAE in SAELens layout (sae_io.hpp)
//   <out_dir>/training_summary.json  final metrics; its presence marks the run complete
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

struct TrainConfig {
  std::string activations;  // directory written by `saelab harvest`
  // Streamed training instead of `activations` (activation_stream.hpp): the LM at `model` runs over
  // `corpus` as training goes and refills the mixing buffer of buffer_tokens rows; nothing goes to
  // disk. Contexts are packed, batched (lm_batch_size per forward) and filtered (no BOS/EOS rows)
  // exactly as `saelab harvest` does, so with equal context_size and lm_batch_size a streamed run
  // sees the rows of an f32 harvest of the same corpus. act_scale and b_dec come from the stream's
  // first min(buffer_tokens, total_tokens) rows (SAELens' storage buffer; a directory: all its rows).
  // Needs total_tokens > 0 and buffer_tokens ≥ batch_size. A resumed run rebuilds the buffer
  // exactly from the checkpoint's step: it replays the stream on token counts alone (no LM) and
  // forwards again only the LM batches whose rows the buffer still held. With grad_partitions G > 1
  // part g forwards the corpus' contexts g, g + G, ... into its own buffer (seed + g), and the
  // statistics come from the unsplit stream's first rows, forwarded apart by every process.
  std::string model;                // HF directory, GGUF or llama2.c .bin; empty: use `activations`
  std::vector<std::string> corpus;  // files and directories (.txt paragraphs, .jsonl "text")
  std::string hook;                 // e.g. blocks.9.hook_resid_post
  int context_size = 128;           // tokens per context, BOS included
  int lm_batch_size = 32;           // contexts per LM forward
  // false: batches in the order the rows arrive (shards in index order, harvest's row order; for a
  // stream, the LM's order), which makes a streamed run and a run on its harvest directly comparable.
  bool shuffle = true;
  std::string out_dir = "runs/run";
  // SAE
  // standard | topk | hierarchical | batchtopk | jumprelu | matryoshka_batchtopk (sae.hpp defines each)
  std::string architecture = "standard";
  int d_sae = 0;                          // 0: expansion_factor * d_in
  int expansion_factor = 8;
  // topk: latents per token; batchtopk, matryoshka_batchtopk: k·N latents kept over a batch of N
  // (k on average per token; with grad_partitions > 1 each part keeps k·N/G of its own rows, and the
  // threshold's EMA takes the smallest kept activation of all parts). At most d_sae.
  int k = 32, k_aux = 0;
  float aux_coefficient = 1.0f / 32.0f;
  // batchtopk, matryoshka_batchtopk: the inference threshold θ ← (1 − r)·θ + r·(smallest kept
  // activation) every step, from θ = 0 (SAELens' topk_threshold_lr; its default). In (0, 1].
  double topk_threshold_lr = 0.01;
  // jumprelu (SAELens' defaults): the rectangle kernel's width ε, the initial threshold (> 0), and
  // λ of the L0 penalty λ·(1/N) Σ_n Σ_i 1[pre_ni > θ_i] ("step", SAELens' default sparsity loss
  // mode: Gemma Scope's; the gradient reaches θ only, through the kernel). λ ramps up over
  // l1_warmup_fraction and follows target_l0's controller as the L1 coefficient does.
  float jumprelu_bandwidth = 0.05f;
  float jumprelu_init_threshold = 0.01f;
  float l0_coefficient = 1.0f;
  // matryoshka_batchtopk: the nested prefix widths, strictly increasing and ending at d_sae (e.g.
  // [128, 512, 2048, 4608]); every prefix reconstructs and their losses add (SAELens'
  // matryoshka_widths; unlike SAELens, a list that does not end at d_sae is an error, not extended).
  // Empty: the hierarchical SAE's two levels, [n_parents, d_sae] (n_parents as below), so the
  // experiment's Matryoshka run nests exactly where the two-level SAE splits parents from children.
  std::vector<int> matryoshka_widths;
  int n_parents = 0;            // hierarchical: 0 = d_sae / (1 + children_per_parent)
  int children_per_parent = 4;  // hierarchical: m
  // Hierarchical training aids (measured on planted hierarchies, see the issue notes): with the exact
  // gradient the step-function gate never tells a parent what turning off costs its children, and the
  // loss rises during training; a straight-through gate gradient of this width fixes that. Children
  // stay off for the first children_start_fraction of steps so parents settle on coarse concepts first.
  float gate_ste_width = 0.5f;
  float children_start_fraction = 0.3f;
  std::string children_init = "from_parent";  // when children switch on: from_parent | keep
  bool orthogonal_children = true;  // keep each child's decoder row orthogonal to its parent's
  // Penalty weighting (method.md §1): l1 (w_i = 1) | dual_adaptive (frequency/magnitude balance α)
  std::string penalty = "l1";
  // The step's products: dense GEMMs, or sparse (SaeConfig::sparse_decode: every product but the
  // encoder's forward over the non-zeros of f or ∂L/∂pre, N·L0·d instead of N·F·d). auto: per step,
  // sparse while L0/F ≤ Backend::sparse_step_max_l0_fraction(), L0 being k for the top-k family and
  // the running L0 (checkpointed) for standard and hierarchical, dense at their first step. sparse:
  // every architecture but jumprelu.
  std::string decode = "auto";
  float gamma = 0.5f, stats_decay = 0.99f, p_target = 0.01f;
  std::string alpha_mode = "fixed";  // fixed | learned | naive
  double alpha = 0.5;                // the fixed α, or the starting α of learned / naive
  // Per level instead ({parents, children} for hierarchical; one entry for standard): a per-level
  // manual sweep, to judge per-level learned α against. Empty: `alpha` for every level.
  std::vector<double> alpha_per_level;
  double alpha_lr = 0.01;            // the rate on θ (learned) or the Adam rate on α (naive)
  // learned: adam (Adam steps on θ with gradient h·α(1−α)) | sgd (method.md §2's plain step
  // θ −= η_θ·h·α(1−α), with η_θ = alpha_lr of order 5–20). h is heavy-tailed: plain steps stall where
  // the sigmoid saturates and a run of large h can throw α across the range (measured on planted
  // bound-case data: 0.001 → 0.9 within 60 steps, ending at 0.89 where the sweep's best is 0).
  std::string alpha_optimizer = "adam";
  std::string meta_objective = "mse_smooth_l0";  // J for learned α: mse_smooth_l0 | mse
  // Learned α's hypergradient: one_step (Baydin: through the last update only) or forward (the
  // total derivative dW/dα along the whole trajectory, with Hessian–vector products; one extra
  // forward/backward per level and step; see src/train/hypergradient.hpp).
  std::string hypergradient = "one_step";
  // one_step: 0 = Baydin's one-step hypergradient; e.g. 0.99 ≈ 100-step horizon (Hessian term
  // dropped). forward: 0 = no truncation; else the tangents fade by this factor per step.
  double hyper_horizon_decay = 0.0;
  double smooth_l0_eps_factor = 0.1;             // ε = this · mean active magnitude
  double target_l0 = 0;                          // > 0: multiplicative controller on λ toward this L0
  double l0_controller_rate = 0.01;
  // linear: ln λ += rate·(L0 − target)/target every step from the first. It winds up while λ is still
  // warming up (L0 is far above any target then) and leaves λ ~100× too large: on the d = 32 planted
  // data the SAE is dead (EV ≈ 0) for ~70% of training. log: ln λ += rate·ln(L0/target), held while
  // λ warms up (no wind-up); L0 stays at the target from the end of the warm-up on.
  std::string l0_controller = "linear";
  // Optimisation
  int64_t total_tokens = 0;  // 0: one pass over the activations
  int batch_size = 4096;
  float lr = 3e-4f, adam_beta1 = 0.9f, adam_beta2 = 0.999f, adam_eps = 1e-8f;
  float lr_warmup_fraction = 0.02f;  // linear warm-up over this fraction of steps
  float lr_decay_fraction = 0.2f;    // linear decay to 0 over the last fraction of steps
  float l1_coefficient = 5.0f;       // λ (standard, hierarchical; jumprelu uses l0_coefficient)
  float l1_warmup_fraction = 0.05f;  // λ ramps linearly from 0
  std::string b_dec_init = "geometric_median";  // geometric_median | mean | zeros
  std::string normalize_activations = "expected_average_only_in";  // or none
  float decoder_init_norm = 0.1f;
  uint64_t seed = 42;
  std::string device = "cpu";  // cpu | cuda (a -DSAELAB_CUDA=ON build on a machine with a GPU)
  int64_t buffer_tokens = 1 << 18;
  // Latent health
  int64_t dead_window_tokens = 200000;  // dead: no firing in the last this many tokens
  float dense_threshold = 0.1f;         // dense: firing on more than this fraction of tokens
  int64_t resample_every_steps = 0;     // 0: never resample dead latents
  float resample_until_fraction = 0.5f;
  // Numerical faults: a batch with NaN/Inf activations, loss or gradients either stops training
  // (the last checkpoint stays the newest output; fault.json says where it happened) or, with
  // skip_batch, is left out: its rows are dropped at load time, a non-finite step makes no update.
  std::string on_nonfinite = "stop";  // stop | skip_batch
  int64_t max_skipped_batches = 100;  // skip_batch: stop anyway after this many skipped steps
  // Data parallelism (`mpirun -np P saelab train ...`): the batch of batch_size rows is
  // grad_partitions equal parts; part g comes from its own shuffling loader (seed + g) over shards
  // g, g + G, g + 2G, ... (streamed: over the LM's contexts g, g + G, ...) and its gradient is that
  // of its own mean loss. Process r computes parts
  // [r·G/P, (r+1)·G/P); every process gathers all parts and adds them in part order, so P processes
  // end bit-identical to one process with the same grad_partitions (and the same OpenMP threads per
  // process). 0: one part per process (1 without MPI).
  int grad_partitions = 0;
  // Outputs
  std::vector<double> checkpoint_fractions = {0.1, 0.25, 0.5, 0.75, 1.0};
  int log_every = 10;
  bool progress = true;
};

// The sparsity penalty's coefficient of this architecture: l0_coefficient for jumprelu, else
// l1_coefficient (0 in effect for the top-k family, which has no penalty).
float penalty_coefficient(const TrainConfig& c);
// matryoshka_widths for an SAE of d_sae latents: the configured list, or [n_parents, d_sae] when it
// is empty (n_parents, else d_sae / (1 + children_per_parent), at least 1 and below d_sae).
std::vector<int> resolved_matryoshka_widths(const TrainConfig& c, int d_sae);

// A TOML or JSON file (by extension) as JSON; throws Error naming the file.
nlohmann::json read_config_file(const std::string& path);
// From a JSON or TOML file (by extension); unknown keys are an error naming the key.
TrainConfig load_train_config(const std::string& path);
TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json train_config_to_json(const TrainConfig& c);

struct TrainResult {
  bool already_complete = false;
  bool resumed = false;
  int64_t resumed_from_step = 0;
  int64_t steps = 0;
  nlohmann::json summary;  // contents of training_summary.json
};

TrainResult train_sae(const TrainConfig& cfg);
// Several SAEs in one pass over their data: every batch is read (for a stream: forwarded by the LM)
// once and trained on by each run in turn. The runs must agree on every key that decides a batch's
// rows (data or model, corpus, hook, context_size, lm_batch_size, shuffle, seed, buffer_tokens,
// batch_size, total_tokens, grad_partitions, on_nonfinite, device; one error names the first that
// differs) and have an out_dir each; each then ends bit-identical to training it alone. A killed
// pass resumes every run from its own last checkpoint. Results in the configs' order.
std::vector<TrainResult> train_saes(const std::vector<TrainConfig>& cfgs);

}  // namespace saelab
