#!/usr/bin/env bash
# Kiln against ONNX Runtime 1.30 on the shared models, side by side in one run.
#
# usage: bench/compare_ort.sh [RUNS] [MODELS...]
#   RUNS    timed runs per measurement (default 30)
#   MODELS  shared model names (default: all six)
# BATCHES and THREADS (environment, space-separated) narrow the cells: default "1 8" and "1 2".
# ROUNDS (environment, default 1): each cell alternates the two engines this many times and
# takes the median of each engine's per-round medians, which rides out a noisy spell.
# Each (model, batch, threads) cell runs `kiln bench` and `ort.sh bench` back to back on the
# same inputs (test_data_set_0, tiled to the batch), so both see the same machine state. Prints
# a table of medians (ms) and kiln/ORT ratios, then the geometric mean of the ratios per thread
# count and overall. Needs ../shared beside the checkout and build/kiln (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp squeezenet1_1 mobilenet_v2 resnet18 bert_mini gpt_mini)
shared=../shared
ort=$shared/tools/ort-reference/ort.sh
[ -x build/kiln ] || { echo "compare_ort: build/kiln missing; run scripts/build.sh" >&2; exit 2; }
[ -x "$ort" ] || { echo "compare_ort: $ort missing (needs ../shared)" >&2; exit 2; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
median() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }

printf '%-14s %5s %7s %10s %10s %7s\n' model batch threads kiln_ms ort_ms ratio
ratios=()
for m in "${models[@]}"; do
  for batch in ${BATCHES:-1 8}; do
    for threads in ${THREADS:-1 2}; do
      # Each engine's output is parsed after it exits: a parser started alongside (a pipe)
      # would take a core from the timed runs on a 2-core machine.
      ks=() os=()
      for ((round = 0; round < ${ROUNDS:-1}; round++)); do
        kj=$(build/kiln bench "$shared/models/$m" --threads "$threads" --batch "$batch" \
               --runs "$runs" --warmup 5 --json)
        oj=$("$ort" bench "$shared/models/$m" "$threads" "$runs" "$batch" 2>/dev/null)
        ks+=("$(field median_ms <<< "$kj")")
        os+=("$(field median_ms <<< "$oj")")
      done
      k=$(median "${ks[@]}")
      o=$(median "${os[@]}")
      r=$(python3 -c "print(f'{$k/$o:.3f}')")
      ratios+=("$threads:$batch:$r")
      printf '%-14s %5s %7s %10.3f %10.3f %7s\n' "$m" "$batch" "$threads" "$k" "$o" "$r"
    done
  done
done
python3 - "${ratios[@]}" <<'PY'
import math, sys
rows = [a.split(":") for a in sys.argv[1:]]
def gm(xs): return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")
for t in ("1", "2"):
    for b in ("1", "8"):
        xs = [float(r) for th, ba, r in rows if th == t and ba == b]
        print(f"geomean kiln/ort  threads {t} batch {b}: {gm(xs):.3f}")
print(f"geomean kiln/ort  all: {gm([float(r) for _, _, r in rows]):.3f}")
PY
