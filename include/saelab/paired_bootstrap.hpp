// Which differences between two runs' probing scores are real (method.md §5): a paired bootstrap
// over the probing tasks. Both runs are scored on the same tasks, so the resampling unit is the
// task and the statistic is the difference of the headline score: per family the mean over its
// tasks, then the mean over families (SAEBench's averaging).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace saelab {

struct PairedDifference {
  double mean = 0;          // the headline difference a − b on the tasks as given
  double lo = 0, hi = 0;    // percentile interval of the resampled differences
  bool significant = false;  // the interval excludes 0
};

// a, b [T]: two runs' scores per task; family [T]: each task's family. B resamples of the T tasks
// with replacement (seeded: the same call gives the same interval); level: the interval's coverage.
PairedDifference paired_bootstrap(const std::vector<double>& a, const std::vector<double>& b,
                                  const std::vector<std::string>& family, int resamples = 2000,
                                  double level = 0.95, uint64_t seed = 1);

// Family-averaged mean of v [T]: per family the mean over its tasks, then the mean over families.
double family_mean(const std::vector<double>& v, const std::vector<std::string>& family);

}  // namespace saelab
