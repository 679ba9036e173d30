#!/usr/bin/env python3
"""Goldens for saelab's absorption eval from SAEBench's own functions (tests/data/saebench_absorption).

    .venv-saebench/bin/python scripts/reference/saebench_absorption_goldens.py [--out tests/data/saebench_absorption]

sae_bench.evals.absorption (sae-bench 0.6.0) runs unchanged on small seeded inputs this script
writes beside its goldens (*.npy, goldens.json); tests/test_absorption.cpp reads both back:

  vocab      vocab.get_alpha_tokens on the tokenizer.json of TinyStories-656K (SentencePiece-style,
             "▁" words: SAEBench's leading-space fix), the tiny GPT-2 and the tiny Mistral fixtures
             (transformers' PreTrainedTokenizerFast): the sorted word list.
  prompts    prompting.create_icl_prompt (examples in the given order, separator prepended, as the
             eval calls it) and first_letter_formatter on a few words.
  probe      probing.train_multi_probe with the first-letter probe's arguments (batch 64, 50 epochs,
             lr 1e-2 -> 1e-5, weight_decay 1e-4) on planted letter activations; torch's RNG is not
             saelab's, so the init is given (probe_init_*) and the DataLoader does not shuffle: then
             the run is deterministic and saelab's trainer must reproduce it.
  ksparse    k_sparse_probing.train_k_sparse_probes (the L1 probe, full batch, init given), then
             eval_probe_and_sae_k_sparse_raw_scores, sae_k_sparse_metadata, build_metrics_df and
             add_feature_splits_to_metrics_df: per letter the probe F1, the top-k latents and F1 per
             k, the split features. The SAE is SAELens' StandardSAE (unit decoder rows, so the fold
             SAEBench applies to registry SAEs changes nothing).
  absorption feature_absorption.get_stats_and_likely_false_negative_tokens and
             calculate_projection_and_cos_sims with a FeatureAbsorptionCalculator (the eval's
             thresholds) whose model stands in: it returns, for each word's prompt, that word's
             "fresh prompt" activation (tp_x row of the word) at the read position; then
             main._aggregate_results_df and main.run_eval's letter filter, mean and stdev.

The planted activations: 26 letter directions, two word groups per letter; for the first eight
letters, one group's words turn the letter latent off and a group latent whose decoder carries the
letter direction fires instead (absorption by construction), so every path of the calculator runs.
transformer_lens and sae_lens are stood in (absorption imports HookedTransformer and SAE as types), and so are the
sae_bench_utils helpers main.py imports for run_eval (this script calls its _aggregate_results_df).
"""
import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch



def _stand_in_modules():
    """transformer_lens and sae_lens are not installed (their dependency trees are large); the
    absorption modules import HookedTransformer and SAE as type names only."""
    # main.py's run_eval helpers (LM batch sizes, uuids, SAE loading) are not on the path we call.
    utils = {n: object for n in ["activation_collection", "general_utils", "get_eval_uuid", "get_sae_bench_version",
                                 "get_sae_lens_version"]}
    for name, attrs in [("transformer_lens", {"HookedTransformer": object}), ("sae_lens", {"SAE": object}),
                        ("sae_bench.sae_bench_utils", utils),
                        ("sae_bench.sae_bench_utils.sae_selection_utils", {"get_saes_from_regex": object})]:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules.setdefault(name, mod)


_stand_in_modules()

from transformers import PreTrainedTokenizerFast  # noqa: E402

import sae_bench.evals.absorption.feature_absorption as feature_absorption  # noqa: E402
import sae_bench.evals.absorption.k_sparse_probing as k_sparse_probing  # noqa: E402
import sae_bench.evals.absorption.main as absorption_main  # noqa: E402
import sae_bench.evals.absorption.probing as probing  # noqa: E402
import sae_bench.evals.absorption.prompting as prompting  # noqa: E402
import sae_bench.evals.absorption.vocab as vocab_mod  # noqa: E402
from sae_bench.evals.absorption.eval_config import AbsorptionEvalConfig  # noqa: E402
from sae_bench.evals.absorption.feature_absorption_calculator import FeatureAbsorptionCalculator  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
D_MODEL, N_LATENTS, WORDS_PER_GROUP, ABSORBED_LETTERS = 48, 26 + 52 + 18, 7, 8
TEMPLATE, TOKEN_POS = AbsorptionEvalConfig().prompt_template, AbsorptionEvalConfig().prompt_token_pos
LETTERS = vocab_mod.LETTERS


