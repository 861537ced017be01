"""Issue 21's feasibility gate: do Callgrind's instruction counts of TensorFlow's training
steps repeat across fresh processes to 0.1% per step?

Usage (from the repository root, with PYTHONPATH at it)::

    python bench/count_gate.py --runs 5 --sizes 1000 100000 --out /tmp/count_gate

Each run is a fresh process under ``valgrind --tool=callgrind`` (at most ``--parallel`` at a
time). It imports TensorFlow with its thread pools at one thread, builds the trainer of every
variant at every size, warms each up, then counts two regions per cell
(:func:`linfit.counts.counted_region`, Callgrind's client requests; the
import and the compiles run uninstrumented): one of S steps and one of 2S steps. The gate reads
each region's dump and prints, per cell, the per-step count of the 2S region and of the
difference ``(C(2S) - C(S)) / S`` (which cancels a region's fixed cost), their spread over the
runs (max/min - 1) and whether it is within ``GATE_SPREAD``. The dumps, each run's stderr and
a ``gate.json`` of every number stay in ``--out``. docs/counts.md has the results.

Counted configuration (not the timed one, and recorded in gate.json): intra-op threads 1,
inter-op -1 (the caller's thread), OMP_NUM_THREADS=1, XLA's CPU Eigen single-threaded,
PYTHONHASHSEED fixed, glibc malloc with one arena and fixed thresholds, Valgrind's fair
scheduler, garbage collection off in the regions, CPU:0, float32.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from linfit._errors import LinfitError
from linfit._format import text_table
from linfit.counts import (
    CountedProcess,
    CountsError,
    callgrind_command,
    region_counts,
    sum_counts,
    valgrind_missing_reason,
)

# Issue 21's gate: 5 fresh A/A counts of a cell agree within 0.1% per step (max/min - 1).
GATE_SPREAD = 0.001
GATE_RUNS = 5
DEFAULT_SIZES = (1000, 100_000)
DEFAULT_VARIANTS = ("eager", "function", "xla", "function-loop", "xla-loop")
# Steps in the short region (the long one has twice as many). Non-loop variants run one step
# a call; the loop variants run LOOP_STEPS_PER_CALL steps in one call, so their short region
# is one call. 10 calls keep an eager region at n=1e5 to seconds under Callgrind.
REGION_CALLS = 10
LOOP_STEPS_PER_CALL = 100
# Calls before the counted regions: the first traces and compiles; later ones fill the
# allocator's and the runtime's caches.
WARMUP_CALLS = 3
# A run imports TensorFlow and compiles every cell under Callgrind (minutes on a 2-core VM).
RUN_TIMEOUT_SECONDS = 1800.0
# How often the gate looks whether a run has ended.
POLL_SECONDS = 2.0
# The counted configuration: environment of the counted child.
COUNT_ENV = {
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
    "CUDA_VISIBLE_DEVICES": "",
    # glibc's malloc: one arena for every thread, and fixed mmap and trim thresholds (setting
    # them turns off their adjustment to the history of frees). Measured: the eager cells'
    # spread fell from 0.08-0.11% to 0.07-0.09% (docs/counts.md).
    "GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072"
                      ":glibc.malloc.trim_threshold=131072",
}
# Valgrind's fair scheduler hands the big lock to threads in turn (its default lets the
# kernel pick): less run-to-run variation in how threads interleave (docs/counts.md).
COUNT_VALGRIND_OPTIONS = ("--fair-sched=yes",)
# TensorFlow's inter-op threads while counting: -1 runs a graph's ops in the caller's thread
# (ConfigProto), so the executor hands fewer nodes to a pool thread.
COUNT_INTER_OP_THREADS = -1


def _label(variant: str, n: int, steps: int) -> str:
    return f"{variant.replace('-', '_')}_n{n}_steps{steps}"


def _child(sizes: list[int], variants: list[str], manifest: Path, inter_op: int) -> None:
    """Inside Valgrind: build and warm every cell uninstrumented (the import and the
    compiles run several times faster so), then instrument, warm again, and count a region of
    S and of 2S steps per cell."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    from linfit.backends import get_backend
    from linfit.counts import counted_region, start_instrumentation
    from linfit.data import DEFAULT_LEARNING_RATE, make_dataset

    backend = get_backend("tensorflow")
    regions: list[dict[str, Any]] = []
    with backend.session():
        cells = []
        for n in sizes:
            data = make_dataset(n, "float32")
            for name in variants:
                loop = backend.variant(name).loop
                steps_per_call = LOOP_STEPS_PER_CALL if loop else 1
                trainer = backend.make_trainer(name, "CPU:0", data, DEFAULT_LEARNING_RATE,
                                               steps_per_call)
                for _ in range(WARMUP_CALLS):
                    trainer.call()
                cells.append((name, n, trainer, 1 if loop else REGION_CALLS))
        # Python's cyclic collector runs when allocation counts cross its thresholds: off, as
        # while timing (linfit/ab/worker.py), so no region pays for a collection.
        gc.collect()
        gc.disable()
        try:
            start_instrumentation()
            for name, n, trainer, calls in cells:
                for _ in range(WARMUP_CALLS):
                    trainer.call()
                for factor in (1, 2):
                    steps = calls * factor * trainer.steps_per_call

                    def body(trainer: Any = trainer, calls: int = calls * factor) -> None:
                        for _ in range(calls):
                            trainer.call()

                    counted_region(body, _label(name, n, steps))
                    regions.append({"variant": name, "n": n, "calls": calls * factor,
                                    "steps": steps, "label": _label(name, n, steps)})
                trainer.last_loss()
        finally:
            gc.enable()
    manifest.write_text(json.dumps({
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "tensorflow": tf.__version__, "regions": regions}))


