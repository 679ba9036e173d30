#include "saelab/seed_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "saelab/error.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

json summary_json(const SeedSummary& s) { return {{"mean", s.mean}, {"se", s.se}, {"n", s.n}}; }

// Rows grouped by "name", in order of first appearance.
std::vector<std::pair<std::string, std::vector<const json*>>> group_by_name(const json& rows) {
  std::vector<std::pair<std::string, std::vector<const json*>>> groups;
  for (const auto& r : rows) {
    const std::string name = r.at("name").get<std::string>();
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == name; });
    if (it == groups.end()) it = groups.insert(groups.end(), {name, {}});
    it->second.push_back(&r);
  }
  return groups;
}

// The group's values of `key`, or nothing when a row lacks it as a number.
std::vector<double> values_of(const std::vector<const json*>& group, const std::string& key) {
  std::vector<double> v;
  for (const json* r : group) {
    if (!r->contains(key) || !(*r)[key].is_number()) return {};
    v.push_back((*r)[key].get<double>());
  }
  return v;
}

std::vector<uint64_t> seeds_of(const std::vector<const json*>& group) {
  std::vector<uint64_t> s;
  for (const json* r : group) s.push_back(r->value("seed", uint64_t{0}));
  return s;
}

json difference_json(const SeedPairedDifference& d) {
  return {{"mean", d.mean}, {"se", d.se}, {"lo", d.lo}, {"hi", d.hi}, {"n", d.n}, {"significant", d.significant}};
}

}  // namespace

SeedSummary seed_summary(const std::vector<double>& v) {
  SeedSummary s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x / static_cast<double>(v.size());
  if (v.size() < 2) return s;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.se = std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
  return s;
}

double student_t_975(int dof) {
  SAELAB_ASSERT(dof >= 1, "dof {}", dof);
  // t_{0.975, dof}: the standard table for 1–30 degrees of freedom, then 40, 60, 120 and the normal.
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof <= 30) return table[dof - 1];
  if (dof <= 40) return 2.021;
  if (dof <= 60) return 2.000;
  if (dof <= 120) return 1.980;
  return 1.960;
}

SeedPairedDifference seed_paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  SAELAB_ASSERT(a.size() == b.size(), "{} vs {} seeds", a.size(), b.size());
  std::vector<double> diff;
  for (size_t i = 0; i < a.size(); ++i) diff.push_back(a[i] - b[i]);
  const SeedSummary s = seed_summary(diff);
  SeedPairedDifference d;
  d.mean = s.mean;
  d.se = s.se;
  d.n = s.n;
  if (s.n < 2) {
    d.lo = -std::numeric_limits<double>::infinity();
    d.hi = std::numeric_limits<double>::infinity();
    return d;
  }
  const double half = student_t_975(s.n - 1) * s.se;
  d.lo = s.mean - half;
  d.hi = s.mean + half;
  d.significant = d.lo > 0 || d.hi < 0;
  return d;
}

json aggregate_by_method(const json& rows, const std::vector<std::string>& keys) {
  json out = json::array();
  for (const auto& [name, group] : group_by_name(rows)) {
    json m = {{"name", name}, {"seeds", seeds_of(group)}, {"runs", json::array()}};
    for (const json* r : group) m["runs"].push_back(r->value("run", ""));
    m["architecture"] = group.front()->value("architecture", "");
    m["alpha_mode"] = group.front()->value("alpha_mode", "-");
    for (const auto& k : keys) {
      const std::vector<double> v = values_of(group, k);
      if (!v.empty()) m[k] = summary_json(seed_summary(v));
    }
    const json& a0 = (*group.front())["final_alpha"];
    if (a0.is_array()) {
      json levels = json::array();
      for (size_t l = 0; l < a0.size(); ++l) {
        std::vector<double> v;
        for (const json* r : group) v.push_back((*r)["final_alpha"].at(l).get<double>());
        levels.push_back(summary_json(seed_summary(v)));
      }
      m["final_alpha"] = levels;
    }
    out.push_back(m);
  }
  return out;
}

