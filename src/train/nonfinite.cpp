#include "nonfinite.hpp"

#include <cmath>
#include <fmt/format.h>

namespace saelab {

using json = nlohmann::json;

json diagnose_nonfinite(const Sae& sae, SaeWorkspace& ws, const float* x, int64_t N, bool& params_bad) {
  Backend& be = sae.backend();
  const int64_t d = sae.config().d_in, F = sae.config().d_sae;
  params_bad = false;
  for (const auto& [name, view] : sae.params().named()) {
    const std::vector<float> v = to_host_f32(be, view);
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::isfinite(v[i])) continue;
      params_bad = true;
      const int64_t k = static_cast<int64_t>(i);
      const int64_t latent = name == "W_enc" ? k % F : name == "b_enc" ? k : name == "W_dec" ? k / d : -1;
      json j = {{"where", "parameter"}, {"parameter", name}, {"index", k}, {"value", fmt::format("{}", v[i])}};
      if (latent >= 0) j["latent"] = latent;
      return j;
    }
  }
  const std::vector<float> f = to_host_f32(be, ws.f.view().rows(0, N));  // [N, F]
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i)
      if (!std::isfinite(f[n * F + i]))
        return {{"where", "latent_activation"}, {"latent", i}, {"batch_row", n}, {"value", fmt::format("{}", f[n * F + i])}};
  const std::vector<float> xhat = to_host_f32(be, ws.xhat.view().rows(0, N));  // [N, d]
  for (int64_t n = 0; n < N; ++n) {
    float e = 0, xx = 0;
    for (int64_t j = 0; j < d; ++j) {
      e += (x[n * d + j] - xhat[n * d + j]) * (x[n * d + j] - xhat[n * d + j]);
      xx += x[n * d + j] * x[n * d + j];
    }
    if (!std::isfinite(e))
      return {{"where", "input_row"}, {"batch_row", n}, {"squared_norm", fmt::format("{}", xx)},
              {"squared_error", fmt::format("{}", e)}};
  }
  return {{"where", "penalty_or_gradient"}};
}

std::string describe_fault(const json& j) {
  const std::string w = j.value("where", "");
  if (w == "parameter")
    return fmt::format("parameter {} holds {} at index {}{}", j["parameter"].get<std::string>(),
                       j["value"].get<std::string>(), j["index"].get<int64_t>(),
                       j.contains("latent") ? fmt::format(" (latent {})", j["latent"].get<int64_t>()) : "");
  if (w == "latent_activation")
    return fmt::format("latent {} is {} on batch row {}", j["latent"].get<int64_t>(), j["value"].get<std::string>(),
                       j["batch_row"].get<int64_t>());
  if (w == "input_row")
    return fmt::format("batch row {} has squared norm {} and squared error {} (activations too large for f32; "
                       "normalize them)", j["batch_row"].get<int64_t>(), j["squared_norm"].get<std::string>(),
                       j["squared_error"].get<std::string>());
  return "parameters, activations and reconstruction are finite: the penalty or a gradient is not";
}

}  // namespace saelab
