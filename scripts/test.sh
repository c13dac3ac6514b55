#!/usr/bin/env bash
# Quick start, command 2: installs the dependencies, builds everything and runs the whole
# test suite with ctest.
#   scripts/test.sh              GCC build in build/, every test
#   scripts/test.sh --sanitize   clang-14 AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                build-asan/: unit tests, and 20 s of each libFuzzer target
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

jobs=$(nproc)
if [[ "${1:-}" == "--sanitize" ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DNOVACRON_SANITIZE=address,undefined -DNOVACRON_FUZZ=ON -DNOVACRON_BUILD_BENCHMARKS=OFF > /dev/null
  cmake --build build-asan
  # A plugin that crashes on purpose must die of its signal in the inspection child, not be
  # turned into an ASan report and exit(1).
  export ASAN_OPTIONS=handle_segv=0:handle_abort=0:detect_leaks=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan -L 'unit|fuzz' -j "$jobs" --output-on-failure --timeout 300
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  cmake --build build
  ctest --test-dir build -j "$jobs" --output-on-failure --timeout 600
fi
