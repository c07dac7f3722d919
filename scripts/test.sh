#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, CLI, the shared models and the ONNX
# node conformance suite; the last two need ../shared beside the checkout and skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure "$@"
