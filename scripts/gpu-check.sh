#!/usr/bin/env bash
# The GPU checks of the CUDA backend, run on a machine with an NVIDIA GPU from a bundle made by
# scripts/device-bundle.sh (it unpacks the bundle's .xz files first). Results go to $OUT (or
# ./gpu-check-out): log.txt, check.jsonl (kiln check --device cuda per model), bench.jsonl
# (kiln bench --device cuda at batch 1 and 8, GPU-resident I/O) and torch.jsonl (PyTorch eager
# and torch.compile at the same batches, when torch is installed).
#   usage: scripts/gpu-check.sh [BUNDLE_DIR] [--models-from DIR] [--quick] [--tf32]
# --models-from: models of another bundle (a second call's, the binaries unpacked before);
# --quick: check and bench only (no gtest, no torch); --tf32: also check with allow_tf32 (atol
# and rtol 1e-2) and bench it at batch 8, next to torch.compile with TF32.
set -uo pipefail
bundle=.bundle models="" quick=0 tf32=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models-from) models=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --tf32) tf32=1; shift ;;
    *) bundle=$1; shift ;;
  esac
done
models=${models:-$bundle}
out=${OUT:-gpu-check-out}
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/log.txt"; }
dirs=("$bundle/")
[ "$models" != "$bundle" ] && dirs+=("$models/")
find "${dirs[@]}" -name '*.xz' -print0 | xargs -0 -r xz -d -f
chmod +x "$bundle/kiln" "$bundle"/kiln_tests 2>/dev/null
export LD_LIBRARY_PATH="$PWD/$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KILN_CACHE_DIR="$PWD/$bundle/cache"
kiln="$bundle/kiln"

log "devices"
"$kiln" devices 2>&1 | tee -a "$out/log.txt"
if [ "$quick" = 0 ] && [ -x "$bundle/kiln_tests" ]; then
  log "gtest: the gpu label's tests"
  KILN_SHARED_DIR="$PWD/$models/shared" "$bundle/kiln_tests" \
    --gtest_filter='CudaDevice.*:*/CudaDeviceModels.*:DeviceTensors.*' 2>&1 |
    grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|rror' | tee -a "$out/log.txt"
fi
for dir in "$models"/shared/models/*/; do
  m=$(basename "$dir")
  log "check $m"
  "$kiln" check --device cuda --atol 1e-4 --rtol 1e-3 --json "$dir" 2>&1 |
    tee -a "$out/check.jsonl" | tail -3 >> "$out/log.txt"
  for b in 1 8; do
    log "bench $m batch $b"
    "$kiln" bench "$dir" --device cuda --batch "$b" --runs 200 --warmup 20 --json 2>&1 |
      tee -a "$out/bench.jsonl" | tail -1 >> "$out/log.txt"
    if [ "$quick" = 0 ] && [ -f "$bundle/torch_gpu_bench.py" ] && python3 -c 'import torch' 2>/dev/null; then
      for mode in "" --compile; do
        python3 "$bundle/torch_gpu_bench.py" $mode --batch "$b" "$m" 2>>"$out/torch.err" |
          tee -a "$out/torch.jsonl" >> "$out/log.txt"
      done
    fi
  done
  if [ "$tf32" = 1 ]; then
    log "check $m tf32"
    "$kiln" check --device cuda --tf32 --atol 1e-2 --rtol 1e-2 --json "$dir" 2>&1 |
      tee -a "$out/check.jsonl" | tail -3 >> "$out/log.txt"
    log "bench $m batch 8 tf32"
    "$kiln" bench "$dir" --device cuda --tf32 --batch 8 --runs 200 --warmup 20 --json 2>&1 |
      tee -a "$out/bench.jsonl" | tail -1 >> "$out/log.txt"
    if [ "$quick" = 0 ] && [ -f "$bundle/torch_gpu_bench.py" ] && python3 -c 'import torch' 2>/dev/null; then
      python3 "$bundle/torch_gpu_bench.py" --compile --tf32 --batch 8 "$m" 2>>"$out/torch.err" |
        tee -a "$out/torch.jsonl" >> "$out/log.txt"
    fi
  fi
done
log "done"
