#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ (committed; re-run to regenerate).

Seeds are small valid inputs: minimised versions of the real files in ../shared/models and
configs/ (the tinystories-656k tokenizer cut to its first merges, GPT-2's byte-level vocabulary cut
likewise, llama2.c's tok512.bin, the SmolLM2 GGUF's metadata with its arrays cut short) and tiny
instances written here (safetensors, GGUF, npy, a llama2.c checkpoint, activation manifests).
Standard library only. Usage: python3 fuzz/make_corpus.py [SHARED]
"""
import json
import os
import random
import shutil
import struct
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SAELAB_SHARED", os.path.join(ROOT, "..", "shared"))
OUT = os.path.join(HERE, "corpus")
MAX_SEED = 64 * 1024


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < MAX_SEED, (target, name, len(data))
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def floats(n, rng, scale=0.2):
    return [rng.gauss(0, scale) for _ in range(n)]


def f16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)]"""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def npy(descr, shape, raw, version=1):
    sh = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, sh)
    pre = 12 if version >= 2 else 10
    header += " " * ((64 - (pre + len(header) + 1) % 64) % 64) + "\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(header)) + header.encode() + raw


def seeds_safetensors(rng):
    a = floats(6, rng)
    put("fuzz_safetensors", "mixed.safetensors", safetensors([
        ("a", "F32", [2, 3], struct.pack("<6f", *a)),
        ("h", "F16", [3, 2], struct.pack("<6H", *[f16_bits(x) for x in a])),
        ("b", "BF16", [6], struct.pack("<6H", *[struct.unpack("<I", struct.pack("<f", x))[0] >> 16 for x in a])),
        ("ids", "I32", [3], struct.pack("<3i", 7, -1, 2048)),
        ("scalar", "F32", [], struct.pack("<f", 1.5)),
        ("empty", "F32", [0, 4], b""),
    ], {"format": "pt"}))
    put("fuzz_safetensors", "sae.safetensors", safetensors([
        ("W_enc", "F32", [4, 8], struct.pack("<32f", *floats(32, rng))),
        ("b_enc", "F32", [8], struct.pack("<8f", *floats(8, rng))),
        ("W_dec", "F32", [8, 4], struct.pack("<32f", *floats(32, rng))),
        ("b_dec", "F32", [4], struct.pack("<4f", *floats(4, rng))),
    ], {"saelab": "{\"d_in\": 4}"}))
    put("fuzz_safetensors", "other_dtypes.safetensors", safetensors([
        ("i64", "I64", [2], struct.pack("<2q", 1, -2)),
        ("u8", "U8", [3], b"\x01\x02\x03"),
        ("f64", "F64", [1], struct.pack("<d", 0.5)),
        ("bool", "BOOL", [2], b"\x00\x01"),
    ]))
    # The head of the golden dump's header: a real file's layout, with its data cut away.
    golden = os.path.join(ROOT, "tests", "data", "tinystories656k_golden.safetensors")
    if os.path.exists(golden):
        with open(golden, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            head = json.loads(f.read(n))
        keep = {k: v for k, v in head.items() if k != "__metadata__"}
        small = sorted(keep.items(), key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0])[:4]
        put("fuzz_safetensors", "golden_small.safetensors", safetensors([
            (k, v["dtype"], v["shape"], bytes(v["data_offsets"][1] - v["data_offsets"][0])) for k, v in small
            if v["data_offsets"][1] - v["data_offsets"][0] < 4096]))


# GGUF metadata value types (gguf.h) and the struct codes of the fixed-size ones.
GGUF_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
GGUF_STRING, GGUF_ARRAY = 8, 9
# ggml type: (id, values per block, bytes per block, byte offsets of f16 scales in a block)
GGML = {"F32": (0, 1, 4, []), "F16": (1, 1, 2, []), "BF16": (30, 1, 2, []), "Q4_0": (2, 32, 18, [0]),
        "Q4_1": (3, 32, 20, [0, 2]), "Q5_0": (6, 32, 22, [0]), "Q5_1": (7, 32, 24, [0, 2]),
        "Q8_0": (8, 32, 34, [0]), "Q4_K": (12, 256, 144, [0, 2]), "Q5_K": (13, 256, 176, [0, 2]),
        "Q6_K": (14, 256, 210, [208]), "Q2_K": (10, 256, 84, [80, 82]), "IQ4_NL": (20, 32, 18, [0])}


