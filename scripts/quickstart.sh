#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine: install dependencies, build, run the main job on the
# default model (TinyStories-656K) and corpus (shared/corpus without the probing texts).
# Today the main job harvests activations; it grows into the full experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
source scripts/env.sh
bash scripts/build.sh
./build/saelab harvest --model "$SAELAB_SHARED/models/tinystories-656k" --hook blocks.0.hook_resid_post \
  --max-tokens "${SAELAB_TOKENS:-1000000}" --out activations/tinystories-656k/blocks.0.hook_resid_post
echo "activations: activations/tinystories-656k/blocks.0.hook_resid_post/manifest.json"
