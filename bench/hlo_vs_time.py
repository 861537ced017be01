"""The HLO's bytes per step beside the measured step time, for every cell XLA compiles
(issue 17): does the HLO traffic explain the gap to the read floor?

Runs the real harness (``pytest bench/``, floors measured) on TensorFlow's xla, xla-loop,
keras-xla, keras-xla-spe and JAX's jit and jit-loop at the given sizes, then reads its
results CSV back and prints, per cell, a markdown table:

* ``HLO bytes/step`` and ``over floor``: the account of the optimized HLO (linfit.hlo), and
  its ratio to the read floor's bytes (x and y once, 8n in float32);
* ``median/step``: the measured median step time;
* ``implied GB/s``: HLO bytes per step / median step time, the bandwidth the step would
  need if the HLO's traffic were all it did;
* ``read GB/s``: the device's measured read bandwidth (the floors' best probe round);
* ``explained``: (HLO bytes / read bandwidth) / median step, the share of the step time
  the HLO traffic accounts for at the measured bandwidth. Near 1: the step is memory-bound
  and the HLO's extra traffic is the gap to the read floor; well under 1: the kernels run
  below the bandwidth (their code, threading or dispatch is the rest of the gap).

    python bench/hlo_vs_time.py                      # n = 1e6 and 1e7, floors measured
    python bench/hlo_vs_time.py --sizes 1e6 --max-time 0.25
    python bench/hlo_vs_time.py --from results/RUN.csv   # the table of an existing run

Run it on a quiet machine: the times are measurements, the HLO figures are not.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import pytest

from linfit.results import read_frame

BENCH_DIR = Path(__file__).resolve().parent
# Every variant XLA compiles, by the harness's names.
XLA_VARIANTS = ("tensorflow:xla", "tensorflow:xla-loop", "tensorflow:keras-xla",
                "tensorflow:keras-xla-spe", "jax:jit", "jax:jit-loop")
# The sizes: memory-bound on a CPU (1e6 float32 is 8 MB of x and y, beyond the L2;
# 1e7 beyond the 2-core VM's 32 MiB L3).
DEFAULT_SIZES = "1e6,1e7"
# pytest-benchmark's time per cell, seconds (its default; each cell still gets at least
# --benchmark-min-rounds rounds, 5).
DEFAULT_MAX_TIME_SECONDS = 1.0


def run_harness(sizes: str, max_time_seconds: float, folder: Path, floors: str) -> Path:
    """One ``pytest bench/`` session of the XLA cells; the results CSV it wrote."""
    before = set(folder.glob("*.csv"))
    code = pytest.main([str(BENCH_DIR), "--benchmark-only", "-q", "-p", "no:cacheprovider",
                        f"--linfit-variants={','.join(XLA_VARIANTS)}",
                        f"--linfit-sizes={sizes}", "--linfit-devices=CPU:0",
                        f"--linfit-floors={floors}", "--linfit-no-plots",
                        f"--benchmark-max-time={max_time_seconds}",
                        f"--linfit-results={folder}"])
    written = sorted(set(folder.glob("*.csv")) - before)
    if code != 0 or len(written) != 1:
        raise SystemExit(f"pytest bench/ failed (exit {int(code)}); no results to compare")
    return written[0]


def _number(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else "-"


def table(results: Path) -> str:
    """The markdown table of a results CSV's HLO-accounted cells."""
    frame = read_frame(results)
    frame = frame[frame["hlo_bytes_per_step"].notna() & (frame["status"] == "ok")]
    if frame.empty:
        raise SystemExit(f"{results} holds no ok cell with an HLO account")
    lines = ["| backend | variant | n | k | HLO bytes/step | over floor | median/step | "
             "implied GB/s | read GB/s | explained |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in frame.sort_values(["n_examples", "backend", "variant"]).itertuples(index=False):
        # NaN where the floors were not measured: the two columns that need it say "-".
        bandwidth = float(row.read_bandwidth_bytes_per_second)
        implied = row.hlo_bytes_per_step / row.median_seconds
        explained = row.hlo_bytes_per_step / bandwidth / row.median_seconds
        lines.append(f"| {row.backend} | {row.variant} | {row.n_examples:.0e} | "
                     f"{row.steps_per_call} | {_number(row.hlo_bytes_per_step, 4)} | "
                     f"{_number(row.hlo_bytes_ratio)}x | {row.median_seconds * 1e6:.1f} µs | "
                     f"{_number(implied / 1e9)} | {_number(bandwidth / 1e9)} | "
                     f"{_number(explained, 2)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"comma-separated sizes (default: {DEFAULT_SIZES})")
    parser.add_argument("--max-time", type=float, default=DEFAULT_MAX_TIME_SECONDS,
                        help="pytest-benchmark's time per cell, seconds (default: "
                             f"{DEFAULT_MAX_TIME_SECONDS:g})")
    parser.add_argument("--floors", choices=("measure", "cache"), default="measure",
                        help="how the read bandwidth is had (default: measure)")
    parser.add_argument("--results", type=Path,
                        help="folder for the run's results CSV (default: a temporary one)")
    parser.add_argument("--from", dest="from_file", type=Path, metavar="CSV",
                        help="measure nothing: the table of an existing results CSV")
    args = parser.parse_args(argv)
    if args.from_file is not None:
        sys.stdout.write(table(args.from_file))
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.results or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        written = run_harness(args.sizes, args.max_time, folder, args.floors)
        if args.results:
            print(f"results: {written}")
        sys.stdout.write(table(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
