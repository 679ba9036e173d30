#!/usr/bin/env python3
"""Goldens for saelab's GGUF tokenizers (tests/test_tokenizer_gguf.cpp), from independent references.

Usage: .venv-reference/bin/python scripts/reference/make_tokenizer_goldens.py [--shared ../shared]
       [--out tests/data/tokenizer_gguf]
Needs: gguf, tokenizers, sentencepiece (pip install into .venv-reference).
Writes (each with {"saelab_golden": "1"}, the magic + version the tests check):

bpe_goldens.json: byte-level BPE ("gpt2" GGUF model). Hugging Face `tokenizers` BPE tokenizers built
  from the SmolLM2 GGUF's vocabulary and merges, each with the pre-tokenizer a family's real
  tokenizer.json declares, and the SmolLM2 control tokens as special added tokens:
    gpt-2      ByteLevel(use_regex=True)                               (GPT-2)
    llama-bpe  Split(Llama 3 regex, isolated) + ByteLevel(use_regex=False), BPE ignore_merges (Llama 3)
    qwen2      Split(Qwen2 regex, isolated) + ByteLevel(use_regex=False)  (Qwen2, without its NFC
               normalizer: llama.cpp does not normalize, and saelab follows llama.cpp)
    smollm     Digits(individual_digits) + ByteLevel(use_regex=True)     (SmolLM2)
    default    llama.cpp's fallback regexes as Splits in sequence + ByteLevel(use_regex=False)
  ids for a set of tricky strings (contractions in upper case, digit runs, CJK, emoji, \\r\\n runs,
  spaces, tabs, accents, combining marks, punctuation runs, non-ASCII digits and spaces).

spm_vocab.json: SentencePiece-style BPE ("llama" GGUF model). A SentencePiece BPE model trained here
  (vocab 1000, byte_fallback, identity normalization, no extra-whitespace removal: Llama 2's
  settings) on ~300 KB of ../shared/corpus; its pieces, scores and types (as llama.cpp's converter
  types them; the user-defined symbol as type 4) and `sentencepiece`'s own encodings. A text with
  control or user-defined tokens is encoded as llama.cpp does: those tokens are split out first and
  each text fragment between them is encoded separately (with its own dummy-prefix space).
"""
import argparse
import json
import os
import tempfile

from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

MAGIC = {"saelab_golden": "1"}
GGUF = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
            r"\s*[\r\n]+|\s+(?!\S)|\s+")
# llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT regexes, applied in sequence.
DEFAULT_RES = [r"[\p{P}\$\+<=>\^~\|]+", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
               r"\p{N}+", r"[0-9][0-9][0-9]"]

BPE_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "DON'T YOU'LL I'M WE'VE THEY'RE HE'D SHE'S it's We'Re i'Ll",
    "'s 't 're x's ''s '''",
    "1234567 and 12 and 123456789012 and x1234567y",
    "3.14159, 1,000,000 and 2024-12-31",
    "\u0663\u0664\u0665 Arabic-Indic digits, superscripts x\u00b2 y\u00b3, Roman \u216b, fraction \u00bd",
    "\u6771\u4eac\u30bf\u30ef\u30fc \u4e2d\u6587\u5b57 \ud55c\uad6d\uc5b4",
    "Emoji: \U0001F600\U0001F44D\U0001F3FD\U0001F1EB\U0001F1F7 \u2764\ufe0f \U0001F468\u200d\U0001F469\u200d\U0001F467",
    "line one\r\nline two\r\n\r\n\r\nline five\r\n",
    "a\n\nb\r\rc\n \n d",
    "   multiple   spaces   between   ",
    "\t\ttabs\tand  \t mixed\t",
    "trailing spaces   ",
    "   ",
    "\n",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
    "cafe\u0301 nai\u0308ve e\u0301\u0302 \u0301x  \u0301",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u041f\u0440\u0438\u0432\u0435\u0442 "
    "\u05e2\u05d1\u05e8\u05d9\u05ea",
    "!!!???... ---> foo...bar (x) [y] {z} <a> $100.00 #tag @user 50% a+b=c ^_^ ~|~",
    "\u00a0nbsp\u00a0text \u3000ideographic\u2003em \u2028line\u2029para \u200bzero\u200bwidth",
    "\u201cquoted\u201d \u2018single\u2019 \u2014 dash \u2026 \u00ab\u00bb",
    "def f(x):\n    return x**2\n\n\tif x:\n\t\tpass",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "a<|endoftext|>b<|im_end|><|im_end|> c <repo_name>",
    "(word .Hello ,x \"q\" 'q' \u00bfQu\u00e9?",
    "x\u0085y \x1cz",
    "bytes SmolLM2 lacks: a\x04b\x06 c\x13",
]

SPM_TEXTS = [
    "Alice was beginning to get very tired of sitting by her sister on the bank.",
    "",
    " leading space",
    "trailing space ",
    "  multiple   spaces  ",
    "line\nbreaks\n\nand\ttabs",
    "Unknown characters: \u6771\u4eac \U0001F600 \u00e9\u00e8 \u0663",
    "caf\u00e9 na\u00efve",
    "1234567890 3.14",
    "<s>Hello</s>",
    "<|im_start|>user\nhi there<|im_end|>",
    "a<|im_end|>b <|user|> c<|user|>d",
    "<unk> in text",
    "It's DON'T",
]


