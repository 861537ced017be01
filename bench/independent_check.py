"""An independent check of the harness's TensorFlow numbers: the tutorial's step written
again here, without importing linfit, timed with a bare perf_counter loop, and compared with
the median per step of the same cells in a results CSV.

For every ok TensorFlow row whose variant is eager, function, xla, function-loop or
xla-loop, it builds that variant in that row's calling convention (``convention`` column),
times it, and prints both medians and their ratio; exit 1 if any ratio is more than 10% away
from 1 (or nothing was compared).

    python bench/independent_check.py results/<run>.csv     # one harness run, then this
    python bench/independent_check.py --pairs 4 --keep DIR  # harness, this, harness, this...

With one CSV, run it right after the benchmark, on the same machine, so both see the same
load; on a shared machine the load can change between the two by more than 10%. ``--pairs R``
takes that drift out of the comparison: it runs the harness (a child pytest of the five
variants at the default sizes, with a time limit) and its own timing alternately, R times,
and compares per cell the median of the R harness medians with the median of its R own.
It also prints the harness's own spread between its R runs, the noise any comparison of two
runs on this machine has.

``--interleaved`` takes the drift out altogether, and the question to its core: does
linfit's way of calling TensorFlow cost anything? In one process, for each variant and n, it
builds linfit's own trainer (the object the harness times) and this script's re-implementation
and times them alternately, INTERLEAVED_ROUNDS rounds of about ROUND_SECONDS each; it prints
the median of the per-round ratios (re-implementation / linfit) and their interquartile
range. The re-implementation still imports nothing of linfit; only the comparison does.

    python bench/independent_check.py --interleaved           # default sizes
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

# The agreement the issue asks for: within 10% of the harness's median.
TOLERANCE = 0.10
# Each sample is one call, as pytest-benchmark's rounds are for every cell here (its
# calibration gives 1 iteration per round above its 5 us minimum); samples for about this
# many seconds per cell, at least MIN_SAMPLES.
SECONDS_PER_CELL = 0.5
MIN_SAMPLES = 15
VARIANTS = ("eager", "function", "xla", "function-loop", "xla-loop")
# The default matrix's sizes; a harness run of them takes 15-30 s on the 2-core VM.
DEFAULT_SIZES = "1e3,1e5,1e6"
HARNESS_TIMEOUT_SECONDS = 900
# --interleaved: rounds per cell, each timing one side's calls for about ROUND_SECONDS; 21
# rounds of 2 x 20 ms keep a cell under a second plus its builds.
INTERLEAVED_ROUNDS = 21
ROUND_SECONDS = 0.02
# The harness's defaults for the trainers: learning rate and steps per call of the loops.
LEARNING_RATE = 0.1
LOOP_STEPS = 100


def step(w: tf.Variable, b: tf.Variable, x: tf.Tensor, y: tf.Tensor, lr: tf.Tensor) -> tf.Tensor:
    """The tutorial's step, written out again."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x * w + b - y))
    dw, db = tape.gradient(loss, [w, b])
    w.assign_sub(lr * dw)
    b.assign_sub(lr * db)
    return loss