# ---------------------------------------------------------------------------------------- inputs
def planted(rng):
    u = np.linalg.qr(rng.normal(size=(D_MODEL, 26)))[0].T  # orthonormal letter directions [26, d]
    z = rng.normal(size=(52, D_MODEL))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    words, letters, groups = [], [], []
    for g in range(52):
        letter = g // 2
        for w in range(WORDS_PER_GROUP):
            tail = "".join(rng.choice(list(LETTERS), size=3))
            words.append(LETTERS[letter] + tail + LETTERS[w] + LETTERS[g % 26])
            letters.append(letter)
            groups.append(g)
    words, letters, groups = np.array(words), np.array(letters), np.array(groups)

    def acts(idx, scale):
        a = rng.uniform(3.0, 5.0, size=(len(idx), 1))
        return (a * u[letters[idx]] + 1.5 * z[groups[idx]] + scale * rng.normal(size=(len(idx), D_MODEL))).astype(
            np.float32)

    # 80/20 within each letter, so every letter has test words (SAEBench splits the vocabulary at
    # random; with thousands of words per letter that amounts to the same).
    train, test = [], []
    for letter in range(26):
        idx = rng.permutation(np.nonzero(letters == letter)[0])
        cut = int(len(idx) * 0.8)
        train += list(idx[:cut])
        test += list(idx[cut:])
    train, test = rng.permutation(train), rng.permutation(test)
    # The SAE: letter latents [0, 26), group latents [26, 78), noise latents after.
    W_enc = np.zeros((D_MODEL, N_LATENTS))
    W_dec = np.zeros((N_LATENTS, D_MODEL))
    b_enc = np.zeros(N_LATENTS)
    for letter in range(26):
        col = u[letter].copy()
        if letter < ABSORBED_LETTERS:  # group 2·letter's words switch the letter latent off
            col -= 1.6 * z[2 * letter]
        W_enc[:, letter], W_dec[letter], b_enc[letter] = col, u[letter], -1.2
    for g in range(52):
        letter = g // 2
        absorbing = letter < ABSORBED_LETTERS and g % 2 == 0
        W_enc[:, 26 + g] = z[g] + (0.3 * u[letter] if absorbing else 0.0)
        W_dec[26 + g] = 2.5 * u[letter] + z[g] if absorbing else z[g]
        b_enc[26 + g] = -1.0
    noise = rng.normal(size=(N_LATENTS - 78, D_MODEL))
    W_enc[:, 78:] = 0.4 * noise.T
    W_dec[78:] = noise
    b_enc[78:] = -0.5
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    sae = {"W_enc": W_enc.astype(np.float32), "b_enc": b_enc.astype(np.float32), "W_dec": W_dec.astype(np.float32),
           "b_dec": (0.05 * rng.normal(size=D_MODEL)).astype(np.float32)}
    return {
        "words": words, "letters": letters, "train": train, "test": test,
        "train_x": acts(train, 0.15), "test_x": acts(test, 0.15),
        # the activation of each test word in the calculator's fresh prompt
        "tp_x": acts(test, 0.15), "sae": sae,
        # nn.Linear's init, U(±1/√fan_in)
        "probe_init_W": (rng.uniform(-1, 1, size=(26, D_MODEL)) / np.sqrt(D_MODEL)).astype(np.float32),
        "probe_init_b": (rng.uniform(-1, 1, size=26) / np.sqrt(D_MODEL)).astype(np.float32),
        "l1_init_W": (rng.uniform(-1, 1, size=(26, N_LATENTS)) / np.sqrt(N_LATENTS)).astype(np.float32),
        "l1_init_b": (rng.uniform(-1, 1, size=26) / np.sqrt(N_LATENTS)).astype(np.float32),
    }


class GivenInit:
    """Makes probing.LinearProbe start from given weights (torch's init RNG is not saelab's)."""

    def __init__(self, W, b):
        self.W, self.b, self.orig = W, b, probing.LinearProbe

    def __enter__(self):
        W, b, orig = self.W, self.b, self.orig

        class Probe(orig):
            def __init__(self, input_dim, num_outputs=1):
                super().__init__(input_dim, num_outputs)
                with torch.no_grad():
                    self.fc.weight.copy_(torch.from_numpy(W))
                    self.fc.bias.copy_(torch.from_numpy(b))

        probing.LinearProbe = Probe
        probing.DataLoader = lambda ds, batch_size, shuffle: torch.utils.data.DataLoader(ds, batch_size=batch_size,
                                                                                          shuffle=False)

    def __exit__(self, *exc):
        probing.LinearProbe = self.orig
        probing.DataLoader = torch.utils.data.DataLoader