def corpus_chunks(shared, specs):
    """Multi-line chunks of real text: (file under corpus/, first character, length)."""
    out = []
    for name, start, n in specs:
        with open(os.path.join(shared, "corpus", name), encoding="utf-8") as f:
            out.append(f.read(start + n)[start:])
    return out


# Not the text the SentencePiece model is trained on (see corpus_sample).
BPE_CHUNKS = [("webtext/overheard", 0, 3000), ("wikitext2/test.txt", 0, 3000), ("webtext/wine", 1000, 2000)]
SPM_CHUNKS = [("gutenberg/chesterton-brown.txt", 2000, 3000), ("webtext/pirates", 0, 2000),
              ("wikitext2/test.txt", 5000, 2000)]


def smollm2_vocab(shared):
    r = GGUFReader(os.path.join(shared, GGUF))
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    return tokens, types, merges


def split_seq(regexes):
    return [pre_tokenizers.Split(Regex(x), behavior="isolated", invert=False) for x in regexes]


def bpe_tokenizer(tokens, types, merges, pre):
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    pres = {
        "gpt-2": pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        "llama-bpe": pre_tokenizers.Sequence(split_seq([LLAMA3_RE]) + [byte_level]),
        "qwen2": pre_tokenizers.Sequence(split_seq([QWEN2_RE]) + [byte_level]),
        "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                           pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
        "default": pre_tokenizers.Sequence(split_seq(DEFAULT_RES) + [byte_level]),
    }
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, ignore_merges=(pre == "llama-bpe")))
    tok.pre_tokenizer = pres[pre]
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def bpe_goldens(shared):
    tokens, types, merges = smollm2_vocab(shared)
    pres = ["gpt-2", "llama-bpe", "qwen2", "smollm", "default"]
    toks = {p: bpe_tokenizer(tokens, types, merges, p) for p in pres}
    cases = []
    for text in BPE_TEXTS + corpus_chunks(shared, BPE_CHUNKS):
        ids = {p: toks[p].encode(text, add_special_tokens=False).ids for p in pres}
        # False where the text holds a byte missing from the vocabulary (it is dropped).
        round_trip = {p: toks[p].decode(ids[p], skip_special_tokens=False) == text for p in pres}
        assert len(set(round_trip.values())) == 1, text
        cases.append({"text": text, "ids": ids, "round_trip": round_trip["gpt-2"]})
    how = ("HF tokenizers BPE over the SmolLM2 GGUF vocab+merges, control tokens as special added tokens; "
           "pre-tokenizers as the families' tokenizer.json declare them (see make_tokenizer_goldens.py)")
    return {**MAGIC, "how": how, "vocab": GGUF, "cases": cases}


def corpus_sample(shared, limit=300_000):
    parts = []
    for name in ["gutenberg/carroll-alice.txt", "gutenberg/austen-persuasion.txt", "wikitext2/valid.txt"]:
        with open(os.path.join(shared, "corpus", name), encoding="utf-8") as f:
            parts.append(f.read(limit // 3))
    return "\n".join(parts)


def spm_model(shared, workdir):
    import sentencepiece as spm

    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(corpus_sample(shared))
    prefix = os.path.join(workdir, "spm")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=1000, byte_fallback=True,
        character_coverage=0.9995, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True,
        control_symbols=["<|im_start|>", "<|im_end|>"], user_defined_symbols=["<|user|>"],
        num_threads=1, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def spm_types(sp, user_defined):
    types = []
    for i in range(sp.get_piece_size()):
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.id_to_piece(i) in user_defined:
            types.append(4)
        else:
            types.append(1)
    return types


def llama_cpp_partition(text, specials):
    """tokenizer_st_partition: specials longest first, every occurrence in unclaimed text."""
    frags = [text] if text else []
    for s in sorted(specials, key=len, reverse=True):
        out = []
        for f in frags:
            if isinstance(f, tuple):
                out.append(f)
                continue
            parts = f.split(s)
            for k, p in enumerate(parts):
                if p:
                    out.append(p)
                if k + 1 < len(parts):
                    out.append((s,))
        frags = out
    return frags


def spm_goldens(shared):
    with tempfile.TemporaryDirectory() as d:
        sp = spm_model(shared, d)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    types = spm_types(sp, {"<|user|>"})
    specials = [p for p, t in zip(pieces, types) if t in (2, 3, 4)]
    cases = []
    for text in SPM_TEXTS + corpus_chunks(shared, SPM_CHUNKS):
        ids = []
        for f in llama_cpp_partition(text, specials):
            ids += [pieces.index(f[0])] if isinstance(f, tuple) else sp.encode(f)
        if not any(x in text for x in specials):
            assert ids == sp.encode(text), text
        cases.append({"text": text, "ids": ids})
    how = ("SentencePiece BPE trained by make_tokenizer_goldens.py; ids from sentencepiece's encode of each "
           "text fragment between control / user-defined tokens (llama.cpp's partition)")
    return {**MAGIC, "how": how, "tokens": pieces,
            "scores": [sp.get_score(i) for i in range(len(pieces))], "token_types": types,
            "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "cases": cases}


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "tokenizer_gguf"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, data in [("bpe_goldens.json", bpe_goldens(args.shared)), ("spm_vocab.json", spm_goldens(args.shared))]:
        path = os.path.join(args.out, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=None, separators=(",", ":"))
            f.write("\n")
        os.replace(path + ".tmp", path)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
