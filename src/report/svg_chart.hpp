// Minimal inline-SVG charts for the report: line charts and scatter plots with axes, ticks and a
// legend. No scripts, no external resources.
#pragma once
#include <string>
#include <vector>

namespace saelab::svg {

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool markers_only = false;
};

std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series, bool log_x = false);
std::string escape(const std::string& s);  // HTML/XML text escaping

}  // namespace saelab::svg
