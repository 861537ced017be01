"""Write the small results CSVs the plot and report tests read, from synthetic numbers.

The numbers come from a toy cost model (a per-call dispatch cost plus memory passes at a
device bandwidth, a compile cost in the first call) with seeded noise, so they are
deterministic and look like a real run without being one. Rerun after a schema change:

    .venv/bin/python tests/data/plots/make_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linfit.data import DEFAULT_LEARNING_RATE, DEFAULT_SEED, make_dataset
from linfit.results import write_results

HERE = Path(__file__).resolve().parent
SEED = 20240501
ROUNDS = 15
STEPS_PER_LOOP_CALL = 100
NOISE_SIGMA = 0.05  # log-normal spread of the per-round times

# device -> (name, kind, read bandwidth in B/s)
DEVICES = {
    "CPU:0": ("Synthetic CPU 8-core", "CPU", 2e10),
    "GPU:0": ("Synthetic GPU 80GB", "GPU", 1e12),
}
# (backend, variant) -> (dispatch per call in s, passes over the data per step,
#                        compile cost of the first call in s, loop)
VARIANTS = {
    ("tensorflow", "eager"): (2e-4, 8.0, 0.01, False),
    ("tensorflow", "function"): (5e-5, 6.0, 0.2, False),
    ("tensorflow", "xla"): (3e-5, 1.5, 0.5, False),
    ("tensorflow", "function-loop"): (5e-5, 6.0, 0.3, True),
    ("tensorflow", "xla-loop"): (3e-5, 1.5, 0.8, True),
    ("jax", "eager"): (1e-4, 8.0, 0.005, False),
    ("jax", "jit"): (1e-5, 1.5, 0.1, False),
}
# (backend, variant, device) -> passes, where the device changes them: XLA on this CPU makes
# a step that reads the data more often than eager does, so at large n it never pays off.
PASSES_ON_DEVICE = {("jax", "jit", "CPU:0"): 9.0}
VERSIONS = {"tensorflow": "2.21.0", "jax": "0.10.2"}


def _row(rng: np.random.Generator, backend: str, variant: str, device: str,
         n_examples: int, *, floors: bool, failed: bool = False) -> dict:
    device_name, kind, bandwidth = DEVICES[device]
    dispatch, passes, compile_seconds, loop = VARIANTS[(backend, variant)]
    passes = PASSES_ON_DEVICE.get((backend, variant, device), passes)
    steps_per_call = STEPS_PER_LOOP_CALL if loop else 1
    bytes_min = 8 * n_examples  # float32 x and y
    step_seconds = dispatch / steps_per_call + passes * bytes_min / bandwidth
    samples = step_seconds * np.exp(rng.normal(0.0, NOISE_SIGMA, ROUNDS))
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    data = make_dataset(n_examples, "float32", DEFAULT_SEED)
    row = {
        "run_id": "20240501T120000Z-synthetic-abc1234",
        "timestamp_utc": "2024-05-01T12:00:00+00:00",
        "git_commit": "abc1234",
        "git_dirty": False,
        "host": "synthetic-host",
        "os": "Linux 6.8.0 x86_64",
        "python_version": "3.11.9",
        "numpy_version": "2.4.0",
        "cpu_model": DEVICES["CPU:0"][0],
        "backend": backend,
        "backend_version": VERSIONS[backend],
        "backend_build": "cuda 12.5, cudnn 9" if kind == "GPU" else "",
        "device": device,
        "device_kind": kind,
        "device_name": device_name,
        "device_details": "compute capability 9.0" if kind == "GPU" else "",
        "placement": device,
        "intra_op_threads": 0,
        "inter_op_threads": 0,
        "variant": variant,
        "compiled": variant != "eager",
        "xla": variant.startswith("xla") or variant.startswith("jit"),
        "loop": loop,
        "n_examples": n_examples,
        "dtype": "float32",
        "steps_per_call": steps_per_call,
        "learning_rate": DEFAULT_LEARNING_RATE,
        "seed": DEFAULT_SEED,
        "rounds": ROUNDS,
        "iterations": 1,
        "min_seconds": samples.min(),
        "median_seconds": median,
        "mean_seconds": samples.mean(),
        "stddev_seconds": samples.std(ddof=1),
        "iqr_seconds": q3 - q1,
        "max_seconds": samples.max(),
        "first_call_seconds": compile_seconds + steps_per_call * step_seconds,
        "traces": 0 if variant == "eager" else 1,
        "samples_seconds": samples,
        "convergence_steps": 100,
        "final_w": data.w_ols + 1e-7,
        "final_b": data.b_ols - 1e-7,
        "final_loss": 1.0,
        "w_ols": data.w_ols,
        "b_ols": data.b_ols,
        "status": "ok",
    }
    if floors:
        dispatch_floor = 1e-5
        floor = max(bytes_min / bandwidth, dispatch_floor / steps_per_call)
        row.update(bytes_min=bytes_min, read_bandwidth_bytes_per_second=bandwidth,
                   dispatch_floor_seconds=dispatch_floor, floor_seconds=floor,
                   efficiency=floor / median)
    if failed:
        timings = ("rounds", "iterations", "min_seconds", "median_seconds", "mean_seconds",
                   "stddev_seconds", "iqr_seconds", "max_seconds", "first_call_seconds",
                   "final_w", "final_b", "final_loss", "efficiency", "convergence_steps")
        row.update(dict.fromkeys(timings, ""), samples_seconds="", status="failed",
                   message="ResourceExhaustedError: out of memory")
    return row


def _write(name: str, rows: list[dict]) -> None:
    target = HERE / name
    # write_results never overwrites: regenerating means removing the old fixture first.
    target.unlink(missing_ok=True)
    write_results(rows, target)
    print(f"wrote {target} ({len(rows)} rows)")


def main() -> None:
    rng = np.random.default_rng(SEED)
    multi = []
    for device in DEVICES:
        for backend, variant in VARIANTS:
            for n_examples in (100, 10_000, 1_000_000):
                failed = (backend, variant, device, n_examples) == ("jax", "jit", "GPU:0",
                                                                     1_000_000)
                multi.append(_row(rng, backend, variant, device, n_examples,
                                  floors=device == "GPU:0", failed=failed))
    _write("multi.csv", multi)
    _write("single_size.csv", [_row(rng, backend, variant, "CPU:0", 1000, floors=False)
                               for backend, variant in VARIANTS if backend == "tensorflow"])
    _write("single_variant.csv", [_row(rng, "tensorflow", "xla", "CPU:0", n, floors=False)
                                  for n in (100, 10_000, 1_000_000)])


if __name__ == "__main__":
    main()
