#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "saelab/atomic_file.hpp"
#include "saelab/experiment.hpp"
#include "saelab/paired_bootstrap.hpp"
#include "saelab/report.hpp"
#include "saelab/seed_statistics.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {
// A small experiment (no probing, for time) to report on; shared by this file's tests.
const std::string& experiment_dir() {
  static const std::string out = [] {
    const ExperimentConfig c = test::small_experiment(test::make_temp_dir("report") + "/runs");
    run_experiment(c);
    return c.out_dir;
  }();
  return out;
}
}  // namespace

TEST(Report, SelfContainedHtmlWithChartsTablesAndData) {
  const std::string path = write_report(experiment_dir());
  const std::string html = read_file(path);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  // Inline SVG only: no scripts, no external resources (the SVG namespace is an identifier).
  EXPECT_EQ(html.find("<script"), std::string::npos);
  const std::regex url(R"((src|href)\s*=\s*"(https?:)?//)");
  EXPECT_FALSE(std::regex_search(html, url));
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_GE(svgs, 3u);  // L0–EV plane, α dynamics, stability
  for (const char* s : {"Results", "α dynamics", "Composition quality", "Concept stability", "learned", "dual_fixed"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  const auto data = nlohmann::json::parse(read_file(experiment_dir() + "/report.json"));
  EXPECT_EQ(data["runs"].size(), 3u);
  EXPECT_FALSE(data["runs"][2]["alpha_curves"].is_null());
  const std::string csv = read_file(experiment_dir() + "/report_summary.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 runs
  // Each run links its page of the experiment's feature dashboard, which exists.
  for (int k = 0; k < 3; ++k)
    EXPECT_NE(html.find(fmt::format("href=\"dashboard/index.html#sae={}\"", k)), std::string::npos) << k;
  EXPECT_TRUE(file_exists(experiment_dir() + "/dashboard/index.html"));
  EXPECT_TRUE(file_exists(experiment_dir() + "/dashboard/data/sae2/chunk_0.js"));
}

// The report renders in a real browser: headless Chromium takes a screenshot of it.
TEST(Report, RendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) GTEST_SKIP() << "chromium is not installed";
  const std::string html = write_report(experiment_dir());
  const std::string png = test::make_temp_dir("shot") + "/report.png";
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                          "--window-size=1280,2400 --screenshot=" + png + " file://" + html + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string img = read_file(png);
  ASSERT_GT(img.size(), 8u);
  EXPECT_EQ(img.substr(1, 3), "PNG");
  EXPECT_GT(img.size(), 30000u) << "a blank page compresses to a few kilobytes";
}

// The α-agreement line says so when learned α's held-out J is below every manual run's, whatever
// its distance to the sweep's optimum (the sweep can be flat around it).
TEST(Report, SaysWhenLearnedAlphaBeatsEveryManualRun) {
  const std::string dir = test::make_temp_dir("report_gap") + "/runs";
  std::filesystem::copy(experiment_dir(), dir, std::filesystem::copy_options::recursive);
  auto agreement = nlohmann::json::parse(read_file(dir + "/alpha_agreement.json"));
  ASSERT_FALSE(agreement["best_manual_alpha"].is_null());
  const double best_J = agreement["best_manual_J"].get<double>();
  for (double gap : {-0.1, 0.1}) {
    agreement["learned"] = {{"run", dir + "/run_3"},       {"final_alpha", {0.3, 0.78}},
                            {"distance_to_best_manual", 0.28}, {"agrees", false},
                            {"J_gap", gap * best_J / 100.0}};
    write_file_atomic(dir + "/alpha_agreement.json", agreement.dump());
    const std::string html = read_file(write_report(dir));
    EXPECT_NE(html.find("more than one grid step"), std::string::npos);
    EXPECT_EQ(html.find("lower than every manual run") != std::string::npos, gap < 0) << "gap " << gap;
  }
}

// Absorption in the report: a table column, the charts against L0 beside top-1 probing, and for the
// hierarchical runs the share absorbed inside the letter's parent; nothing of it without absorption.
TEST(Report, PlotsAbsorptionAgainstL0AndTheHierarchyShare) {
  const std::string plain = read_file(write_report(experiment_dir()));
  EXPECT_EQ(plain.find("Feature absorption vs sparsity"), std::string::npos);
  const std::string dir = test::make_temp_dir("report_abs") + "/runs";
  std::filesystem::copy(experiment_dir(), dir, std::filesystem::copy_options::recursive);
  auto summary = nlohmann::json::parse(read_file(dir + "/summary.json"));
  for (size_t i = 0; i < summary.size(); ++i) {
    summary[i]["absorption_fraction"] = 0.125 + 0.25 * static_cast<double>(i);
    summary[i]["full_absorption"] = 0.0625;
    if (summary[i]["architecture"] == "hierarchical") summary[i]["absorption_by_children"] = 0.375;
  }
  write_file_atomic(dir + "/summary.json", summary.dump());
  const std::string html = read_file(write_report(dir));
  EXPECT_NE(html.find("Feature absorption vs sparsity"), std::string::npos);
  EXPECT_NE(html.find("L0 vs mean absorption fraction"), std::string::npos);
  EXPECT_NE(html.find("<td>0.6250</td>"), std::string::npos) << "run 3's absorption in the table";
  EXPECT_NE(html.find("run_2 (dual_fixed) 37.5%"), std::string::npos);
  EXPECT_EQ(html.find("run_1 (vanilla) 37.5%"), std::string::npos) << "vanilla has no hierarchy";
}

// The paired bootstrap over probing tasks: a shift on every task is significant and its interval
// holds it; noise around zero is not; the statistic weights families as the headline does.
TEST(PairedBootstrap, SeparatesAShiftFromNoiseAndWeightsFamilies) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 0.02);
  std::vector<double> a, b, c;
  std::vector<std::string> fam;
  for (int t = 0; t < 36; ++t) {
    const double base = 0.7 + 0.01 * (t % 9);
    a.push_back(base + noise(rng));
    b.push_back(a.back() - 0.03);  // 0.03 below on every task
    // The same up to ±0.02 that cancels within every family: a difference of exactly 0.
    c.push_back(a.back() + ((t / 6) % 2 ? 0.02 : -0.02));
    fam.push_back("family_" + std::to_string(t % 6));
  }
  const PairedDifference shift = paired_bootstrap(a, b, fam), tie = paired_bootstrap(a, c, fam);
  EXPECT_NEAR(shift.mean, 0.03, 1e-12);
  EXPECT_TRUE(shift.significant);
  EXPECT_LE(shift.lo, 0.03 + 1e-12);
  EXPECT_GE(shift.hi, 0.03 - 1e-12);
  EXPECT_NEAR(tie.mean, 0.0, 1e-12);
  EXPECT_FALSE(tie.significant) << tie.lo << " " << tie.hi;
  EXPECT_LT(tie.lo, 0.0);
  EXPECT_GT(tie.hi, 0.0);
  const PairedDifference again = paired_bootstrap(a, c, fam);
  EXPECT_EQ(again.lo, tie.lo);  // seeded
  // One task in family x differing by 1, three in family y by 0: the family mean is 0.5, not 0.25.
  EXPECT_NEAR(family_mean({1, 0, 0, 0}, {"x", "y", "y", "y"}), 0.5, 1e-12);
  EXPECT_NEAR(paired_bootstrap({1, 0, 0, 0}, {0, 0, 0, 0}, {"x", "y", "y", "y"}).mean, 0.5, 1e-12);
}

// The summary names a probing winner only when every other run is significantly lower, and says
// "no significant difference" otherwise.
TEST(Report, NamesAProbingWinnerOnlyBeyondTheNoise) {
  nlohmann::json data = collect_report_data(experiment_dir());
  std::mt19937_64 rng(9);
  std::normal_distribution<double> noise(0.0, 0.03);
  std::vector<double> base;
  nlohmann::json tasks = nlohmann::json::array(), fams = nlohmann::json::array();
  for (int t = 0; t < 35; ++t) {
    base.push_back(0.75 + 0.005 * (t % 11));
    tasks.push_back("task_" + std::to_string(t));
    fams.push_back("family_" + std::to_string(t % 6));
  }
  for (double lead : {0.0, 0.08}) {
    nlohmann::json& runs = data["runs"];
    for (size_t r = 0; r < runs.size(); ++r) {
      std::vector<double> acc;
      for (double v : base) acc.push_back(v + noise(rng) + (r == 0 ? lead : 0.0));
      runs[r]["probing_tasks"] = {{"task", tasks}, {"family", fams}, {"sae_test_accuracy", acc},
                                  {"sae_test_f1", acc}, {"sae_top_1_test_accuracy", acc}};
      const double m = family_mean(acc, fams.get<std::vector<std::string>>());
      runs[r]["probe_accuracy"] = m, runs[r]["probe_f1"] = m, runs[r]["probe_top1_accuracy"] = m;
    }
    data["significance"] = probing_significance(runs);
    const std::string html = render_report_html(data);
    if (lead > 0) {
      EXPECT_EQ(data["significance"]["probe_accuracy"]["best_run"], runs[0]["run"]);
      EXPECT_NE(html.find("ahead of every other run beyond the noise"), std::string::npos);
      EXPECT_EQ(html.find("no significant difference"), std::string::npos);
    } else {
      EXPECT_NE(html.find("no significant difference"), std::string::npos);
      EXPECT_EQ(html.find("ahead of every other run beyond the noise"), std::string::npos);
    }
  }
}

// Mean ± standard error over seeds, and the seed-paired difference with its t interval, against
// values worked by hand.
TEST(SeedStatistics, MeansStandardErrorsAndPairedTIntervals) {
  const SeedSummary s = seed_summary({1, 2, 3});
  EXPECT_NEAR(s.mean, 2.0, 1e-12);
  EXPECT_NEAR(s.se, 1.0 / std::sqrt(3.0), 1e-12);  // sd 1 over √3
  EXPECT_EQ(seed_summary({5}).se, 0.0);
  // Differences {1, 1, .5}: mean 5/6, sd √(1/12), se 1/6; t(2) = 4.303.
  const SeedPairedDifference d = seed_paired_difference({1, 2, 3}, {0, 1, 2.5});
  EXPECT_NEAR(d.mean, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(d.se, 1.0 / 6.0, 1e-12);
  EXPECT_NEAR(d.lo, 5.0 / 6.0 - 4.303 / 6.0, 1e-12);
  EXPECT_TRUE(d.significant);
  // Differences {1, -1, .5} straddle 0.
  EXPECT_FALSE(seed_paired_difference({1, 2, 3}, {0, 3, 2.5}).significant);
  const SeedPairedDifference one = seed_paired_difference({1}, {0});
  EXPECT_FALSE(one.significant) << "one seed has no error bar";
  EXPECT_TRUE(std::isinf(one.lo) && std::isinf(one.hi));
  EXPECT_NEAR(student_t_975(1), 12.706, 1e-9);
  EXPECT_NEAR(student_t_975(1000), 1.960, 1e-9);
}

// Summary rows of three methods over three seeds: grouped by name with mean ± SE, and a best method
// named only where every seed-paired difference is significant.
TEST(SeedStatistics, AggregatesRunsByMethodAndJudgesOnPairedSeeds) {
  nlohmann::json rows = nlohmann::json::array();
  const double seed_effect[] = {0.00, 0.03, -0.02};  // shared by all methods of a seed: cancels in pairs
  const uint64_t seeds[] = {42, 7, 8};
  for (int s = 0; s < 3; ++s) {
    const double e = seed_effect[s];
    rows.push_back({{"run", "run_" + std::to_string(3 * s + 1)}, {"name", "a"}, {"seed", seeds[s]},
                    {"explained_variance", 0.80 + e}, {"final_alpha", {0.3 + 0.01 * s, 0.6}}});
    rows.push_back({{"run", "run_" + std::to_string(3 * s + 2)}, {"name", "b"}, {"seed", seeds[s]},
                    {"explained_variance", 0.79 + e + 0.001 * s}, {"final_alpha", nullptr}});
    // c's difference to a changes sign between seeds: no verdict.
    rows.push_back({{"run", "run_" + std::to_string(3 * s + 3)}, {"name", "c"}, {"seed", seeds[s]},
                    {"explained_variance", 0.80 + e + (s == 1 ? 0.02 : -0.015)}, {"final_alpha", nullptr}});
  }
  const auto methods = aggregate_by_method(rows, {"explained_variance", "l0"});
  ASSERT_EQ(methods.size(), 3u);
  EXPECT_EQ(methods[0]["name"], "a");
  EXPECT_EQ(methods[0]["seeds"], nlohmann::json({42, 7, 8}));
  EXPECT_NEAR(methods[0]["explained_variance"]["mean"].get<double>(), 0.80 + 0.01 / 3, 1e-12);
  EXPECT_EQ(methods[0]["explained_variance"]["n"], 3);
  EXPECT_FALSE(methods[0].contains("l0")) << "a metric the rows do not hold is left out";
  EXPECT_NEAR(methods[0]["final_alpha"][0]["mean"].get<double>(), 0.31, 1e-12);
  EXPECT_FALSE(methods[1].contains("final_alpha"));
  const auto sig = seed_significance(rows, {"explained_variance"});
  const auto& g = sig["explained_variance"];
  EXPECT_EQ(g["best_name"], "a");  // means .8033, .7943, .8000
  ASSERT_EQ(g["against"].size(), 2u);
  for (const auto& c : g["against"])
    EXPECT_EQ(c["significant"].get<bool>(), c["name"] == "b") << c.dump();
}

// Learned α against the manual sweep over seeds: the best manual run by mean held-out J, and the
// learned run's gap to it paired by seed.
TEST(SeedStatistics, AlphaAgreementAcrossSeedsPairsTheGapBySeed) {
  std::vector<nlohmann::json> per_seed;
  std::map<std::string, std::string> names;
  const double J0[] = {10.0, 12.0, 11.0};  // each seed's level of J
  for (int s = 0; s < 3; ++s) {
    nlohmann::json runs = nlohmann::json::array();
    const std::string p = "s" + std::to_string(s) + "/";
    runs.push_back({{"run", p + "m0"}, {"alpha_mode", "fixed"}, {"final_alpha", {0.0, 0.0}}, {"J", J0[s] + 0.5}});
    // Seed 2's own best manual run is α = .5; the mean picks .25.
    runs.push_back({{"run", p + "m25"}, {"alpha_mode", "fixed"}, {"final_alpha", {0.25, 0.25}},
                    {"J", J0[s] + (s == 2 ? 0.2 : 0.0)}});
    runs.push_back({{"run", p + "m50"}, {"alpha_mode", "fixed"}, {"final_alpha", {0.5, 0.5}}, {"J", J0[s] + 0.1}});
    runs.push_back({{"run", p + "learned"}, {"alpha_mode", "learned"}, {"final_alpha", {0.3 + 0.1 * s, 0.6}},
                    {"J", J0[s] - 0.1 - 0.01 * s}});
    for (const char* r : {"m0", "m25", "m50", "learned"}) names[p + r] = r;
    per_seed.push_back({{"runs", runs}, {"grid_step", 0.25}});
  }
  const auto a = alpha_agreement_across_seeds(per_seed, names, {42, 7, 8});
  EXPECT_EQ(a["best_manual"]["name"], "m25");
  EXPECT_NEAR(a["best_manual"]["J"]["mean"].get<double>(), 11.0 + 0.2 / 3, 1e-12);
  const auto& l = a["learned"];
  // Gaps −.1, −.11, −.32: all below, mean −.1767.
  EXPECT_NEAR(l["J_gap"]["mean"].get<double>(), -(0.1 + 0.11 + 0.32) / 3, 1e-12);
  EXPECT_EQ(l["below_best_in_seeds"], 3);
  EXPECT_EQ(l["J_gap"]["n"], 3);
  // Below in every seed, but the spread (se .072, t(2) = 4.3) leaves 0 inside the interval.
  EXPECT_FALSE(l["J_gap"]["significant"].get<bool>()) << l.dump();
  EXPECT_NEAR(l["final_alpha"][0]["mean"].get<double>(), 0.4, 1e-12);
  EXPECT_NEAR(l["distance_to_best_manual"].get<double>(), 0.35, 1e-12);  // children .6 vs .25
  EXPECT_FALSE(l["agrees"].get<bool>());
  EXPECT_FALSE(a.contains("naive"));
}
