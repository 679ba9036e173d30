#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "saelab/atomic_file.hpp"
#include "saelab/experiment.hpp"
#include "saelab/paired_bootstrap.hpp"
#include "saelab/report.hpp"
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
