#!/usr/bin/env python3
"""Tiny randomly initialised Hugging Face checkpoints + goldens for saelab's HF loader tests.

Usage (from the repository root, reference venv; single-threaded, well under a minute):
    .venv-reference/bin/python scripts/reference/hf_tiny_models.py [--shared ../shared] [--out tests/data/hf_tiny]
    (--only gpt2,gemma2 regenerates a subset; ablations.json/README.md are then left alone.)

For each architecture NAME in {gpt2, pythia, gemma2, gemma3, qwen2, qwen3, llama3, mistral} it writes
tests/data/hf_tiny/NAME/ laid out like a checkpoint a user downloads from the Hub:
  config.json            old-style (pre-v5) keys, in the style of the real checkpoint's config.json
                         (gpt2, pythia-70m, gemma-2-2b, gemma-3-1b, Qwen2.5-0.5B, Qwen3-0.6B, Llama-3.2-1B,
                         Mistral-7B-v0.1), scaled down (d_model 64, 2-3 layers, vocab ~300-500)
  config_v5.json         what transformers 5.24's save_pretrained writes for the same model (rope_parameters,
                         layer_types, ...): a loader must build the same model from either file
  model.safetensors      f32 weights, written by save_pretrained (tied heads are not stored)
  tokenizer.json         a BPE trained with `tokenizers` on a slice of ../shared/corpus, with the family's
                         exact pipeline (normalizer, pre-tokenizer, model options, post-processor, decoder,
                         added tokens) as the real tokenizer.json has it
  tokenizer_config.json  the real family's add_bos_token / bos / eos / tokenizer_class settings
  golden.safetensors     metadata {"saelab_golden": "1", "arch", "bos_prepended", ...}; tensors:
                           input_ids int32 [2,T] (T=16; the family's BOS first when its tokenizer adds one)
                           logits f32 [2*T, V_config] (row = b*T + t), from transformers, f32, eager attention
                           hook_embed, hook_pos_embed (gpt2 only), blocks.L.hook_resid_pre / hook_attn_out /
                           hook_resid_mid (not for parallel-residual gpt_neox) / hook_mlp_out / hook_resid_post,
                           each f32 [2*T, d_model] (TransformerLens names; see README for the capture points)
                           greedy_ids int32 [6+8]: first 6 tokens of sequence 0 + 8 argmax tokens
                           (no KV cache), greedy_prompt_len int32 [1] (also in metadata)
  tokenizer_cases.json   ~30 texts, one per line: ids / ids_no_special / decoded / decoded_skip from
                         AutoTokenizer.from_pretrained(dir) (what a user gets), "tokens", "raw_matches_auto", and
                         "raw" (the same four from tokenizers.Tokenizer.from_file(tokenizer.json)) only where the
                         two disagree
and tests/data/hf_tiny/ablations.json (+ a table on stdout): max|d logits| / max|logits| when each
architecture-specific feature is switched off, so every feature provably moves the goldens (the script fails
below 1e-2); per architecture also the tokenizer-pipeline ablations (how many case texts change when a
normalizer / regex / byte_fallback / ignore_merges / decoder step is removed) and config probes (which old-style
config.json keys transformers 5.24 actually reads, asserted); and tests/data/hf_tiny/README.md, generated from
the same numbers.

Self-checks (the script fails if one breaks): resid_post == resid_pre + attn_out + mlp_out,
resid_mid == resid_pre + attn_out, block-0 input == hook_embed (+ hook_pos_embed); the model reloaded from the
written directory (old-style config) and from config_v5.json reproduces the in-memory logits exactly;
AutoTokenizer ids_no_special == tokenizer.json ids; the sliding-window convention is measured, not assumed.
Deterministic: fixed seeds, TOKENIZERS_PARALLELISM=false, one torch thread.
"""
import argparse
import copy
import json
import math
import os
import shutil
import tempfile

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

torch.set_num_threads(1)
MAGIC = {"saelab_golden": "1"}
T = 16
PROMPT_LEN = 6
NEW_TOKENS = 8
ARCHS = ["gpt2", "pythia", "gemma2", "gemma3", "qwen2", "qwen3", "llama3", "mistral"]

# ----------------------------------------------------------------------------------------------
# Training text: a fixed slice of ../shared/corpus plus a small multilingual supplement so that the
# byte-level vocabularies get merges of multi-byte UTF-8 sequences and the SentencePiece-style ones get
# accented / Greek characters as pieces. CJK and emoji are deliberately absent (byte fallback).
# ----------------------------------------------------------------------------------------------
CORPUS_SLICE = [("gutenberg/carroll-alice.txt", 0, 90_000), ("abc/science.txt", 0, 60_000),
                ("wikitext2/valid.txt", 0, 60_000), ("state_union/1945-Truman.txt", 0, 30_000),
                ("webtext/pirates", 0, 20_000)]
SUPPLEMENT = ("café naïve résumé façade déjà vu über Müller Straße señor niño élève crème brûlée "
              "Ελληνικά γράμματα αλφάβητο λόγος In 1999 , 2000 and 2024 : 100 of 365 days , 42 % at 12 o'clock .")
# Repeated often enough to get merges for "Sam" (line-initial, no space: makes the case-insensitive contraction
# rule observable on "'Sam") and for 2-3 digit numbers (makes the digit rules observable).
DRILL = "Sam said it's in 1999, 2000 and 2024: 100 of 365"


