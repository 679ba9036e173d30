#include "saelab/hooks.hpp"

#include <fmt/format.h>

namespace saelab {

std::vector<std::string> Hooks::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : splices_) out.push_back(k);
  for (const auto& [k, v] : observers_)
    if (!splices_.count(k)) out.push_back(k);
  return out;
}

void Hooks::fire(const std::string& name, TensorView act) const {
  if (auto it = splices_.find(name); it != splices_.end())
    for (const auto& fn : it->second) fn(act);
  if (auto it = observers_.find(name); it != observers_.end())
    for (const auto& fn : it->second) fn(act);
}

std::string hook_name(int layer, const char* point) { return fmt::format("blocks.{}.{}", layer, point); }

}  // namespace saelab