# ------------------------------------------------------------------------------------- goldens
def vocab_goldens():
    out = {}
    for name, path in [("tinystories-656k", Path(os.environ.get("SAELAB_SHARED", REPO.parent / "shared"))
                        / "models/tinystories-656k/tokenizer.json"),
                       ("hf_tiny/gpt2", REPO / "tests/data/hf_tiny/gpt2/tokenizer.json"),
                       ("hf_tiny/mistral", REPO / "tests/data/hf_tiny/mistral/tokenizer.json")]:
        tok = PreTrainedTokenizerFast(tokenizer_file=str(path))
        out[name] = sorted(vocab_mod.get_alpha_tokens(tok))
    return out


def prompt_goldens():
    fmt = prompting.first_letter_formatter()
    cases = [(" cat", [" dog", "Apple", " zebra"]), ("Quiet", ["x", " yes"]), (" s", [" bb", "C", " dd", "Ee"])]
    prompts = [{"word": w, "examples": ex,
                "prompt": prompting.create_icl_prompt(w, examples=ex, base_template=TEMPLATE, answer_formatter=fmt,
                                                      max_icl_examples=len(ex), shuffle_examples=False,
                                                      prepend_separator_to_first_example=True).base}
               for w, ex in cases]
    answers = {w: fmt(w) for w in [" cat", "Dog", " zebra", "q"]}
    return prompts, answers


def probe_golden(p):
    y = torch.nn.functional.one_hot(torch.from_numpy(p["letters"][p["train"]]), num_classes=26)
    with GivenInit(p["probe_init_W"], p["probe_init_b"]):
        probe = probing.train_multi_probe(torch.from_numpy(p["train_x"]), y, num_probes=26, batch_size=64,
                                          num_epochs=50, lr=1e-2, weight_decay=1e-4, show_progress=False,
                                          device=torch.device("cpu"))
    return probe


class StandardSae:
    """The SAE SAEBench calls: SAELens' StandardSAE encode (apply_b_dec_to_input), relu((x − b_dec)
    W_enc + b_enc), with the attributes the absorption code reads."""

    def __init__(self, params):
        for k, v in params.items():
            setattr(self, k, torch.from_numpy(v.copy()))
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.cfg = types.SimpleNamespace(d_sae=self.W_enc.shape[1])

    def encode(self, x):
        return torch.relu((x.float() - self.b_dec) @ self.W_enc + self.b_enc)


def ksparse_golden(p, probe, sae, max_k):
    train_labels = [(str(p["words"][i]), int(p["letters"][i])) for i in p["train"]]
    test_labels = [(str(p["words"][i]), int(p["letters"][i])) for i in p["test"]]
    with GivenInit(p["l1_init_W"], p["l1_init_b"]):
        ks = k_sparse_probing.train_k_sparse_probes(sae, train_labels, torch.from_numpy(p["train_x"]),
                                                    ks=list(range(1, max_k + 1)), precalc_sae_acts=True)
    raw = k_sparse_probing.eval_probe_and_sae_k_sparse_raw_scores(sae, probe, ks, test_labels,
                                                                  torch.from_numpy(p["test_x"]))
    meta = k_sparse_probing.sae_k_sparse_metadata(sae, probe, ks, sae_name="planted", layer=0)
    metrics = k_sparse_probing.build_metrics_df(raw, meta, max_k_value=max_k)
    k_sparse_probing.add_feature_splits_to_metrics_df(metrics, max_k_value=max_k,
                                                      f1_jump_threshold=AbsorptionEvalConfig().f1_jump_threshold)
    return raw, metrics


class StandInModel:
    """The calculator's model: each prompt's activation at the read position is its word's tp_x row."""

    def __init__(self, word_acts):
        self.word_acts = word_acts
        self.tokenizer = "stand-in"  # calculate_projection_and_cos_sims asserts there is one
        self.suffix = TEMPLATE.replace("{word}", "")

    def to_tokens(self, text):
        return torch.zeros((1, 77), dtype=torch.long)  # every prompt the same length

    def run_with_cache(self, prompts, names_filter):
        acts = torch.zeros((len(prompts), -TOKEN_POS, D_MODEL))
        for i, text in enumerate(prompts):
            word = text.split("\n")[-1][: -len(self.suffix)]
            acts[i, TOKEN_POS] = torch.from_numpy(self.word_acts[word])
        return None, {names_filter[0]: acts}


