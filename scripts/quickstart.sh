#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine: install dependencies, build, run the main job on the
# default model (TinyStories-656K) and corpus (shared/corpus without the probing texts).
# Today the main job harvests activations, trains the vanilla and topk SAEs and evaluates them (core
# metrics with CE loss recovered on held-out text; sparse probing over the 35-task suite); it grows
# into the full experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
source scripts/env.sh
bash scripts/build.sh
acts=activations/tinystories-656k/blocks.0.hook_resid_post
./build/saelab harvest --model "$SAELAB_SHARED/models/tinystories-656k" --hook blocks.0.hook_resid_post \
  --max-tokens "${SAELAB_TOKENS:-1000000}" --out "$acts"
./build/saelab train --config configs/vanilla.toml --activations "$acts" --out runs/vanilla
./build/saelab train --config configs/topk.toml --activations "$acts" --out runs/topk
for run in vanilla topk; do
  ./build/saelab eval core --sae runs/$run/sae --model "$SAELAB_SHARED/models/tinystories-656k" \
    --corpus "$SAELAB_SHARED/corpus/inaugural" --out runs/$run/eval_core.json
  ./build/saelab eval probing --sae runs/$run/sae --model "$SAELAB_SHARED/models/tinystories-656k" \
    --data-root "$SAELAB_SHARED" --out runs/$run/eval_sparse_probing.json
done
echo "SAEs (SAELens layout): runs/{vanilla,topk}/sae; training logs: runs/*/train_log.csv;"
echo "evaluations (SAEBench JSON): runs/{vanilla,topk}/eval_core.json, runs/{vanilla,topk}/eval_sparse_probing.json"