def read_text(path):
    """Corpus files are UTF-8 except a few Latin-1 ones (abc/*)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def corpus_lines(shared):
    lines = []
    for rel, start, n in CORPUS_SLICE:
        text = read_text(os.path.join(shared, "corpus", rel))[start:start + n]
        lines += [ln for ln in text.split("\n")]
    lines += [SUPPLEMENT] * 40 + [DRILL] * 300
    return lines


def snippet(shared, rel, marker, nchars=400):
    text = read_text(os.path.join(shared, "corpus", rel))
    i = text.index(marker)
    return text[i:i + nchars]


# ----------------------------------------------------------------------------------------------
# Tokenizer pipelines, written as the JSON sections of the real tokenizer.json files.
# ----------------------------------------------------------------------------------------------
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")


def bl(add_prefix_space, trim_offsets, use_regex=None):
    d = {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets}
    if use_regex is not None:
        d["use_regex"] = use_regex
    return d


def template(bos, bos_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}


def added(i, content, special=True, normalized=False):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


SP_DECODER_GEMMA = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}
SP_DECODER_LLAMA = {"type": "Sequence", "decoders": SP_DECODER_GEMMA["decoders"] + [
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}

# Per family: the tokenizer.json sections (post_processor may reference ids filled in later), how the model
# section looks in the real file, and where the special tokens sit.
TOK_FAMILY = {
    # openai-community/gpt2 tokenizer.json (written by an old `tokenizers`: no use_regex / byte_fallback /
    # ignore_merges keys; merges as "a b" strings)
    "gpt2": dict(kind="bytelevel", size=420, normalizer=None, pre_tokenizer=bl(False, True),
                 post_processor=bl(True, False), decoder=bl(True, True),
                 model_keys=dict(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                                 fuse_unk=False),
                 front=[], back=[("<|endoftext|>", True, True)], merges_as="str"),
    # EleutherAI/gpt-neox-20b tokenizer.json (= pythia's): NFC, ByteLevel everywhere, <|endoftext|>=0,
    # <|padding|>=1, and 23 non-special "normalized" added tokens made of 24..2 spaces at the end.
    "pythia": dict(kind="bytelevel", size=380, normalizer={"type": "NFC"}, pre_tokenizer=bl(False, True),
                   post_processor=bl(False, True), decoder=bl(False, True),
                   model_keys=dict(dropout=None, unk_token=None, continuing_subword_prefix=None,
                                   end_of_word_suffix=None, fuse_unk=False),
                   front=[("<|endoftext|>", True, False), ("<|padding|>", True, False)],
                   back=[(" " * n, False, True) for n in range(24, 1, -1)], merges_as="str"),
    # Qwen/Qwen2.5-0.5B tokenizer.json
    "qwen2": dict(kind="bytelevel", size=400, normalizer={"type": "NFC"},
                  pre_tokenizer={"type": "Sequence", "pretokenizers": [
                      {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
                      bl(False, False, False)]},
                  post_processor=bl(False, False, False), decoder=bl(False, False, False),
                  model_keys=dict(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                                  fuse_unk=False, byte_fallback=False, ignore_merges=False),
                  front=[],
                  back=[(t, True, False) for t in ["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                                   "<|object_ref_start|>", "<|object_ref_end|>"]]
                  + [("<tool_call>", False, False), ("</tool_call>", False, False)]
                  + [(t, True, False) for t in ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]],
                  merges_as="str", train_regex=LLAMA3_REGEX),
    # meta-llama/Llama-3.2-1B tokenizer.json
    "llama3": dict(kind="bytelevel", size=430, normalizer=None,
                   pre_tokenizer={"type": "Sequence", "pretokenizers": [
                       {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": False},
                       bl(False, True, False)]},
                   post_processor="llama3", decoder=bl(True, True, True),
                   model_keys=dict(dropout=None, unk_token=None, continuing_subword_prefix=None,
                                   end_of_word_suffix=None, fuse_unk=False, byte_fallback=False, ignore_merges=True),
                   front=[],
                   back=[(t, True, False) for t in [
                       "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                       "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                       "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]],
                   merges_as="str"),
    # mistralai/Mistral-7B-v0.1 tokenizer.json (the legacy Llama-2 conversion: normalizer Prepend+Replace,
    # no pre-tokenizer)
    "mistral": dict(kind="sp", size=448, normalizer={"type": "Sequence", "normalizers": [
                        {"type": "Prepend", "prepend": "▁"},
                        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
                    pre_tokenizer=None, post_processor=("<s>", 1), decoder=SP_DECODER_LLAMA,
                    model_keys=dict(dropout=None, unk_token="<unk>", continuing_subword_prefix=None,
                                    end_of_word_suffix=None, fuse_unk=True, byte_fallback=True),
                    specials=["<unk>", "<s>", "</s>"], merges_as="str", newline_piece=False),
    # google/gemma-2-2b tokenizer.json: normalizer Replace " "->"▁" (no dummy prefix), a Split(" ") pre-tokenizer
    # that never matches after the normalizer, BPE with byte fallback, <pad>=0 <eos>=1 <bos>=2 <unk>=3 <mask>=4
    "gemma2": dict(kind="sp", size=448, normalizer={"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
                   pre_tokenizer={"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                                  "invert": False},
                   post_processor=("<bos>", 2), decoder=SP_DECODER_GEMMA,
                   model_keys=dict(dropout=None, unk_token="<unk>", continuing_subword_prefix=None,
                                   end_of_word_suffix=None, fuse_unk=True, byte_fallback=True, ignore_merges=False),
                   specials=["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"],
                   merges_as="str", newline_piece=True),
}
TOK_FAMILY["gemma3"] = dict(TOK_FAMILY["gemma2"], merges_as="pair")   # gemma-3's file: merges as [a, b] pairs
TOK_FAMILY["qwen3"] = dict(TOK_FAMILY["qwen2"], back=TOK_FAMILY["qwen2"]["back"] + [
    ("<think>", False, False), ("</think>", False, False)])
# Whole-word entries without a merge path: only BPE(ignore_merges=true) produces them (llama3 only).
IGNORE_MERGES_WORDS = ["Ġsaelab", "Ġtokenizers"]


def tokenizer_json_skeleton(fam):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": fam["normalizer"], "pre_tokenizer": fam["pre_tokenizer"], "post_processor": None,
            "decoder": fam["decoder"], "model": dict(type="BPE", **fam["model_keys"], vocab={}, merges=[])}


def train_bytelevel(name, fam, lines):
    """Train with the family's own normalizer + pre-tokenizer; specials go where the real file has them."""
    sk = tokenizer_json_skeleton(fam)
    if fam.get("train_regex"):   # Qwen: vocab from a cl100k-style split (1-3 digit merges), shipped with Qwen's
        sk = copy.deepcopy(sk)   # one-digit regex, so those number tokens are unreachable, as in the real vocab
        sk["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = fam["train_regex"]
    tok = Tokenizer.from_str(json.dumps(sk))
    n_back = len(fam["back"]) + (len(IGNORE_MERGES_WORDS) if name == "llama3" else 0)
    trainer = trainers.BpeTrainer(vocab_size=fam["size"] - n_back, show_progress=False, min_frequency=2,
                                  special_tokens=[t for t, _, _ in fam["front"]],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    trained = json.loads(tok.to_str())["model"]
    vocab = dict(sorted(trained["vocab"].items(), key=lambda kv: kv[1]))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    # Rank "Ġ Ġ" first: then a pre-tokenizer that splits whitespace runs wrongly (or not at all) changes the
    # ids of the case texts ("double  spaces" must give "Ġ","Ġs", not "ĠĠ","s").
    assert ("Ġ", "Ġ") in merges
    merges.remove(("Ġ", "Ġ"))
    merges.insert(0, ("Ġ", "Ġ"))
    if name == "llama3":
        for w in IGNORE_MERGES_WORDS:
            assert w not in vocab
            vocab[w] = len(vocab)
    added_tokens = [added(i, t, sp, nz) for i, (t, sp, nz) in enumerate(fam["front"])]
    for t, sp, nz in fam["back"]:
        added_tokens.append(added(len(vocab), t, sp, nz))
        vocab[t] = len(vocab)
    return vocab, merges, added_tokens


def train_sentencepiece_style(name, fam, lines):
    """SentencePiece-like BPE: pieces never cross a '▁' boundary, digits are split (split_digits), unseen
    characters go to <0xNN> byte tokens. Vocab layout: specials, <0x00>..<0xFF>, merged pieces in merge order,
    then single characters (as in Llama-2 / Gemma vocabularies)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = Tokenizer.from_str(json.dumps(tokenizer_json_skeleton(fam))).normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("▁", "merged_with_next"),
                                                 pre_tokenizers.Digits(individual_digits=True)])
    # Fixed alphabet (BpeTrainer's limit_alphabet breaks frequency ties non-deterministically): printable ASCII,
    # the supplement's accented / Greek letters, "▁", and for Gemma "\n" and "\t". Anything else in the training
    # text becomes a space, so CJK, emoji etc. can only be encoded through the <0xNN> byte tokens.
    allowed = set(chr(c) for c in range(32, 127)) | set(SUPPLEMENT) | {"▁"}
    if fam["newline_piece"]:
        allowed |= {"\n", "\t"}
    lines = ["".join(ch if ch in allowed else " " for ch in ln) for ln in lines]
    if fam["newline_piece"]:   # Gemma has "\n" pieces: train on paragraphs that keep their newlines
        lines = ["\n".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
    # (Llama-2 / Mistral: "\n" and "\t" are not in the alphabet, they only exist as <0x0A> / <0x09>)
    specials = fam["specials"]
    n_pieces = fam["size"] - len(specials) - 256
    alphabet = sorted(allowed - {" "})
    trainer = trainers.BpeTrainer(vocab_size=n_pieces, show_progress=False, min_frequency=2,
                                  initial_alphabet=alphabet)
    tok.train_from_iterator(lines, trainer)
    trained = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    merged = [a + b for a, b in merges]
    chars = [t for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]) if t not in set(merged)]
    vocab = {}
    for t in specials + [f"<0x{b:02X}>" for b in range(256)] + merged + chars:
        assert t not in vocab, t
        vocab[t] = len(vocab)
    added_tokens = [added(vocab[t], t, True, False) for t in specials]
    return vocab, merges, added_tokens


def build_tokenizer(name, lines):
    fam = TOK_FAMILY[name]
    if fam["kind"] == "bytelevel":
        vocab, merges, added_tokens = train_bytelevel(name, fam, lines)
    else:
        vocab, merges, added_tokens = train_sentencepiece_style(name, fam, lines)
    j = tokenizer_json_skeleton(fam)
    j["added_tokens"] = added_tokens
    pp = fam["post_processor"]
    if pp == "llama3":
        j["post_processor"] = {"type": "Sequence", "processors": [
            bl(True, False, True), template("<|begin_of_text|>", vocab["<|begin_of_text|>"])]}
    elif isinstance(pp, tuple):
        assert vocab[pp[0]] == pp[1]
        j["post_processor"] = template(pp[0], pp[1])
    else:
        j["post_processor"] = pp
    j["model"]["vocab"] = vocab
    j["model"]["merges"] = [f"{a} {b}" for a, b in merges] if fam["merges_as"] == "str" else [list(m) for m in merges]
    return j


def tokenizer_config(name, tj):
    """tokenizer_config.json as the real family ships it (chat templates omitted)."""
    adt = {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
           for a in tj["added_tokens"]}
    if name == "gpt2":
        return {"model_max_length": 1024}
    if name == "pythia":
        return {"add_prefix_space": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                "tokenizer_class": "GPTNeoXTokenizer", "unk_token": "<|endoftext|>"}
    if name in ("qwen2", "qwen3"):
        extra = [a["content"] for a in tj["added_tokens"] if a["special"] and a["content"] != "<|endoftext|>"]
        return {"add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": adt,
                "additional_special_tokens": extra, "bos_token": None, "clean_up_tokenization_spaces": False,
                "eos_token": "<|endoftext|>" if name == "qwen2" else "<|im_end|>", "errors": "replace",
                "model_max_length": 131072, "pad_token": "<|endoftext|>", "split_special_tokens": False,
                "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}
    if name == "llama3":
        return {"added_tokens_decoder": adt, "bos_token": "<|begin_of_text|>", "clean_up_tokenization_spaces": True,
                "eos_token": "<|end_of_text|>", "model_input_names": ["input_ids", "attention_mask"],
                "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    if name == "mistral":
        return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": adt,
                "additional_special_tokens": [], "bos_token": "<s>", "clean_up_tokenization_spaces": False,
                "eos_token": "</s>", "legacy": True, "model_max_length": 1000000000000000019884624838656,
                "pad_token": None, "sp_model_kwargs": {}, "spaces_between_special_tokens": False,
                "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>", "use_default_system_prompt": False}
    if name in ("gemma2", "gemma3"):
        return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": adt,
                "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"], "bos_token": "<bos>",
                "clean_up_tokenization_spaces": False, "eos_token": "<eos>",
                "model_max_length": 1000000000000000019884624838656, "pad_token": "<pad>", "sp_model_kwargs": {},
                "spaces_between_special_tokens": False, "tokenizer_class": "GemmaTokenizer", "unk_token": "<unk>",
                "use_default_system_prompt": False}
    raise KeyError(name)


# ----------------------------------------------------------------------------------------------
# Model configs in the style of the real config.json files (pre-v5 keys), scaled down.
# ----------------------------------------------------------------------------------------------
def model_config(name, vocab):
    V = len(vocab)
    if name == "gpt2":   # openai-community/gpt2
        return {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
                "bos_token_id": vocab["<|endoftext|>"], "embd_pdrop": 0.1, "eos_token_id": vocab["<|endoftext|>"],
                "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 64,
                "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "resid_pdrop": 0.1,
                "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
                "summary_type": "cls_index", "summary_use_proj": True,
                "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
                "vocab_size": V}   # like the real file: no n_inner (= 4*n_embd), no torch_dtype
    if name == "pythia":   # EleutherAI/pythia-70m (vocab padded past the tokenizer, like 50277 -> 50304)
        return {"architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "layer_norm_eps": 1e-05,
                "max_position_embeddings": 2048, "model_type": "gpt_neox", "num_attention_heads": 4,
                "num_hidden_layers": 2, "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False,
                "torch_dtype": "float32", "transformers_version": "4.24.0", "use_cache": True,
                "use_parallel_residual": True, "vocab_size": -(-V // 128) * 128}
    if name == "gemma2":   # google/gemma-2-2b
        return {"architectures": ["Gemma2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "attn_logit_softcapping": 5.0, "bos_token_id": 2, "cache_implementation": "hybrid",
                "eos_token_id": [1, vocab["<end_of_turn>"]], "final_logit_softcapping": 5.0, "head_dim": 32,
                "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64,
                "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 8192,
                "model_type": "gemma2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
                "pad_token_id": 0, "query_pre_attn_scalar": 24, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
                "sliding_window": 4, "torch_dtype": "float32", "transformers_version": "4.42.4", "use_cache": True,
                "vocab_size": V}
    if name == "gemma3":   # google/gemma-3-1b-pt, with gemma-3-4b's text rope_scaling
        return {"architectures": ["Gemma3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "attn_logit_softcapping": None, "bos_token_id": 2, "cache_implementation": "hybrid",
                "eos_token_id": [1, vocab["<end_of_turn>"]], "final_logit_softcapping": None, "head_dim": 16,
                "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64, "initializer_range": 0.02,
                "intermediate_size": 128, "max_position_embeddings": 32768, "model_type": "gemma3_text",
                "num_attention_heads": 2, "num_hidden_layers": 3, "num_key_value_heads": 1, "pad_token_id": 0,
                "query_pre_attn_scalar": 24, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
                "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000,
                "sliding_window": 4, "sliding_window_pattern": 3, "torch_dtype": "float32",
                "transformers_version": "4.50.0.dev0", "use_cache": True, "vocab_size": V}
    if name == "qwen2":   # Qwen/Qwen2.5-0.5B (vocab padded past the tokenizer, like 151665 -> 151936)
        return {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
                "bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|endoftext|>"], "hidden_act": "silu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128,
                "max_position_embeddings": 32768, "max_window_layers": 2, "model_type": "qwen2",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
                "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True,
                "torch_dtype": "float32", "transformers_version": "4.40.1", "use_cache": True, "use_mrope": False,
                "use_sliding_window": False, "vocab_size": -(-V // 64) * 64}
    if name == "qwen3":   # Qwen/Qwen3-0.6B
        return {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|im_end|>"], "head_dim": 32,
                "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128,
                "max_position_embeddings": 40960, "max_window_layers": 2, "model_type": "qwen3",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
                "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
                "torch_dtype": "float32", "transformers_version": "4.51.0", "use_cache": True,
                "use_sliding_window": False, "vocab_size": -(-V // 64) * 64}
    if name == "llama3":   # meta-llama/Llama-3.2-1B, rope scaling scaled down (8192 -> 64 original positions)
        return {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": vocab["<|begin_of_text|>"], "eos_token_id": vocab["<|end_of_text|>"],
                "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
                "intermediate_size": 128, "max_position_embeddings": 2048, "mlp_bias": False, "model_type": "llama",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pretraining_tp": 1,
                "rms_norm_eps": 1e-05,
                "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                 "original_max_position_embeddings": 64, "rope_type": "llama3"},
                "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "float32",
                "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": V}
    if name == "mistral":   # mistralai/Mistral-7B-v0.1
        return {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128,
                "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 4,
                "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
                "sliding_window": 6, "tie_word_embeddings": False, "torch_dtype": "float32",
                "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": V}
    raise KeyError(name)


REAL_MODEL = {"gpt2": "openai-community/gpt2", "pythia": "EleutherAI/pythia-70m",
              "gemma2": "google/gemma-2-2b", "gemma3": "google/gemma-3-1b-pt (+ gemma-3-4b text rope_scaling)",
              "qwen2": "Qwen/Qwen2.5-0.5B", "qwen3": "Qwen/Qwen3-0.6B", "llama3": "meta-llama/Llama-3.2-1B",
              "mistral": "mistralai/Mistral-7B-v0.1"}

# Initialisation: every parameter is re-drawn from one seeded generator so that the scores are O(1-5) and
# every feature bites. Linear weights ~ N(0, (gain/sqrt(fan_in))^2); norms 1+0.2N (Gemma: 0.2N, used as 1+w);
# biases 0.1N; embeddings N(0, emb_std^2).
INIT = {"gpt2": dict(seed=1, gain=1.5, emb_std=1.0),
        "pythia": dict(seed=2, gain=1.5, emb_std=1.0),
        "gemma2": dict(seed=3, gain=1.5, emb_std=0.15),
        "gemma3": dict(seed=4, gain=1.5, emb_std=0.15),
        "qwen2": dict(seed=5, gain=1.5, emb_std=1.0),
        "qwen3": dict(seed=6, gain=1.5, emb_std=1.0),
        "llama3": dict(seed=7, gain=1.5, emb_std=1.0),
        "mistral": dict(seed=8, gain=1.5, emb_std=1.0)}


def reinit(model, name):
    p = INIT[name]
    g = torch.Generator().manual_seed(1000 + p["seed"])
    seen = set()
    gemma = name.startswith("gemma")
    with torch.no_grad():
        for mname, mod in model.named_modules():
            for pname, par in list(mod.named_parameters(recurse=False)):
                if id(par) in seen:
                    continue
                seen.add(id(par))
                cls = type(mod).__name__
                r = torch.randn(par.shape, generator=g, dtype=torch.float32)
                if "Norm" in cls:
                    if pname == "weight":
                        par.copy_((0.0 if gemma else 1.0) + 0.2 * r)
                    else:
                        par.copy_(0.1 * r)
                elif isinstance(mod, torch.nn.Embedding):
                    par.copy_(p["emb_std"] * r)
                elif pname == "bias":
                    par.copy_(0.1 * r)
                elif pname == "weight" and par.dim() == 2:
                    fan_in = par.shape[0] if cls == "Conv1D" else par.shape[1]
                    par.copy_(p["gain"] / fan_in ** 0.5 * r)
                else:
                    raise RuntimeError(f"unhandled parameter {mname}.{pname} ({cls})")


def canonical_safetensors(path):
    """safetensors writes its JSON header (incl. __metadata__) in hash-map order; rewrite it with sorted keys so
    that regenerated files are byte-identical. Offsets are relative to the end of the header: data unchanged."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    hb = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(len(hb).to_bytes(8, "little") + hb + raw[8 + n:])
    os.chmod(path, 0o644)   # save_pretrained's temp files are 0600


def load_model(path):
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()


def load_with_config(weights_dir, cfg_dict):
    """The same weights under an edited config (written to a scratch dir, read back like a checkpoint)."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg_dict, f)
        os.symlink(os.path.join(os.path.abspath(weights_dir), "model.safetensors"),
                   os.path.join(d, "model.safetensors"))
        return load_model(d)


# ----------------------------------------------------------------------------------------------
# Hook capture
# ----------------------------------------------------------------------------------------------
def layers_of(model):
    base = getattr(model, "transformer", None) or getattr(model, "gpt_neox", None) or model.model
    return base, (base.h if hasattr(base, "h") else base.layers)


def capture(model, name, ids):
    """Forward pass with TransformerLens hook points captured. Returns (logits [B*T,V], acts dict [B*T,d])."""
    base, layers = layers_of(model)
    acts, handles = {}, []

    def out_hook(key):
        def f(_m, _args, out):
            acts[key] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        return f

    def in_hook(key):
        def f(_m, args, kwargs):
            acts[key] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
        return f

    def reg_in(mod, key):
        handles.append(mod.register_forward_pre_hook(in_hook(key), with_kwargs=True))

    def reg_out(mod, key):
        handles.append(mod.register_forward_hook(out_hook(key)))

    if name == "gpt2":
        reg_out(base.wte, "hook_embed")
        reg_out(base.wpe, "hook_pos_embed")
    elif name == "pythia":
        reg_out(base.embed_in, "hook_embed")
    else:
        reg_out(base.embed_tokens, "hook_embed")   # Gemma: Gemma*ScaledWordEmbedding, sqrt(d) included
    for L, layer in enumerate(layers):
        pre = f"blocks.{L}."
        reg_in(layer, pre + "hook_resid_pre")
        reg_out(layer, pre + "hook_resid_post")
        if name == "gpt2":
            reg_out(layer.attn, pre + "hook_attn_out")           # c_proj output incl. bias
            reg_in(layer.ln_2, pre + "hook_resid_mid")
            reg_out(layer.mlp, pre + "hook_mlp_out")
        elif name == "pythia":
            reg_out(layer.attention, pre + "hook_attn_out")      # dense output incl. bias
            reg_out(layer.mlp, pre + "hook_mlp_out")
        elif name.startswith("gemma"):
            reg_out(layer.post_attention_layernorm, pre + "hook_attn_out")
            reg_in(layer.pre_feedforward_layernorm, pre + "hook_resid_mid")
            reg_out(layer.post_feedforward_layernorm, pre + "hook_mlp_out")
        else:
            reg_out(layer.self_attn, pre + "hook_attn_out")      # o_proj output
            reg_in(layer.post_attention_layernorm, pre + "hook_resid_mid")
            reg_out(layer.mlp, pre + "hook_mlp_out")
    try:
        with torch.no_grad():
            logits = model(input_ids=ids).logits
    finally:
        for h in handles:
            h.remove()
    B, TT = ids.shape
    acts = {k: v.expand(B, TT, v.shape[-1]).reshape(B * TT, -1) for k, v in acts.items()}  # wpe out is [1,T,d]
    return logits.reshape(B * TT, -1), acts


def self_check_hooks(name, model, ids, acts):
    _, layers = layers_of(model)
    tol = dict(rtol=1e-5, atol=1e-5)
    first = acts["hook_embed"] + (acts["hook_pos_embed"] if name == "gpt2" else 0)
    assert torch.allclose(acts["blocks.0.hook_resid_pre"], first, **tol), "block 0 input != embed (+pos)"
    if name.startswith("gemma"):
        base, _ = layers_of(model)
        ref = base.embed_tokens.weight[ids.reshape(-1)] * model.config.hidden_size ** 0.5
        assert torch.allclose(acts["hook_embed"], ref, **tol), "gemma hook_embed != W_E[ids]*sqrt(d)"
    for L in range(len(layers)):
        p = f"blocks.{L}."
        pre, att, mlp, post = (acts[p + k] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out",
                                                    "hook_resid_post"))
        assert torch.allclose(post, pre + att + mlp, **tol), f"{name} L{L}: resid_post != pre+attn+mlp"
        if name != "pythia":
            assert torch.allclose(acts[p + "hook_resid_mid"], pre + att, **tol), f"{name} L{L}: resid_mid"
        if L + 1 < len(layers):
            assert torch.equal(post, acts[f"blocks.{L + 1}.hook_resid_pre"])


def greedy(model, prompt):
    """Argmax continuation with a full recompute per step (no KV cache); also returns whether model.generate
    (with its cache) agrees and the smallest top-1 / top-2 logit gap met on the way (a tie would be ambiguous)."""
    ids = prompt.clone()
    margin = float("inf")
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            last = model(input_ids=ids).logits[0, -1]
            top2 = last.topk(2).values
            margin = min(margin, float(top2[0] - top2[1]))
            ids = torch.cat([ids, last.argmax().view(1, 1)], dim=1)
        gen = model.generate(prompt, max_new_tokens=NEW_TOKENS, do_sample=False, min_new_tokens=NEW_TOKENS,
                             pad_token_id=0)
    return ids[0], bool(torch.equal(gen[0], ids[0])), margin


# ----------------------------------------------------------------------------------------------
# Ablations: each architecture-specific feature switched off; the weights stay the same.
# ----------------------------------------------------------------------------------------------
def ablations(name, d, cfg):
    """Yields (feature, how, model-with-feature-off)."""
    def edited(**kv):
        return load_with_config(d, dict(copy.deepcopy(cfg), **kv))

    def patched(fn):
        m = load_model(d)
        fn(m)
        return m

    def identity(m, attrs):
        _, layers = layers_of(m)
        for layer in layers:
            for a in attrs:
                obj = layer
                parts = a.split(".")
                for q in parts[:-1]:
                    obj = getattr(obj, q)
                setattr(obj, parts[-1], torch.nn.Identity())

    if name == "gpt2":
        yield "learned positions", "wpe := 0", patched(lambda m: m.transformer.wpe.weight.data.zero_())
    if name == "pythia":
        yield "partial rotary (rotary_pct 0.25)", "rotary_pct 1.0", edited(rotary_pct=1.0)
        yield "parallel residual", "use_parallel_residual false", edited(use_parallel_residual=False)
        yield "untied unembedding", "embed_out := embed_in", patched(
            lambda m: m.get_output_embeddings().weight.data.copy_(m.gpt_neox.embed_in.weight.data))
    if name in ("gemma2", "gemma3"):
        if name == "gemma2":
            yield "attention logit soft-cap", "attn_logit_softcapping null", edited(attn_logit_softcapping=None)
            yield "final logit soft-cap", "final_logit_softcapping null", edited(final_logit_softcapping=None)
        yield "sliding window", "sliding_window 4096", edited(sliding_window=4096)
        yield ("query_pre_attn_scalar", "query_pre_attn_scalar := head_dim",
               edited(query_pre_attn_scalar=cfg["head_dim"]))
        yield "post-attn / post-ffw norms", "both := identity", patched(
            lambda m: identity(m, ["post_attention_layernorm", "post_feedforward_layernorm"]))

        def plain_norm(m):
            for mod in m.modules():
                if "RMSNorm" in type(mod).__name__:
                    mod.weight.data -= 1.0      # x*(1+w') with w' = w-1  ==  x*w
        yield "(1+w) RMSNorm", "x*w instead of x*(1+w)", patched(plain_norm)

        def no_scale(m):
            m.model.embed_tokens.embed_scale.fill_(1.0)
        yield "embedding * sqrt(d)", "embed_scale := 1", patched(no_scale)
        if name == "gemma3":
            yield "q/k RMSNorm", "q_norm, k_norm := identity", patched(
                lambda m: identity(m, ["self_attn.q_norm", "self_attn.k_norm"]))
            yield "local rope base (sliding layers)", "rope_local_base_freq := rope_theta", edited(
                rope_local_base_freq=cfg["rope_theta"])
            yield "linear rope scaling (global layers)", "rope_scaling null", edited(rope_scaling=None)
    if name == "qwen2":
        def zero_bias(m):
            for layer in m.model.layers:
                for p in ("q_proj", "k_proj", "v_proj"):
                    getattr(layer.self_attn, p).bias.data.zero_()
        yield "q/k/v biases", "biases := 0", patched(zero_bias)
    if name == "qwen3":
        yield "q/k RMSNorm", "q_norm, k_norm := identity", patched(
            lambda m: identity(m, ["self_attn.q_norm", "self_attn.k_norm"]))
        yield "head_dim != d/heads", "(not ablatable: weight shapes)", None
    if name == "llama3":
        yield "llama3 rope scaling", "rope_scaling null", edited(rope_scaling=None)
    if name == "mistral":
        yield "sliding window", "sliding_window null", edited(sliding_window=None)


def measure_window(name, model, ids, W):
    """Which query positions of block 0 change when key position j=0 changes? -> i in [0, W)."""
    ids2 = ids.clone()
    ids2[0, 0] = (ids[0, 0] + 7) % model.config.vocab_size
    _, a = capture(model, name, ids[:1])
    _, b = capture(model, name, ids2[:1])
    diff = (a["blocks.0.hook_attn_out"] - b["blocks.0.hook_attn_out"]).abs().amax(-1)
    return [int(i) for i in torch.nonzero(diff > 0).flatten()]


# ----------------------------------------------------------------------------------------------
# Tokenizer cases
# ----------------------------------------------------------------------------------------------
CASE_TEXTS = [
    "Hello world",
    "",
    " leading space",
    "   three leading spaces",
    "double  spaces   and a trailing space ",
    "Tabs\tand\t\ttabs",
    "line one\nline two\n\n\nafter three newlines\n",
    "\n\n\n",
    "  \t \n  mixed   whitespace\t\n",
    "Digits: 7 42 512 2024 31415 271828 1234567",
    "Pi is 3.14159, 1,000,000 or 2024-01-31",
    "It's don't you're we've I'm we'll he'd",
    "IT'S DON'T HE'S SHE'D THEY'LL, John'S",
    "'Sam and O'Sam, 'TIS 'twas",
    "Wait... what?!?! (yes) -- [no] {maybe}; a/b\\c @#$%^&*~`",
    "café naïve résumé Über façade",
    "cafe\u0301 (decomposed) vs caf\u00e9 (composed)",
    "Ελληνικά γράμματα",
    "日本語のテキスト 中文",
    "emoji 🙂🚀 and 👍🏽!",
    "a<|endoftext|>b <|endoftext|>",
    "<|im_start|>user\nhi<|im_end|>\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<start_of_turn>user\nhi<end_of_turn>\n<bos>x<eos>",
    "<s>x</s> <unk> <pad>",
    "<tool_call>{}</tool_call> <think>hmm</think>",
    "ALL CAPS and MiXeD CaSe, the saelab tokenizers",
]
CASE_SNIPPETS = [("gutenberg/carroll-alice.txt", "Alice was beginning", 300),
                 ("abc/science.txt", "Inhaling the mists", 300),
                 ("wikitext2/valid.txt", " = Homarus gammarus = ", 300)]


def tokenizer_cases(name, d, shared):
    """Encode/decode every case text with AutoTokenizer (as a user would) and with the raw tokenizer.json."""
    auto = AutoTokenizer.from_pretrained(d)
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    texts = list(CASE_TEXTS) + [snippet(shared, r, m, n) for r, m, n in CASE_SNIPPETS]
    cases, n_mismatch = [], {"ids": 0, "ids_no_special": 0, "decoded": 0, "decoded_skip": 0}
    for t in texts:
        a_ids = auto(t, add_special_tokens=True)["input_ids"]
        c = {"text": t, "ids": a_ids, "ids_no_special": auto(t, add_special_tokens=False)["input_ids"],
             "decoded": auto.decode(a_ids, skip_special_tokens=False),
             "decoded_skip": auto.decode(a_ids, skip_special_tokens=True),
             "tokens": raw.encode(t, add_special_tokens=True).tokens}
        r_ids = raw.encode(t, add_special_tokens=True).ids
        r = {"ids": r_ids, "ids_no_special": raw.encode(t, add_special_tokens=False).ids,
             "decoded": raw.decode(r_ids, skip_special_tokens=False),
             "decoded_skip": raw.decode(r_ids, skip_special_tokens=True)}
        same = {k: c[k] == r[k] for k in n_mismatch}
        for k, v in same.items():
            n_mismatch[k] += not v
        c["raw_matches_auto"] = all(same.values())
        if not c["raw_matches_auto"]:
            c["raw"] = r          # only where tokenizers.Tokenizer.from_file(tokenizer.json) disagrees
        cases.append(c)
    probe = auto("Hello world", add_special_tokens=True)["input_ids"]
    bos = auto.bos_token_id
    info = {"auto_tokenizer_class": type(auto).__name__,
            "auto_prepends_bos": bool(bos is not None and probe and probe[0] == bos),
            "raw_prepends_bos": bool(bos is not None and raw.encode("Hello world").ids[:1] == [bos]),
            "bos_token": auto.bos_token, "eos_token": auto.eos_token,
            "mismatch_counts": n_mismatch}
    return cases, info, auto, raw


def tokenizer_ablations(name, d, texts):
    """Which pipeline features do the case texts exercise? Each feature is switched off in a copy of
    tokenizer.json; counts the cases whose ids (with specials) or decoded texts (with / without specials) change."""
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)

    def run(j):
        tk = Tokenizer.from_str(json.dumps(j))
        out = []
        for t in texts:
            e = tk.encode(t, add_special_tokens=True).ids
            out.append((e, tk.decode(e, skip_special_tokens=False), tk.decode(e, skip_special_tokens=True)))
        return out

    ref = run(base)
    muts = []

    def m(feature, fn):
        j = copy.deepcopy(base)
        fn(j)
        muts.append((feature, j))

    def drop_added(pred):
        def fn(j):
            j["added_tokens"] = [a for a in j["added_tokens"] if not pred(a)]
        return fn

    def set_regex(rx):
        def fn(j):
            j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = rx
        return fn

    def model_flag(k, v):
        def fn(j):
            j["model"][k] = v
        return fn

    if name == "gpt2":
        m("ByteLevel regex split (use_regex default true)", lambda j: j["pre_tokenizer"].update(use_regex=False))
        m("<|endoftext|> as added token", drop_added(lambda a: True))
    if name == "pythia":
        m("NFC normalizer", lambda j: j.update(normalizer=None))
        m("non-special whitespace-run added tokens", drop_added(lambda a: not a["special"]))
    if name in ("qwen2", "qwen3"):
        m("NFC normalizer", lambda j: j.update(normalizer=None))
        m("Qwen2 regex (\\p{N} = one digit)", set_regex(LLAMA3_REGEX))
        m("case-insensitive contractions (?i:...)", set_regex(QWEN2_REGEX.replace("(?i:'s|", "(?:'s|")))
        m("added tokens (special and non-special)", drop_added(lambda a: True))
    if name == "llama3":
        m("BPE ignore_merges", model_flag("ignore_merges", False))
        m("Llama-3 regex (\\p{N}{1,3})", set_regex(QWEN2_REGEX))
        m("case-insensitive contractions (?i:...)", set_regex(LLAMA3_REGEX.replace("(?i:'s|", "(?:'s|")))
        m("TemplateProcessing BOS", lambda j: j.update(post_processor=j["post_processor"]["processors"][0]))
    if name == "mistral":
        m("Prepend('▁') normalizer", lambda j: j["normalizer"].update(normalizers=j["normalizer"]["normalizers"][1:]))
        m("byte_fallback", model_flag("byte_fallback", False))
        m("Strip(' ', 1, 0) decoder", lambda j: j["decoder"].update(decoders=j["decoder"]["decoders"][:3]))
        m("TemplateProcessing BOS", lambda j: j.update(post_processor=None))
    if name in ("gemma2", "gemma3"):
        m("byte_fallback", model_flag("byte_fallback", False))
        m("<start_of_turn>/<end_of_turn> added tokens", drop_added(lambda a: "turn" in a["content"]))
        m("Split(' ') pre-tokenizer (a no-op after the normalizer)", lambda j: j.update(pre_tokenizer=None))
        m("TemplateProcessing BOS", lambda j: j.update(post_processor=None))
    rows = []
    for feature, j in muts:
        got = run(j)
        rows.append({"feature": feature, "cases_changed": sum(a != b for a, b in zip(ref, got))})
    return rows


def config_probes(name, d, cfg, ids, logits):
    """How does transformers 5.24 read the old-style keys? Edit config.json, reload the same weights, compare
    logits: d=0 means the edit is ignored (or equivalent), d>0 means the key is read."""
    rs = cfg.get("rope_scaling") or {}
    R, I = True, False   # expected: the edit changes the logits (key read) / does not (ignored or equivalent)
    probes = {
        "gpt2": [({"n_ctx": 8}, I), ({"activation_function": "relu"}, R), ({"layer_norm_epsilon": 1.0}, R)],
        "pythia": [({"rotary_emb_base": 100.0}, R), ({"rope_theta": 100.0}, I), ({"max_position_embeddings": 16}, I),
                   ({"hidden_act": "relu"}, R)],
        "gemma2": [({"hidden_act": "relu"}, I), ({"hidden_activation": "relu"}, R), ({"rope_theta": 100.0}, R),
                   ({"max_position_embeddings": 16}, I), ({"layer_types": ["full_attention", "sliding_attention"]}, R)],
        "gemma3": [({"attn_logit_softcapping": 1.0}, I), ({"final_logit_softcapping": 1.0}, R),
                   ({"sliding_window_pattern": 2}, R), ({"layer_types": ["full_attention"] * 3}, R),
                   ({"sliding_window_pattern": 2, "layer_types": ["sliding_attention", "sliding_attention",
                                                                  "full_attention"]}, I),
                   ({"rope_theta": 100.0}, R), ({"rope_local_base_freq": 100.0}, R),
                   ({"rope_scaling": {"rope_type": "linear", "factor": 8.0, "rope_theta": 100.0}}, R),
                   ({"rope_scaling": {"type": "linear", "factor": 8.0}}, R)],
        "qwen2": [({"sliding_window": 4}, I), ({"use_sliding_window": True, "sliding_window": 4}, I),
                  ({"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1}, R),
                  ({"rope_theta": 100.0}, R)],
        "qwen3": [({"use_sliding_window": True, "sliding_window": 4}, I),
                  ({"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1}, R)],
        "llama3": [({"max_position_embeddings": 16}, I), ({"rope_scaling": dict(rs, factor=2.0)}, R),
                   ({"rope_scaling": dict(rs, original_max_position_embeddings=8192)}, R),
                   ({"rope_scaling": {k: v for k, v in rs.items() if k != "rope_type"} | {"type": "llama3"}}, I),
                   ({"pretraining_tp": 2}, I)],
        "mistral": [({"max_position_embeddings": 16}, I), ({"rope_theta": 100.0}, R)],
    }[name]
    rows = []
    for edit, expect_read in probes:
        c = dict(copy.deepcopy(cfg), **copy.deepcopy(edit))
        la, _ = capture(load_with_config(d, c), name, ids)
        dl = float((la - logits).abs().max())
        assert (dl > 0) == expect_read, f"{name}: config edit {edit} gives d={dl}; README text needs updating"
        rows.append({"edit": edit, "max_abs_dlogits": dl, "read": dl > 0})
    return rows


def dump_cases(path, header, cases):
    """One case per line (compact, still diff-friendly)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")


# ----------------------------------------------------------------------------------------------
def build_arch(name, shared, out, lines):
    d = os.path.join(out, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    # 1. tokenizer
    tj = build_tokenizer(name, lines)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=2)
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    vocab = tj["model"]["vocab"]
    assert raw.get_vocab_size(with_added_tokens=True) == len(vocab)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(name, tj), f, ensure_ascii=False, indent=2)
    # 2. model
    cfg = model_config(name, vocab)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    config = AutoConfig.from_pretrained(d)
    config._attn_implementation = "eager"
    torch.manual_seed(INIT[name]["seed"])
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32).eval()
    reinit(model, name)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        shutil.copy(os.path.join(tmp, "model.safetensors"), os.path.join(d, "model.safetensors"))
        canonical_safetensors(os.path.join(d, "model.safetensors"))
        with open(os.path.join(tmp, "config.json")) as f:
            v5 = json.load(f)
    with open(os.path.join(d, "config_v5.json"), "w") as f:
        json.dump(v5, f, indent=2)
    # 3. goldens (input: two corpus snippets, T tokens each, through the raw tokenizer.json with specials)
    s0 = snippet(shared, "gutenberg/carroll-alice.txt", "Alice was beginning")
    s1 = snippet(shared, "abc/science.txt", "Inhaling the mists")
    ids = torch.tensor([raw.encode(s, add_special_tokens=True).ids[:T] for s in (s0, s1)])
    bos_prepended = name in ("gemma2", "gemma3", "mistral", "llama3")
    assert (int(ids[0, 0]) == cfg["bos_token_id"]) == bos_prepended
    logits_mem, _ = capture(model, name, ids)
    model = load_model(d)
    logits, acts = capture(model, name, ids)
    assert torch.equal(logits, logits_mem), "reloaded checkpoint differs from the in-memory model"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(d, "config_v5.json"), os.path.join(tmp, "config.json"))
        os.symlink(os.path.abspath(os.path.join(d, "model.safetensors")), os.path.join(tmp, "model.safetensors"))
        logits_v5, _ = capture(load_model(tmp), name, ids)
    assert torch.equal(logits, logits_v5), "config_v5.json builds a different model"
    self_check_hooks(name, model, ids, acts)
    g_ids, generate_agrees, margin = greedy(model, ids[:1, :PROMPT_LEN])
    assert margin > 1e-3, f"{name}: greedy step with top-2 logit gap {margin}"
    # sliding window convention, measured
    window = None
    W = cfg.get("sliding_window") if name in ("gemma2", "gemma3", "mistral") else None
    if W:
        seen = measure_window(name, model, ids, W)
        assert seen == list(range(W)), (name, seen)
        window = f"query i attends keys j with i-{W} < j <= i ({W} keys incl. itself); layer 0 verified"
    tensors = {"input_ids": ids.numpy().astype(np.int32), "logits": logits.numpy().astype(np.float32),
               "greedy_ids": g_ids.numpy().astype(np.int32),
               "greedy_prompt_len": np.array([PROMPT_LEN], dtype=np.int32)}
    for k, v in acts.items():
        tensors[k] = v.numpy().astype(np.float32)
    meta = dict(MAGIC, arch=name, model_type=cfg["model_type"], real_model=REAL_MODEL[name],
                T=str(T), batch="2", bos_prepended=str(bos_prepended).lower(),
                greedy_prompt_len=str(PROMPT_LEN), greedy_new_tokens=str(NEW_TOKENS),
                greedy_generate_agrees=str(generate_agrees).lower(), greedy_min_top2_gap=f"{margin:.4g}",
                transformers_version=transformers.__version__, torch_version=torch.__version__,
                attn_implementation="eager", dtype="float32", logits_rows="b*T+t",
                texts=json.dumps([s0[:80], s1[:80]]))
    save_file(tensors, os.path.join(d, "golden.safetensors"), metadata=meta)
    canonical_safetensors(os.path.join(d, "golden.safetensors"))
    # 4. tokenizer cases
    cases, tinfo, auto, _ = tokenizer_cases(name, d, shared)
    assert tinfo["mismatch_counts"]["ids_no_special"] == 0, (name, tinfo)
    tinfo["pipeline_ablations"] = tokenizer_ablations(name, d, [c["text"] for c in cases])
    if name == "mistral":   # tokenizer_class says LlamaTokenizer; AutoTokenizer does not use it for model_type mistral
        lt = transformers.LlamaTokenizer.from_pretrained(d)
        tinfo["v5_LlamaTokenizer_class_differs_on"] = [
            {"text": c["text"], "ids": lt(c["text"])["input_ids"]} for c in cases
            if lt(c["text"])["input_ids"] != c["ids"]]
    assert all(r["cases_changed"] > 0 for r in tinfo["pipeline_ablations"] if "no-op" not in r["feature"]), tinfo
    dump_cases(os.path.join(d, "tokenizer_cases.json"), dict(
        MAGIC, arch=name, note="ids/ids_no_special/decoded/decoded_skip: AutoTokenizer.from_pretrained(dir); "
        "'raw' (only where different): tokenizers.Tokenizer.from_file(tokenizer.json); tokens: raw token strings",
        **tinfo), cases)
    # 5. ablations
    scale = float(logits.abs().max())
    rows = []
    for feature, how, m in ablations(name, d, cfg):
        if m is None:
            rows.append(dict(arch=name, feature=feature, how=how, max_abs_dlogits=None, rel=None))
            continue
        la, _ = capture(m, name, ids)
        dl = float((la - logits).abs().max())
        rows.append(dict(arch=name, feature=feature, how=how, max_abs_dlogits=dl, rel=dl / scale))
    summary = dict(arch=name, vocab_tokenizer=len(vocab), vocab_config=cfg["vocab_size"],
                   max_abs_logits=scale, greedy_generate_agrees=generate_agrees, greedy_min_top2_gap=margin,
                   window=window,
                   config_probes=config_probes(name, d, cfg, ids, logits),
                   tokenizer=tinfo, input_ids=ids.tolist(), greedy=g_ids.tolist(),
                   greedy_text=auto.decode(g_ids.tolist()))
    return rows, summary


