#!/usr/bin/env python3
"""PyTorch (CPU) doing one saelab SAE training step, for bench/bench_train's ratio to PyTorch.

The step is saelab's (include/saelab/sae.hpp), written the way a SAELens / dictionary_learning user's
training loop runs it: autograd forward + backward, then torch.optim.Adam.
  pre  = (x - b_dec) @ W_enc + b_enc                           x [N, d], W_enc [d, F]
  standard:      f = relu(pre)
  topk:          f = relu(pre) at the top k of each row, 0 elsewhere (dense scatter, as SAELens' TopK)
  hierarchical:  f = relu(pre); child j of parent p = j // m zeroed where f_p == 0 (latents [0, P)
                 parents, [P, P + P*m) children; the gate is a mask, autograd gives it no gradient)
  x_hat = f @ W_dec + b_dec                                    W_dec [F, d]
  loss  = mean_n ||x - x_hat||^2 + lambda * mean_n sum_i f_i ||W_dec,i||   (standard, hierarchical)
        = mean_n ||x - x_hat||^2                                          (topk; aux-k off)
Synthetic Gaussian x, as bench_train. Prints one JSON line per architecture:
  {"arch": ..., "d": ..., "F": ..., "N": ..., "threads": ..., "tokens_per_s": ..., "l0": ..., "torch": ...}

Usage:
  .venv-reference/bin/python scripts/reference/bench_torch_sae_step.py --d 512 --F 4096 --N 4096 \
      --arch standard --arch topk --arch hierarchical [--k 32] [--l0 32] [--threads 2] [--reps 10]
"""
import argparse
import json
import statistics
import time

import torch


def make_params(d, F, seed):
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(F, d, generator=g)
    W_dec = 0.1 * W_dec / W_dec.norm(dim=1, keepdim=True)
    return {
        "W_enc": W_dec.t().contiguous().requires_grad_(),
        "b_enc": torch.zeros(F, requires_grad=True),
        "W_dec": W_dec.requires_grad_(),
        "b_dec": torch.zeros(d, requires_grad=True),
    }


def encode(p, x, arch, k, n_parents, m):
    pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
    if arch == "topk":
        vals, idx = pre.topk(k, dim=1)
        return torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))
    f = torch.relu(pre)
    if arch == "hierarchical":
        parents, children = f[:, :n_parents], f[:, n_parents:]
        gate = (parents > 0).to(f.dtype).repeat_interleave(m, dim=1)  # [N, P*m]
        f = torch.cat([parents, children * gate], dim=1)
    return f


def step(p, opt, x, arch, k, lam, n_parents, m):
    opt.zero_grad(set_to_none=True)
    f = encode(p, x, arch, k, n_parents, m)
    x_hat = f @ p["W_dec"] + p["b_dec"]
    loss = (x - x_hat).pow(2).sum(dim=1).mean()
    if arch != "topk":
        loss = loss + lam * (f * p["W_dec"].norm(dim=1)).sum(dim=1).mean()
    loss.backward()
    opt.step()
    return f


def bench(arch, d, F, N, k, l0, threads, reps, warmup, m):
    torch.set_num_threads(threads)
    n_parents = 0
    if arch == "hierarchical":  # as bench_train: 4 children a parent, F rounded down to P * 5
        n_parents = F // (1 + m)
        F = n_parents * (1 + m)
    p = make_params(d, F, 1)
    opt = torch.optim.Adam(p.values(), lr=1e-4)
    x = torch.randn(N, d, generator=torch.Generator().manual_seed(2))
    if l0 > 0 and arch != "topk":
        # Each latent fires on ~l0/F of the tokens (b_enc_i = -its (1 - l0/F) quantile of pre), so the
        # step runs at a trained SAE's sparsity instead of random init's L0 ~ F/2.
        with torch.no_grad():
            pre = x @ p["W_enc"]
            p["b_enc"].copy_(-torch.quantile(pre, 1.0 - l0 / F, dim=0))
    times = []
    f = None
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        f = step(p, opt, x, arch, k, 1.0, n_parents, m)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times[warmup:])
    return {"arch": arch, "d": d, "F": F, "N": N, "threads": threads, "tokens_per_s": N / dt,
            "step_s": dt, "l0": float((f > 0).sum(dim=1).float().mean()), "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", choices=["standard", "topk", "hierarchical"])
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--F", type=int, default=4096)
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--l0", type=float, default=0, help="standard / hierarchical: set b_enc for this L0 (0: init's)")
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    for arch in a.arch or ["standard", "topk", "hierarchical"]:
        print(json.dumps(bench(arch, a.d, a.F, a.N, a.k, a.l0, a.threads, a.reps, a.warmup, a.children)), flush=True)


if __name__ == "__main__":
    main()