def gguf_str(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(s)) + s


def gguf_value(vtype, v, elem=None):
    """Value bytes without the type tag. Arrays: v is a list, elem its element type (nested: (9, inner))."""
    if vtype == GGUF_STRING:
        return gguf_str(v)
    if vtype == GGUF_ARRAY:
        et, inner = elem if isinstance(elem, tuple) else (elem, None)
        return struct.pack("<IQ", et, len(v)) + b"".join(gguf_value(et, x, inner) for x in v)
    return struct.pack("<" + GGUF_FIXED[vtype], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, vtype, value[, elem])]; tensors: [(name, ne, ggml type id, raw bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, v, *elem in kvs:
        out += gguf_str(key) + struct.pack("<I", vtype) + gguf_value(vtype, v, elem[0] if elem else None)
    data = b""
    for name, ne, t, raw in tensors:
        data += bytes(-len(data) % alignment)
        out += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dq" % len(ne), *ne)
        out += struct.pack("<IQ", t, len(data))
        data += raw
    return out + bytes(-len(out) % alignment) + data


def ggml_blocks(name, n_values, rng):
    """Random bytes of n_values of a ggml type, with small finite f16 scales."""
    _, block, size, halves = GGML[name]
    if block == 1:
        if name == "F32":
            return struct.pack("<%df" % n_values, *floats(n_values, rng))
        bits = [f16_bits(x) if name == "F16" else struct.unpack("<I", struct.pack("<f", x))[0] >> 16
                for x in floats(n_values, rng)]
        return struct.pack("<%dH" % n_values, *bits)
    out = b""
    for _ in range(n_values // block):
        b = bytearray(rng.getrandbits(8) for _ in range(size))
        for off in halves:
            b[off:off + 2] = struct.pack("<H", f16_bits(rng.gauss(0, 0.05)))
        out += bytes(b)
    return out


def gguf_read_head(path, max_tensors):
    """The real file's metadata (arrays cut to 8 entries, strings to 200 bytes) and first tensor infos."""
    with open(path, "rb") as f:
        buf = f.read(2 << 20)
    pos = 24
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)

    def read_str():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + n
        return buf[pos - n:pos]

    def read_val(vtype):
        nonlocal pos
        if vtype == GGUF_STRING:
            return read_str()[:200], None
        if vtype == GGUF_ARRAY:
            et, n = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            items = [read_val(et) for _ in range(n)]
            return [v for v, _ in items[:8]], et
        code = GGUF_FIXED[vtype]
        (v,) = struct.unpack_from("<" + code, buf, pos)
        pos += struct.calcsize(code)
        return v, None

    kvs = []
    for _ in range(n_kv):
        key = read_str().decode()
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        v, et = read_val(vtype)
        kvs.append((key, vtype, v, et) if vtype == GGUF_ARRAY else (key, vtype, v))
    infos = []
    for _ in range(min(n_tensors, max_tensors)):
        name = read_str().decode()
        (nd,) = struct.unpack_from("<I", buf, pos)
        ne = struct.unpack_from("<%dq" % nd, buf, pos + 4)
        t, off = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, list(ne), t))
    return version, kvs, infos


