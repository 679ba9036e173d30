// Results over training seeds (method.md §5): an experiment with several seeds trains every run of
// its plan once per seed; these functions group the runs by name, give each metric's mean and
// standard error over seeds, and compare two methods by their seed-paired difference (the same
// seed gives both the same batches, so the difference per seed removes the data-order noise they
// share) with a Student t interval.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace saelab {

struct SeedSummary {
  double mean = 0;
  double se = 0;  // sample standard deviation / √n; 0 with one seed (no error bar)
  int n = 0;
};
SeedSummary seed_summary(const std::vector<double>& v);

struct SeedPairedDifference {
  double mean = 0, se = 0;  // of a_s − b_s over seeds s
  double lo = 0, hi = 0;    // 95% Student t interval (n − 1 degrees of freedom); ±inf with one seed
  int n = 0;
  bool significant = false;  // the interval excludes 0 (never with one seed)
};
// a[s], b[s]: two methods' values for the same seeds, in the same order.
SeedPairedDifference seed_paired_difference(const std::vector<double>& a, const std::vector<double>& b);

// The two-sided 95% quantile of Student's t with `dof` degrees of freedom (dof ≥ 1).
double student_t_975(int dof);

// Summary rows (each with "name", "seed" and numeric metrics) grouped by "name" in order of first
// appearance: [{"name", "seeds": [...], "runs": [...], "architecture", "alpha_mode",
// <key>: {"mean", "se", "n"} for every key in `keys` that the rows hold as numbers,
// "final_alpha": [{"mean", "se", "n"} per level] where the rows have α}].
nlohmann::json aggregate_by_method(const nlohmann::json& rows, const std::vector<std::string>& keys);

// Per metric key: the method with the highest mean and, against every other method with the same
// seeds, the seed-paired difference: {"best_name", "best": {"mean","se","n"}, "seeds",
// "against": [{"name", "difference", "se", "lo", "hi", "significant"}]}. Keys with fewer than two
// seeds are left out (no error bar, no verdict).
nlohmann::json seed_significance(const nlohmann::json& rows, const std::vector<std::string>& keys);

// Learned and naive α against the manual sweep over seeds. per_seed: alpha_agreement() results, one
// per seed, in seed order; name_of_run: run directory → run name. The best manual run is the one
// with the lowest mean held-out J; each learned/naive run's J gap to it is seed-paired. Returns
// {"seeds", "manual": [{"name", "alpha", "J"}], "best_manual": {"name", "alpha", "J"}, "grid_step",
// "learned"/"naive": {"name", "final_alpha": [per level {"mean","se","n"}], "distance_to_best_manual",
// "agrees", "J_gap": {"mean","se","lo","hi","n","significant"}, "J_gap_percent", "below_best_in_seeds"}}.
nlohmann::json alpha_agreement_across_seeds(const std::vector<nlohmann::json>& per_seed,
                                            const std::map<std::string, std::string>& name_of_run,
                                            const std::vector<uint64_t>& seeds);

}  // namespace saelab
