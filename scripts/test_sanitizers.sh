#!/usr/bin/env bash
# Builds the whole test suite with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and
# runs it. Any report fails the run: UBSan does not recover, ASan aborts on the first error, and
# LeakSanitizer reports leaks at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
flags="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# Without MPI: Open MPI's own allocations would drown LeakSanitizer's report (the two-process run is
# in the regular suite; the part-splitting arithmetic it relies on is tested here too).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSAELAB_BUILD_BENCH=OFF -DSAELAB_MPI=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-asan -j "$(nproc)"
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
cd build-asan && ctest --output-on-failure -j "$(nproc)" --timeout 1500