def seeds_gguf(rng):
    kvs = [("general.architecture", GGUF_STRING, "llama"), ("general.alignment", 4, 32),
           ("t.u8", 0, 200), ("t.i8", 1, -100), ("t.u16", 2, 60000), ("t.i16", 3, -30000), ("t.u32", 4, 7),
           ("t.i32", 5, -7), ("t.f32", 6, 0.5), ("t.bool", 7, True), ("t.u64", 10, 1 << 40), ("t.i64", 11, -1),
           ("t.f64", 12, 0.25), ("t.strings", GGUF_ARRAY, ["a", "", "bc"], GGUF_STRING),
           ("t.nested", GGUF_ARRAY, [[1, 2], [3]], (GGUF_ARRAY, 5)), ("t.empty", GGUF_ARRAY, [], 4)]
    types = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
    put("fuzz_gguf", "every_type.gguf", gguf(kvs, [
        ("t." + n, [GGML[n][1] if GGML[n][1] > 1 else 8], GGML[n][0],
         ggml_blocks(n, GGML[n][1] if GGML[n][1] > 1 else 8, rng)) for n in types]))
    put("fuzz_gguf", "v2_odd.gguf", gguf([("general.alignment", 4, 16), ("t.s", GGUF_STRING, "x")], [
        ("q8_3d", [32, 2, 2], 8, ggml_blocks("Q8_0", 128, rng)),
        ("q2k", [256], 10, ggml_blocks("Q2_K", 256, rng)),
        ("iq4nl", [32], 20, ggml_blocks("IQ4_NL", 32, rng)),
        ("empty", [0, 3], 0, b"")], version=2, alignment=16))
    put("fuzz_gguf", "kv_only.gguf", gguf(kvs[:3], []))
    # The SmolLM2 model's metadata and first tensor infos, arrays cut short and shapes shrunk.
    path = os.path.join(SHARED, "models", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
    version, head_kvs, infos = gguf_read_head(path, 3)
    name_of = {v[0]: k for k, v in GGML.items()}
    small = [(name, [64] + [2] * (len(ne) - 1), t, ggml_blocks(name_of[t], 64 * 2 ** (len(ne) - 1), rng))
             for name, ne, t in infos]
    put("fuzz_gguf", "smollm2_head.gguf", gguf(head_kvs, small, version=version))


def seeds_npy(rng):
    a = floats(12, rng)
    put("fuzz_npy", "f32_4x3.npy", npy("<f4", [4, 3], struct.pack("<12f", *a)))
    put("fuzz_npy", "f16_2x3.npy", npy("<f2", [2, 3], struct.pack("<6H", *[f16_bits(x) for x in a[:6]])))
    put("fuzz_npy", "i32_4.npy", npy("<i4", [4], struct.pack("<4i", 5, 6, 7, 8)))
    put("fuzz_npy", "f32_v2.npy", npy("<f4", [2, 2], struct.pack("<4f", *a[:4]), version=2))
    put("fuzz_npy", "scalar.npy", npy("<f4", [], struct.pack("<f", 1.0)))
    put("fuzz_npy", "empty.npy", npy("<f4", [0, 3], b""))


def llama2c_checkpoint(rng, dim, hidden, layers, heads, kv_heads, vocab, seq_len, tied=True):
    hd = dim // heads
    kw = kv_heads * hd
    n = vocab * dim + layers * (2 * dim + dim * dim + 2 * kw * dim + dim * dim + 3 * hidden * dim) + dim
    n += seq_len * hd + (0 if tied else vocab * dim)
    hdr = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if tied else -vocab, seq_len)
    return hdr + struct.pack("<%df" % n, *floats(n, rng))


def llama2c_tokenizer(pieces, max_len=None):
    max_len = max_len or max(len(p) for p in pieces)
    out = struct.pack("<i", max_len)
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    return out


def seeds_llama2c(rng):
    # A llama2.c vocabulary has at least 259 tokens (specials and bytes); the target writes a matching one.
    put("fuzz_llama2c_model", "tiny_tied.bin", llama2c_checkpoint(rng, 4, 8, 1, 2, 1, 260, 4))
    put("fuzz_llama2c_model", "tiny_untied.bin", llama2c_checkpoint(rng, 4, 4, 2, 2, 2, 262, 2, tied=False))
    put("fuzz_llama2c_model", "tiny_gqa.bin", llama2c_checkpoint(rng, 8, 8, 1, 4, 2, 264, 3))
    tok = os.path.join(SHARED, "models", "stories260K", "tok512.bin")
    with open(tok, "rb") as f:
        put("fuzz_llama2c_tokenizer", "tok512.bin", struct.pack("<H", 512) + f.read())
    specials = [b"<unk>", b"<s>", b"</s>"]
    byte_pieces = [("<0x%02X>" % b).encode() for b in range(256)]
    words = [b" ", b"a", b"b", b" a", b"ab", b" ab", b"\xc3\xa9", b"Once", b" upon"]
    pieces = specials + byte_pieces + words
    put("fuzz_llama2c_tokenizer", "bytes_and_words.bin", struct.pack("<H", len(pieces)) + llama2c_tokenizer(pieces))
    short = specials + byte_pieces + [b" "]
    put("fuzz_llama2c_tokenizer", "smallest.bin", struct.pack("<H", len(short)) + llama2c_tokenizer(short))


