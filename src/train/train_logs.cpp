#include "train_logs.hpp"

#include <algorithm>
#include <sstream>

#include "saelab/alpha.hpp"
#include "saelab/atomic_file.hpp"

namespace saelab {

using json = nlohmann::json;

void truncate_log(const std::string& path, int64_t step, const char* header) {
  std::string kept = header;
  const auto fields = std::count(kept.begin(), kept.end(), ',');
  if (file_exists(path)) {
    std::istringstream in(read_file(path));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line) && !in.eof()) {
      if (line.empty() || std::count(line.begin(), line.end(), ',') != fields ||
          line.find_first_not_of("0123456789") != line.find(','))
        continue;
      if (std::stoll(line.substr(0, line.find(','))) <= step) kept += line + "\n";
    }
  }
  write_file_atomic(path, kept);
}

json alpha_summary(const std::string& path, size_t levels) {
  std::vector<AlphaTrajectory> traj = read_alpha_log(path);
  traj.resize(levels);
  json out = json::array();
  for (size_t l = 0; l < levels; ++l) {
    const AlphaConvergence c = analyze_alpha(traj[l].alpha);
    out.push_back({{"level", l},
                   {"final_alpha", c.final_alpha},
                   {"converged", c.converged},
                   {"t_star", c.t_star},
                   {"final_window_range", c.final_window_range},
                   {"at_bound_low", c.at_bound_low},
                   {"at_bound_high", c.at_bound_high},
                   {"oscillating", c.oscillating},
                   {"sign_change_rate", c.sign_change_rate},
                   {"steps", traj[l].alpha.size()}});
  }
  return out;
}

}  // namespace saelab
