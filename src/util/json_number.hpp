// JSON numbers into C++ integers and floats without undefined behaviour. nlohmann's get<int>()
// converts whatever the file holds: 1e300 into an int is undefined behaviour, 2^40 wraps silently,
// a TOML `nan` passes every `x <= 0` check. Found by fuzzing the config and tokenizer parsers.
#pragma once
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>

#include "saelab/error.hpp"

namespace saelab {

// The value as a T if it is an integer (or an integral float, as JSON writes 1e6) in T's range.
template <typename T>
std::optional<T> json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  using L = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(L::max())) return std::nullopt;
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x < 0 ? (!L::is_signed || x < static_cast<int64_t>(L::min())) : static_cast<uint64_t>(x) > static_cast<uint64_t>(L::max()))
      return std::nullopt;
    return static_cast<T>(x);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // [min, 2^digits): both ends are exact in double, so the cast below is always defined.
    if (!(d == std::floor(d)) || !(d >= static_cast<double>(L::min())) || !(d < std::ldexp(1.0, L::digits)))
      return std::nullopt;
    return static_cast<T>(d);
  }
  return std::nullopt;
}

// As json_integer, or throws Error "<what>: expected an integer in [min, max], found <value>".
template <typename T>
T json_int(const nlohmann::json& v, const std::string& what) {
  if (auto x = json_integer<T>(v)) return *x;
  fail("{}: expected an integer in [{}, {}], found {}", what, std::numeric_limits<T>::min(),
       std::numeric_limits<T>::max(), v.dump());
}

// A finite number that fits T (float or double), or throws Error naming `what`.
template <typename T>
T json_float(const nlohmann::json& v, const std::string& what) {
  static_assert(std::is_floating_point_v<T>);
  if (v.is_number()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::fabs(d) <= static_cast<double>(std::numeric_limits<T>::max())) return static_cast<T>(d);
  }
  fail("{}: expected a finite number, found {}", what, v.dump());
}

}  // namespace saelab