def seeds_hf_tokenizer():
    src = os.path.join(SHARED, "models", "tinystories-656k", "tokenizer.json")
    with open(src) as f:
        t = json.load(f)
    # Metaspace-style BPE with byte fallback: the first merges and the tokens they use.
    merges = t["model"]["merges"][:150]
    keep = {p for m in merges for p in (m.split(" ") if isinstance(m, str) else m)}
    keep |= {(m.replace(" ", "", 1) if isinstance(m, str) else "".join(m)) for m in merges}
    vocab = {k: v for k, v in t["model"]["vocab"].items() if v < 259 or k in keep}
    t["model"]["vocab"] = vocab
    t["model"]["merges"] = merges
    put("fuzz_hf_tokenizer", "tinystories656k_min.json", json.dumps(t, ensure_ascii=False))
    # The same with merges as pairs and a Metaspace pre-tokenizer / decoder.
    t2 = json.loads(json.dumps(t))
    t2["model"]["merges"] = [m.split(" ") for m in merges[:40]]
    t2["model"]["vocab"] = {k: v for k, v in vocab.items()
                            if v < 259 or k in {p for m in t2["model"]["merges"] for p in m}
                            or k in {"".join(m) for m in t2["model"]["merges"]}}
    t2["normalizer"] = None
    t2["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        {"type": "Digits", "individual_digits": True}]}
    t2["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"}, {"type": "ByteFallback"},
        {"type": "Fuse"}]}
    put("fuzz_hf_tokenizer", "metaspace_pairs.json", json.dumps(t2, ensure_ascii=False))
    # Small, with every supported component, so mutations reach each option quickly.
    put("fuzz_hf_tokenizer", "all_components.json", json.dumps({
        "added_tokens": [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True},
                         {"id": 9, "content": "[X]", "special": False, "normalized": True}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": False},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}]},
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                    {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "vocab": {"<unk>": 0, "<s>": 1, "<0x41>": 2, "<0xC3>": 3, "\u2581": 4, "a": 5, "b": 6,
                            "\u2581a": 7, "ab": 8, "[X]": 9, "1": 10, "12": 11, "2": 12},
                  "merges": ["\u2581 a", ["a", "b"], "1 2"]}}, ensure_ascii=False))
    # The tiny tokenizers of every model family (tests/data/hf_tiny, a few hundred tokens each): the
    # Llama 3 / Qwen2 Split regexes, ignore_merges, String Split, NFC, added-token flags, templates.
    tiny = os.path.join(ROOT, "tests", "data", "hf_tiny")
    for fam in sorted(os.listdir(tiny)) if os.path.isdir(tiny) else []:
        p = os.path.join(tiny, fam, "tokenizer.json")
        if os.path.exists(p):
            with open(p, "rb") as f:
                put("fuzz_hf_tokenizer", "hf_tiny_" + fam + ".json", f.read())
    # Added-token flags and Split behaviors, which no family file uses.
    put("fuzz_hf_tokenizer", "flags_split.json", json.dumps({
        "added_tokens": [{"id": 6, "content": "<m>", "lstrip": True, "special": True},
                         {"id": 7, "content": "[r]", "rstrip": True},
                         {"id": 8, "content": "ab", "single_word": True, "normalized": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"String": "a"}, "behavior": "Removed", "invert": True},
            {"type": "Split", "pattern": {"String": "b"}, "behavior": "Contiguous", "invert": False},
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}]},
        "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "ignore_merges": True, "vocab": {"a": 0, "b": 1, "-": 2, " ": 3, "ab": 4, "a-": 5},
                  "merges": [["a", "b"], ["a", "-"]]}}, ensure_ascii=False))
    # GPT-2 byte-level BPE, from encoder.json + vocab.bpe cut to the first merges.
    gdir = os.path.join(SHARED, "models", "gpt2-tokenizer")
    with open(os.path.join(gdir, "encoder.json")) as f:
        enc = json.load(f)
    with open(os.path.join(gdir, "vocab.bpe")) as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#version")][:120]
    keep = {p for l in lines for p in l.split(" ")} | {l.replace(" ", "", 1) for l in lines}
    gv = {k: v for k, v in enc.items() if v < 256 or k in keep or k == "<|endoftext|>"}
    put("fuzz_hf_tokenizer", "gpt2_min.json", json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": enc["<|endoftext|>"], "content": "<|endoftext|>", "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": gv,
                  "merges": lines}}, ensure_ascii=False))


