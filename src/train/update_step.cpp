#include "update_step.hpp"

namespace saelab {

void apply_update(Sae& sae, SaeParams& grads, SaeParams& adam_m, SaeParams& adam_v, MethodState& method,
                  const TrainConfig& cfg, const UpdateInputs& in) {
  Backend& be = sae.backend();
  const SaeConfig& sc = sae.config();
  method.after_backward(in.stats, in.terms, grads, in.gradient_at);
  if (sc.unit_norm_decoder) be.project_out_rows(grads.W_dec, sae.params().W_dec);
  be.adam(sae.params().flat, grads.flat, adam_m.flat, adam_v.flat, in.lr, cfg.adam_beta1, cfg.adam_beta2,
          cfg.adam_eps, in.t);
  method.after_adam(grads, adam_m, adam_v, in.lr, cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, in.t);
  if (sc.unit_norm_decoder) sae.normalize_decoder_rows();
  // The inference thresholds: jumprelu's follow its trained log θ; batchtopk's EMA moves toward the
  // smallest activation this batch kept.
  if (sc.architecture == SaeArchitecture::JumpReLU) sae.refresh_threshold();
  if (sae_is_batch_topk(sc.architecture)) sae.update_batch_threshold(in.stats.min_kept, cfg.topk_threshold_lr);
  if (sc.architecture == SaeArchitecture::Hierarchical && cfg.orthogonal_children) {
    method.before_children_projection();
    sae.orthogonalize_children();
  }
  method.after_step(in.stats);
}

}  // namespace saelab
