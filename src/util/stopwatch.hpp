// Wall-clock seconds for the phase timings the experiment and the dashboard print.
#pragma once
#include <chrono>

namespace saelab {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace saelab