TINY_HF_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16,
    "max_position_embeddings": 32, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": True,
    "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "rope_scaling": None,
    "bos_token_id": 1, "eos_token_id": 2}


def seeds_hf_tokenizer_dir():
    """tokenizer_config.json, config.json and generation_config.json joined by NUL bytes (a part
    left empty: that file is absent), as fuzz_hf_tokenizer_dir splits its input."""
    tiny = os.path.join(ROOT, "tests", "data", "hf_tiny")
    for fam in sorted(os.listdir(tiny)) if os.path.isdir(tiny) else []:
        if not os.path.isdir(os.path.join(tiny, fam)):
            continue
        parts = []
        for name in ("tokenizer_config.json", "config.json", "generation_config.json"):
            p = os.path.join(tiny, fam, name)
            parts.append(open(p, "rb").read() if os.path.exists(p) else b"")
        put("fuzz_hf_tokenizer_dir", fam + ".bin", b"\0".join(parts))
    put("fuzz_hf_tokenizer_dir", "lists.bin", b"\0".join([
        b'{"add_bos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>"}',
        b'{"bos_token_id": 1, "eos_token_id": [2, 3]}', b'{"eos_token_id": [3, 2]}']))


def seeds_hf_config():
    with open(os.path.join(SHARED, "models", "tinystories-656k", "config.json"), "rb") as f:
        put("fuzz_hf_config", "tinystories656k.json", f.read())
    put("fuzz_hf_config", "tiny.json", json.dumps(TINY_HF_CONFIG, indent=2))
    c = dict(TINY_HF_CONFIG, model_type="mistral", tie_word_embeddings=False, head_dim=4)
    del c["max_position_embeddings"]
    put("fuzz_hf_config", "tiny_mistral_untied.json", json.dumps(c))
    # Every architecture's tiny checkpoint config in both styles (fuzz_hf_config loads each beside
    # that architecture's weights).
    for arch in ["gpt2", "pythia", "gemma2", "gemma3", "qwen2", "qwen3", "llama3", "mistral"]:
        for src, name in [("config.json", f"hf_tiny_{arch}.json"), ("config_v5.json", f"hf_tiny_{arch}_v5.json")]:
            with open(os.path.join(ROOT, "tests", "data", "hf_tiny", arch, src), "rb") as f:
                put("fuzz_hf_config", name, f.read())


def manifest(fmt, dtype, shards, d_in=3):
    n = sum(s[2] for s in shards)
    return json.dumps({
        "saelab_activations": 1,
        "settings": {"model_name": "tiny", "model_path": "/models/tiny", "hook_name": "blocks.0.hook_resid_post",
                     "context_size": 2, "prepend_bos": True, "exclude_special_tokens": False, "dtype": dtype,
                     "format": fmt, "max_tokens": n, "shard_tokens": 4, "corpus": ["/corpus/a.txt"]},
        "d_in": d_in, "shape": [n, d_in], "n_tokens": n, "contexts_done": n // 2, "complete": True,
        "shards": [{"file": f, "tokens_file": t, "n_tokens": k} for f, t, k in shards]}, indent=2)


