"""What the figures and the report show, computed from a results frame: no drawing, no text.

Every function here takes the frame :func:`linfit.results.read_frame` returns (or several
of them concatenated) and returns numbers in a new frame. The plots and the markdown report
both present these, so a figure and the report never disagree.

Nothing here trains or measures: the convergence figure's re-runs are
:func:`linfit.retrain.convergence_runs`, called by whoever draws that figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from linfit.results import KEY_COLUMNS

__all__ = [
    "BASELINE_VARIANT",
    "break_even",
    "efficiency_ranges",
    "floor_rounds",
    "ok_rows",
    "quartiles_seconds",
    "speedups",
    "step_times",
]

# Every backend names its op-by-op variant "eager"; speed-ups and break-even steps are
# measured against it, on the same backend, device, n_examples and dtype.
BASELINE_VARIANT = "eager"

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
    # read_frame guarantees samples in every ok row.
    bands = [quartiles_seconds(samples) for samples in rows["samples_seconds"]]
    table = rows[[*_CELL_COLUMNS, "median_seconds", "first_call_seconds",
                  "floor_seconds"]].copy()
    table["q1_seconds"] = [low for low, _ in bands]
    table["q3_seconds"] = [high for _, high in bands]
    table["floor_seconds"] = table["floor_seconds"].astype(float)
    return table


def efficiency_ranges(frame: pd.DataFrame) -> pd.DataFrame:
    """Each row's efficiency against its best and its worst floor round.

    The floor is the best of several probe rounds; had it been the worst round's, the
    efficiency would be ``efficiency * floor_spread`` (:attr:`linfit.results.record.CellResult.
    efficiency_high`, for frames).

    Returns:
        A frame with ``frame``'s index and columns ``efficiency_low`` (the efficiency) and
        ``efficiency_high``: NaN where there is no floor, equal where the spread is not
        known (files before schema 4).
    """
    low = frame["efficiency"].astype(float)
    spread = frame["floor_spread"].astype(float).fillna(1.0)
    return pd.DataFrame({"efficiency_low": low, "efficiency_high": low * spread},
                        index=frame.index)


def floor_rounds(frame: pd.DataFrame) -> tuple[int, int, float] | None:
    """How many probe rounds the floors of ``frame`` are the best of, and their spread.

    Returns:
        (fewest rounds, most rounds, largest ``floor_spread``) over the rows that record
        their rounds; None where none does (no floors, or files before schema 4).
    """
    rows = frame.dropna(subset=["floor_rounds", "floor_spread"])
    if rows.empty:
        return None
    rounds = rows["floor_rounds"].astype(int)
    return int(rounds.min()), int(rounds.max()), float(rows["floor_spread"].astype(float).max())


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
