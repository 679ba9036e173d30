// Probe data (load_probe_suite): the input's first line is the task file (one line of JSON), the
// rest is `data.jsonl`, the only file in the data root. The seeds name it from a jsonl dataset;
// the agnews_csv format can read it too. Loaded tasks are then split (make_probe_split).
// Task files whose first line contains ".." are skipped: a path escaping the root could name
// /dev/zero, which is the user's choice, not a parser defect.
#include <filesystem>

#include "fuzz_common.hpp"
#include "saelab/probe_data.hpp"

using namespace saelab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view tasks = in.substr(0, nl), jsonl = nl == std::string_view::npos ? "" : in.substr(nl + 1);
  if (tasks.find("..") != std::string_view::npos) return 0;
  static const std::string root = [] {
    const std::string r = fuzz::path_of("probe_root");
    std::filesystem::create_directories(r);
    return r;
  }();
  const std::string task_file = fuzz::path_of("tasks.json");
  fuzz::write_bytes(task_file, tasks);
  fuzz::write_bytes(root + "/data.jsonl", jsonl);
  fuzz::expect_no_crash([&] {
    const ProbeSuite suite = load_probe_suite(task_file, root);
    for (const ProbeTask& t : suite.tasks)
      (void)make_probe_split(suite.dataset(t.dataset), t.positive, t.negatives, 8, 4, 1);
  });
  return 0;
}