def dir_size(p):
    return sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p))


HOOK_POINTS = {
    "gpt2": "hook_embed = transformer.wte output; hook_pos_embed = transformer.wpe output (broadcast over the batch); "
            "resid_pre = input of transformer.h[L]; attn_out = h[L].attn output[0] (c_proj incl. bias); "
            "resid_mid = input of h[L].ln_2; mlp_out = h[L].mlp output (c_proj incl. bias); resid_post = h[L] output",
    "pythia": "hook_embed = gpt_neox.embed_in output; resid_pre = input of gpt_neox.layers[L]; attn_out = "
              "layers[L].attention output[0] (dense incl. bias); mlp_out = layers[L].mlp output; resid_post = layer "
              "output = resid_pre + attn_out + mlp_out (parallel residual: the MLP reads "
              "post_attention_layernorm(resid_pre)); no hook_resid_mid",
    "gemma": "hook_embed = model.embed_tokens output (Gemma*TextScaledWordEmbedding: W_E[ids] * sqrt(64) = * 8.0, "
             "checked); resid_pre = input of model.layers[L]; attn_out = layers[L].post_attention_layernorm output; "
             "resid_mid = input of layers[L].pre_feedforward_layernorm; mlp_out = layers[L].post_feedforward_layernorm "
             "output; resid_post = layer output",
    "llama": "hook_embed = model.embed_tokens output; resid_pre = input of model.layers[L]; attn_out = "
             "layers[L].self_attn output[0] (o_proj); resid_mid = input of layers[L].post_attention_layernorm; "
             "mlp_out = layers[L].mlp output; resid_post = layer output",
}
TOKENIZER_NOTES = {
    "gpt2": ("openai-community/gpt2: no normalizer; pre_tokenizer ByteLevel(add_prefix_space=false, trim_offsets=true) "
             "with no use_regex key (default true = GPT-2 split regex); post_processor ByteLevel(add_prefix_space=true, "
             "trim_offsets=false); decoder ByteLevel(add_prefix_space=true, trim_offsets=true); model BPE with "
             "continuing_subword_prefix \"\", end_of_word_suffix \"\", fuse_unk false and no byte_fallback / "
             "ignore_merges keys; merges as \"a b\" strings; <|endoftext|> = last id, added special, normalized "
             "true. tokenizer_config.json is just {model_max_length}; AutoTokenizer = GPT2Tokenizer (no BOS).",
             "offsets (trim_offsets), the real 50k-merge vocabulary"),
    "pythia": ("EleutherAI/gpt-neox-20b (= pythia): normalizer NFC; ByteLevel(add_prefix_space=false, "
               "trim_offsets=true) as pre_tokenizer, post_processor and decoder; model BPE with null "
               "continuing_subword_prefix / end_of_word_suffix; <|endoftext|>=0 and <|padding|>=1 special; 23 "
               "non-special normalized added tokens made of 24..2 spaces at the end of the vocab (they win over the "
               "byte-level split: \"a  b\" -> a, \"  \", b). config vocab_size padded to a multiple of 128. "
               "AutoTokenizer = GPTNeoXTokenizer, which replaces the ByteLevel post_processor by a no-BOS "
               "TemplateProcessing (same ids).",
               "offsets; the real <|padding|> never appears in text"),
    "qwen2": ("Qwen/Qwen2.5-0.5B: normalizer NFC; pre_tokenizer Sequence[Split(Qwen2 regex, Isolated), "
              "ByteLevel(add_prefix_space=false, trim_offsets=false, use_regex=false)]; post_processor and decoder "
              "ByteLevel(false, false, use_regex=false); BPE byte_fallback false, ignore_merges false; added "
              "<|endoftext|> <|im_start|> <|im_end|> ... (special) and <tool_call> </tool_call> (NOT special: kept "
              "by skip_special_tokens); no BOS (bos_token null). The vocab was trained with a cl100k-style 1-3 digit "
              "split, as Qwen's vocab contains multi-digit tokens that Qwen's one-digit regex never reaches. "
              "config vocab_size padded past the tokenizer (like 151665 -> 151936).",
              "the other 12 Qwen2.5 added tokens (same mechanism)"),
    "llama3": ("meta-llama/Llama-3.2-1B: no normalizer; pre_tokenizer Sequence[Split(Llama-3 regex, Isolated), "
               "ByteLevel(add_prefix_space=false, trim_offsets=true, use_regex=false)]; post_processor "
               "Sequence[ByteLevel(true, false, use_regex=true), TemplateProcessing(<|begin_of_text|> $A)]; decoder "
               "ByteLevel(true, true, true); BPE ignore_merges true (two whole-word vocab entries, \"Ġsaelab\" and "
               "\"Ġtokenizers\", have no merge path, so only ignore_merges produces them); added <|begin_of_text|> "
               "<|end_of_text|> <|reserved_special_token_0..2|> <|finetune_right_pad_id|> <|start_header_id|> "
               "<|end_header_id|> <|eom_id|> <|eot_id|> <|python_tag|>; tokenizer_class PreTrainedTokenizerFast "
               "(v5: TokenizersBackend = the file as is), clean_up_tokenization_spaces true (v5 ignores it for BPE).",
               "the other 245 reserved special tokens"),
    "mistral": ("mistralai/Mistral-7B-v0.1 (legacy Llama-2 conversion): normalizer Sequence[Prepend(\"▁\"), "
                "Replace(\" \", \"▁\")]; pre_tokenizer null; post_processor TemplateProcessing(<s> $A); decoder "
                "Sequence[Replace(\"▁\",\" \"), ByteFallback, Fuse, Strip(\" \", 1, 0)]; BPE unk <unk>, fuse_unk "
                "true, byte_fallback true; vocab <unk>=0 <s>=1 </s>=2, <0x00>..<0xFF> = 3..258, merged pieces, single "
                "characters last; \\n and \\t only as <0x0A>/<0x09> (as in Llama-2); digits split. "
                "tokenizer_config: LlamaTokenizer, add_bos_token true, legacy true. AutoTokenizer (model_type "
                "mistral) loads the file as is (TokenizersBackend); transformers' own LlamaTokenizer class would "
                "rebuild it with Metaspace(prepend_scheme=always) and differs on leading spaces (recorded in "
                "tokenizer_cases.json: v5_LlamaTokenizer_class_differs_on).",
                "SentencePiece scores, runs of ▁ as single pieces, fuse_unk (byte fallback never leaves an <unk>)"),
    "gemma": ("google/gemma-2-2b / gemma-3: normalizer Replace(\" \", \"▁\") (no dummy prefix); pre_tokenizer "
              "Split(\" \", MergedWithPrevious) (never matches after the normalizer); post_processor "
              "TemplateProcessing(<bos> $A); decoder Sequence[Replace(\"▁\",\" \"), ByteFallback, Fuse] (no Strip); "
              "BPE unk <unk>, fuse_unk true, byte_fallback true, ignore_merges false; <pad>=0 <eos>=1 <bos>=2 "
              "<unk>=3 <mask>=4 <start_of_turn>=5 <end_of_turn>=6, <0x00>..<0xFF>, merged pieces, characters "
              "(incl. \\n and \\t) last; digits split; tokenizer_config GemmaTokenizer add_bos_token true. gemma3's "
              "file stores merges as [a, b] pairs (newer tokenizers), gemma2's as \"a b\" strings.",
              "the <unusedN>/multimodal/HTML added tokens, runs of ▁ and \\n as single user-defined pieces; the real "
              "ids of <start_of_turn> (106/105) and the byte tokens differ from the tiny layout"),
}


