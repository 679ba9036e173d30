// Named hook points of a language model forward (TransformerLens names):
//   blocks.{L}.hook_resid_pre, blocks.{L}.hook_attn_out, blocks.{L}.hook_mlp_out, blocks.{L}.hook_resid_post
// Observers read the activation; splices overwrite it in place and the forward continues from the
// new values (used to put an SAE reconstruction into the model for CE-loss-recovered).
// At each point splices run first, then observers, so observers see what the model will use.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "saelab/tensor.hpp"

namespace saelab {

// act: [B*T, d] on the model's device, rows ordered sequence-major (row = b*T + t).
using HookFn = std::function<void(TensorView act)>;

class Hooks {
 public:
  void observe(const std::string& name, HookFn fn) { observers_[name].push_back(std::move(fn)); }
  void splice(const std::string& name, HookFn fn) { splices_[name].push_back(std::move(fn)); }
  bool empty() const { return observers_.empty() && splices_.empty(); }
  std::vector<std::string> names() const;  // every subscribed name
  // Called by the model at each named point.
  void fire(const std::string& name, TensorView act) const;

 private:
  std::map<std::string, std::vector<HookFn>> observers_, splices_;
};

std::string hook_name(int layer, const char* point);  // hook_name(3, "hook_resid_post")

}  // namespace saelab
