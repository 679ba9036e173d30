#!/usr/bin/env python3
"""Goldens for saelab's sparse probing from SAEBench's own functions (tests/data/saebench_probing).

Runs, on small seeded inputs that saelab's tests read back:
  pooling    activation_collection.get_bos_pad_eos_mask, create_meaned_model_activations and
             get_sae_meaned_activations (BOS, EOS and PAD inside and after the texts; a standard
             SAE folded with fold_W_dec_norm() and a topk SAE, whose fold SAELens refuses, exactly
             as general_utils.load_and_format_sae treats a SAELens SAE);
  top_k      probe_training.get_top_k_mean_diff_mask;
  l2         probe_training.train_sklearn_probe (sklearn's L2 LogisticRegression, C = 1) on the
             top-k features and on all of them;
  adamw      probe_training.train_probe_gpu with main.py's arguments (batch 250, 100 epochs,
             lr 1e-2), its best test accuracy under 10 torch seeds (saelab cannot replay torch's
             RNG, so its test takes SAEBench's spread as the tolerance);
  negatives  probe_training.prepare_probe_data: per negative class, how many of the negatives it
             gives under 300 torch seeds (min, max, mean).

Usage (the venv with sae-bench and sae-lens, installed --no-deps):
  .venv-saebench/bin/python scripts/reference/saebench_probing_goldens.py [--out tests/data/saebench_probing]
"""
import argparse
import contextlib
import io
import json
import os
from types import SimpleNamespace

import numpy as np
import sae_lens
import torch
from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig

import sae_bench
import sae_bench.evals.sparse_probing.probe_training as probe_training
import sae_bench.sae_bench_utils.activation_collection as activation_collection

BOS, EOS, PAD, OTHER_SPECIAL = 1, 2, 3, 4  # token ids of the pooling inputs; 4 is not masked
B, L, D_MODEL, D_SAE, TOPK = 5, 9, 6, 12, 3


def pooling_inputs(rng):
    # Right-padded like SAEBench's tokenizer(padding="max_length"): BOS first, an EOS and a second
    # BOS inside text 1, another special id in text 2, a text with nothing but BOS and EOS (0/0:
    # NaN in SAEBench), and a text that fills all L positions.
    tokens = np.array(
        [
            [BOS, 10, 11, 12, PAD, PAD, PAD, PAD, PAD],
            [BOS, 13, EOS, 14, BOS, 15, 16, PAD, PAD],
            [BOS, 17, OTHER_SPECIAL, 18, 19, 20, EOS, PAD, PAD],
            [BOS, EOS, PAD, PAD, PAD, PAD, PAD, PAD, PAD],
            [BOS, 21, 22, 23, 24, 25, 26, 27, 28],
        ],
        dtype=np.int32,
    )
    acts = rng.normal(size=(B, L, D_MODEL)).astype(np.float32)
    params = {
        "W_enc": rng.normal(scale=0.5, size=(D_MODEL, D_SAE)).astype(np.float32),
        "b_enc": rng.normal(scale=0.2, size=(D_SAE,)).astype(np.float32),
        # Rows far from unit norm, so folding (or not) shows in the pooled latents.
        "W_dec": (rng.normal(size=(D_SAE, D_MODEL)) * rng.uniform(0.3, 3.0, size=(D_SAE, 1))).astype(np.float32),
        "b_dec": rng.normal(scale=0.1, size=(D_MODEL,)).astype(np.float32),
    }
    return tokens, acts, params


def saelens_sae(arch, params):
    if arch == "standard":
        sae = StandardSAE(StandardSAEConfig(d_in=D_MODEL, d_sae=D_SAE, dtype="float32", device="cpu",
                                            apply_b_dec_to_input=True))
    else:
        sae = TopKSAE(TopKSAEConfig(d_in=D_MODEL, d_sae=D_SAE, k=TOPK, dtype="float32", device="cpu",
                                    apply_b_dec_to_input=True))
    sae.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()}, strict=False)
    # general_utils.load_and_format_sae, for a SAELens SAE:
    try:
        sae.fold_W_dec_norm()
        folded = True
    except NotImplementedError:
        folded = False
    return sae, folded