def build(variant: str, convention: str, n: int, k: int) -> Callable[[], object]:
    """The call of ``variant`` in ``convention`` on CPU:0, on fresh data of ``n`` examples."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(n).astype(np.float32)
    with tf.device("/device:CPU:0"):
        x = tf.identity(tf.constant(x_np))
        y = tf.identity(tf.constant(3 * x_np + 2 + rng.standard_normal(n).astype(np.float32)))
        w, b = tf.Variable(5.0), tf.Variable(0.0)
        lr, lr_variable = tf.identity(tf.constant(0.1)), tf.Variable(0.1)
        steps = tf.constant(k)

    def loop(w, b, x, y, lr, steps):
        loss = step(w, b, x, y, lr)
        for _ in tf.range(steps - 1):
            step(w, b, x, y, lr)
        return loss

    body = loop if variant.endswith("loop") else step
    extra = (steps,) if variant.endswith("loop") else ()
    xla = variant.startswith("xla")
    if variant == "eager":
        fn = lambda: step(w, b, x, y, lr)  # noqa: E731
    elif convention == "args":
        traced = tf.function(body, jit_compile=xla)
        fn = lambda: traced(w, b, x, y, lr, *extra)  # noqa: E731
    elif convention == "closure":
        fn = tf.function(lambda: body(w, b, x, y, lr_variable, *extra),
                         jit_compile=xla).get_concrete_function()
    else:
        traced = tf.function(lambda x, y, lr, *extra: body(w, b, x, y, lr, *extra),
                             jit_compile=xla)
        if convention == "concrete":
            concrete = traced.get_concrete_function(x, y, lr, *extra)
            fn = lambda: concrete(x, y, lr, *extra)  # noqa: E731
        else:
            fn = lambda: traced(x, y, lr, *extra)  # noqa: E731

    def call() -> object:
        with tf.device("/device:CPU:0"):
            return fn()

    return call


def median_per_call(call: Callable[[], object]) -> float:
    """Median seconds of single calls over about SECONDS_PER_CELL, GC off, after warming
    up."""
    for _ in range(5):
        call()
    samples = []
    gc.disable()
    try:
        while len(samples) < MIN_SAMPLES or sum(samples) < SECONDS_PER_CELL:
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return statistics.median(samples)


def harness_run(folder: Path, sizes: str) -> Path:
    """One harness run of VARIANTS on CPU:0 into ``folder``; the CSV it wrote.

    The child has HARNESS_TIMEOUT_SECONDS; its output is kept in ``folder/harness.log`` and
    shown when it fails. subprocess.run kills it if this process is interrupted.
    """
    folder.mkdir(parents=True)
    command = [sys.executable, "-m", "pytest", str(Path(__file__).parent), "--benchmark-only",
               "-q", "-p", "no:cacheprovider", "--linfit-backends", "tensorflow",
               "--linfit-variants", ",".join(VARIANTS), "--linfit-devices", "CPU:0",
               "--linfit-sizes", sizes, "--linfit-floors", "off",
               "--linfit-no-plots", "--benchmark-max-time", "0.5", "--linfit-results",
               str(folder)]
    log = folder / "harness.log"
    with log.open("w") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT,
                              timeout=HARNESS_TIMEOUT_SECONDS, check=False)
    written = sorted(folder.glob("*.csv"))
    if done.returncode != 0 or not written:
        sys.exit(f"the harness run in {folder} failed (exit {done.returncode}):\n"
                 + log.read_text()[-3000:])
    return written[0]


def eligible_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a results CSV this script can re-implement."""
    # The per-round samples of a fast cell make fields longer than csv's default limit.
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle)
                if row["backend"] == "tensorflow" and row["variant"] in VARIANTS
                and row["device"] == "CPU:0" and row["status"] == "ok"
                and row["dtype"] == "float32"]


def time_rows(rows: list[dict[str, str]]) -> dict[tuple[str, str, int], tuple[float, float]]:
    """(variant, convention, n) -> (the harness's median per step, this script's)."""
    timed = {}
    for row in rows:
        n, k = int(row["n_examples"]), int(row["steps_per_call"])
        # Files of schema 2 have no convention: linfit then called with arguments.
        convention = row.get("convention") or ("args" if row["variant"] != "eager" else "")
        here = median_per_call(build(row["variant"], convention, n, k)) / k
        timed[row["variant"], convention, n] = float(row["median_seconds"]), here
    return timed


