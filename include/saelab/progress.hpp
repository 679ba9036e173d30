// A progress bar on stderr: redrawn in place on a terminal (at most 10 times a second), a plain
// line every 10% otherwise (CI logs). Shows rate and ETA.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace saelab {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "tok");
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_s() const;

 private:
  void draw(int64_t done, const std::string& extra, bool final);
  std::string label_, unit_;
  int64_t total_;
  bool tty_;
  int last_decile_ = -1;
  int64_t start_done_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace saelab
