#!/usr/bin/env python3
"""Dump golden outputs from Hugging Face transformers/tokenizers for saelab's C++ tests.

Usage: scripts/reference/dump_golden.py [--shared ../shared] [--out tests/data]
Writes:
  tinystories656k_golden.safetensors  logits, every hook activation and a greedy continuation
  tokenizer_cases.json                 encodings/decodings from `tokenizers` (TinyStories-656K, GPT-2)
Each file carries {"saelab_golden": "1"} (magic + version); tests refuse other versions.
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.numpy import save_file
from tokenizers import Tokenizer
from tokenizers import decoders, models, pre_tokenizers
from transformers import LlamaForCausalLM

MAGIC = {"saelab_golden": "1"}

TEXTS = [
    "Once upon a time, there was a little dog.",
    "",
    " leading space and  double  spaces",
    "Tabs\tand\nnewlines\n\nhere",
    "Numbers 12345 and 3.14159, symbols #@!$%^&*()",
    "Unicode: café, naïve, Ελληνικά, 日本語, emoji 🙂",
    "It's we'll they've I'm you'd she's",
    "The quick brown fox jumps over the lazy dog. " * 3,
]


def dump_tinystories(shared, out):
    path = os.path.join(shared, "models", "tinystories-656k")
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    prompt = "Once upon a time, there was a little dog. He liked to run"
    ids = [1] + tok.encode(prompt, add_special_tokens=False).ids
    acts = {}

    def save(name):
        def hook(_mod, inputs, output):
            if name.endswith("resid_pre"):
                acts[name] = inputs[0][0].detach().numpy().copy()
            else:
                o = output[0] if isinstance(output, tuple) else output
                acts[name] = o[0].detach().numpy().copy()
        return hook

    handles = []
    for L, layer in enumerate(model.model.layers):
        handles.append(layer.register_forward_hook(save(f"blocks.{L}.hook_resid_pre")))
        handles.append(layer.self_attn.register_forward_hook(save(f"blocks.{L}.hook_attn_out")))
        handles.append(layer.mlp.register_forward_hook(save(f"blocks.{L}.hook_mlp_out")))
        handles.append(layer.register_forward_hook(save(f"blocks.{L}.hook_resid_post")))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    for h in handles:
        h.remove()
    start = [1] + tok.encode("Once upon a time", add_special_tokens=False).ids
    with torch.no_grad():
        greedy = model.generate(torch.tensor([start]), max_new_tokens=40, do_sample=False)[0].numpy()
    tensors = {"input_ids": np.array(ids, dtype=np.int32), "logits": logits.astype(np.float32),
               "greedy_ids": greedy.astype(np.int32), "greedy_prompt_len": np.array([len(start)], dtype=np.int32)}
    for k, v in acts.items():
        tensors[k] = v.astype(np.float32)
    meta = dict(MAGIC, model="tinystories-656k", prompt=prompt,
                greedy_text=tok.decode(greedy.tolist(), skip_special_tokens=True))
    save_file(tensors, os.path.join(out, "tinystories656k_golden.safetensors"), metadata=meta)
    print("greedy:", meta["greedy_text"])


def dump_tokenizers(shared, out):
    ts = Tokenizer.from_file(os.path.join(shared, "models", "tinystories-656k", "tokenizer.json"))
    # GPT-2 as Hugging Face's gpt2/tokenizer.json defines it: byte-level BPE, no prefix space.
    g2 = Tokenizer(models.BPE.from_file(os.path.join(shared, "models", "gpt2-tokenizer", "encoder.json"),
                                        os.path.join(shared, "models", "gpt2-tokenizer", "vocab.bpe")))
    g2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    g2.decoder = decoders.ByteLevel()
    cases = []
    for t in TEXTS:
        a = ts.encode(t, add_special_tokens=False).ids
        b = g2.encode(t).ids
        cases.append({"text": t,
                      "tinystories656k": {"ids": a, "decoded": ts.decode(a, skip_special_tokens=False)},
                      "gpt2": {"ids": b, "decoded": g2.decode(b)}})
    with open(os.path.join(out, "tokenizer_cases.json"), "w") as f:
        json.dump(dict(MAGIC, cases=cases), f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("SAELAB_SHARED", "../shared"))
    ap.add_argument("--out", default="tests/data")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    dump_tinystories(args.shared, args.out)
    dump_tokenizers(args.shared, args.out)
