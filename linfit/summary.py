"""What the figures and the report show, computed from a results frame: no drawing, no text.

Every function here takes the frame :func:`linfit.results.read_results` returns (or several
of them concatenated) and returns numbers in a new frame. The plots and the markdown report
both present these, so a figure and the report never disagree.

Only :func:`convergence_runs` does more than arithmetic: the results file keeps the final W
and b only, so the convergence figure trains each variant again, here, for a few steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linfit._errors import LinfitError
from linfit.backends import get_backend, installed_backends
from linfit.convergence import CONVERGENCE_STEPS
from linfit.data import make_dataset
from linfit.fit import FitResult, fit
from linfit.results import KEY_COLUMNS

__all__ = [
    "BASELINE_VARIANT",
    "CONVERGENCE_MAX_N_EXAMPLES",
    "ConvergenceRuns",
    "SkippedCell",
    "break_even",
    "convergence_runs",
    "ok_rows",
    "quartiles_seconds",
    "speedups",
    "step_times",
]

# Every backend names its op-by-op variant "eager"; speed-ups and break-even steps are
# measured against it, on the same backend, device, n_examples and dtype.
BASELINE_VARIANT = "eager"

# The convergence figure re-trains at the results file's smallest n_examples, but no more
# than this: the figure is about the path of W and b, which n barely changes, and a re-run
# at n=1e8 would take as long as the benchmark.
CONVERGENCE_MAX_N_EXAMPLES = 10_000

# Columns that say where a row was measured, beside the numbers computed for it.
_CELL_COLUMNS = [*KEY_COLUMNS, "device_name", "loop"]
# The cell minus its variant: the rows that are compared with each other.
_GROUP_COLUMNS = ["backend", "device", "n_examples", "dtype"]


def ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose cell ran (status ``ok``), in key order; failed rows have no timings."""
    rows = frame[frame["status"] == "ok"]
    return rows.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def quartiles_seconds(samples: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles of a cell's per-step times: the ends of its IQR band.

    Args:
        samples: the per-round times per step (``samples_seconds``), at least one.

    Returns:
        (q1, q3), with NumPy's default (linear) interpolation.
    """
    q1, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 75])
    return float(q1), float(q3)


def step_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-step time of every cell that ran, with the ends of its IQR band and its floor.

    Returns:
        One row per ok cell: the key, ``device_name``, ``loop``, ``median_seconds``,
        ``q1_seconds``, ``q3_seconds`` (see :func:`quartiles_seconds`),
        ``first_call_seconds`` and ``floor_seconds`` (NaN where floors were not measured).
    """
    rows = ok_rows(frame)
    # read_results guarantees samples in every ok row.
    bands = [quartiles_seconds(samples) for samples in rows["samples_seconds"]]
    table = rows[[*_CELL_COLUMNS, "median_seconds", "first_call_seconds",
                  "floor_seconds"]].copy()
    table["q1_seconds"] = [low for low, _ in bands]
    table["q3_seconds"] = [high for _, high in bands]
    table["floor_seconds"] = table["floor_seconds"].astype(float)
    return table


def _with_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok rows of every variant but the baseline, each joined with its baseline's numbers
    (columns prefixed ``eager_``); rows without a baseline cell are dropped."""
    rows = ok_rows(frame)
    baseline = rows[rows["variant"] == BASELINE_VARIANT][
        [*_GROUP_COLUMNS, "median_seconds", "first_call_seconds"]
    ].rename(columns={"median_seconds": "eager_median_seconds",
                      "first_call_seconds": "eager_first_call_seconds"})
    others = rows[rows["variant"] != BASELINE_VARIANT]
    return others.merge(baseline, on=_GROUP_COLUMNS, how="inner", validate="many_to_one")


def speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """Speed-up of every variant over its backend's eager variant, cell by cell.

    ``speedup = eager median / variant median``, both per step, on the same backend, device,
    n_examples and dtype: 2.0 means the variant's step takes half eager's time.

    Returns:
        One row per ok non-eager cell that has an ok eager cell to compare with: the key,
        ``device_name``, ``loop``, ``median_seconds``, ``eager_median_seconds``, ``speedup``.
        Empty when no cell has one.
    """
    joined = _with_baseline(frame)
    table = joined[[*_CELL_COLUMNS, "median_seconds", "eager_median_seconds"]].copy()
    table["speedup"] = table["eager_median_seconds"] / table["median_seconds"]
    return table.reset_index(drop=True)


def _break_even_steps(extra_seconds: float, saving_per_step_seconds: float,
                      steps_per_call: int) -> float:
    """The fewest steps, in whole calls, after which a variant has cost no more than eager.

    Returns ``inf`` when the variant saves nothing per step (it never catches up).
    """
    if not saving_per_step_seconds > 0:
        return math.inf
    calls = max(1, math.ceil(extra_seconds / saving_per_step_seconds / steps_per_call))
    return float(calls * steps_per_call)


def break_even(frame: pd.DataFrame) -> pd.DataFrame:
    """After how many training steps a compiled variant has paid for its compilation.

    Running N steps costs about ``overhead + N * step`` where ``step`` is the median time
    per step and ``overhead`` is what the first call costs beyond its steady-state steps:
    ``overhead = first_call_seconds - steps_per_call * median_seconds`` (tracing, compiling,
    first-use set-up). Eager has an overhead too (its first call also sets things up), so
    the variant's *compile cost* is the difference ``extra = overhead - eager overhead`` and
    its *saving* is ``eager step - step``. The variant breaks even once
    ``N >= extra / saving``; N is rounded up to whole calls (multiples of steps_per_call)
    and is at least one call. A variant whose step is not faster than eager's never breaks
    even (``inf``), whatever its compile cost.

    Returns:
        One row per ok non-eager cell that has an ok eager cell: the key, ``device_name``,
        ``loop``, ``first_call_seconds``, ``median_seconds``, ``overhead_seconds``,
        ``eager_first_call_seconds``, ``eager_median_seconds``, ``eager_overhead_seconds``,
        ``compile_seconds`` (the extra), ``saving_per_step_seconds`` and
        ``break_even_steps`` (a float; ``inf`` for never).
    """
    table = _with_baseline(frame)[[*_CELL_COLUMNS, "first_call_seconds", "median_seconds",
                                   "eager_first_call_seconds", "eager_median_seconds"]].copy()
    table["overhead_seconds"] = (table["first_call_seconds"]
                                 - table["steps_per_call"] * table["median_seconds"])
    table["eager_overhead_seconds"] = (table["eager_first_call_seconds"]
                                       - table["eager_median_seconds"])
    table["compile_seconds"] = table["overhead_seconds"] - table["eager_overhead_seconds"]
    table["saving_per_step_seconds"] = table["eager_median_seconds"] - table["median_seconds"]
    table["break_even_steps"] = [
        _break_even_steps(extra, saving, int(k)) for extra, saving, k in
        zip(table["compile_seconds"], table["saving_per_step_seconds"],
            table["steps_per_call"], strict=True)
    ]
    return table.reset_index(drop=True)


@dataclass(frozen=True)
class SkippedCell:
    """A (backend, variant, device) the convergence figure could not run here, and why."""

    backend: str
    variant: str
    device: str
    reason: str

    def __str__(self) -> str:
        return f"{self.backend} {self.variant} on {self.device}: {self.reason}"


@dataclass(frozen=True)
class ConvergenceRuns:
    """The fits behind the convergence figure, and what could not be run here.

    Attributes:
        results: one fit per (backend, variant, device) that ran, every step recorded (loop
            variants ran with steps_per_call=1).
        skipped: every (backend, variant, device) not run, with the reason.
        loop_variants: the (backend, variant) pairs of the file that are loop variants.
        n_examples, dtype, seed, learning_rate: the data and step size every fit used.
        steps: training steps of every fit.
    """

    results: tuple[FitResult, ...]
    skipped: tuple[SkippedCell, ...]
    loop_variants: frozenset[tuple[str, str]]
    n_examples: int
    dtype: str
    seed: int
    learning_rate: float
    steps: int


def _convergence_dtype(dtypes: Sequence[str]) -> str:
    # float32 is the tutorial's dtype; another one only when the file has no float32 cell.
    return "float32" if "float32" in dtypes else sorted(dtypes)[0]


def convergence_runs(frame: pd.DataFrame, steps: int = CONVERGENCE_STEPS,
                     max_n_examples: int = CONVERGENCE_MAX_N_EXAMPLES) -> ConvergenceRuns:
    """Train every (backend, variant, device) that ran in ``frame`` again, here, every step kept.

    The results file has only the final W and b; the tutorial's figure needs the path. Every
    fit uses the same data: the smallest n_examples of the cells that ran (at most
    ``max_n_examples``), float32 (or, without float32 cells, the first dtype by name), and
    the seed and learning rate of the first cell that ran. Loop variants run one step per
    call so that every step is recorded.

    Cells whose backend is not installed here, whose device does not exist here, whose
    variant this linfit does not know, or whose fit fails with a :class:`LinfitError`
    (divergence, unsupported dtype) are skipped and listed in ``skipped``.

    Args:
        frame: a results frame.
        steps: training steps per fit.
        max_n_examples: cap on the data set size.

    Raises:
        LinfitError: when no cell of ``frame`` ran (every status is failed).
    """
    rows = ok_rows(frame)
    if rows.empty:
        raise LinfitError("no cell in the results ran (every status is failed): nothing to "
                          "train again")
    dtype = _convergence_dtype(list(rows["dtype"].unique()))
    n_examples = int(min(rows["n_examples"].min(), max_n_examples))
    seed = int(rows["seed"].iloc[0])
    learning_rate = float(rows["learning_rate"].iloc[0])
    data = make_dataset(n_examples, dtype, seed)
    installed = installed_backends()
    results = []
    skipped = []
    cells = rows[["backend", "variant", "device"]].drop_duplicates()
    for backend_name, variant, device in cells.itertuples(index=False):
        if backend_name not in installed:
            reason = f"backend {backend_name} is not installed here"
        elif variant not in get_backend(backend_name).variants:
            reason = f"this linfit has no {backend_name} variant {variant}"
        elif device not in {d.id for d in get_backend(backend_name).devices()}:
            reason = f"{backend_name} has no device {device} here"
        else:
            try:
                results.append(fit(get_backend(backend_name), variant, device, data, steps,
                                   learning_rate))
                continue
            except LinfitError as error:
                reason = str(error)
        skipped.append(SkippedCell(backend_name, variant, device, reason))
    loops = rows[rows["loop"]][["backend", "variant"]].drop_duplicates()
    return ConvergenceRuns(results=tuple(results), skipped=tuple(skipped),
                           loop_variants=frozenset(loops.itertuples(index=False, name=None)),
                           n_examples=n_examples, dtype=dtype, seed=seed,
                           learning_rate=learning_rate, steps=steps)
