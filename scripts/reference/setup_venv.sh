#!/usr/bin/env bash
# Creates (or tops up) the reference venv at $1 (default .venv-reference, git-ignored): CPU torch,
# transformers, tokenizers, safetensors, numpy, gguf. Needed to regenerate tests/data and for the
# transformers side of bench/bench_harvest; saelab's build and tests never run Python.
# torch comes from the CPU-only wheel index when it answers (no CUDA libraries), else from PyPI.
# An existing venv is kept: this only pip-installs into it.
set -euo pipefail
venv=${1:-.venv-reference}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
source "$(dirname "$0")/install_torch.sh"
install_torch "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/python" -c 'import importlib.metadata, torch, transformers, gguf, numpy, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "gguf", importlib.metadata.version("gguf"))'
echo "reference venv ready: $venv/bin/python scripts/reference/dump_golden.py (goldens)"
echo "  or $venv/bin/python scripts/reference/bench_transformers_harvest.py --check (used by bench_harvest)"
echo "  or $venv/bin/python scripts/reference/hf_tiny_models.py (tests/data/hf_tiny: tiny HF checkpoints + goldens)"
