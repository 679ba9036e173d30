#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine: install dependencies, build, and run the main job on the
# default model (TinyStories-656K) and corpus (shared/corpus without the probing texts): the seed's
# experiment (method.md §5) — harvest 1M activations of blocks.0.hook_resid_post, train vanilla,
# dual-adaptive at α ∈ {0, .25, .5, .75, 1}, learnable-dual, naive-α and topk into runs/run_1..9,
# evaluate each (core metrics with CE loss recovered, sparse probing over 35 tasks, stability,
# composition) and compare learned α with the manual sweep. Re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
source scripts/env.sh
bash scripts/build.sh
./build/saelab experiment --config configs/experiment.toml --out "${SAELAB_OUT:-runs}" --tokens "${SAELAB_TOKENS:-1000000}"
echo "results: ${SAELAB_OUT:-runs}/summary.json, ${SAELAB_OUT:-runs}/alpha_agreement.json, ${SAELAB_OUT:-runs}/run_*/"
echo "report:  ${SAELAB_OUT:-runs}/report.html"
