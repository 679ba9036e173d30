#!/usr/bin/env python3
"""Hugging Face transformers (torch, CPU) doing the work of a saelab harvest, for bench/bench_harvest.

Loads a GGUF with transformers (dequantised to float32), keeps only the first L+1 decoder layers and
drops the final norm and the LM head, so one forward ends at blocks.L.hook_resid_post exactly as a
saelab harvest that stops at that hook. Then it times B contexts x T tokens per forward and prints one
JSON line per layer:
  {"tokens_per_s": ..., "layers": L+1, "threads": N, "batch": B, "context": T, "torch": ...,
   "transformers": ..., "attn_implementation": ...}

Usage:
  .venv-reference/bin/python scripts/reference/bench_transformers_harvest.py --layer 5 --layer 14 \
      --threads 2 [--ids ids.npy | --corpus text.txt] [--batch 32] [--context 128] [--reps 5]
  .venv-reference/bin/python scripts/reference/bench_transformers_harvest.py --check
--ids: int32/int64 .npy holding at least B*T ids (shape (B, T) or flat; row b is context b).
Without --ids, the corpus text (default: the model's golden ce_text.txt) is tokenized with the GGUF's
tokenizer and repeated to fill B*T. --check compares transformers' residual stream after blocks 0, 5
and 29 on the golden sentence with the goldens next to the model and exits 1 past --check-tol.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF de-quantization progress bars

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SHARED = os.environ.get("SAELAB_SHARED", os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared")))
DEFAULT_MODEL_DIR = os.path.join(DEFAULT_SHARED, "models", "smollm2-135m-instruct")
GOLDEN_IDS = [504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]  # "The quick brown fox ..." (no BOS)
GOLDEN_BLOCKS = [0, 5, 29]


def find_gguf(model_dir, name):
    if name:
        return name
    ggufs = sorted(f for f in os.listdir(model_dir) if f.endswith(".gguf"))
    if len(ggufs) != 1:
        sys.exit(f"{model_dir}: expected exactly one .gguf file, found {ggufs}; pass --gguf")
    return ggufs[0]


def load(model_dir, gguf_name):
    t0 = time.perf_counter()
    # transformers >= 4.56 calls torch_dtype `dtype` (and warns about the old name).
    key = "dtype" if tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56) else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf_name, **{key: torch.float32})
    model.eval()
    # The harvest stops at a block's resid_post: no final norm (and the LM head is never called).
    model.model.norm = torch.nn.Identity()
    return model, time.perf_counter() - t0


def attn_impl(model):
    cfg = model.config
    return getattr(cfg, "_attn_implementation", None) or getattr(cfg, "attn_implementation", None) or "unknown"


def truncate(model, all_layers, n_layers):
    """Keep decoder layers [0, n_layers). model.model then returns blocks.{n_layers-1}.hook_resid_post."""
    model.model.layers = torch.nn.ModuleList(list(all_layers)[:n_layers])
    model.model.config.num_hidden_layers = n_layers


def resid_post(model, ids):
    """ids: LongTensor [B, T]. Residual stream after the last kept block, [B, T, d]."""
    out = model.model(input_ids=ids, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def load_ids(args, model_dir, gguf_name, n):
    if args.ids:
        ids = np.load(args.ids).reshape(-1).astype(np.int64)
        if ids.size < n:
            sys.exit(f"{args.ids}: {ids.size} ids, need batch*context = {n}")
        return ids[:n], f"npy:{args.ids}"
    from transformers import AutoTokenizer

    corpus = args.corpus or os.path.join(model_dir, "golden", "ce_text.txt")
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_name)
    with open(corpus, encoding="utf-8") as f:
        ids = np.asarray(tok(f.read(), add_special_tokens=False)["input_ids"], dtype=np.int64)
    if ids.size == 0:
        sys.exit(f"{corpus}: tokenized to nothing")
    return np.resize(ids, n), f"text:{corpus}"


def check(model, all_layers, golden_dir):
    """Max abs error relative to the row L2 norm, per golden block; returns the worst."""
    truncate(model, all_layers, len(all_layers))
    captured = {}

    def grab(i):
        def hook(_module, _inputs, output):
            captured[i] = (output[0] if isinstance(output, tuple) else output).detach().clone()

        return hook

    handles = [all_layers[i].register_forward_hook(grab(i)) for i in GOLDEN_BLOCKS]
    try:
        with torch.inference_mode():
            last = resid_post(model, torch.tensor([GOLDEN_IDS], dtype=torch.long))
    finally:
        for h in handles:
            h.remove()
    worst = 0.0
    for i in GOLDEN_BLOCKS:
        gold = np.load(os.path.join(golden_dir, f"act_blocks.{i}.hook_resid_post.npy")).astype(np.float64)
        got = captured[i][0].double().numpy()
        if i == len(all_layers) - 1:  # the hook and model.model's output (norm removed) must agree
            assert np.array_equal(got, last[0].double().numpy())
        rel = np.abs(got - gold).max(axis=1) / np.linalg.norm(gold, axis=1)
        worst = max(worst, float(rel.max()))
        print(json.dumps({"check": f"blocks.{i}.hook_resid_post", "max_abs_err": float(np.abs(got - gold).max()),
                          "max_abs_err_rel_row_l2": float(rel.max()), "row_l2_max": float(np.linalg.norm(gold, axis=1).max())}),
              flush=True)
    return worst


def bench(model, ids, B, T, warmup, reps):
    x = torch.from_numpy(ids.reshape(B, T).copy())
    with torch.inference_mode():
        for _ in range(warmup):
            resid_post(model, x)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            h = resid_post(model, x)
            times.append(time.perf_counter() - t0)
    assert h.shape == (B, T, model.config.hidden_size), h.shape
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    p.add_argument("--gguf", default=None, help="GGUF file name inside --model-dir (default: the only one)")
    p.add_argument("--layer", type=int, action="append", help="L of blocks.L.hook_resid_post (repeatable; default 5)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--ids", default=None, help=".npy of token ids (at least batch*context)")
    p.add_argument("--corpus", default=None, help="text file to tokenize when --ids is absent")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--check", action="store_true", help="compare with the goldens on the golden sentence")
    p.add_argument("--check-tol", type=float, default=1e-4, help="max abs error / row L2 that --check accepts")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    model_dir = os.path.abspath(args.model_dir)
    gguf_name = find_gguf(model_dir, args.gguf)
    model, load_s = load(model_dir, gguf_name)
    all_layers = list(model.model.layers)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "attn_implementation": attn_impl(model), "mkl": torch.backends.mkl.is_available(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    print(json.dumps({"loaded": os.path.join(model_dir, gguf_name), "load_s": round(load_s, 2),
                      "n_layers": len(all_layers), "torch_threads": torch.get_num_threads(), **versions}), flush=True)

    if args.check:
        worst = check(model, all_layers, os.path.join(model_dir, "golden"))
        ok = worst <= args.check_tol
        print(json.dumps({"check_worst_rel": worst, "tol": args.check_tol, "ok": ok}), flush=True)
        if not ok:
            sys.exit(1)
        if not args.layer:
            return

    B, T = args.batch, args.context
    ids, source = load_ids(args, model_dir, gguf_name, B * T)
    for L in args.layer or [5]:
        if not 0 <= L < len(all_layers):
            sys.exit(f"--layer {L}: the model has blocks 0..{len(all_layers) - 1}")
        truncate(model, all_layers, L + 1)
        times = bench(model, ids, B, T, args.warmup, args.reps)
        print(json.dumps({
            "tokens_per_s": B * T * len(times) / sum(times),
            "tokens_per_s_best": B * T / min(times),
            "seconds_per_forward_median": statistics.median(times),
            "hook": f"blocks.{L}.hook_resid_post", "layers": L + 1, "threads": torch.get_num_threads(),
            "batch": B, "context": T, "reps": len(times), "warmup": args.warmup, "ids": source, **versions,
        }), flush=True)


if __name__ == "__main__":
    main()
