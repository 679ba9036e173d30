#include "saelab/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>

namespace saelab {

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(2) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& extra) {
  if (start_done_ < 0) start_done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(done, extra, false);
  } else {
    const int decile = total_ > 0 ? static_cast<int>(10 * done / total_) : 0;
    if (decile == last_decile_) return;
    last_decile_ = decile;
    draw(done, extra, false);
  }
}

void Progress::finish(const std::string& extra) { draw(total_, extra, true); }

void Progress::draw(int64_t done, const std::string& extra, bool final) {
  const double t = elapsed_s();
  const double rate = t > 0 ? static_cast<double>(done - std::max<int64_t>(start_done_, 0)) / t : 0.0;
  const double frac = total_ > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 0.0;
  const int width = 24, filled = static_cast<int>(frac * width);
  const double eta = rate > 0 && total_ > done ? static_cast<double>(total_ - done) / rate : 0.0;
  std::string line = fmt::format("{} [{}{}] {:5.1f}% {}/{} {} {:.0f} {}/s {}{}", label_, std::string(filled, '#'),
                                 std::string(width - filled, '.'), 100 * frac, done, total_, unit_, rate, unit_,
                                 final ? fmt::format("in {:.1f}s", t) : fmt::format("eta {:.0f}s", eta),
                                 extra.empty() ? "" : "  " + extra);
  if (tty_) std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace saelab
