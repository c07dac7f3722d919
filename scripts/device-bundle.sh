#!/usr/bin/env bash
# Packs what a GPU machine without our Debian libraries needs into .bundle/:
#   .bundle/kiln, .bundle/lib/ (libkiln.so and the shared libraries ldd finds for TBB, protobuf,
#   ONNX, zlib, zstd and the C++ runtime; glibc is the machine's), with --tests the test binary
#   .bundle/kiln_tests, .bundle/shared/models/NAME/ (shared models with their data sets) and
#   .bundle/torch_gpu_bench.py (the PyTorch reference).
# The bundle must stay under a size budget (default 64 MiB, what a device call can carry): the
# binaries are stripped and xz-compressed (scripts/gpu-check.sh unpacks them), and models are
# added smallest first while they fit; --models picks them by name (an error when they do not
# fit), --no-binaries leaves the binaries out (for a second call on a machine that has them).
#   usage: scripts/device-bundle.sh [--build DIR] [--tests] [--models mlp,squeezenet1_1]
#                                   [--no-binaries] [--budget-mib N] [--out DIR]
# then, on the GPU machine: scripts/gpu-check.sh [DIR] (see there).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build models="" budget_mib=64 tests=0 binaries=1 out=.bundle
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --budget-mib) budget_mib=$2; shift 2 ;;
    --tests) tests=1; shift ;;
    --no-binaries) binaries=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "device-bundle: unknown argument $1" >&2; exit 2 ;;
  esac
done
shared=${KILN_SHARED:-../shared}
[ -d "$shared/models" ] || shared=/work/shared
[ -x "$build/kiln" ] || { echo "device-bundle: $build/kiln not built" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/shared/models"
if [ "$binaries" = 1 ]; then
  mkdir -p "$out/lib"
  cp "$build/kiln" "$out/kiln"
  # Every non-glibc library kiln needs, resolved through ldd (libkiln.so included).
  ldd "$build/kiln" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*) continue ;;
    esac
    cp -L "$path" "$out/lib/$name"
  done
  if [ "$tests" = 1 ]; then
    [ -x "$build/tests/kiln_tests" ] || { echo "device-bundle: no $build/tests/kiln_tests" >&2; exit 1; }
    cp "$build/tests/kiln_tests" "$out/kiln_tests"
  fi
  strip --strip-unneeded "$out/kiln" "$out"/kiln_tests "$out"/lib/*.so* 2>/dev/null || true
  # Large files travel xz-compressed (libkiln.so links LLVM statically: ~54 MB, ~13 MB packed).
  find "$out" -type f -size +1M -print0 | xargs -0 -r xz -T0 -6
fi
tref="$shared/tools/torch-reference/torch_gpu_bench.py"
[ -f "$tref" ] && cp "$tref" "$out/"
cp scripts/gpu-check.sh "$out/"

budget=$((budget_mib * 1024 * 1024))
size() { du -sb "$1" | cut -f1; }
used=$(size "$out")
if [ -n "$models" ]; then
  IFS=, read -r -a picked <<< "$models"
else  # smallest first
  mapfile -t picked < <(for m in "$shared"/models/*/; do
    echo "$(size "$m") $(basename "$m")"; done | sort -n | cut -d' ' -f2)
fi
for m in "${picked[@]}"; do
  src="$shared/models/$m"
  [ -f "$src/model.onnx" ] || { echo "device-bundle: no model $src" >&2; exit 1; }
  need=$(size "$src")
  if [ $((used + need)) -ge "$budget" ]; then
    if [ -n "$models" ]; then
      echo "device-bundle: $m ($((need >> 20)) MiB) does not fit the ${budget_mib} MiB budget" >&2
      exit 1
    fi
    echo "device-bundle: skipping $m ($((need >> 20)) MiB): over the ${budget_mib} MiB budget"
    continue
  fi
  cp -r "$src" "$out/shared/models/$m"
  used=$((used + need))
done
echo "device-bundle: $out holds $((used >> 20)) MiB:"
ls "$out" "$out/shared/models"
