#!/usr/bin/env bash
# Builds Kiln with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs the unit,
# CLI and model tests plus the whole ONNX node suite under them. Any sanitizer report fails.
# (About 10 minutes on 2 cores; not part of .ci/run.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_ASAN=ON \
  -DKILN_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" >/dev/null
cmake --build build-asan --target kiln_cli kiln_tests
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build-asan/tests/kiln_tests --gtest_filter='-Conformance.*'
if [ -d ../shared/onnx-node-tests ]; then
  log=$(mktemp)
  build-asan/kiln check ../shared/onnx-node-tests >/dev/null 2>"$log" || true
  if grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$log"; then
    grep -E "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$log" | sort | uniq -c | head -20
    exit 1
  fi
  echo "node suite: no sanitizer reports"
fi
