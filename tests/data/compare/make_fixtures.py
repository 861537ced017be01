"""Write the compare/check fixtures: base.csv and new.csv, two small synthetic runs in
results schema 1, and small-v5.csv, four cells in schema 5.

Run it from anywhere with the project's Python (``python tests/data/compare/make_fixtures.py``);
it replaces small-v5.csv next to it. base.csv and new.csv were written by this script's
``schema_1_fixtures()`` under schema 1, small-v2.csv by ``main()`` under schema 2 (the
records of :func:`small_fixture` without a convention and without floor_rounds and
floor_spread), small-v3.csv under schema 3 (without floor_rounds and floor_spread) and
small-v4.csv under schema 4 (without tensorflow_git_version, tensorflow_commit and the
machine and memory facts); they
are kept as they are: they are the tests' proof that files of schemas 1 to 4 are still read
(``--schema-1`` rewrites base.csv and new.csv, in schema 5). The samples are synthetic
(log-normal around chosen medians, from a seeded NumPy generator), so the files are the same
on every machine.

small-v5.csv (and small-v2/v3/v4.csv): tensorflow CPU:0 eager n=1000 (its own reference, with
floors: in small-v4/v5.csv the best of 3 probe rounds, spread 1.25x), xla-loop k=100 (per-call
samples of 100 steps), a jax jit cell whose reference (jax eager CPU:0) is not in the file
but recorded in its row, and a failed function cell whose convergence check failed. In
small-v3.csv to small-v5.csv the two compiled TensorFlow cells carry the convention
``args`` that reading small-v2.csv fills in. In small-v5.csv the TensorFlow cells carry the
build's GIT_VERSION and commit (2.21.0's), the jax cell none.

What the fixtures hold, cell by cell (new against base):

* CPU eager n=1000: the same distribution (an A/A pair): unchanged.
* CPU function n=1000: 25% slower with 400 rounds a side: slower (the regression).
* CPU xla n=1000: 2x faster with 1200 rounds (more than the bootstrap keeps): faster.
* CPU function-loop n=1000: 30% slower but 5 rounds a side, widely spread: noise.
* CPU xla-loop: only in base. GPU xla-loop: only in new.
* CPU eager n=1e5: 5% slower, many rounds: unchanged (within the threshold).
* GPU xla n=1e5: failed in new (out of memory).
* For ``linfit check new.csv --baseline base.csv``: GPU xla n=1000 has W off its CPU
  reference by 1e-4 (numerics), GPU eager n=1e5 reports its result on CPU:0 (placement),
  and with GPU xla failed the best GPU cell at n=1e5 is slower than the CPU's (sanity).
  base.csv passes every rule.
* Run facts that differ (warnings): host, backend_version, xla_flags, git_dirty.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from linfit.data import make_dataset
from linfit.results import ARGS_CONVENTION as ARGS
from linfit.results import Cell, write_results
from linfit.results.record import FACT_COLUMNS, CellResult, Reference

HERE = Path(__file__).resolve().parent

CPU_NAME = "Intel(R) Xeon(R) CPU @ 2.20GHz"
GPU_NAME = "NVIDIA H100 80GB HBM3"

BASE_RUN = {
    "run_id": "20240601T120000Z-build-7-abc1234", "timestamp_utc": "2024-06-01T12:00:00+00:00",
    "git_commit": "abc1234", "git_dirty": False, "host": "build-7",
    "backend_version": "2.20.0", "xla_flags": "",
}
NEW_RUN = {
    "run_id": "20240602T120000Z-build-8-def5678", "timestamp_utc": "2024-06-02T12:00:00+00:00",
    "git_commit": "def5678", "git_dirty": True, "host": "build-8",
    "backend_version": "2.21.0", "xla_flags": "--xla_gpu_autotune_level=0",
}

# variant -> (compiled, xla, loop)
VARIANTS = {
    "eager": (False, False, False), "function": (True, False, False), "xla": (True, True, False),
    "function-loop": (True, False, True), "xla-loop": (True, True, True),
}


def samples(rng: np.random.Generator, median_seconds: float, spread: float,
            rounds: int) -> np.ndarray:
    """Log-normal per-step times whose median is ``median_seconds``."""
    return median_seconds * np.exp(spread * rng.standard_normal(rounds))


def row(run: dict[str, Any], device: str, variant: str, n_examples: int, times: np.ndarray | None,
        weight_offset: float = 0.0, placement: str | None = None, dtype: str = "float32",
        failed: str = "") -> dict[str, Any]:
    """One complete result row; W and b are the OLS solution times (1 + weight_offset).

    A failed row (``failed`` holds its message, ``times`` is None) has no timings.
    """
    compiled, xla, loop = VARIANTS[variant]
    steps_per_call = 100 if loop else 1
    data = make_dataset(n_examples, dtype)
    kind, name = ("GPU", GPU_NAME) if device.startswith("GPU") else ("CPU", CPU_NAME)
    timing = {} if times is None else {
        "rounds": len(times), "iterations": 1, "min_seconds": times.min(),
        "median_seconds": np.median(times), "mean_seconds": times.mean(),
        "stddev_seconds": times.std(ddof=1), "max_seconds": times.max(),
        "iqr_seconds": float(np.subtract(*np.percentile(times, [75, 25]))),
        "first_call_seconds": 0.25 if compiled else 0.002, "traces": int(compiled),
        "samples_seconds": tuple(float(t) for t in times), "convergence_steps": 100,
        "final_w": data.w_ols * (1 + weight_offset), "final_b": data.b_ols * (1 + weight_offset),
        "final_loss": 0.98,
    }
    return {
        **run, "os": "Linux 6.5.0 x86_64", "python_version": "3.11.7", "numpy_version": "2.4.0",
        "cpu_model": CPU_NAME, "backend": "tensorflow", "backend_build": "CUDA 12.5, cuDNN 9",
        "device": device, "device_kind": kind, "device_name": name,
        "device_details": "compute capability 9.0" if kind == "GPU" else "",
        "placement": "" if failed else placement or device,
        "tf_enable_onednn_opts": "", "tf_xla_flags": "", "omp_num_threads": "",
        "intra_op_threads": 0, "inter_op_threads": 0, "variant": variant, "compiled": compiled,
        "xla": xla, "loop": loop, "n_examples": n_examples, "dtype": dtype,
        "steps_per_call": steps_per_call, "learning_rate": 0.1, "seed": 0,
        "w_ols": data.w_ols, "b_ols": data.b_ols, "status": "failed" if failed else "ok",
        "message": failed, **timing,
    }


# The machine of small-v5.csv (schema 5): a 2-core KVM guest in a container.
MACHINE = {"keras_version": "3.11.3", "logical_cores": 2, "physical_cores": 2,
           "memory_bytes": 25276071936, "cpu_affinity": "0-1", "cpu_frequency_mhz": 2596.1,
           "cpu_governor": "", "virtual_machine": "kvm", "container": "docker",
           "load_average_start": 0.52, "load_average_end": 1.73}
# Peak resident memory each cell of small-v5.csv added, bytes (CPU cells: no device figure).
PEAK_RSS = {"eager": 1_572_864, "xla-loop": 2_097_152, "jit": 3_145_728, "function": None}


def small_fixture() -> list[CellResult]:
    """The four records of small-v5.csv (and of small-v4.csv without the TensorFlow build's
    commit and without the machine and memory facts, and of small-v2.csv and small-v3.csv,
    also without floor_rounds and floor_spread)."""
    data = make_dataset(1000, "float32")
    # The run's facts: every fact column a schema-1 row of the base run has, the one
    # schema 2 added, and the machine schema 5 added.
    base_row = row(BASE_RUN, "CPU:0", "eager", 1000, None)
    facts = {**{name: base_row[name] for name in FACT_COLUMNS if name in base_row},
             "run_interrupted": False, **MACHINE}
    jax_facts = facts
    # TensorFlow 2.21.0's build (tf.version.GIT_VERSION), on the TensorFlow cells only.
    facts = {**facts, "tensorflow_git_version": "v2.21.0-rc1-5-ga481b10260d",
             "tensorflow_commit": "a481b10260d"}
    rng = np.random.default_rng(7)
    tf_reference = Reference("tensorflow", "eager", "CPU:0", data.w_ols, data.b_ols)
    common = {"iterations": 1, "traces": 0, "placement": "CPU:0", "convergence_steps": 100,
              "final_w": data.w_ols, "final_b": data.b_ols, "final_loss": 0.98,
              "w_ols": data.w_ols, "b_ols": data.b_ols, "check_placement": "ok",
              "check_traces": "ok", "check_convergence": "ok"}
    eager = CellResult(
        Cell("tensorflow", "CPU:0", "eager", 1000, "float32", 1), "ok",
        per_call_seconds=tuple(samples(rng, 1.2e-3, 0.05, 5)), first_call_seconds=0.002,
        reference=tf_reference, bytes_min=8000, read_bandwidth_bytes_per_second=1e10,
        dispatch_floor_seconds=8e-5, floor_seconds=8e-5, floor_rounds=3, floor_spread=1.25,
        facts={**facts, "compiled": False, "xla": False, "loop": False}, **common)
    loop = CellResult(
        Cell("tensorflow", "CPU:0", "xla-loop", 1000, "float32", 100, convention=ARGS), "ok",
        per_call_seconds=tuple(samples(rng, 4e-4, 0.05, 6)), first_call_seconds=0.3,
        reference=tf_reference, facts={**facts, "compiled": True, "xla": True, "loop": True},
        **{**common, "traces": 1})
    jax = CellResult(
        Cell("jax", "CPU:0", "jit", 1000, "float32", 1), "ok",
        per_call_seconds=tuple(samples(rng, 1.6e-5, 0.05, 7)), first_call_seconds=0.05,
        reference=Reference("jax", "eager", "CPU:0", data.w_ols * (1 + 1e-7), data.b_ols),
        facts={**jax_facts, "backend_version": "0.10.2", "compiled": True, "xla": True,
               "loop": False}, **{**common, "traces": 1})
    failed = CellResult(
        Cell("tensorflow", "CPU:0", "function", 1000, "float32", 1, convention=ARGS), "failed",
        message="W=3.1 differs from the reference 3.06 by more than rtol 1e-05",
        per_call_seconds=tuple(samples(rng, 3.4e-4, 0.05, 5)), first_call_seconds=0.2,
        reference=tf_reference, facts={**facts, "compiled": True, "xla": False, "loop": False},
        **{**common, "traces": 1, "final_w": 3.1, "check_convergence": "failed"})
    return [dataclasses.replace(record, facts={**record.facts,
                                               "peak_rss_bytes": PEAK_RSS[record.cell.variant]})
            for record in (eager, loop, jax, failed)]


def main() -> None:
    import sys

    if "--schema-1" in sys.argv:
        schema_1_fixtures()
    target = HERE / "small-v5.csv"
    target.unlink(missing_ok=True)  # fixtures are regenerated, not results: replace them
    write_results(small_fixture(), target)
    print(f"wrote {target}")


def schema_1_fixtures() -> None:
    """base.csv and new.csv (written under schema 1; rewriting them gives schema 5)."""
    rng = np.random.default_rng(4)
    # Its own generator for the noise pair, chosen so its interval contains 1 by a margin.
    few_rounds = np.random.default_rng(4)
    base = [
        row(BASE_RUN, "CPU:0", "eager", 1000, samples(rng, 210e-6, 0.04, 300)),
        row(BASE_RUN, "CPU:0", "function", 1000, samples(rng, 60e-6, 0.05, 400)),
        row(BASE_RUN, "CPU:0", "xla", 1000, samples(rng, 40e-6, 0.05, 1200)),
        row(BASE_RUN, "CPU:0", "function-loop", 1000, samples(few_rounds, 3e-6, 0.25, 5)),
        row(BASE_RUN, "CPU:0", "xla-loop", 1000, samples(rng, 2e-6, 0.05, 40)),
        row(BASE_RUN, "CPU:0", "eager", 100_000, samples(rng, 1.2e-3, 0.03, 100)),
        row(BASE_RUN, "CPU:0", "xla", 100_000, samples(rng, 150e-6, 0.03, 100)),
        row(BASE_RUN, "GPU:0", "eager", 1000, samples(rng, 300e-6, 0.04, 200), 1e-7),
        row(BASE_RUN, "GPU:0", "xla", 1000, samples(rng, 50e-6, 0.04, 200), 1e-7),
        row(BASE_RUN, "GPU:0", "eager", 100_000, samples(rng, 320e-6, 0.04, 200), 1e-7),
        row(BASE_RUN, "GPU:0", "xla", 100_000, samples(rng, 60e-6, 0.04, 100), 1e-7),
    ]
    new = [
        row(NEW_RUN, "CPU:0", "eager", 1000, samples(rng, 210e-6, 0.04, 300)),
        row(NEW_RUN, "CPU:0", "function", 1000, samples(rng, 75e-6, 0.05, 400)),
        row(NEW_RUN, "CPU:0", "xla", 1000, samples(rng, 20e-6, 0.05, 1200)),
        row(NEW_RUN, "CPU:0", "function-loop", 1000, samples(few_rounds, 3.9e-6, 0.25, 5)),
        row(NEW_RUN, "CPU:0", "eager", 100_000, samples(rng, 1.26e-3, 0.03, 100)),
        row(NEW_RUN, "CPU:0", "xla", 100_000, samples(rng, 150e-6, 0.03, 100)),
        row(NEW_RUN, "GPU:0", "eager", 1000, samples(rng, 300e-6, 0.04, 200), 1e-7),
        row(NEW_RUN, "GPU:0", "xla", 1000, samples(rng, 50e-6, 0.04, 200), 1e-4),
        row(NEW_RUN, "GPU:0", "xla-loop", 1000, samples(rng, 1e-6, 0.04, 100), 1e-7),
        row(NEW_RUN, "GPU:0", "eager", 100_000, samples(rng, 320e-6, 0.04, 200), 1e-7,
            placement="CPU:0"),
        row(NEW_RUN, "GPU:0", "xla", 100_000, None,
            failed="XLA compilation failed: RESOURCE_EXHAUSTED: out of memory"),
    ]
    for name, rows in (("base.csv", base), ("new.csv", new)):
        target = HERE / name
        target.unlink(missing_ok=True)  # fixtures are regenerated, not results: replace them
        write_results(rows, target)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
