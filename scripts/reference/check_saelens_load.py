#!/usr/bin/env python3
"""Prove a saelab SAE export loads in SAELens and encodes like saelab.

Usage: check_saelens_load.py SAE_DIR ACTIVATIONS.npy [N]
Loads SAE_DIR with sae_lens.SAE.load_from_disk (after importing saelab's plugin python/saelab_saelens.py,
which registers the hierarchical architecture), encodes the first N rows of the (raw, unscaled)
activations and compares L0 and reconstruction with a NumPy implementation of the saelab formula:
standard, topk, hierarchical (ReLU, then each child zeroed where its parent is 0) and jumprelu
(ReLU where pre > threshold: saelab's jumprelu, and its batchtopk and matryoshka_batchtopk, which
export as SAELens' jumprelu with their global threshold in every latent, as SAELens saves them). An
older hierarchical export ("standard" + saelab.hierarchy) is loaded through the plugin's disk_loader.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from sae_lens import SAE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import saelab_saelens  # noqa: E402  (registers "saelab_hierarchical")

REL_TOL = 1e-4  # f32 reconstruction, torch vs NumPy summation order


def hierarchy_of(cfg):
    """(n_parents, children_per_parent) of a hierarchical export, new or old layout; None otherwise."""
    if cfg["architecture"] == saelab_saelens.ARCHITECTURE:
        return cfg["n_parents"], cfg["children_per_parent"]
    h = cfg.get("saelab", {}).get("hierarchy")
    return (h["n_parents"], h["children_per_parent"]) if h else None


def saelab_encode(x, w, cfg):
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    if cfg["architecture"] == "topk":
        k = cfg["k"] if "k" in cfg else cfg["activation_fn_kwargs"]["k"]
        idx = np.argsort(-pre, axis=1)[:, :k]
        f = np.zeros_like(pre)
        np.put_along_axis(f, idx, np.maximum(np.take_along_axis(pre, idx, 1), 0), 1)
        return f, f
    f = np.maximum(pre, 0)
    if cfg["architecture"] == "jumprelu":
        f = f * (pre > w["threshold"])
        return f, f
    ungated = f.copy()
    if (h := hierarchy_of(cfg)) is not None:
        P, m = h
        f[:, P:] *= np.repeat(f[:, :P] > 0, m, axis=1)
    return f, ungated


def main():
    sae_dir, acts_path = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    x = np.load(acts_path, mmap_mode="r")[:n].astype(np.float32)
    cfg = json.load(open(f"{sae_dir}/cfg.json"))
    hier = hierarchy_of(cfg)
    old_layout = hier is not None and cfg["architecture"] == "standard"
    loader = {"converter": saelab_saelens.disk_loader} if old_layout else {}
    sae = SAE.load_from_disk(sae_dir, device="cpu", **loader)
    assert (hier is not None) == isinstance(sae, saelab_saelens.HierarchicalSAE), type(sae).__name__
    if cfg["architecture"] == "jumprelu":
        assert type(sae).__name__ == "JumpReLUSAE", type(sae).__name__
    with torch.no_grad():
        xt = torch.from_numpy(x)
        f = sae.encode(xt)
        xh = sae.decode(f).numpy()
        fwd = sae(xt).numpy()
    w = load_file(f"{sae_dir}/sae_weights.safetensors")
    ours, ungated = saelab_encode(x, w, cfg)
    xh_ours = ours @ w["W_dec"] + w["b_dec"]
    rel = np.linalg.norm(xh - xh_ours) / np.linalg.norm(xh_ours)
    rel_fwd = np.linalg.norm(fwd - xh_ours) / np.linalg.norm(xh_ours)
    l0, l0_ours = float((f > 0).float().sum(1).mean()), float((ours > 0).sum(1).mean())
    ev = 1 - ((x - xh) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    trained = cfg.get("saelab", {}).get("trained_architecture")
    print(f"{sae_dir}: architecture {cfg['architecture']}{f' (trained as {trained})' if trained else ''}"
          f"{' (old layout, via disk_loader)' if old_layout else ''}; "
          f"SAELens {type(sae).__name__} d_in={sae.cfg.d_in} d_sae={sae.cfg.d_sae}; N={len(x)}; "
          f"L0 {l0:.2f} vs ours {l0_ours:.2f}; reconstruction rel diff {rel:.2e} (forward {rel_fwd:.2e}); "
          f"explained variance {ev:.4f}")
    if hier is not None:
        xh_ungated = ungated @ w["W_dec"] + w["b_dec"]
        print(f"  without the gate (what plain SAELens loaded as 'standard'): L0 {float((ungated > 0).sum(1).mean()):.2f}, "
              f"reconstruction rel diff {np.linalg.norm(xh_ungated - xh_ours) / np.linalg.norm(xh_ours):.2e}")
    assert abs(l0 - l0_ours) < 0.01 * max(l0_ours, 1.0), (l0, l0_ours)
    assert rel < REL_TOL and rel_fwd < REL_TOL, (rel, rel_fwd)


if __name__ == "__main__":
    main()
