// What a training run settles before its first step: which settings it refuses, its SAE's shape
// and metadata, the activation scale, fresh parameters, and per step the dense or sparse path.
#pragma once
#include <optional>
#include <string>

#include "training_data.hpp"
#include "saelab/backend.hpp"
#include "saelab/sae.hpp"
#include "saelab/train.hpp"

namespace saelab {

// The step's choice under `decode`: the top-k family's L0 is k (per row, or on average for the
// batch top-k ones); standard and hierarchical use the running L0 `l0_ema` of the steps so far
// (RunningMetrics, checkpointed, so a resumed run replays the same choices), dense before their
// first step; sparse while L0/F ≤ the backend's crossover. jumprelu is always dense.
bool sparse_step(const TrainConfig& cfg, const SaeConfig& sc, const Backend& be, int64_t step, double l0_ema);

// Refuses settings this run cannot use. The writer records config.json, or checks that a resumed
// run's stored config is this one (settings that change nothing about a fault-free run may differ,
// e.g. switching to on_nonfinite = "skip_batch" after a stop; runs from before grad_partitions
// existed had one part).
void check_and_record_config(const TrainConfig& cfg, const TrainingData& data, int processes, bool writer);

// The settings that need d_sae when it comes from expansion_factor · d_in (the activations' width):
// the top-k family's k and the Matryoshka prefixes, checked before the run directory is touched.
void check_resolved_width(const TrainConfig& cfg, const TrainingData& data);

// The SAE's shape and metadata from the config and the activations (act_scale is set later).
SaeConfig sae_config_for(const TrainConfig& cfg, const TrainingData& data, const Backend& be);

// act_scale: the resumed run's, or SAELens' expected_average_only_in (E‖x·s‖² = d) from 100k rows.
// Both from the data's row stream (a directory's shards in order, or the LM's first rows).
float activation_scale(const TrainConfig& cfg, TrainingData& data, const std::optional<std::string>& latest);

// Fresh parameters; b_dec from 8192 scaled rows (their mean or geometric median) unless "zeros".
void init_fresh(Sae& sae, const TrainConfig& cfg, TrainingData& data);

}  // namespace saelab
