#include <algorithm>
#include <filesystem>
#include <set>
#include <toml++/toml.h>

#include "saelab/alpha.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/train.hpp"
#include "train/toml_ascii.hpp"
#include "util/json_number.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

json toml_to_json(const toml::node& n) {
  if (auto t = n.as_table()) {
    json j = json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = toml_to_json(v);
    return j;
  }
  if (auto a = n.as_array()) {
    json j = json::array();
    for (const auto& v : *a) j.push_back(toml_to_json(v));
    return j;
  }
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return i->get();
  if (auto f = n.as_floating_point()) return f->get();
  if (auto b = n.as_boolean()) return b->get();
  return nullptr;
}

// One setting as the field's type. Numbers are range-checked (json_number.hpp): a float into an
// int, a value past the type's range or a TOML nan/inf must fail, not convert.
template <typename T>
T setting(const json& v, const char* key, const std::string& where) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string>) {
    return v.get<T>();
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    if (!v.is_array()) fail("{}: {} must be a list of strings, found {}", where, key, v.dump());
    T out;
    for (const auto& x : v) {
      if (!x.is_string()) fail("{}: {} must be a list of strings, found {}", where, key, v.dump());
      out.push_back(x.get<std::string>());
    }
    return out;
  } else if constexpr (std::is_integral_v<T>) {
    return json_int<T>(v, fmt::format("{}: {}", where, key));
  } else if constexpr (std::is_floating_point_v<T>) {
    return json_float<T>(v, fmt::format("{}: {}", where, key));
  } else if constexpr (std::is_same_v<T, std::vector<int>>) {
    if (!v.is_array()) fail("{}: {} must be a list of integers, found {}", where, key, v.dump());
    T out;
    for (const auto& x : v) out.push_back(json_int<int>(x, fmt::format("{}: {}", where, key)));
    return out;
  } else {
    static_assert(std::is_same_v<T, std::vector<double>>);
    if (!v.is_array()) fail("{}: {} must be a list of numbers, found {}", where, key, v.dump());
    T out;
    for (const auto& x : v) out.push_back(json_float<double>(x, fmt::format("{}: {}", where, key)));
    return out;
  }
}

// The settings of the top-k family, jumprelu and matryoshka (train.hpp documents each). k and the
// Matryoshka widths are checked against d_sae here when it is given, else at the start of training
// (d_sae = expansion_factor · d_in needs the activations' width).
void check_architecture_settings(const TrainConfig& c, const std::string& where) {
  const SaeArchitecture a = sae_architecture_from_name(c.architecture);
  if (sae_is_topk_family(a) && c.k <= 0) fail("{}: k must be positive for a {} SAE, found {}", where, c.architecture, c.k);
  if (sae_is_topk_family(a) && c.d_sae > 0 && c.k > c.d_sae)
    fail("{}: k must be at most d_sae = {} (a {} SAE keeps at most d_sae latents per token), found k = {}", where,
         c.d_sae, c.architecture, c.k);
  if (!(c.topk_threshold_lr > 0 && c.topk_threshold_lr <= 1))
    fail("{}: topk_threshold_lr must be in (0, 1], found {}", where, c.topk_threshold_lr);
  if (!(c.jumprelu_init_threshold > 0))
    fail("{}: jumprelu_init_threshold must be positive (the threshold is exp(log θ)), found {}", where,
         c.jumprelu_init_threshold);
  if (!(c.jumprelu_bandwidth > 0)) fail("{}: jumprelu_bandwidth must be positive, found {}", where, c.jumprelu_bandwidth);
  if (c.l0_coefficient < 0) fail("{}: l0_coefficient must be non-negative, found {}", where, c.l0_coefficient);
  if (c.decode == "sparse" && a == SaeArchitecture::JumpReLU)
    fail("{}: decode = \"sparse\" cannot train a jumprelu SAE: its threshold gradient needs ∂L/∂f where f = 0; "
         "use decode = \"dense\" or \"auto\"", where);
  const bool matryoshka = a == SaeArchitecture::MatryoshkaBatchTopK;
  if (!matryoshka && !c.matryoshka_widths.empty())
    fail("{}: matryoshka_widths is a setting of architecture = \"matryoshka_batchtopk\", not {}", where, c.architecture);
  if (matryoshka && !c.matryoshka_widths.empty()) {
    try {
      check_matryoshka_widths(c.matryoshka_widths, c.d_sae > 0 ? c.d_sae : c.matryoshka_widths.back());
    } catch (const Error& e) {
      fail("{}: {}", where, e.what());
    }
  }
}

}  // namespace

