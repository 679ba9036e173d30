#!/usr/bin/env bash
# Creates the reference venv (torch CPU, transformers, tokenizers, safetensors, numpy) at $1
# (default .venv-reference). Only needed to regenerate tests/data; the tests themselves never run Python.
set -euo pipefail
venv=${1:-.venv-reference}
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r "$(dirname "$0")/requirements.txt"
echo "reference venv ready: $venv/bin/python scripts/reference/dump_golden.py"
