#!/usr/bin/env bash
# Builds saelab and runs the whole test suite (the command CI runs via .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/build.sh
cd build && ctest --output-on-failure -j "$(nproc)"
