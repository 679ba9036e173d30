#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "saelab/error.hpp"
#include "saelab/probe_data.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {
const ProbeSuite& suite() {
  static const ProbeSuite s = load_probe_suite(std::string(SAELAB_SOURCE_DIR) + "/data/probe_tasks.json", test::shared_root());
  return s;
}
}  // namespace

TEST(ProbeData, ThirtyFiveTasksInSixFamilies) {
  ASSERT_EQ(suite().tasks.size(), 35u);
  std::map<std::string, int> families;
  for (const auto& t : suite().tasks) ++families[t.family];
  EXPECT_EQ(families, (std::map<std::string, int>{{"fine_grained_topic", 15},
                                                  {"amazon_category", 4},
                                                  {"sentiment", 2},
                                                  {"code_language", 5},
                                                  {"news_topic", 4},
                                                  {"language", 5}}));
  const auto& reuters = suite().dataset("reuters");
  std::set<std::string> topics;
  for (const auto& x : reuters.items) topics.insert(x.label);
  EXPECT_EQ(topics.size(), 10u);  // single-label topics with at least 100 documents
  for (const auto& x : suite().dataset("amazon_sentiment_books_dvd").items) EXPECT_TRUE(x.label == "1" || x.label == "5");
  int c_files = 0, starts_with_comment = 0;
  for (const auto& x : suite().dataset("code").items)
    if (x.label == "C" || x.label == "Java") {
      ++c_files;
      const size_t i = x.text.find_first_not_of(" \t\r\n");
      starts_with_comment += i != std::string::npos && (x.text.compare(i, 2, "/*") == 0 || x.text.compare(i, 2, "//") == 0);
    }
  EXPECT_GT(c_files, 500);
  EXPECT_LT(starts_with_comment, c_files / 20) << "licence headers kept";
}

TEST(ProbeData, SplitsAreBalancedDeterministicAndByGroup) {
  for (const auto& t : suite().tasks) {
    const ProbeSplit a = make_probe_split(suite().dataset(t.dataset), t.positive, 200, 100, 42);
    const ProbeSplit b = make_probe_split(suite().dataset(t.dataset), t.positive, 200, 100, 42);
    EXPECT_EQ(a.train_text, b.train_text) << t.name;
    EXPECT_GE(a.train_text.size(), 60u) << t.name;
    EXPECT_GE(a.test_text.size(), 20u) << t.name;
    int pos = 0;
    for (int y : a.train_label) pos += y;
    EXPECT_EQ(2 * pos, static_cast<int>(a.train_label.size())) << t.name << " is not balanced";
    std::set<std::string> train_groups(a.train_group.begin(), a.train_group.end());
    for (const auto& g : a.test_group) EXPECT_FALSE(train_groups.count(g)) << t.name << ": group " << g << " straddles";
  }
}

// The splits hash each example's group; groups named by file must not carry the data root's
// location, or the same suite splits differently under ../shared and $SAELAB_SHARED.
TEST(ProbeData, SplitsDoNotDependOnWhereTheDataRootIs) {
  namespace fs = std::filesystem;
  const std::string link = test::make_temp_dir("root") + "/elsewhere";
  fs::create_directory_symlink(fs::absolute(test::shared_root()), link);
  const ProbeSuite moved = load_probe_suite(std::string(SAELAB_SOURCE_DIR) + "/data/probe_tasks.json", link);
  ASSERT_EQ(moved.tasks.size(), suite().tasks.size());
  for (const auto& t : suite().tasks) {
    const ProbeSplit a = make_probe_split(suite().dataset(t.dataset), t.positive, 200, 100, 42);
    const ProbeSplit b = make_probe_split(moved.dataset(t.dataset), t.positive, 200, 100, 42);
    EXPECT_EQ(a.train_text, b.train_text) << t.name;
    EXPECT_EQ(a.test_text, b.test_text) << t.name;
    EXPECT_EQ(a.train_group, b.train_group) << t.name;
  }
}

TEST(ProbeData, BadTaskFilesAreNamed) {
  const std::string dir = test::make_temp_dir("probe");
  test::write_text(dir + "/t.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n");
  test::write_text(dir + "/tasks.json", R"({"datasets": [{"name": "mine", "family": "f", "format": "jsonl", "path": "t.jsonl"}],
                                           "tasks": [{"dataset": "mine", "positive": "z"}]})");
  try {
    load_probe_suite(dir + "/tasks.json", dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 'z' does not occur"), std::string::npos) << e.what();
  }
  test::write_text(dir + "/tasks2.json", R"({"datasets": [{"name": "m", "family": "f", "format": "xml", "path": "t.jsonl"}], "tasks": []})");
  EXPECT_THROW(load_probe_suite(dir + "/tasks2.json", dir), Error);
  test::write_text(dir + "/tasks3.json", R"({"datasets": [{"name": "m", "family": "f", "format": "jsonl", "path": "nope.jsonl"}], "tasks": []})");
  EXPECT_THROW(load_probe_suite(dir + "/tasks3.json", dir), Error);
  // A user's own labelled JSONL works as a task.
  test::write_text(dir + "/ok.json", R"({"datasets": [{"name": "mine", "family": "f", "format": "jsonl", "path": "t.jsonl"}],
                                        "tasks": [{"dataset": "mine", "positive": "x"}]})");
  EXPECT_EQ(load_probe_suite(dir + "/ok.json", dir).tasks.front().name, "mine/x");
}

// BadInput: defects found while writing the fuzz targets (fuzz/, docs/reliability.md "Bad inputs
// found by fuzzing").
TEST(BadInput, JsonlErrorsNameTheJsonlFileAndLine) {
  // A non-string "text" used to be reported against the task file, as "not a probe task file".
  const std::string dir = test::make_temp_dir("probe");
  test::write_text(dir + "/d.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": 5, \"label\": \"y\"}\n");
  test::write_text(dir + "/tasks.json", R"({"datasets": [{"name": "m", "family": "f", "format": "jsonl", "path": "d.jsonl"}],
                                           "tasks": []})");
  try {
    load_probe_suite(dir + "/tasks.json", dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl' line 2: expected an object with a \"text\" string"), std::string::npos)
        << e.what();
  }
  // Counts are integers in range (a negative or huge float converted silently before).
  test::write_text(dir + "/tasks2.json", R"({"datasets": [{"name": "m", "family": "f", "format": "jsonl", "path": "d.jsonl",
                                            "chunk_chars": -1.5}], "tasks": []})");
  try {
    load_probe_suite(dir + "/tasks2.json", dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("probe dataset 'm': chunk_chars: expected an integer"), std::string::npos)
        << e.what();
  }
}
