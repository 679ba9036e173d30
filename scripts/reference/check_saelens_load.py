#!/usr/bin/env python3
"""Prove a saelab SAE export loads in SAELens and encodes like saelab.

Usage: check_saelens_load.py SAE_DIR ACTIVATIONS.npy [N]
Loads SAE_DIR with sae_lens.SAE.load_from_disk, encodes the first N rows of the (raw, unscaled)
activations and compares reconstruction and L0 with a NumPy implementation of the saelab formula.
"""
import json
import sys

import numpy as np
import torch
from safetensors.numpy import load_file
from sae_lens import SAE


def main():
    sae_dir, acts_path = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    x = np.load(acts_path)[:n].astype(np.float32)
    sae = SAE.load_from_disk(sae_dir, device="cpu")
    with torch.no_grad():
        f = sae.encode(torch.from_numpy(x))
        xh = sae.decode(f).numpy()
    w = load_file(f"{sae_dir}/sae_weights.safetensors")
    cfg = json.load(open(f"{sae_dir}/cfg.json"))
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    if cfg["architecture"] == "topk":
        k = cfg["k"] if "k" in cfg else cfg["activation_fn_kwargs"]["k"]
        idx = np.argsort(-pre, axis=1)[:, :k]
        ours = np.zeros_like(pre)
        np.put_along_axis(ours, idx, np.maximum(np.take_along_axis(pre, idx, 1), 0), 1)
    else:
        ours = np.maximum(pre, 0)
    xh_ours = ours @ w["W_dec"] + w["b_dec"]
    rel = np.linalg.norm(xh - xh_ours) / np.linalg.norm(xh_ours)
    ev = 1 - ((x - xh) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    print(f"SAELens {type(sae).__name__} loaded: d_in={sae.cfg.d_in} d_sae={sae.cfg.d_sae}; "
          f"L0 {float((f > 0).float().sum(1).mean()):.2f} vs ours {float((ours > 0).sum(1).mean()):.2f}; "
          f"reconstruction rel diff {rel:.2e}; explained variance {ev:.4f}")
    assert rel < 1e-4, rel


if __name__ == "__main__":
    main()
