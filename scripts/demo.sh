#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then run `kiln` on the demo model the project
# generates itself (a small CNN with a dynamic batch): its info, one run with outputs and timing,
# and a short benchmark over two batch sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p build/demo
build/tools/make_demo_model build/demo/demo_cnn.onnx
build/kiln info build/demo/demo_cnn.onnx | sed -n '1,12p'
build/kiln run build/demo/demo_cnn.onnx --input image=random:2x3x32x32
build/kiln bench build/demo/demo_cnn.onnx --shape image=1x3x32x32 --shape image=4x3x32x32 --runs 20
