"""Harness overhead: pytest-benchmark's median for one cell beside a bare perf_counter loop.

Both time the same callable (a trainer's ``call``) in one process, alternating, so machine
noise hits both alike. pytest-benchmark runs through the real harness (``pytest bench/``
in-process); the bare loop times one call per sample with ``time.perf_counter``, garbage
collection off, as many samples as pytest-benchmark took, after as many warm-up calls.

    python bench/overhead.py                         # jax jit at n=1e3 on CPU:0, 5 repeats
    python bench/overhead.py --backend tensorflow --variant xla
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import pytest

from linfit.backends import get_backend, installed_backends
from linfit.data import DEFAULT_LEARNING_RATE, make_dataset
from linfit.harness import WARMUP_CALLS
from linfit.results import read_frame

BENCH_DIR = Path(__file__).resolve().parent


def benchmark_median_per_call(backend: str, variant: str, n_examples: int, folder: Path) -> tuple[
        float, int]:
    """pytest-benchmark's median time per call of the cell, and its number of rounds."""
    before = set(folder.glob("*.csv"))
    code = pytest.main([str(BENCH_DIR), "--benchmark-only", "-q", "-p", "no:cacheprovider",
                        f"--linfit-backends={backend}", f"--linfit-variants={variant}",
                        f"--linfit-sizes={n_examples}", "--linfit-devices=CPU:0",
                        "--linfit-floors=off", "--linfit-no-plots",
                        f"--linfit-results={folder}"])
    if code != 0:
        raise SystemExit(f"the benchmark run failed (pytest exit status {code})")
    (written,) = set(folder.glob("*.csv")) - before
    row = read_frame(written).iloc[0]
    return float(row["median_seconds"]) * int(row["steps_per_call"]), int(row["rounds"])


def bare_median_per_call(backend: str, variant: str, n_examples: int, samples: int) -> float:
    """The median of ``samples`` single calls timed with perf_counter, GC off."""
    engine = get_backend(backend)
    loop = engine.variant(variant).loop
    with engine.session():
        trainer = engine.make_trainer(variant, "CPU:0", make_dataset(n_examples),
                                      DEFAULT_LEARNING_RATE, 100 if loop else 1)
        # The harness's first call and warm-up calls, then as many untimed calls as will be
        # timed: pytest-benchmark's calibration also runs the callable before its rounds.
        for _ in range(1 + WARMUP_CALLS + samples):
            trainer.call()
        times = []
        gc.disable()
        try:
            for _ in range(samples):
                start = time.perf_counter()
                trainer.call()
                times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "jax" if "jax" in installed_backends() else "tensorflow"
    parser.add_argument("--backend", default=default)
    parser.add_argument("--variant", default="jit" if default == "jax" else "xla")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            harness_s, rounds = benchmark_median_per_call(args.backend, args.variant, args.n,
                                                          Path(folder))
            bare_s = bare_median_per_call(args.backend, args.variant, args.n, rounds)
            rows.append((harness_s, bare_s, rounds))
    print(f"\n{args.backend} {args.variant} n={args.n:g} on CPU:0, median time per call")
    print("repeat  pytest-benchmark      bare loop  rounds  difference")
    for index, (harness_s, bare_s, rounds) in enumerate(rows, 1):
        print(f"{index:>6}  {harness_s * 1e6:>13.2f} µs  {bare_s * 1e6:>10.2f} µs  {rounds:>6}"
              f"  {harness_s / bare_s - 1:>+9.1%}")
    harness_median = statistics.median(r[0] for r in rows)
    bare_median = statistics.median(r[1] for r in rows)
    print(f"median  {harness_median * 1e6:>13.2f} µs  {bare_median * 1e6:>10.2f} µs  "
          f"{'':>6}  {harness_median / bare_median - 1:>+9.1%}")


if __name__ == "__main__":
    main()
