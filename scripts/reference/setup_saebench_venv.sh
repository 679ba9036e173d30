#!/usr/bin/env bash
# Creates (or tops up) the SAEBench venv at $1 (default .venv-saebench, git-ignored), used by
# saebench_core_goldens.py and validate_saebench_json.py to run SAEBench's own code on saelab's
# numbers and files. saelab's build and tests never run Python.
#
# sae-bench and sae-lens are installed with --no-deps: sae-bench pins numpy<2 and an older pandas,
# and its full tree (transformer-lens, datasets, openai, sae-probes, ...) is not needed. What is
# installed beside them is what the modules we import actually use:
#   sae_bench.evals.*.eval_output / eval_config   pydantic
#   sae_bench.evals.core.main (metric functions)  torch, einops, tqdm, pandas, tabulate
#   sae_bench.evals.absorption (goldens)          scikit-learn, transformers (tokenizers), pyarrow
# sae_lens and transformer_lens are imported by core/main.py only for type names and loaders;
# saebench_core_goldens.py stands them in (see its header), so their dependency trees are skipped.
# torch comes from the CPU-only wheel index when it answers (no CUDA libraries), else from PyPI.
set -euo pipefail
venv=${1:-.venv-saebench}
sae_bench_version=0.6.0   # the version saelab's core metrics and JSON were checked against
sae_lens_version=6.54.12
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
source "$(dirname "$0")/install_torch.sh"
install_torch "$venv"
"$venv/bin/pip" install -q --no-deps "sae-bench==$sae_bench_version" "sae-lens==$sae_lens_version"
"$venv/bin/pip" install -q pydantic einops tqdm pandas tabulate numpy scikit-learn transformers pyarrow
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import torch
from sae_bench.evals.core.eval_output import CoreEvalOutput  # noqa: F401
from sae_bench.evals.sparse_probing.eval_output import SparseProbingEvalOutput  # noqa: F401
print("sae-bench", md.version("sae-bench"), "sae-lens", md.version("sae-lens"), "torch", torch.__version__,
      "pydantic", md.version("pydantic"))
PY
echo "SAEBench venv ready: $venv/bin/python scripts/reference/saebench_core_goldens.py (goldens)"
echo "  or $venv/bin/python scripts/reference/validate_saebench_json.py FILE... (schema check)"
