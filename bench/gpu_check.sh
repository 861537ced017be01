#!/usr/bin/env bash
# The GPU check: on a machine with a GPU, from a source checkout (no pip install of linfit),
# with whatever backends are installed there (TensorFlow need not be):
#   1. the devices every backend sees;
#   2. the default benchmark matrix on every CPU and GPU device;
#   3. GPU:0 alone at n=1e8 float32, for the bandwidth figure;
#   4. the floors (read and copy bandwidth, dispatch) of every device, the probe rounds the
#      two benchmark runs measured and cached (they also fill the efficiency columns);
#   5. the device regression check of each results file;
#   6. the figures;
#   7. JAX's loop forms (static trip count, unrolling: docs/jax_loops.py) at n=1e3 and 1e5.
# Everything lands in OUT_DIR. Budget: under 6 minutes on one H100, torch.compile included.
# Each stage runs under its own time limit; one that fails or runs out of time is reported
# and the next stage runs; the exit status is 1 when any stage failed.
#
# usage: bench/gpu_check.sh OUT_DIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
mkdir -p "$1"
OUT_DIR=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# JAX takes 75% of the GPU's memory when it starts; PyTorch runs in the same process.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

# Per-stage limits in seconds: they add up to 340, inside the 6-minute budget. The large run
# includes its reference: 100 eager steps on the CPU at n=1e8. The floors are measured at
# the start of the matrix run and cached; each benchmark run adds a probe round at its end,
# and the floors stage reads the cache.
DEVICES_LIMIT_S=15
MATRIX_LIMIT_S=150
LARGE_LIMIT_S=100
FLOORS_LIMIT_S=10
CHECK_LIMIT_S=10
PLOT_LIMIT_S=15
# Seven loop forms at two sizes, each compiled once: about 2 s a compile on a GPU.
JAX_LOOPS_LIMIT_S=40

failed=()
started_s=$SECONDS

# stage NAME LIMIT_S COMMAND...: run COMMAND under LIMIT_S, and remember a failure.
stage() {
    local name=$1 limit_s=$2 status=0
    shift 2
    echo "== $(date -u +%H:%M:%S) +$((SECONDS - started_s))s $name (limit ${limit_s}s)"
    # SIGINT first: pytest then finishes its session and writes the cells it measured.
    timeout --signal=INT --kill-after=10 "$limit_s" "$@" || status=$?
    if ((status == 124)); then
        echo "== $name: TIMED OUT after ${limit_s}s"
        failed+=("$name")
    elif ((status != 0)); then
        echo "== $name: FAILED (exit status $status)"
        failed+=("$name")
    fi
}

# The newest results file in a benchmark stage's folder (the harness names it by run), or
# nothing.
results_in() {
    local newest
    newest=$(ls -t "$OUT_DIR/$1"/*.csv 2>/dev/null | head -n 1) || true
    echo "$newest"
}

# --benchmark-max-time 0.25: a quarter of pytest-benchmark's default time per cell (at least 5
# rounds still), to fit the budget; figures are drawn once at the end, without the
# convergence figure, which would compile every variant again.
BENCH=(python3 -m pytest bench/ --benchmark-only -p no:cacheprovider -q
       --benchmark-max-time 0.25 --linfit-no-plots)

stage devices "$DEVICES_LIMIT_S" python3 -m linfit devices
stage matrix "$MATRIX_LIMIT_S" "${BENCH[@]}" --linfit-results "$OUT_DIR/matrix"
stage large "$LARGE_LIMIT_S" "${BENCH[@]}" --linfit-devices GPU:0 --linfit-sizes 1e8 \
    --linfit-dtypes float32 --linfit-variants jit,jit-loop,cuda-graph \
    --linfit-results "$OUT_DIR/large"
# Reads the floors the benchmark runs cached (same backends, same devices: same cache key).
stage floors "$FLOORS_LIMIT_S" bash -c "python3 -m linfit floors --json > '$OUT_DIR/floors.json'"

csvs=()
for run in matrix large; do
    csv=$(results_in "$run")
    if [[ -n $csv ]]; then
        csvs+=("$csv")
        stage "check $run" "$CHECK_LIMIT_S" python3 -m linfit check "$csv"
    else
        echo "== no results file in $OUT_DIR/$run"
        failed+=("results $run")
    fi
done
if ((${#csvs[@]})); then
    # --no-convergence: that figure trains every variant again, compiles included.
    stage plot "$PLOT_LIMIT_S" python3 -m linfit plot "${csvs[@]}" -o "$OUT_DIR/plots" \
        --no-convergence
fi

stage "jax loops" "$JAX_LOOPS_LIMIT_S" bash -c \
    "python3 docs/jax_loops.py --sizes 1e3,1e5 > '$OUT_DIR/jax_loops.txt'"

echo "== $(date -u +%H:%M:%S) +$((SECONDS - started_s))s done; results in $OUT_DIR"
if ((${#failed[@]})); then
    printf '== failed: %s\n' "$(IFS=,; echo "${failed[*]}")"
    exit 1
fi