std::vector<int> resolved_matryoshka_widths(const TrainConfig& c, int d_sae) {
  if (!c.matryoshka_widths.empty()) return c.matryoshka_widths;
  const int parents = c.n_parents > 0 ? c.n_parents : d_sae / (1 + std::max(c.children_per_parent, 0));
  return {std::clamp(parents, 1, std::max(d_sae - 1, 1)), d_sae};
}

float penalty_coefficient(const TrainConfig& c) {
  return c.architecture == "jumprelu" ? c.l0_coefficient : c.l1_coefficient;
}

#define SAELAB_TRAIN_FIELDS(X)                                                                                  \
  X(activations) X(out_dir) X(architecture) X(d_sae) X(expansion_factor) X(k) X(k_aux) X(aux_coefficient)       \
  X(total_tokens) X(batch_size) X(lr) X(adam_beta1) X(adam_beta2) X(adam_eps) X(lr_warmup_fraction)             \
  X(lr_decay_fraction) X(l1_coefficient) X(l1_warmup_fraction) X(b_dec_init) X(normalize_activations)           \
  X(decoder_init_norm) X(seed) X(buffer_tokens) X(dead_window_tokens) X(dense_threshold) X(resample_every_steps) \
  X(resample_until_fraction) X(checkpoint_fractions) X(log_every) X(n_parents) X(children_per_parent) X(penalty) X(decode)    \
  X(gamma) X(stats_decay) X(p_target) X(alpha_mode) X(alpha) X(alpha_per_level) X(alpha_lr) X(meta_objective) X(smooth_l0_eps_factor)  \
  X(target_l0) X(l0_controller_rate) X(l0_controller) X(gate_ste_width) X(children_start_fraction) X(children_init) X(orthogonal_children) X(hyper_horizon_decay) X(on_nonfinite) X(max_skipped_batches) X(grad_partitions) X(device) X(hypergradient) X(alpha_optimizer) \
  X(topk_threshold_lr) X(jumprelu_bandwidth) X(jumprelu_init_threshold) X(l0_coefficient) X(matryoshka_widths) \
  X(model) X(corpus) X(hook) X(context_size) X(lm_batch_size) X(shuffle)

json train_config_to_json(const TrainConfig& c) {
  json j;
#define X(name) j[#name] = c.name;
  SAELAB_TRAIN_FIELDS(X)
#undef X
  return j;
}

TrainConfig train_config_from_json(const json& in, const std::string& where) {
  // Sections ([sae], [train], [data], ...) are flattened: keys are unique across them.
  if (!in.is_object()) fail("{}: expected a table of settings, found {}", where, in.type_name());
  json flat = json::object();
  for (auto it = in.begin(); it != in.end(); ++it) {
    if (it.value().is_object())
      for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) flat[jt.key()] = jt.value();
    else flat[it.key()] = it.value();
  }
  TrainConfig c;
  std::set<std::string> known;
#define X(name) known.insert(#name);
  SAELAB_TRAIN_FIELDS(X)
