// The balance α between frequency and magnitude weighting (method.md §2–3), per level:
//   fixed:   α is a number chosen by hand (the manual sweep)
//   learned: α = σ(θ); θ ← θ − η_θ · h(t) · α(1 − α), h(t) = ⟨∇_W J(t), ∂ΔW(t−1)/∂α⟩ — hypergradient
//            descent (Baydin et al. 2018) through the optimizer's actual (Adam) update
//   naive:   α is a parameter of the training loss: Adam on ∂L/∂α, clamped to [0, 1] (the ablation)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace saelab {

enum class AlphaMode : uint8_t { Fixed, Learned, Naive };
AlphaMode alpha_mode_from_name(const std::string& s);  // "fixed", "learned", "naive"; throws Error
const char* alpha_mode_name(AlphaMode m);

class AlphaController {
 public:
  AlphaController() = default;
  // adam_theta (learned): θ takes Adam steps of size lr on dJ/dθ = h·α(1 − α) instead of
  // θ ← θ − lr·h·α(1 − α); the step no longer scales with h's heavy-tailed magnitude or vanishes
  // where the sigmoid saturates.
  AlphaController(AlphaMode mode, int levels, double alpha0, double lr, bool adam_theta = false);
  // One starting α per level (the fixed α of a per-level manual sweep).
  AlphaController(AlphaMode mode, const std::vector<double>& alpha0, double lr, bool adam_theta = false);
  AlphaMode mode() const { return mode_; }
  std::vector<double> alphas() const;
  double alpha(int level) const;
  // learned: one hypergradient per level.
  void hyper_step(const std::vector<double>& h);
  // naive: ∂L/∂α per level; Adam (β = 0.9, 0.999) then clamp to [0, 1].
  void naive_step(const std::vector<double>& grad);

  // State (saved in checkpoints): θ per level for learned, α per level otherwise; naive Adam moments.
  std::vector<double> theta, adam_m, adam_v;
  int64_t naive_t = 0;
  std::vector<double> last_signal;  // the latest h (learned) or ∂L/∂α (naive), per level

 private:
  AlphaMode mode_ = AlphaMode::Fixed;
  double lr_ = 0;
  bool adam_theta_ = false;
  void adam_update(size_t level, double grad, bool clamp01);
};

// alpha_log.csv (step,level,alpha,...) as per-level trajectories: level -> (steps, alphas).
struct AlphaTrajectory {
  std::vector<double> step, alpha;
};
std::vector<AlphaTrajectory> read_alpha_log(const std::string& path);

// Convergence of one α trajectory (one value per step): converged at t* when α's range over the
// last W = window_fraction·T steps is below eps from t* to the end; flags for the bounds and for
// oscillation (sign changes of Δα in more than osc_rate of the last window's steps while the range
// there is at least eps).
struct AlphaConvergence {
  bool converged = false;
  int64_t t_star = -1;  // first step (1-based) of convergence; -1 if not converged
  double final_alpha = 0;
  double final_window_range = 0;
  bool at_bound_low = false, at_bound_high = false, oscillating = false;
  double sign_change_rate = 0;
};
AlphaConvergence analyze_alpha(const std::vector<double>& alpha, double window_fraction = 0.1, double eps = 0.01,
                               double osc_rate = 0.3);

}  // namespace saelab
