#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine: install dependencies, build, and run the main job on the
# default model (SmolLM2-135M-Instruct, GGUF) and corpus (shared/corpus without the probing texts):
# the seed's experiment (method.md §5) as configs/experiment.toml sizes it for 2 CPU cores —
# harvest blocks.9.hook_resid_post, train vanilla, dual-adaptive at α ∈ {0, .25, .5, .75, 1},
# learnable-dual, naive-α, topk and Matryoshka BatchTopK into runs/run_1..10, evaluate each (core
# metrics with CE loss recovered, sparse probing over 35 tasks, feature absorption, stability,
# composition), compare learned α with the
# manual sweep and write the report. Re-running resumes. SAELAB_CONFIG picks another plan
# (configs/experiment_tinystories.toml: the fast smoke run), SAELAB_TOKENS another token budget.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
source scripts/env.sh
bash scripts/build.sh
# Debian 12's OpenBLAS (0.3.21) gives CPUs newer than itself (Sapphire/Emerald Rapids) its generic SSE3
# kernels, ~4x slower; saelab names the kernels to ask for, and the main job runs with them. A value
# you set yourself is kept.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  core=$(./build/saelab --version 2>&1 >/dev/null | sed -n 's/.*OPENBLAS_CORETYPE=\([A-Za-z0-9]*\).*/\1/p')
  if [ -n "$core" ]; then
    export OPENBLAS_CORETYPE=$core
    echo "quickstart: OpenBLAS does not know this CPU; running with OPENBLAS_CORETYPE=$core"
  fi
fi
args=(--config "${SAELAB_CONFIG:-configs/experiment.toml}" --out "${SAELAB_OUT:-runs}")
[ -n "${SAELAB_TOKENS:-}" ] && args+=(--tokens "$SAELAB_TOKENS")
./build/saelab experiment "${args[@]}"
echo "results: ${SAELAB_OUT:-runs}/summary.json, ${SAELAB_OUT:-runs}/alpha_agreement.json, ${SAELAB_OUT:-runs}/run_*/"
echo "report:  ${SAELAB_OUT:-runs}/report.html"
