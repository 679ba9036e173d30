#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) into build-fuzz/ and runs each for a
# bounded time on a temporary copy of its seed corpus (fuzz/corpus/<target>/), so the checkout is
# never modified. Exits non-zero if any target finds a crash, sanitizer report, timeout or
# oversized allocation; the inputs that did are copied to build-fuzz/fuzz-findings/<target>/.
# Needs the Debian packages clang, libclang-rt-14-dev (libFuzzer, sanitizer runtimes) and
# libomp-dev (OpenMP for clang), besides the regular build dependencies.
#   FUZZ_SECONDS=30    seconds per target
#   FUZZ_TARGETS="..." a subset (names as in fuzz/CMakeLists.txt, e.g. "fuzz_npy fuzz_safetensors")
#   FUZZ_JOBS=N        build parallelism (default: nproc)
# Reproduce a finding: build-fuzz/fuzz/<target> build-fuzz/fuzz-findings/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-$(nproc)}
all_targets=(fuzz_safetensors fuzz_gguf fuzz_npy fuzz_llama2c_model fuzz_llama2c_tokenizer fuzz_hf_tokenizer
             fuzz_hf_tokenizer_dir fuzz_hf_config fuzz_activation_manifest fuzz_probe_jsonl fuzz_train_config_toml fuzz_train_config_json)
read -r -a targets <<< "${FUZZ_TARGETS:-${all_targets[*]}}"

# Longest input per target: room above the largest seed, small enough to keep runs fast.
max_len() {
  case "$1" in
    fuzz_npy) echo 1024 ;;
    fuzz_hf_config | fuzz_hf_tokenizer_dir | fuzz_train_config_*) echo 4096 ;;
    fuzz_safetensors | fuzz_gguf | fuzz_activation_manifest | fuzz_probe_jsonl) echo 8192 ;;
    fuzz_llama2c_model | fuzz_llama2c_tokenizer | fuzz_hf_tokenizer) echo 16384 ;;
    *) echo 4096 ;;
  esac
}
dict() {
  case "$1" in
    fuzz_train_config_toml) echo "-dict=fuzz/toml.dict" ;;
    fuzz_safetensors | fuzz_hf_tokenizer | fuzz_hf_tokenizer_dir | fuzz_hf_config | fuzz_activation_manifest | fuzz_probe_jsonl | \
      fuzz_train_config_json) echo "-dict=fuzz/json.dict" ;;
  esac
}

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install clang libclang-rt-14-dev libomp-dev)" >&2; exit 2; }
done
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DSAELAB_FUZZ=ON -DSAELAB_BUILD_TESTS=OFF \
  -DSAELAB_BUILD_BENCH=OFF -DSAELAB_MPI=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_all

work=$(mktemp -d "${TMPDIR:-/tmp}/saelab-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
findings=build-fuzz/fuzz-findings
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
  [ -x "build-fuzz/fuzz/$t" ] || { echo "fuzz.sh: unknown target '$t'" >&2; exit 2; }
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp -r "fuzz/corpus/$t/." "$work/$t/corpus/"
  echo "== $t: ${seconds}s, max_len $(max_len "$t")"
  status=0
  # shellcheck disable=SC2046
  "build-fuzz/fuzz/$t" "$work/$t/corpus" $(dict "$t") -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/$t/artifacts/" >"$work/$t/log" 2>&1 || status=$?
  grep -E "^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "$work/$t/log" || true
  if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/$t/artifacts")" ]; then
    failed+=("$t")
    mkdir -p "$findings/$t"
    cp "$work/$t/artifacts/"* "$findings/$t/" 2>/dev/null || true
    echo "!! $t failed (exit $status); inputs in $findings/$t/. Log tail:"
    grep -v "^#[0-9]" "$work/$t/log" | tail -n 40
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no findings"