def write_readme(out, rows, summaries):
    def fmt_edit(e):
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in e.items())
    L = []
    w = L.append
    w("# tests/data/hf_tiny: tiny random Hugging Face checkpoints + goldens\n")
    w("Generated by `scripts/reference/hf_tiny_models.py` (do not edit by hand). Regenerate from the repository root "
      "with the reference venv (`scripts/reference/setup_venv.sh`):\n")
    w("```\nOMP_NUM_THREADS=1 .venv-reference/bin/python scripts/reference/hf_tiny_models.py --shared ../shared "
      "--out tests/data/hf_tiny\n```\n")
    w(f"Built with transformers {transformers.__version__}, tokenizers "
      f"{__import__('tokenizers').__version__}, torch {torch.__version__}; deterministic (fixed seeds). Each "
      "directory is what a user's download looks like (config.json in the old pre-v5 style of the real checkpoint, "
      "model.safetensors written by save_pretrained, tokenizer.json + tokenizer_config.json), plus "
      "`config_v5.json` (what transformers 5.24 writes for the same model; it must build the same model), "
      "`golden.safetensors` and `tokenizer_cases.json`.\n")
    w("| dir | mirrors | model_type | layers x d, heads/kv x head_dim | vocab tok/config | BOS added | size |")
    w("|---|---|---|---|---|---|---|")
    for name, sm in summaries.items():
        with open(os.path.join(out, name, "config_v5.json")) as f:
            c = json.load(f)
        heads = c.get("num_attention_heads", c.get("n_head"))
        kv = c.get("num_key_value_heads", heads)
        d = c.get("hidden_size", c.get("n_embd"))
        hd = c.get("head_dim") or d // heads
        nl = c.get("num_hidden_layers", c.get("n_layer"))
        w(f"| {name} | {REAL_MODEL[name]} | {c['model_type']} | {nl} x {d}, {heads}/{kv} x {hd} | "
          f"{sm['vocab_tokenizer']}/{sm['vocab_config']} | {'yes' if sm['tokenizer']['auto_prepends_bos'] else 'no'}"
          f" | {sm['bytes'] / 1024:.0f} KiB |")
    w("\n## golden.safetensors\n")
    w("Metadata: `saelab_golden`=\"1\", `arch`, `model_type`, `real_model`, `T`, `batch`, `bos_prepended`, "
      "`greedy_prompt_len`, `texts`, versions. Tensors (transformers, float32, attn_implementation=\"eager\"): "
      "`input_ids` int32 [2,16] (the first 16 ids, special tokens included, of a Carroll and an ABC-science "
      "snippet through tokenizer.json); `logits` f32 [32, vocab_size of config.json] (row b*16+t; padded vocab rows "
      "included); per TransformerLens hook point f32 [32, 64]; `greedy_ids` int32 [14] (first 6 tokens of "
      "sequence 0 + 8 argmax tokens, full recompute per step, checked against model.generate); "
      "`greedy_prompt_len` int32 [1]. The smallest top-1/top-2 logit gap met during the greedy steps is in the "
      "metadata (`greedy_min_top2_gap`, >= "
      f"{min(sm['greedy_min_top2_gap'] for sm in summaries.values()):.3f} here), so argmax ties cannot flip a token.\n")
    w("Hook capture points (forward hooks / pre-hooks; the script asserts resid_post = resid_pre + attn_out + "
      "mlp_out, resid_mid = resid_pre + attn_out, blocks.0.hook_resid_pre = hook_embed (+ hook_pos_embed) and "
      "resid_post(L) = resid_pre(L+1)):\n")
    for k, v in [("gpt2", HOOK_POINTS["gpt2"]), ("pythia (gpt_neox)", HOOK_POINTS["pythia"]),
                 ("gemma2, gemma3", HOOK_POINTS["gemma"]), ("qwen2, qwen3, llama3, mistral", HOOK_POINTS["llama"])]:
        w(f"- **{k}**: {v}")
    w("\nSliding window (measured on block 0 by perturbing key position 0): a query at position i attends key "
      "positions j with i - W < j <= i, i.e. W keys including itself (gemma2 layer 0, gemma3 layers 0-1: W=4; "
      "mistral all layers: W=6). gemma2 layer_types = [sliding, full] (even layers slide); gemma3 with "
      "sliding_window_pattern 3 -> [sliding, sliding, full] (layer i slides iff (i+1) % pattern != 0); the sliding "
      "layers use rope_local_base_freq (10000) and no rope scaling, the full layers rope_theta (1e6) with the "
      "linear factor 8.\n")
    with open(os.path.join(out, "llama3", "config.json")) as f:
        lc = json.load(f)
    rs, hd = lc["rope_scaling"], lc["head_dim"]
    wl = [2 * math.pi * lc["rope_theta"] ** (2 * i / hd) for i in range(hd // 2)]
    lo, hi = rs["original_max_position_embeddings"] / rs["low_freq_factor"], \
        rs["original_max_position_embeddings"] / rs["high_freq_factor"]
    band = ["kept" if x < hi else "divided by factor" if x > lo else "smoothed" for x in wl]
    w(f"llama3 rope: head_dim {hd}, rope_theta {lc['rope_theta']:g}, factor {rs['factor']:g}, original "
      f"{rs['original_max_position_embeddings']} positions -> wavelengths "
      + ", ".join(f"{x:.3g} ({b})" for x, b in zip(wl, band))
      + f" (high_freq_wavelen {hi:g}, low_freq_wavelen {lo:g}): all three branches of the llama3 formula are "
      "used at positions < 16.\n")
    w("## Ablations: every architecture feature moves the logits\n")
    w("rel = max|logits(feature off) - logits| / max|logits| on the golden batch (same weights; config edited and "
      "reloaded, a weight zeroed, or a module replaced). The script fails if any rel < 1e-2. Also in "
      "`ablations.json`.\n")
    w("| arch | feature | switched off by | max abs d logits | rel |")
    w("|---|---|---|---|---|")
    for r in rows:
        if r["rel"] is None:
            w(f"| {r['arch']} | {r['feature']} | {r['how']} | - | - |")
        else:
            w(f"| {r['arch']} | {r['feature']} | {r['how']} | {r['max_abs_dlogits']:.3f} | {r['rel']:.3f} |")
    w("\nOther features exercised by construction: learned positions + tied head (gpt2, no n_inner = 4*d), "
      "fused query_key_value laid out [head][q,k,v][head_dim] with biases (pythia), GQA (all but gpt2/pythia), "
      "head_dim != d/heads (gemma2 32 vs 16, gemma3 16 vs 32, qwen3 32 vs 16), query_pre_attn_scalar 24 != head_dim, "
      "gelu_new / gelu / gelu_pytorch_tanh / silu activations, tied embeddings (gpt2, gemma*, qwen*, llama3) vs "
      "untied (pythia, mistral), config vocab_size > tokenizer size (pythia, qwen*). Norm weights and biases are "
      "random (1+0.2N, gemma 0.2N; biases 0.1N), linear weights N(0, (1.5/sqrt(fan_in))^2).\n")
    w("## How transformers 5.24 reads the old-style config.json\n")
    w("Each edit below is applied to config.json and the same weights reloaded; d = max|d logits| (0 = ignored "
      "or equivalent).\n")
    for name, sm in summaries.items():
        items = []
        for pr in sm["config_probes"]:
            v = f"d={pr['max_abs_dlogits']:.3g}" + ("" if pr["read"] else " (no change)")
            items.append(f"`{fmt_edit(pr['edit'])}` {v}")
        w(f"- **{name}**: " + "; ".join(items))
    w("\nIn words (asserted by the script, so this stays true when regenerated): gpt2 ignores n_ctx (n_positions "
      "is used); n_inner is absent as in the real file (= 4*n_embd; config_v5.json writes n_inner null). "
      "gpt_neox turns rotary_pct / rotary_emb_base into "
      "rope_parameters.partial_rotary_factor / rope_theta; a top-level rope_theta next to rotary_emb_base is "
      "ignored; max_position_embeddings does not matter. gemma2 uses hidden_activation and ignores hidden_act; it "
      "derives layer_types (layer i slides iff i is even) unless layer_types is given. gemma3 ignores "
      "attn_logit_softcapping (it is never passed to the attention) but applies final_logit_softcapping; "
      "layer_types comes from sliding_window_pattern (layer i slides iff (i+1) % pattern != 0) unless an explicit "
      "layer_types is given (which wins); rope_theta -> full_attention, rope_local_base_freq -> sliding_attention, "
      "and rope_scaling is merged into full_attention only (a rope_theta inside rope_scaling overrides the "
      "top-level one) and the legacy key \"type\" is NOT understood: {\"type\": \"linear\", \"factor\": 8} "
      "silently gives unscaled rope (same logits as rope_scaling null). qwen2/qwen3 set sliding_window to None "
      "unless use_sliding_window is true, and then slide only layers i >= max_window_layers (none here). llama "
      "accepts \"type\": \"llama3\" as rope_type, ignores pretraining_tp, and the llama3 rope uses "
      "original_max_position_embeddings, not max_position_embeddings. mistral applies sliding_window to every "
      "layer. torch_dtype is rewritten as dtype; config_v5.json adds rope_parameters (and layer_types for "
      "gemma*/qwen*), and keeps the unknown old keys (n_ctx, summary_*, sliding_window_pattern, "
      "cache_implementation, use_mrope, ...).\n")
    w("## Tokenizers\n")
    w("Trained with `tokenizers` (BpeTrainer) on a fixed slice of ../shared/corpus (Carroll, ABC science, "
      "wikitext-2 valid, a State of the Union address, webtext) plus a short multilingual line (accents, Greek) "
      "and a drill line repeated 300 times (gives \"Sam\" and 2-3 digit merges); byte-level vocabularies therefore "
      "contain multi-byte UTF-8 merges (e.g. \"Ã©\" = é), SentencePiece-style ones contain é/Greek as pieces, while "
      "CJK and emoji always go through <0xNN> byte fallback. In the byte-level ones the merge \"Ġ Ġ\" is ranked "
      "first so that a wrong whitespace split changes ids. tokenizer_cases.json: ~30 texts (spaces, tabs, "
      "\\n\\n\\n, 1-7 digit runs, contractions incl. upper case and 'Sam, punctuation runs, accents and a decomposed "
      "é (NFC), Greek, CJK, emoji, every family's special tokens written as text, the empty string, 3 corpus "
      "paragraphs); fields ids / ids_no_special / decoded / decoded_skip from AutoTokenizer.from_pretrained(dir), "
      "`raw` (tokenizers.Tokenizer.from_file) only where it differs, `tokens` for reading.\n")
    w("| arch | AutoTokenizer class | BOS | auto vs tokenizer.json mismatches | pipeline feature: cases changed when "
      "switched off |")
    w("|---|---|---|---|---|")
    for name, sm in summaries.items():
        t = sm["tokenizer"]
        mm = sum(t["mismatch_counts"].values())
        ab = "; ".join(f"{r['feature']}: {r['cases_changed']}" for r in t["pipeline_ablations"])
        w(f"| {name} | {t['auto_tokenizer_class']} | {t['bos_token'] if t['auto_prepends_bos'] else 'none'} | "
          f"{mm} | {ab} |")
    w("\nPipelines mirrored (the tokenizer.json sections are copied from the real file's structure):\n")
    for key, label in [("gpt2", "gpt2"), ("pythia", "pythia"), ("qwen2", "qwen2, qwen3 (qwen3 adds <think> "
                       "</think>, eos <|im_end|>)"), ("llama3", "llama3"), ("mistral", "mistral"),
                       ("gemma", "gemma2, gemma3")]:
        desc, missing = TOKENIZER_NOTES[key]
        w(f"- **{label}**: {desc} Not exercised vs the real tokenizer: {missing}.")
    w("\n## Differences from the real checkpoints a loader may still meet\n")
    w("- Weights are float32 and stored as save_pretrained writes them (e.g. pythia's head as `embed_out.weight`, "
      "tied heads omitted). The real openai-community/gpt2 model.safetensors has keys without the `transformer.` "
      "prefix plus `h.N.attn.bias` causal-mask buffers, and old pythia files carry attention.bias / masked_bias / "
      "rotary_emb.inv_freq buffers; real Gemma/Qwen/Llama files are bf16 (Mistral-7B: sharded bf16 with "
      "model.safetensors.index.json). None of that is reproduced here.")
    w("- No generation_config.json and no special_tokens_map.json are written (they do not affect the goldens).")
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get("SAELAB_SHARED", "../shared"))
    ap.add_argument("--out", default="tests/data/hf_tiny")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(ARCHS))
    args = ap.parse_args()
    only = [a for a in args.only.split(",") if a] or ARCHS
    os.makedirs(args.out, exist_ok=True)
    lines = corpus_lines(args.shared)
    all_rows, summaries = [], {}
    for name in only:
        rows, summary = build_arch(name, args.shared, args.out, lines)
        summary["bytes"] = dir_size(os.path.join(args.out, name))
        all_rows += rows
        summaries[name] = summary
        print(f"{name}: V={summary['vocab_tokenizer']}/{summary['vocab_config']} "
              f"max|logits|={summary['max_abs_logits']:.3f} size={summary['bytes'] / 1024:.0f} KiB "
              f"tok mismatches={summary['tokenizer']['mismatch_counts']} "
              f"({summary['tokenizer']['auto_tokenizer_class']})",
              flush=True)
    print(f"\n{'arch':8} {'feature':38} {'ablation':38} {'max|dlogits|':>12} {'rel':>9}")
    for r in all_rows:
        if r["rel"] is None:
            print(f"{r['arch']:8} {r['feature']:38} {r['how']:38} {'-':>12} {'-':>9}")
        else:
            print(f"{r['arch']:8} {r['feature']:38} {r['how']:38} {r['max_abs_dlogits']:12.4f} {r['rel']:9.4f}")
    weak = [r for r in all_rows if r["rel"] is not None and r["rel"] < 1e-2]
    with open(os.path.join(args.out if only == ARCHS else tempfile.gettempdir(), "ablations.json"), "w") as f:
        json.dump(dict(MAGIC, note="rel = max|logits_ablated - logits| / max|logits| on the golden batch",
                       rows=all_rows, summaries=summaries), f, indent=1, ensure_ascii=False)
    if only == ARCHS:
        write_readme(args.out, all_rows, summaries)
    if weak:
        raise SystemExit(f"features that barely move the logits: {weak}")


if __name__ == "__main__":
    main()
