#include "saelab/paired_bootstrap.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "saelab/error.hpp"

namespace saelab {

namespace {

// Family-averaged mean of v over the task indices `idx` (with repeats); families absent from idx
// do not count.
double family_mean_of(const std::vector<double>& v, const std::vector<std::string>& family,
                      const std::vector<size_t>& idx) {
  std::map<std::string, std::pair<double, int>> by;
  for (size_t t : idx) {
    auto& [sum, n] = by[family[t]];
    sum += v[t];
    ++n;
  }
  double total = 0;
  for (const auto& [f, sn] : by) total += sn.first / sn.second;
  return by.empty() ? 0.0 : total / static_cast<double>(by.size());
}

}  // namespace

double family_mean(const std::vector<double>& v, const std::vector<std::string>& family) {
  SAELAB_ASSERT(v.size() == family.size(), "{} scores for {} families", v.size(), family.size());
  std::vector<size_t> all(v.size());
  for (size_t t = 0; t < all.size(); ++t) all[t] = t;
  return family_mean_of(v, family, all);
}

PairedDifference paired_bootstrap(const std::vector<double>& a, const std::vector<double>& b,
                                  const std::vector<std::string>& family, int resamples, double level,
                                  uint64_t seed) {
  SAELAB_ASSERT(a.size() == b.size() && a.size() == family.size() && !a.empty(), "paired scores: {} / {} / {}",
                a.size(), b.size(), family.size());
  SAELAB_ASSERT(resamples > 0 && level > 0 && level < 1, "bootstrap settings");
  std::vector<double> diff(a.size());
  for (size_t t = 0; t < a.size(); ++t) diff[t] = a[t] - b[t];
  PairedDifference out;
  out.mean = family_mean(diff, family);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, a.size() - 1);
  std::vector<double> stats(static_cast<size_t>(resamples));
  std::vector<size_t> idx(a.size());
  for (double& s : stats) {
    for (size_t& i : idx) i = pick(rng);
    s = family_mean_of(diff, family, idx);
  }
  std::sort(stats.begin(), stats.end());
  const auto at = [&](double q) {
    const double pos = q * static_cast<double>(resamples - 1);
    const size_t i = static_cast<size_t>(std::floor(pos));
    const double w = pos - static_cast<double>(i);
    return i + 1 < stats.size() ? stats[i] * (1 - w) + stats[i + 1] * w : stats[i];
  };
  out.lo = at((1 - level) / 2);
  out.hi = at(1 - (1 - level) / 2);
  out.significant = out.lo > 0 || out.hi < 0;
  return out;
}

}  // namespace saelab