def _start_run(index: int, out_dir: Path, sizes: list[int], variants: list[str],
               cache_sim: bool, valgrind_options: list[str], inter_op: int) -> CountedProcess:
    """Start the child under Callgrind in ``out_dir/run<index>``."""
    run_dir = out_dir / f"run{index}"
    run_dir.mkdir(parents=True, exist_ok=False)
    out_file = run_dir / "callgrind.out"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--manifest",
            str(run_dir / "manifest.json"), "--sizes", *map(str, sizes), "--variants",
            *variants, "--inter-op", str(inter_op)]
    # One file per dump, every thread in it: with --separate-threads=yes a client request's
    # dump holds only the thread that made it, and TensorFlow's graph executor runs the
    # kernels on its inter-op thread (docs/counts.md).
    command = callgrind_command(argv, out_file, cache_sim=cache_sim)
    command[1:1] = [*COUNT_VALGRIND_OPTIONS, *valgrind_options]
    return CountedProcess(command, stderr_path=run_dir / "stderr.txt",
                          env={**os.environ, **COUNT_ENV}, stdout_path=run_dir / "stdout.txt")


def _read_run(run_dir: Path, wall_seconds: float) -> dict[str, Any]:
    """A finished run's regions with their counts (summed over threads)."""
    facts = json.loads((run_dir / "manifest.json").read_text())
    dumps = region_counts(run_dir / "callgrind.out")
    for region in facts["regions"]:
        if region["label"] not in dumps:
            raise CountsError(f"{run_dir}: no dump of region {region['label']}")
        files = dumps[region["label"]]
        region["counts"] = sum_counts(files)
        region["valgrind"] = files[0].valgrind_version
    facts["wall_seconds"] = wall_seconds
    return facts


