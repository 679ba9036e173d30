#include "checkpoint.hpp"

#include <algorithm>
#include <filesystem>

#include "saelab/atomic_file.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

void TrainState::init(const SaeConfig& c, Device device) {
  adam_m = SaeParams(c, device);
  adam_v = SaeParams(c, device);
  tokens_since_fired.assign(static_cast<size_t>(c.d_sae), 0.f);
  freq_ema.assign(static_cast<size_t>(c.d_sae), 0.f);
  density_fires.assign(static_cast<size_t>(c.d_sae), 0.0);
  density_tokens = 0;
}

std::string save_checkpoint(const std::string& dir, int64_t step, const Sae& sae, const TrainState& st, const json& meta,
                     const std::vector<std::pair<std::string, std::vector<float>>>& extra) {
  Backend& be = sae.backend();
  const std::string name = fmt::format("step_{:08d}", step);
  const std::string tmp = dir + "/" + name + ".tmp", final_dir = dir + "/" + name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const std::vector<float> p = to_host_f32(be, sae.params().flat), m = to_host_f32(be, st.adam_m.flat),
                           v = to_host_f32(be, st.adam_v.flat);
  const int64_t P = static_cast<int64_t>(p.size()), F = sae.config().d_sae;
  std::vector<float> dens(st.density_fires.begin(), st.density_fires.end());
  // Parameters also under their SAELens names, so a checkpoint is readable on its own.
  std::vector<SafetensorsTensorOut> ts = {{"flat.params", DType::F32, {P}, p.data()},
                                          {"flat.adam_m", DType::F32, {P}, m.data()},
                                          {"flat.adam_v", DType::F32, {P}, v.data()},
                                          {"tokens_since_fired", DType::F32, {F}, st.tokens_since_fired.data()},
                                          {"freq_ema", DType::F32, {F}, st.freq_ema.data()},
                                          {"density_fires", DType::F32, {F}, dens.data()}};
  const SaeParams& sp = sae.params();
  const float* base = sp.flat.f32();
  for (const auto& [n, view] : sp.named())
    ts.push_back({n, DType::F32, view.shape_vec(), p.data() + (static_cast<const float*>(view.data) - base)});
  for (const auto& [n, v] : extra) ts.push_back({n, DType::F32, {static_cast<int64_t>(v.size())}, v.data()});
  write_safetensors(tmp + "/state.safetensors", ts);
  json j = meta;
  j["step"] = step;
  j["density_tokens"] = st.density_tokens;
  j["architecture"] = sae_architecture_name(sae.config().architecture);
  j["d_in"] = sae.config().d_in;
  j["d_sae"] = sae.config().d_sae;
  write_file_atomic(tmp + "/trainer.json", j.dump(2) + "\n");
  // A checkpoint being replaced (a resumed run re-saving a step) moves aside first, so some complete
  // copy exists under the final name or a .tmp name at every instant.
  const std::string old = final_dir + ".tmp.old";
  fs::remove_all(old);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fs::remove_all(old);
  return final_dir;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!dir_exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step_", 0) == 0 && n.find(".tmp") == std::string::npos &&
        file_exists(e.path().string() + "/trainer.json"))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded step numbers sort as numbers
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& dir, int64_t below_step) {
  std::optional<std::string> best;
  for (const auto& c : list_checkpoints(dir))
    if (read_checkpoint_meta(c).at("step").get<int64_t>() < below_step) best = c;
  return best;
}

json read_checkpoint_meta(const std::string& ck) {
  try {
    return json::parse(read_file(ck + "/trainer.json"));
  } catch (const json::exception& e) {
    fail("checkpoint '{}' has a corrupt trainer.json: {}", ck, e.what());
  }
}

int64_t load_checkpoint(const std::string& ck, Sae& sae, TrainState& st) {
  const json meta = read_checkpoint_meta(ck);
  if (meta.at("d_sae").get<int>() != sae.config().d_sae || meta.at("d_in").get<int>() != sae.config().d_in)
    fail("checkpoint '{}' is for d_in={} d_sae={}, the config asks for d_in={} d_sae={}", ck, meta["d_in"].dump(),
         meta["d_sae"].dump(), sae.config().d_in, sae.config().d_sae);
  SafetensorsFile f(ck + "/state.safetensors");
  Backend& be = sae.backend();
  const int64_t P = sae.params().flat.numel(), F = sae.config().d_sae;
  be.upload(sae.params().flat.view(), f.read_f32("flat.params", {P}).data());
  be.upload(st.adam_m.flat.view(), f.read_f32("flat.adam_m", {P}).data());
  be.upload(st.adam_v.flat.view(), f.read_f32("flat.adam_v", {P}).data());
  st.tokens_since_fired = f.read_f32("tokens_since_fired", {F});
  st.freq_ema = f.read_f32("freq_ema", {F});
  const std::vector<float> dens = f.read_f32("density_fires", {F});
  st.density_fires.assign(dens.begin(), dens.end());
  st.density_tokens = meta.value("density_tokens", 0.0);
  return meta.at("step").get<int64_t>();
}

}  // namespace saelab
