#!/usr/bin/env bash
# Builds Kiln with ThreadSanitizer into build-tsan/ and runs the multi-threaded tests under it
# (ctest label `tsan`: the plan cache and many threads running mixed shapes, the kernel cache's
# single-flight compiles and disk cache, the CPU device, gpt_mini from 4 threads). Any TSan report
# fails the run. About 15 minutes on 2 cores; not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_TSAN=ON \
  -DKILN_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" >/dev/null
cmake --build build-tsan --target kiln_cli kiln_tests
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$PWD/scripts/tsan.supp"
ctest --test-dir build-tsan -L tsan --output-on-failure
