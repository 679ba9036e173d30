// SAELens layout on disk: <dir>/cfg.json, <dir>/sae_weights.safetensors (W_enc [d, F], b_enc [F],
// W_dec [F, d], b_dec [d], f32), <dir>/sparsity.safetensors ("sparsity": log10 firing density [F]).
// The activation scale a run trained with is folded into the weights (SAELens'
// fold_activation_norm_scaling_factor), so the export reads raw activations: normalize_activations
// is "none" and the scale is kept in cfg.json as saelab.act_scale_folded.
// batchtopk, matryoshka_batchtopk and jumprelu SAEs export as SAELens' "jumprelu" with a threshold
// [F] tensor (batchtopk's global threshold in every entry), as SAELens saves them; they reload as
// jumprelu, which encodes as the trained SAE's encode does: f = pre·1[pre > θ_i] for pre > 0.
// A hierarchical SAE exports as architecture "saelab_hierarchical" with n_parents and
// children_per_parent in cfg.json; python/saelab_saelens.py registers that architecture with SAELens.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

// Writes into `dir` via a temp directory renamed at the end: a reader never sees half an export.
// `extra` is merged into cfg.json under "saelab" (training provenance, hierarchy, ...).
void export_saelens(const Sae& sae, const std::string& dir, const std::vector<float>& density,
                    const nlohmann::json& extra = nlohmann::json::object());

// Loads an SAELens directory written by us or by SAELens (architectures standard/relu, topk and
// jumprelu, Gemma Scope's included), or a
// hierarchical SAE of ours: "saelab_hierarchical", or (older exports) "standard" with saelab.hierarchy.
Sae load_saelens(const std::string& dir, Backend& be);
nlohmann::json read_saelens_cfg(const std::string& dir);

}  // namespace saelab