#undef X
  for (auto it = flat.begin(); it != flat.end(); ++it)
    if (!known.count(it.key())) fail("{}: unknown setting '{}'", where, it.key());
  try {
#define X(name) \
  if (flat.contains(#name)) c.name = setting<decltype(c.name)>(flat[#name], #name, where);
    SAELAB_TRAIN_FIELDS(X)
#undef X
  } catch (const json::exception& e) {
    fail("{}: a setting has the wrong type: {}", where, e.what());
  }
  sae_architecture_from_name(c.architecture);
  if (c.batch_size < 1) fail("{}: batch_size must be positive, got {}", where, c.batch_size);
  if (c.device != "cpu" && c.device != "cuda") fail("{}: device must be cpu or cuda, got '{}'", where, c.device);
  if (c.grad_partitions < 0) fail("{}: grad_partitions must be 0 (one per process) or positive, got {}", where, c.grad_partitions);
  if (c.grad_partitions > 0 && c.batch_size % c.grad_partitions != 0)
    fail("{}: batch_size {} must be a multiple of grad_partitions {}", where, c.batch_size, c.grad_partitions);
  if (c.grad_partitions > 1 && c.resample_every_steps > 0)
    fail("{}: resample_every_steps needs the whole batch in one process; it cannot be combined with grad_partitions {}",
         where, c.grad_partitions);
  if (c.lr <= 0) fail("{}: lr must be positive, got {}", where, c.lr);
  if (c.b_dec_init != "geometric_median" && c.b_dec_init != "mean" && c.b_dec_init != "zeros")
    fail("{}: b_dec_init must be geometric_median, mean or zeros, got '{}'", where, c.b_dec_init);
  if (c.normalize_activations != "expected_average_only_in" && c.normalize_activations != "none")
    fail("{}: normalize_activations must be expected_average_only_in or none, got '{}'", where,
         c.normalize_activations);
  if (c.decode != "auto" && c.decode != "dense" && c.decode != "sparse")
    fail("{}: decode must be auto, dense or sparse, got '{}'", where, c.decode);
  if (c.penalty != "l1" && c.penalty != "dual_adaptive")
    fail("{}: penalty must be l1 or dual_adaptive, got '{}'", where, c.penalty);
  if (c.penalty == "dual_adaptive" && c.architecture != "standard" && c.architecture != "hierarchical")
    fail("{}: the dual-adaptive penalty needs an L1-penalised SAE (standard or hierarchical), not {}", where,
         c.architecture);
  check_architecture_settings(c, where);
  alpha_mode_from_name(c.alpha_mode);
  if (c.on_nonfinite != "stop" && c.on_nonfinite != "skip_batch")
    fail("{}: on_nonfinite must be stop or skip_batch, got '{}'", where, c.on_nonfinite);
  if (c.alpha < 0 || c.alpha > 1) fail("{}: alpha must be in [0, 1], got {}", where, c.alpha);
  for (double a : c.alpha_per_level)
    if (a < 0 || a > 1) fail("{}: alpha_per_level entries must be in [0, 1], got {}", where, a);
  if (c.architecture != "hierarchical" && c.alpha_per_level.size() > 1)
    fail("{}: alpha_per_level has {} entries but a {} SAE has one level", where, c.alpha_per_level.size(), c.architecture);
  if (c.architecture == "hierarchical" && !c.alpha_per_level.empty() && c.alpha_per_level.size() != 2)
    fail("{}: alpha_per_level of a hierarchical SAE needs 2 entries (parents, children), got {}", where,
         c.alpha_per_level.size());
  if (c.alpha_mode != "fixed" && c.penalty != "dual_adaptive")
    fail("{}: alpha_mode '{}' needs penalty = \"dual_adaptive\"", where, c.alpha_mode);
  if (c.alpha_optimizer != "sgd" && c.alpha_optimizer != "adam")
    fail("{}: alpha_optimizer must be sgd or adam, got '{}'", where, c.alpha_optimizer);
  if (c.hypergradient != "one_step" && c.hypergradient != "forward")
    fail("{}: hypergradient must be one_step or forward, got '{}'", where, c.hypergradient);
  if (c.meta_objective != "mse_smooth_l0" && c.meta_objective != "mse")
    fail("{}: meta_objective must be mse_smooth_l0 or mse, got '{}'", where, c.meta_objective);
  if (c.l0_controller != "linear" && c.l0_controller != "log")
    fail("{}: l0_controller must be linear or log, got '{}'", where, c.l0_controller);
  if (c.architecture == "hierarchical" && c.children_per_parent < 1)
    fail("{}: children_per_parent must be at least 1, got {}", where, c.children_per_parent);
  if (!c.model.empty() && !c.activations.empty())
    fail("{}: set either activations (a harvested directory) or model (stream from the LM), not both", where);
  if (c.context_size < 2) fail("{}: context_size must be at least 2, got {}", where, c.context_size);
  if (c.lm_batch_size < 1) fail("{}: lm_batch_size must be positive, got {}", where, c.lm_batch_size);
  for (double f : c.checkpoint_fractions)
    if (f <= 0 || f > 1) fail("{}: checkpoint fractions must be in (0, 1], got {}", where, f);
  return c;
}

json read_config_file(const std::string& path) {
  if (!file_exists(path)) fail("config file '{}' does not exist", path);
  if (std::filesystem::path(path).extension() == ".toml") {
    const std::string text = toml_ascii(read_file(path), path);  // see toml_ascii.hpp
    try {
      return toml_to_json(toml::parse(text, path));
    } catch (const toml::parse_error& e) {
      fail("'{}' is not valid TOML: {} (line {})", path, std::string(e.description()), e.source().begin.line);
    }
  }
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
}

TrainConfig load_train_config(const std::string& path) {
  return train_config_from_json(read_config_file(path), "'" + path + "'");
}

}  // namespace saelab
