"""How long does ``linfit history`` take on a long history? Writes synthetic runs, then
times the build.

    python bench/history_scale.py [--runs 1000] [--cells 8] [--rounds 40] [--keep DIR]

Each synthetic run is a results CSV written by linfit's own writer
(:func:`linfit.results.write_results`), from the cells of a committed run
(``results/cpu-2core-v4``) with new samples: two machines taking turns, one run an hour,
TensorFlow builds 2.16 to 2.21 then nightlies of 2.22 in order, and known steps: every
TensorFlow ``xla-loop`` cell 1.5x slower from 2.21 on, every ``function`` cell 20% faster
from the 600th run. Per-round noise is log-normal (5%), each run drifts by up to 3%.

Prints the number of runs and cells, the time of each phase (read, steps, site), the SVG
count, the steps found, and ``uptime`` (the machine is shared: say how loaded it was).
The issue's target: 1,000 runs in under a minute on the 2-core VM.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from linfit.history import collect_history, find_steps, write_site  # noqa: E402
from linfit.results import read_results, write_results  # noqa: E402

TEMPLATE = ROOT / "results" / "cpu-2core-v4" / "20261127T214238Z-vm-b40633feb3.csv"
HOSTS = ("ci-a", "ci-b")
RELEASES = ("2.16.2", "2.17.1", "2.18.1", "2.19.1", "2.20.0", "2.21.0")
# Per-round noise (log-normal sigma) and the largest drift of a whole run.
ROUND_NOISE = 0.05
RUN_DRIFT = 0.03
SLOWER_XLA_LOOP = 1.5  # from 2.21 on
FASTER_FUNCTION = 0.8  # from the 600th run on
FUNCTION_STEP_RUN = 600
SEED = 18


def builds(runs: int) -> list[str]:
    """The TensorFlow build of each run: the releases, then nightlies, in order."""
    per_release = max(1, runs // (2 * len(RELEASES)))
    sequence = [version for version in RELEASES for _ in range(per_release)]
    start = datetime(2026, 6, 1, tzinfo=UTC)
    while len(sequence) < runs:
        day = start + timedelta(days=len(sequence) - per_release * len(RELEASES))
        sequence.append(f"2.22.0.dev{day:%Y%m%d}")
    return sequence[:runs]


def write_runs(folder: Path, runs: int, cells: int, rounds: int) -> None:
    """Write ``runs`` synthetic results CSVs into ``folder``."""
    template = [record for record in read_results(TEMPLATE)
                if record.ok and record.cell.backend == "tensorflow"
                and not record.cell.variant.startswith("keras")][:cells]
    rng = np.random.default_rng(SEED)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index, build in enumerate(builds(runs)):
        when = start + timedelta(hours=index)
        host = HOSTS[index % len(HOSTS)]
        run_id = f"{when:%Y%m%dT%H%M%SZ}-{host}-{index:010x}"
        drift = 1 + rng.uniform(-RUN_DRIFT, RUN_DRIFT)
        records = []
        for record in template:
            level = float(np.median(record.per_call_seconds))
            if record.cell.variant == "xla-loop" and not build.startswith(RELEASES[:5]):
                level *= SLOWER_XLA_LOOP
            if record.cell.variant == "function" and index >= FUNCTION_STEP_RUN:
                level *= FASTER_FUNCTION
            samples = level * drift * rng.lognormal(0, ROUND_NOISE, rounds)
            facts = {**record.facts, "run_id": run_id, "host": host,
                     "timestamp_utc": when.isoformat(timespec="seconds"),
                     "backend_version": build}
            records.append(dataclasses.replace(record, per_call_seconds=tuple(samples),
                                               facts=facts))
        write_results(records, folder / f"{run_id}.csv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="write the runs and the site here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="linfit-history-scale-"))
    runs_dir, site = work / "runs", work / "site"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        write_runs(runs_dir, args.runs, args.cells, args.rounds)
        print(f"wrote {args.runs} runs in {time.perf_counter() - began:.1f} s")
        began, cpu_began = time.perf_counter(), time.process_time()
        history = collect_history([runs_dir])
        read = time.perf_counter()
        steps = find_steps(history)
        stepped = time.perf_counter()
        write_site(history, steps, site, [runs_dir], force=True)
        done, cpu_done = time.perf_counter(), time.process_time()
        print(f"{len(history.runs)} runs, {len(history.cells())} cells, "
              f"{len(history.points)} points; {len(list((site / 'svg').iterdir()))} SVGs")
        print(f"build: {done - began:.1f} s (read {read - began:.1f} s, steps "
              f"{stepped - read:.1f} s, site {done - stepped:.1f} s); CPU time "
              f"{cpu_done - cpu_began:.1f} s (one process: wall time on an idle machine)")
        for step in steps:
            print(f"  step {step.ratio:.2f}x {step.cell} on {step.host}: "
                  f"{step.before.build} -> {step.after.build} ({step.after.run.run_id})")
        print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True,
                                        timeout=10).stdout.strip())
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