def pooling_golden(tokens, acts, params):
    tok = SimpleNamespace(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    tokens_t = torch.from_numpy(tokens.astype(np.int64))
    mask = activation_collection.get_bos_pad_eos_mask(tokens_t, tok)
    acts_BLD = torch.from_numpy(acts) * mask[:, :, None]  # get_llm_activations(mask_bos_pad_eos_tokens=True)
    raw = activation_collection.create_meaned_model_activations({"c": acts_BLD})["c"]
    out = {"mask": mask.int().numpy(), "raw": raw.numpy()}
    folded = {}
    for arch in ("standard", "topk"):
        sae, folded[arch] = saelens_sae(arch, params)
        out[arch] = activation_collection.get_sae_meaned_activations({"c": acts_BLD}, sae, 2)["c"].numpy()
    return out, folded


def probe_inputs(rng, n, m, D):
    # Two classes; a few informative features of different strength, the rest noise.
    def draw(count):
        y = np.arange(count) % 2
        rng.shuffle(y)
        X = rng.normal(size=(count, D))
        X[:, :6] += np.outer(2 * y - 1, [1.2, -0.9, 0.7, 0.5, 0.35, 0.2])
        return X.astype(np.float32), y.astype(np.int32)

    Xtr, ytr = draw(n)
    Xte, yte = draw(m)
    return Xtr, ytr, Xte, yte


def probe_goldens(Xtr, ytr, Xte, yte, k_values):
    tr, te = torch.from_numpy(Xtr), torch.from_numpy(Xte)
    ltr, lte = torch.from_numpy(ytr).int(), torch.from_numpy(yte).int()
    out = {"top_k": {}, "l2": {}}
    for k in k_values + [Xtr.shape[1]]:
        name = str(k) if k in k_values else "all"
        if name != "all":
            mask = probe_training.get_top_k_mean_diff_mask(tr, ltr, k)
            kept = torch.nonzero(~mask).flatten()  # SAEBench keeps the columns in index order
            out["top_k"][name] = kept.tolist()
            a, b = probe_training.apply_topk_mask_reduce_dim(tr, mask), probe_training.apply_topk_mask_reduce_dim(te, mask)
        else:
            a, b = tr, te
        probe, acc = probe_training.train_sklearn_probe(a, ltr, b, lte)
        out["l2"][name] = {"coef": probe.coef_[0].tolist(), "intercept": float(probe.intercept_[0]),
                           "test_accuracy": float(acc), "n_iter": int(probe.n_iter_[0])}
    accs = []
    for seed in range(10):
        torch.manual_seed(seed)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints every early stop
            _, acc = probe_training.train_probe_gpu(tr, ltr, te, lte, dim=tr.shape[1], batch_size=250, epochs=100,
                                                    lr=1e-2)
        accs.append(float(acc))
    out["adamw_best_test_accuracy"] = accs
    return out


def negatives_golden(sizes, trials=300):
    """sizes: {class: count}; the first is the positive. Per negative class: how many negatives it
    gives over `trials` torch seeds."""
    names = list(sizes)
    acts = {c: torch.tensor([[float(i), float(j)] for j in range(n)]) for i, (c, n) in enumerate(sizes.items())}
    counts = {c: [] for c in names[1:]}
    for seed in range(trials):
        torch.manual_seed(seed)
        x, y = probe_training.prepare_probe_data(acts, names[0])
        neg = x[y == 0][:, 0].long().tolist()
        for i, c in enumerate(names):
            if i:
                counts[c].append(neg.count(i))
    return {"sizes": sizes, "positive": names[0],
            "per_class": {c: {"min": min(v), "max": max(v), "mean": float(np.mean(v))} for c, v in counts.items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/data/saebench_probing"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(16)
    tokens, acts, params = pooling_inputs(rng)
    pooled, folded = pooling_golden(tokens, acts, params)
    Xtr, ytr, Xte, yte = probe_inputs(rng, 1000, 400, 24)
    k_values = [1, 2, 5, 10]
    probes = probe_goldens(Xtr, ytr, Xte, yte, k_values)
    arrays = {"tokens": tokens, "acts": acts, **params, "mask": pooled["mask"].astype(np.int32),
              "pooled_raw": pooled["raw"], "pooled_standard": pooled["standard"], "pooled_topk": pooled["topk"],
              "probe_train_x": Xtr, "probe_train_y": ytr, "probe_test_x": Xte, "probe_test_y": yte}
    for name, a in arrays.items():
        np.save(os.path.join(args.out, name + ".npy"), np.ascontiguousarray(a))
    meta = {
        "generator": "scripts/reference/saebench_probing_goldens.py",
        "sae_bench_version": getattr(sae_bench, "__version__", None) or _dist_version("sae-bench"),
        "sae_lens_version": sae_lens.__version__,
        "torch_version": torch.__version__,
        "sklearn_version": _dist_version("scikit-learn"),
        "pooling": {"bos": BOS, "eos": EOS, "pad": PAD, "B": B, "L": L, "d": D_MODEL, "d_sae": D_SAE, "k": TOPK,
                    "folded": folded, "nan_rows": [int(i) for i in np.nonzero(np.isnan(pooled["raw"]).any(1))[0]]},
        "k_values": k_values,
        "probes": probes,
        "negatives": [negatives_golden({"p": 10, "a": 10, "b": 10, "c": 10}),
                      negatives_golden({"p": 8, "a": 8, "b": 8, "c": 8}),
                      negatives_golden({"p": 7, "a": 9, "b": 12})],
    }
    with open(os.path.join(args.out, "goldens.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("wrote", args.out, "| folded:", folded, "| adamw:", probes["adamw_best_test_accuracy"])


def _dist_version(name):
    import importlib.metadata

    return importlib.metadata.version(name)


if __name__ == "__main__":
    main()