def run_all(out_dir: Path, runs: int, parallel: int, sizes: list[int], variants: list[str],
            cache_sim: bool, valgrind_options: list[str], inter_op: int,
            ) -> list[dict[str, Any]]:
    """``runs`` fresh counted processes, ``parallel`` at a time; every one is killed on the
    way out if it still runs (error, Ctrl-C, SIGTERM)."""
    pending = list(range(runs))
    running: dict[int, CountedProcess] = {}
    finished: dict[int, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        while pending or running:
            while pending and len(running) < parallel:
                index = pending.pop(0)
                running[index] = stack.enter_context(
                    _start_run(index, out_dir, sizes, variants, cache_sim, valgrind_options,
                               inter_op))
            time.sleep(POLL_SECONDS)
            for index, process in list(running.items()):
                if process.elapsed_seconds() > RUN_TIMEOUT_SECONDS:
                    process.wait(0)  # raises: past its limit, killed
                run = process.poll()
                if run is not None:
                    del running[index]
                    finished[index] = _read_run(out_dir / f"run{index}", run.wall_seconds)
    return [finished[index] for index in sorted(finished)]


def _spread(values: list[float]) -> float:
    """max/min - 1 of positive values."""
    return max(values) / min(values) - 1.0


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell: the per-step Ir of the 2S region and of the difference, per run, and their
    spreads."""
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for run in runs:
        by_cell: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for region in run["regions"]:
            by_cell.setdefault((region["variant"], region["n"]), []).append(region)
        for key, (short, long) in by_cell.items():
            cell = cells.setdefault(key, {"variant": key[0], "n": key[1],
                                          "steps": [short["steps"], long["steps"]],
                                          "region": [], "difference": []})
            cell["region"].append(long["counts"]["Ir"] / long["steps"])
            cell["difference"].append((long["counts"]["Ir"] - short["counts"]["Ir"])
                                      / (long["steps"] - short["steps"]))
    for cell in cells.values():
        cell["region_spread"] = _spread(cell["region"])
        cell["difference_spread"] = _spread(cell["difference"])
        cell["passes"] = max(cell["region_spread"], cell["difference_spread"]) <= GATE_SPREAD
    return list(cells.values())


def render(cells: list[dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    """The gate table."""
    rows: list[list[str] | None] = [["variant", "n", "steps S/2S", "Ir/step (2S)",
                                     "spread 2S", "Ir/step (diff)", "spread diff", "gate"],
                                    None]
    for cell in cells:
        rows.append([cell["variant"], f"{cell['n']:g}", "/".join(map(str, cell["steps"])),
                     f"{sorted(cell['region'])[len(cell['region']) // 2]:,.0f}",
                     f"{cell['region_spread']:.4%}",
                     f"{sorted(cell['difference'])[len(cell['difference']) // 2]:,.0f}",
                     f"{cell['difference_spread']:.4%}",
                     "pass" if cell["passes"] else "FAIL"])
    walls = ", ".join(f"{run['wall_seconds']:.0f}" for run in runs)
    table = "\n".join(text_table(rows, right_aligned=(False,) + (True,) * 7))
    return (table + f"\n{len(runs)} fresh runs; wall seconds per run: {walls}; "
            f"threads {runs[0]['threads']}; tensorflow {runs[0]['tensorflow']}; "
            f"valgrind {runs[0]['regions'][0]['valgrind']}; gate: spread <= {GATE_SPREAD:.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=GATE_RUNS)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--cache-sim", action="store_true")
    parser.add_argument("--inter-op", type=int, default=COUNT_INTER_OP_THREADS,
                        help="TensorFlow inter-op threads (-1: run ops in the caller's thread)")
    parser.add_argument("--valgrind-option", action="append", default=[],
                        help="one more Valgrind option, e.g. --fair-sched=yes (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("count_gate"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.sizes, args.variants, args.manifest, args.inter_op)
        return 0
    # SIGTERM (timeout, CI cancellation) ends the gate as Ctrl-C does: run_counted kills
    # the children on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if reason := valgrind_missing_reason():
            raise CountsError(reason)
        if args.out.exists():
            raise LinfitError(f"--out {args.out}: exists; name a new folder")
        args.out.mkdir(parents=True)
        started = time.perf_counter()
        runs = run_all(args.out, args.runs, args.parallel, args.sizes, args.variants,
                       args.cache_sim, args.valgrind_option, args.inter_op)
        cells = summarise(runs)
        config = {"env": COUNT_ENV, "inter_op": args.inter_op, "intra_op": 1,
                  "valgrind_options": [*COUNT_VALGRIND_OPTIONS, *args.valgrind_option],
                  "gc": "off in the regions", "warmup_calls": WARMUP_CALLS}
        (args.out / "gate.json").write_text(json.dumps(
            {"config": config, "runs": runs, "cells": cells}, indent=1))
        print(render(cells, runs))
        print(f"total wall {time.perf_counter() - started:.0f} s")
    except LinfitError as error:
        print(f"count_gate: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("count_gate: interrupted; the counted runs were killed", file=sys.stderr)
        return 2
    return 0 if all(cell["passes"] for cell in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
