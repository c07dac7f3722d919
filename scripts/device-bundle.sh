#!/usr/bin/env bash
# Packs what a GPU machine without our Debian libraries needs to run the CLI into .bundle/:
#   .bundle/kiln, .bundle/lib/ (libkiln.so and the shared libraries ldd finds for TBB, protobuf,
#   ONNX, zlib, zstd and the C++ runtime; glibc is the machine's), .bundle/models/NAME/ (shared
#   models with their data sets).
# The bundle must stay under a size budget (default 64 MiB, what a device call can carry), so
# the binaries are stripped and models are added smallest first while they fit; --models picks
# them by name (an error when they do not fit).
#   usage: scripts/device-bundle.sh [--build DIR] [--models mlp,squeezenet1_1] [--budget-mib N]
# then, on the GPU machine:
#   LD_LIBRARY_PATH=.bundle/lib .bundle/kiln devices
#   LD_LIBRARY_PATH=.bundle/lib .bundle/kiln check --device cuda --atol 1e-4 .bundle/models/mlp
set -euo pipefail
cd "$(dirname "$0")/.."
build=build models="" budget_mib=64
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --budget-mib) budget_mib=$2; shift 2 ;;
    *) echo "device-bundle: unknown argument $1" >&2; exit 2 ;;
  esac
done
shared=${KILN_SHARED:-../shared}
[ -d "$shared/models" ] || shared=/work/shared
[ -x "$build/kiln" ] || { echo "device-bundle: $build/kiln not built" >&2; exit 1; }

out=.bundle
rm -rf "$out"
mkdir -p "$out/lib" "$out/models"
cp "$build/kiln" "$out/kiln"
# Every non-glibc library kiln needs, resolved through ldd (libkiln.so included).
ldd "$build/kiln" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*) continue ;;
  esac
  cp -L "$path" "$out/lib/$name"
done
strip --strip-unneeded "$out/kiln" "$out"/lib/*.so* 2>/dev/null || true

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
  cp -r "$src" "$out/models/$m"
  used=$((used + need))
done
echo "device-bundle: $out holds $((used >> 20)) MiB:"
ls "$out" "$out/lib" "$out/models"