json seed_significance(const json& rows, const std::vector<std::string>& keys) {
  const auto groups = group_by_name(rows);
  json out = json::object();
  for (const auto& k : keys) {
    const std::vector<const json*>* best = nullptr;
    std::string best_name;
    double best_mean = -INFINITY;
    for (const auto& [name, g] : groups) {
      const std::vector<double> v = values_of(g, k);
      if (v.size() < 2) continue;
      const double m = seed_summary(v).mean;
      if (m > best_mean) best_mean = m, best = &g, best_name = name;
    }
    if (!best) continue;
    const std::vector<double> bv = values_of(*best, k);
    json against = json::array();
    for (const auto& [name, g] : groups) {
      if (&g == best || seeds_of(g) != seeds_of(*best)) continue;  // only seed-paired comparisons
      const std::vector<double> v = values_of(g, k);
      if (v.size() != bv.size()) continue;
      const SeedPairedDifference d = seed_paired_difference(bv, v);
      against.push_back({{"name", name}, {"difference", d.mean}, {"se", d.se}, {"lo", d.lo}, {"hi", d.hi},
                         {"significant", d.significant}});
    }
    out[k] = {{"best_name", best_name}, {"best", summary_json(seed_summary(bv))}, {"seeds", seeds_of(*best)},
              {"level", 0.95}, {"against", against}};
  }
  return out;
}

json alpha_agreement_across_seeds(const std::vector<json>& per_seed, const std::map<std::string, std::string>& name_of_run,
                                  const std::vector<uint64_t>& seeds) {
  SAELAB_ASSERT(per_seed.size() == seeds.size(), "{} agreements for {} seeds", per_seed.size(), seeds.size());
  // name → (alpha_mode, J per seed, final α per seed)
  struct Method {
    std::string name, mode;
    std::vector<double> J;
    std::vector<std::vector<double>> alpha;
  };
  std::vector<Method> methods;
  for (const json& ag : per_seed)
    for (const auto& r : ag.at("runs")) {
      const auto it = name_of_run.find(r.at("run").get<std::string>());
      SAELAB_ASSERT(it != name_of_run.end(), "run '{}' has no name", r.at("run").get<std::string>());
      auto m = std::find_if(methods.begin(), methods.end(), [&](const Method& x) { return x.name == it->second; });
      if (m == methods.end()) m = methods.insert(methods.end(), Method{it->second, r.value("alpha_mode", "fixed"), {}, {}});
      m->J.push_back(r.at("J").get<double>());
      m->alpha.push_back(r.at("final_alpha").get<std::vector<double>>());
    }
  json out = {{"seeds", seeds}, {"manual", json::array()}, {"grid_step", per_seed.front().value("grid_step", 0.25)}};
  const Method* best = nullptr;
  for (const Method& m : methods) {
    if (m.mode != "fixed" || m.J.size() != seeds.size()) continue;
    out["manual"].push_back({{"name", m.name}, {"alpha", m.alpha.front()}, {"J", summary_json(seed_summary(m.J))}});
    if (!best || seed_summary(m.J).mean < seed_summary(best->J).mean) best = &m;
  }
  if (!best) return out;
  const SeedSummary best_J = seed_summary(best->J);
  out["best_manual"] = {{"name", best->name}, {"alpha", best->alpha.front()}, {"J", summary_json(best_J)}};
  const double grid = out["grid_step"].get<double>();
  for (const Method& m : methods) {
    if (m.mode == "fixed" || m.J.size() != seeds.size()) continue;
    json levels = json::array();
    double worst = 0;
    for (size_t l = 0; l < m.alpha.front().size(); ++l) {
      std::vector<double> v;
      for (const auto& a : m.alpha) v.push_back(a.at(l));
      const SeedSummary s = seed_summary(v);
      levels.push_back(summary_json(s));
      if (l < best->alpha.front().size()) worst = std::max(worst, std::abs(s.mean - best->alpha.front()[l]));
    }
    const SeedPairedDifference gap = seed_paired_difference(m.J, best->J);
    int below = 0;
    for (size_t s = 0; s < m.J.size(); ++s) below += m.J[s] < best->J[s];
    out[m.mode] = {{"name", m.name},
                   {"final_alpha", levels},
                   {"distance_to_best_manual", worst},
                   {"agrees", worst <= grid + 1e-12},
                   {"J_gap", difference_json(gap)},
                   {"J_gap_percent", 100.0 * gap.mean / best_J.mean},
                   {"below_best_in_seeds", below}};
  }
  return out;
}

}  // namespace saelab
