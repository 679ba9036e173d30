#!/usr/bin/env python3
"""Goldens for saelab's core eval, produced by SAEBench's own core-eval functions.

    SAELAB_WRITE_SAEBENCH_CORE_INPUTS=tests/data/saebench_core build/tests/test_eval_core \\
        --gtest_filter=EvalCore.MatchesSaeBenchGoldens      # saelab dumps its tensors (*.npy, meta.json)
    .venv-saebench/bin/python scripts/reference/saebench_core_goldens.py tests/data/saebench_core

saelab dumps, per batch of B contexts of T tokens from a real LM run (stories260K, an SAE with seeded
weights): tokens, the hook activation x, the SAE's reconstruction x̂ and its latents (folded by
‖W_dec,i‖) at every position, and the logits of the clean, SAE-spliced and zero-ablated forwards;
and the SAE's W_enc, W_dec. This script runs sae_bench.evals.core.main (sae-bench 0.6.0) on them
unchanged:
  get_downstream_reconstruction_metrics -> get_recons_loss   (CE, KL, scores; its hooks)
  get_sparsity_and_variance_metrics                          (reconstruction, shrinkage, sparsity, density)
  get_featurewise_weight_based_metrics + calculate_misc_metrics
and writes expected.json, which tests/test_eval_core.cpp compares with saelab's arithmetic.

What stands in for what SAEBench would load (the smallest faithful path):
  * the LM: a stand-in whose forwards return saelab's logits for the batch. run_with_hooks calls
    SAEBench's hook on the batch's activation and records which positions the hook zeroed or
    replaced (expected.json: hook_zeroed, hook_replaced), then returns the logits of that run.
    Per-token CE is TransformerLens' lm_cross_entropy_loss(per_token=True), reproduced in three
    lines (transformer_lens is not imported: its dependency tree is not installed).
  * the SAE: encode/decode return saelab's latents / reconstruction of the batch they are given.
  * the activation store: returns the batches in order.
  * sae_lens and transformer_lens modules: empty stand-ins, since core/main.py imports them only for
    class names and pretrained-SAE loaders that this path never calls.
"""
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch


def stub_module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


class _Placeholder:
    pass


def install_stubs():
    stub_module("sae_lens", SAE=_Placeholder)
    stub_module("sae_lens.loading")
    stub_module("sae_lens.loading.pretrained_saes_directory", get_pretrained_saes_directory=lambda: {})
    stub_module("sae_lens.training")
    stub_module("sae_lens.training.activations_store", ActivationsStore=_Placeholder)
    stub_module("sae_lens.saes")
    stub_module("sae_lens.saes.sae", SAEMetadata=_Placeholder)
    stub_module("transformer_lens", HookedTransformer=_Placeholder)
    stub_module("transformer_lens.hook_points", HookedRootModule=_Placeholder)


def tl_loss_per_token(logits, tokens):
    # transformer_lens.utils.lm_cross_entropy_loss(logits, tokens, per_token=True)
    log_probs = torch.nn.functional.log_softmax(logits, dim=-1)
    predicted = log_probs[..., :-1, :].gather(dim=-1, index=tokens[..., 1:, None])[..., 0]
    return -predicted


def find_batch(t, batches):
    for b, cand in enumerate(batches):
        if cand.shape == t.shape and torch.equal(cand, t):
            return b
    raise KeyError("tensor matches no dumped batch")


class StandInModel:
    def __init__(self, d, hook):
        self.d, self.hook = d, hook
        self.hook_zeroed, self.hook_replaced = [], []

    def __call__(self, tokens, return_type="both", loss_per_token=True, **_):
        b = find_batch(tokens, self.d["tokens"])
        logits = self.d["logits_clean"][b]
        return logits, tl_loss_per_token(logits, tokens)

    def run_with_hooks(self, tokens, return_type="both", fwd_hooks=(), loss_per_token=True, **_):
        b = find_batch(tokens, self.d["tokens"])
        (name, hook_fn), = fwd_hooks
        assert name == self.hook
        x = self.d["x"][b]
        out = hook_fn(x.clone(), hook=None)
        zeroed = (out == 0).all(dim=-1)
        replaced = (out != x).any(dim=-1)
        kind = getattr(hook_fn, "func", hook_fn).__name__
        if "zero_ablate" in kind:
            self.hook_zeroed.append(zeroed.int().tolist())
            logits = self.d["logits_zero"][b]
        else:
            self.hook_replaced.append(replaced.int().tolist())
            logits = self.d["logits_sae"][b]
        return logits, tl_loss_per_token(logits, tokens)

    def run_with_cache(self, tokens, prepend_bos=False, names_filter=(), stop_at_layer=None, **_):
        b = find_batch(tokens, self.d["tokens"])
        return None, {names_filter[0]: self.d["x"][b]}