def interleaved(sizes: str) -> int:
    """linfit's trainer against the re-implementation, alternately in one process, for every
    variant (default convention) and size; return the exit status."""
    from linfit.backends import get_backend
    from linfit.data import make_dataset

    backend = get_backend("tensorflow")
    worst = 0.0
    print(f"{'variant':14s} {'convention':10s} {'n':>9s} {'linfit':>11s} {'here':>11s} ratio"
          "  ratio IQR")
    with backend.session():
        for n in (int(float(text)) for text in sizes.split(",")):
            for variant in VARIANTS:
                k = LOOP_STEPS if variant.endswith("loop") else 1
                trainer = backend.make_trainer(variant, "CPU:0", make_dataset(n), LEARNING_RATE,
                                               k)
                convention = getattr(trainer, "convention", "")
                sides = (trainer.call, build(variant, convention, n, k))
                calls = []
                for call in sides:
                    for _ in range(5):
                        call()
                    start = time.perf_counter()
                    call()
                    calls.append(max(1, int(ROUND_SECONDS / (time.perf_counter() - start))))
                linfit_times, here_times = [], []
                gc.disable()
                try:
                    for round_index in range(INTERLEAVED_ROUNDS):
                        # Alternate which side goes first, so neither always follows the other.
                        order = (0, 1) if round_index % 2 == 0 else (1, 0)
                        for side in order:
                            start = time.perf_counter()
                            for _ in range(calls[side]):
                                sides[side]()
                            elapsed = (time.perf_counter() - start) / calls[side] / k
                            (linfit_times if side == 0 else here_times).append(elapsed)
                finally:
                    gc.enable()
                ratios = [here / mine for here, mine in zip(here_times, linfit_times,
                                                            strict=True)]
                ratio = statistics.median(ratios)
                quartiles = statistics.quantiles(ratios, n=4)
                worst = max(worst, abs(ratio - 1))
                print(f"{variant:14s} {convention or '-':10s} {n:9d} "
                      f"{statistics.median(linfit_times) * 1e6:9.1f}us "
                      f"{statistics.median(here_times) * 1e6:9.1f}us {ratio:.2f}  "
                      f"{quartiles[0]:.2f}-{quartiles[2]:.2f}", flush=True)
    print(f"largest difference: {worst:.0%} (tolerance {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


def main() -> int:
    """Compare every eligible row (of one CSV, or of --pairs runs); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, help="a linfit results CSV")
    parser.add_argument("--pairs", type=int, metavar="R",
                        help="run the harness and this check alternately R times (R >= 2)")
    parser.add_argument("--interleaved", action="store_true",
                        help="linfit's trainer and the re-implementation timed alternately "
                        "in one process")
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"with --pairs or --interleaved: the sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="with --pairs: a new folder for the harness runs (default: a "
                        "temporary one, removed)")
    args = parser.parse_args()
    if [args.csv is not None, args.pairs is not None, args.interleaved].count(True) != 1:
        parser.error("give one of: a results CSV, --pairs R, --interleaved")
    if args.pairs is not None and args.pairs < 2:
        parser.error(f"--pairs must be at least 2, got {args.pairs}")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: exists already; name a new folder")
    # SIGTERM (CI cancellation, timeout) ends the script as Ctrl-C does, so that
    # subprocess.run kills a running harness child on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.interleaved:
        return interleaved(args.sizes)
    if args.csv is not None:
        runs = [time_rows(eligible_rows(args.csv))]
    else:
        with contextlib.ExitStack() as stack:
            folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            runs = []
            for index in range(args.pairs):
                print(f"pair {index + 1} of {args.pairs}: harness, then this check", flush=True)
                runs.append(time_rows(eligible_rows(harness_run(folder / f"pair-{index + 1}",
                                                                 args.sizes))))
    cells = [cell for cell in runs[0] if all(cell in run for run in runs)]
    worst = 0.0
    print(f"{'variant':14s} {'convention':10s} {'n':>9s} {'harness':>11s} {'here':>11s} ratio"
          + ("  harness spread" if len(runs) > 1 else ""))
    for cell in cells:
        variant, convention, n = cell
        harness = statistics.median(run[cell][0] for run in runs)
        here = statistics.median(run[cell][1] for run in runs)
        ratio = here / harness
        worst = max(worst, abs(ratio - 1))
        spread = (f"  {max(run[cell][0] for run in runs) / min(run[cell][0] for run in runs):.2f}x"
                  if len(runs) > 1 else "")
        print(f"{variant:14s} {convention or '-':10s} {n:9d} {harness * 1e6:9.1f}us "
              f"{here * 1e6:9.1f}us {ratio:.2f}{spread}")
    if not cells:
        print("nothing compared: no eligible TensorFlow row")
        return 1
    print(f"largest difference: {worst:.0%} (tolerance {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