def seeds_activation_manifest():
    # File names match the shards fuzz_activation_manifest.cpp writes beside the manifest.
    put("fuzz_activation_manifest", "npy.json", manifest("npy", "f32", [
        ("shard_00000.npy", "shard_00000.tokens.npy", 4), ("shard_00001.npy", "shard_00001.tokens.npy", 2)]))
    put("fuzz_activation_manifest", "safetensors.json", manifest("safetensors", "f32", [
        ("shard_00000.safetensors", "shard_00000.safetensors", 4)]))
    put("fuzz_activation_manifest", "defective.json", manifest("npy", "f16", [
        ("ints.npy", "floats.tokens.npy", 4), ("flat.npy", "shard_00000.tokens.npy", 4),
        ("truncated.npy", "truncated.npy", 0)]))
    put("fuzz_activation_manifest", "defective_st.json", manifest("safetensors", "f16", [
        ("short_tokens.safetensors", "short_tokens.safetensors", 4), ("no_tokens.safetensors", "no_tokens.safetensors", 2),
        ("empty.safetensors", "empty.safetensors", 0)]))


def first_lines(path, n, max_text=300):
    out = []
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            j["text"] = j["text"][:max_text]
            out.append(json.dumps(j, ensure_ascii=False))
            if len(out) == n:
                break
    return out


def seeds_probe():
    lang = os.path.join(SHARED, "probes", "langid_gnome_help", "paragraphs.jsonl")
    tasks = {"saelab_probe_tasks": 1, "datasets": [{"name": "language", "family": "language", "format": "jsonl",
                                                    "path": ["data.jsonl"], "group_field": "page"}],
             "tasks": [{"dataset": "language", "positive": "en"}]}
    put("fuzz_probe_jsonl", "langid.txt", json.dumps(tasks) + "\n" + "\n".join(first_lines(lang, 6)) + "\n")
    code = os.path.join(SHARED, "probes", "code")
    lines = first_lines(os.path.join(code, "C.jsonl"), 2, 600) + first_lines(os.path.join(code, "Python.jsonl"), 2)
    tasks = {"datasets": [{"name": "code", "family": "code_language", "format": "jsonl", "path": "data.jsonl",
                           "group_field": "path", "skip_prefix_chars": {"C": 150, "Java": 150},
                           "strip_leading_comments": ["C", "Java", "PHP"], "chunk_chars": 120}],
             "tasks": [{"dataset": "code", "positive": "C"}, {"dataset": "code", "positive": "Python"}]}
    put("fuzz_probe_jsonl", "code.txt", json.dumps(tasks) + "\n" + "\n".join(lines) + "\n")
    with open(os.path.join(SHARED, "probes", "ag_news", "test.csv")) as f:
        csv = "".join(f.readline() for _ in range(4))
    tasks = {"datasets": [{"name": "ag_news", "family": "news_topic", "format": "agnews_csv", "path": "data.jsonl",
                           "classes": "data.jsonl"}], "tasks": []}
    put("fuzz_probe_jsonl", "agnews.txt", json.dumps(tasks) + "\n" + csv)


def seeds_train_config():
    for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
        if not name.endswith(".toml"):
            continue
        with open(os.path.join(ROOT, "configs", name), "rb") as f:
            raw = f.read()
        put("fuzz_train_config_toml", name, raw)
        put("fuzz_train_config_json", name.replace(".toml", ".json"), json.dumps(tomllib.loads(raw.decode()), indent=1))
    flat = {"activations": "acts", "out_dir": "runs/x", "architecture": "hierarchical", "d_sae": 64,
            "children_per_parent": 3, "penalty": "dual_adaptive", "alpha_mode": "learned", "alpha": 0.5,
            "checkpoint_fractions": [0.5, 1.0], "total_tokens": 100000, "seed": 7, "lr": 0.0003}
    put("fuzz_train_config_json", "resolved_flat.json", json.dumps(flat, indent=1))
    put("fuzz_train_config_toml", "resolved_flat.toml",
        "\n".join(f"{k} = {json.dumps(v)}" for k, v in flat.items()) + "\n")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    rng = random.Random(8)
    seeds_safetensors(rng)
    seeds_npy(rng)
    seeds_gguf(random.Random(9))
    seeds_llama2c(rng)
    seeds_hf_tokenizer()
    seeds_hf_tokenizer_dir()
    seeds_hf_config()
    seeds_activation_manifest()
    seeds_probe()
    seeds_train_config()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    assert total < 1 << 20, total
    print(f"wrote {sum(len(fs) for _, _, fs in os.walk(OUT))} seeds, {total} bytes, into {OUT}")


if __name__ == "__main__":
    main()