class StandInSae:
    def __init__(self, d, hook):
        self.d = d
        F = d["W_dec"].shape[0]
        self.cfg = types.SimpleNamespace(hook_name=hook, hook_head_index=None, hook_layer=0, d_sae=F,
                                         architecture_str="standard")
        self.device = "cpu"
        self.W_enc = d["W_enc"]  # [d, F]
        self.W_dec = d["W_dec"]  # [F, d]
        self.b_enc = torch.zeros(F)

    def encode(self, x):
        return self.d["latents"][find_batch(x, self.d["x"])].clone()

    def decode(self, f):
        return self.d["xhat"][find_batch(f, self.d["latents"])].clone()


class StandInStore:
    def __init__(self, tokens, T):
        self.tokens, self.context_size, self.i = tokens, T, 0

    def get_batch_tokens(self, n):
        t = self.tokens[self.i % len(self.tokens)]
        assert t.shape[0] == n, (t.shape, n)
        self.i += 1
        return t

    def reset_input_dataset(self):
        self.i = 0


def load_inputs(root):
    meta = json.loads((root / "meta.json").read_text())
    d = {}
    for name in ["tokens", "x", "xhat", "latents", "logits_clean", "logits_sae", "logits_zero"]:
        a = torch.from_numpy(np.load(root / f"{name}.npy"))
        d[name] = [a[b] for b in range(a.shape[0])]  # per batch
    d["tokens"] = [t.long() for t in d["tokens"]]
    d["W_enc"] = torch.from_numpy(np.load(root / "W_enc.npy"))
    d["W_dec"] = torch.from_numpy(np.load(root / "W_dec.npy"))
    return meta, d


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/saebench_core")
    install_stubs()
    import importlib.metadata as md

    import sae_bench.evals.core.main as core

    meta, d = load_inputs(root)
    nb = len(d["tokens"])
    B, T = d["tokens"][0].shape
    hook = meta["hook"]
    ignore = set(meta["ignore_token_ids"])
    model, sae, store = StandInModel(d, hook), StandInSae(d, hook), StandInStore(d["tokens"], T)
    recon = core.get_downstream_reconstruction_metrics(
        sae, model, store, compute_kl=True, compute_ce_loss=True, n_batches=nb, eval_batch_size_prompts=B,
        ignore_tokens=ignore, exclude_special_tokens_from_reconstruction=True)
    store.reset_input_dataset()
    scalars, feature = core.get_sparsity_and_variance_metrics(
        sae, model, store, n_batches=nb, compute_l2_norms=True, compute_sparsity_metrics=True,
        compute_variance_metrics=True, compute_featurewise_density_statistics=True, eval_batch_size_prompts=B,
        model_kwargs={}, ignore_tokens=ignore)
    feature |= core.get_featurewise_weight_based_metrics(sae)
    misc = core.calculate_misc_metrics(feature)
    out = {
        "sae_bench_version": md.version("sae-bench"),
        "torch_version": torch.__version__,
        "ignore_token_ids": sorted(ignore),
        "reconstruction": recon,
        "sparsity_variance": scalars,
        "misc_metrics": misc,
        "feature_density": feature["feature_density"],
        "hook_zeroed": model.hook_zeroed,      # [nb][B][T] 1 where SAEBench's ablation hook zeroed
        "hook_replaced": model.hook_replaced,  # [nb][B][T] 1 where its SAE hook spliced x̂
    }
    (root / "expected.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {root / 'expected.json'}: {nb} batches of {B}x{T}; ce_loss_score {recon['ce_loss_score']:.6f}, "
          f"explained_variance {scalars['explained_variance']:.6f}")


if __name__ == "__main__":
    main()