def absorption_golden(p, probe, sae, raw, metrics):
    test_words = [str(p["words"][i]) for i in p["test"]]
    word_acts = dict(zip(test_words, p["tp_x"]))
    calc = FeatureAbsorptionCalculator(
        model=StandInModel(word_acts), icl_word_list=[str(w) for w in p["words"]], max_icl_examples=10,
        base_template=TEMPLATE, answer_formatter=prompting.first_letter_formatter(), word_token_pos=TOKEN_POS,
        full_absorption_probe_cos_sim_threshold=feature_absorption.FULL_ABSORPTION_PROBE_COS_THRESHOLD,
        absorption_fraction_probe_cos_sim_threshold=feature_absorption.ABSORPTION_FRACTION_PROBE_COS_THRESHOLD,
        probe_projection_proportion_threshold=feature_absorption.ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
        absorption_fraction_max_absorbing_latents=feature_absorption.ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS)
    with tempfile.TemporaryDirectory() as tmp:
        raw.to_parquet(Path(tmp) / k_sparse_probing.get_sparse_probing_raw_results_filename("planted", 0))
        likely = feature_absorption.get_stats_and_likely_false_negative_tokens(metrics, "planted", 0, Path(tmp))
    df = feature_absorption.calculate_projection_and_cos_sims(calc, sae, probe, layer=0, likely_negs=likely)
    agg = absorption_main._aggregate_results_df(df)
    cfg = AbsorptionEvalConfig()
    details, fr, full, nsplit = [], [], [], []
    for _, row in agg.iterrows():  # main.run_eval's filter and aggregation
        f1 = metrics[metrics["letter"] == row["letter"]]["f1_probe"].item()
        if f1 > cfg.min_GT_probe_f1:
            fr.append(float(row["mean_absorption_fraction"]))
            full.append(float(row["full_absorption_rate"]))
            nsplit.append(int(row["num_split_feats"]))
            details.append({"first_letter": row["letter"], "mean_absorption_fraction": fr[-1],
                            "full_absorption_rate": full[-1], "num_full_absorption": int(row["num_full_absorption"]),
                            "num_probe_true_positives": int(row["num_probe_true_positives"]),
                            "num_split_features": nsplit[-1]})
    mean = {"mean_absorption_fraction_score": statistics.mean(fr), "mean_full_absorption_score": statistics.mean(full),
            "mean_num_split_features": statistics.mean(nsplit),
            "std_dev_absorption_fraction_score": statistics.stdev(fr),
            "std_dev_full_absorption_score": statistics.stdev(full),
            "std_dev_num_split_features": statistics.stdev(nsplit)}
    per_word = [{"letter": r["letter"], "word": r["token"], "absorption_fraction": float(r["absorption_fraction"]),
                 "is_full_absorption": bool(r["is_full_absorption"]), "top_projection_feat": int(r["top_projection_feat"])}
                for _, r in df.iterrows()]
    return details, mean, per_word


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests/data/saebench_absorption"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    p = planted(np.random.default_rng(19))
    probe = probe_golden(p)
    sae = StandardSae(p["sae"])
    max_k = AbsorptionEvalConfig().max_k_value
    raw, metrics = ksparse_golden(p, probe, sae, max_k)
    details, mean, per_word = absorption_golden(p, probe, sae, raw, metrics)
    arrays = {"train_x": p["train_x"], "test_x": p["test_x"], "tp_x": p["tp_x"],
              "train_y": p["letters"][p["train"]].astype(np.int32), "test_y": p["letters"][p["test"]].astype(np.int32),
              "probe_init_W": p["probe_init_W"], "probe_init_b": p["probe_init_b"],
              "l1_init_W": p["l1_init_W"], "l1_init_b": p["l1_init_b"],
              "probe_W": probe.weights.detach().numpy(), "probe_b": probe.biases.detach().numpy(), **p["sae"]}
    for name, a in arrays.items():
        np.save(os.path.join(args.out, name + ".npy"), np.ascontiguousarray(a))
    prompts, answers = prompt_goldens()
    letters = []
    for letter in LETTERS:
        row = metrics[metrics["letter"] == letter].iloc[0]
        letters.append({"letter": letter, "f1_probe": float(row["f1_probe"]),
                        "f1_sparse": [float(row[f"f1_sparse_sae_{k}"]) for k in range(1, max_k + 1)],
                        "feats": [[int(f) for f in row[f"sparse_sae_k_{k}_feats"]] for k in range(1, max_k + 1)],
                        "split_feats": [int(f) for f in row["split_feats"]]})
    out = {
        "generator": "scripts/reference/saebench_absorption_goldens.py",
        "versions": {n: importlib.metadata.version(n) for n in ["sae-bench", "torch", "scikit-learn", "transformers"]},
        "template": TEMPLATE, "token_pos": TOKEN_POS, "max_k": max_k,
        "test_words": [str(p["words"][i]) for i in p["test"]],
        "vocab": vocab_goldens(), "prompts": prompts, "answers": answers,
        "letters": letters, "eval_result_details": details, "mean": mean, "per_word": per_word,
    }
    with open(os.path.join(args.out, "goldens.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", args.out, "| letters in details:", len(details), "| mean:", mean)


if __name__ == "__main__":
    main()
