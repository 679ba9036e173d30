#!/usr/bin/env python3
"""Writes the GGUF goldens for tests/test_gguf.cpp with the `gguf` PyPI package (gguf-py, llama.cpp's
own Python reader/writer), independently of saelab's C++ reader:

  tests/data/gguf/types.gguf                    one tensor per supported ggml type, 2 x 512 values
                                                (t.F32 ... t.Q6_K), a 3-d Q8_0 tensor, an unsupported
                                                Q2_K tensor, general.alignment 64 and metadata of every
                                                GGUF value type, nested arrays included
  tests/data/gguf/types_expected.safetensors    gguf.quants.dequantize of each supported tensor, F32,
                                                same names and shapes; __metadata__ saelab_golden = 1
  tests/data/gguf/big_endian.gguf               a big-endian file (the reader must refuse it)

Tensor bytes are random but valid: random quantized bytes with finite random f16 scales (a few of
them subnormal, zero or the largest f16), random F32/F16/BF16 values plus the special values
(signed zeros, subnormals, infinities, NaNs). Deterministic (fixed seed).

Usage: python3 scripts/reference/make_gguf_goldens.py
Runs itself in the reference venv (.venv-reference, git-ignored): creates it if absent and installs
gguf and numpy into it.
"""
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".venv-reference")
OUT = os.path.join(ROOT, "tests", "data", "gguf")
ROWS, COLS = 2, 512
SUPPORTED = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
# Byte offsets of the f16 scale fields inside one block (ggml-common.h block_* structs).
HALF_FIELDS = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
               "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "Q2_K": [80, 82]}
# f16 bit patterns placed in the scale of blocks 1, 2, 3, 4: subnormals, zero, the largest finite.
SPECIAL_SCALES = [0x0123, 0x8007, 0x0000, 0x7BFF]
F16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7D01,
                0xFE01]
BF16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x807F, 0x7F7F, 0x7F80, 0xFF80, 0x7FC1, 0x7F81]


def ensure_venv():
    """Re-runs this script with the reference venv's python unless gguf and numpy import here."""
    try:
        import gguf  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(VENV, "bin", "python")
    if os.environ.get("SAELAB_GGUF_GOLDENS_VENV"):
        sys.exit(f"make_gguf_goldens.py: gguf/numpy still missing in {VENV}")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "gguf", "numpy"])
    os.execve(py, [py, os.path.abspath(__file__), *sys.argv[1:]], dict(os.environ, SAELAB_GGUF_GOLDENS_VENV="1"))


def random_blocks(np, qtype, name, shape, rng):
    """uint8 [..., row bytes]: random quantized bytes with finite f16 scales."""
    from gguf.constants import GGML_QUANT_SIZES
    block, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // block
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in HALF_FIELDS[name]:
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    first = HALF_FIELDS[name][0]
    for i, bits in enumerate(SPECIAL_SCALES[:n_blocks - 1]):
        raw[i + 1, first:first + 2] = np.array([bits], dtype="<u2").view(np.uint8)
    return raw.reshape(*shape[:-1], shape[-1] // block * type_size)


def random_floats(np, name, rng):
    """uint8 [ROWS, COLS * element size]: random values, the special values first."""
    x = rng.standard_normal(ROWS * COLS).astype(np.float32)
    if name == "F32":
        x[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.4e38, 1.5]
        bits = x.view(np.uint32)
        bits[8] = 0x7FA00001  # a signalling NaN with a payload
        return x.view(np.uint8).reshape(ROWS, -1)
    if name == "F16":
        h = (x * 4).astype(np.float16).view(np.uint16)
        h[:len(F16_SPECIALS)] = F16_SPECIALS
    else:  # BF16: the top half of random f32s
        h = (x.view(np.uint32) >> 16).astype(np.uint16)
        h[:len(BF16_SPECIALS)] = BF16_SPECIALS
    return h.astype("<u2").view(np.uint8).reshape(ROWS, -1)


def add_metadata(w, gguf):
    """One key per GGUF value type, arrays of several types and nested arrays."""
    V = gguf.GGUFValueType
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "h\u00e9llo, GGUF")
    w.add_uint64("test.u64", 2**64 - 1)
    w.add_int64("test.i64", -2**63)
    w.add_float64("test.f64", 0.1)
    w.add_array("test.arr_i32", [1, -2, 3])
    w.add_array("test.arr_str", ["a", "", "\u00fc"])
    w.add_array("test.arr_f32", [0.5, -1.25])
    w.add_array("test.arr_bool", [True, False, True])
    w.add_key_value("test.arr_u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.arr_u64", [2**64 - 1, 0], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.arr_f64", [0.1, -2.0], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("test.nested", [[1, 2], [3]])
    w.add_array("test.nested3", [[["x"]], [["y", "z"]]])


def write_safetensors(path, tensors, metadata):
    """tensors: [(name, float32 array)]; the format is simple enough to write here."""
    header, data = {"__metadata__": metadata}, b""
    for name, a in tensors:
        raw = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def write_gguf(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ensure_venv()
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(20250)
    os.makedirs(OUT, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(OUT, "types.gguf"), arch="saelab-test")
    w.add_custom_alignment(64)
    add_metadata(w, gguf)
    expected = []
    for name in SUPPORTED:
        qtype = Q[name]
        if name in ("F32", "F16", "BF16"):
            raw = random_floats(np, name, rng)
        else:
            raw = random_blocks(np, qtype, name, (ROWS, COLS), rng)
        w.add_tensor(f"t.{name}", raw, raw_dtype=qtype)
        expected.append((f"t.{name}", dequantize(raw, qtype).reshape(ROWS, COLS)))
    raw = random_blocks(np, Q.Q8_0, "Q8_0", (2, 3, 64), rng)
    w.add_tensor("t.Q8_0.3d", raw, raw_dtype=Q.Q8_0)
    expected.append(("t.Q8_0.3d", dequantize(raw, Q.Q8_0).reshape(2, 3, 64)))
    w.add_tensor("t.Q2_K", random_blocks(np, Q.Q2_K, "Q2_K", (1, 256), rng), raw_dtype=Q.Q2_K)
    write_gguf(w)

    for name, a in expected:
        assert a.dtype == np.float32, (name, a.dtype)
    version = subprocess.run([sys.executable, "-m", "pip", "show", "gguf"], capture_output=True, text=True).stdout
    version = next((l.split()[1] for l in version.splitlines() if l.startswith("Version:")), "?")
    write_safetensors(os.path.join(OUT, "types_expected.safetensors"), expected,
                      {"saelab_golden": "1", "generator": f"gguf {version} gguf.quants.dequantize",
                       "numpy": np.__version__})

    be = gguf.GGUFWriter(os.path.join(OUT, "big_endian.gguf"), arch="saelab-test", endianess=gguf.GGUFEndian.BIG)
    be.add_tensor("t.F32", np.arange(32, dtype=np.float32))
    write_gguf(be)

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(expected)} expected tensors, {total} bytes, into {OUT} (gguf {version})")


if __name__ == "__main__":
    main()
