#!/usr/bin/env bash
# Debian 12 packages saelab builds and tests with (by package name only; nothing is downloaded at build time).
set -euo pipefail
pkgs=(cmake make g++ pkg-config libopenblas-dev libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev libfmt-dev libtomlplusplus-dev libgtest-dev libbenchmark-dev chromium clang libclang-rt-14-dev libomp-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "dependencies present"; exit 0; fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
