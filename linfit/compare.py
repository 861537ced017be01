"""Compare two results files cell by cell: how much slower or faster, and is it real?

:func:`compare_frames` matches the cells of a base run and a new run by
:data:`linfit.results.KEY_COLUMNS`, estimates the ratio of their median step times with a
confidence interval (:func:`linfit.stats.ratio_of_medians`) and gives each cell a verdict.
It also lists how the two runs' machines and software differ. It returns data; the
``linfit compare`` command renders it and turns :attr:`Comparison.worsened` into the exit
status.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from linfit._errors import ResultsFileError
from linfit.results import KEY_COLUMNS, Cell, read_results
from linfit.stats import DEFAULT_ALPHA, DEFAULT_THRESHOLD, VERDICTS, ratio_of_medians, verdict

__all__ = [
    "ALL_VERDICTS",
    "COMPARISON_COLUMNS",
    "ENVIRONMENT_COLUMNS",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "Comparison",
    "Difference",
    "compare_files",
    "compare_frames",
    "format_ratio",
    "format_seconds",
]

# Exit statuses of compare and check; bad input exits with linfit.cli.EXIT_INPUT_ERROR (2).
EXIT_OK = 0
EXIT_REGRESSION = 1

# Every verdict a cell can get, in the order summaries count them. "failed": the cell
# failed in either run (kept apart from cells missing from a run).
ALL_VERDICTS = (*VERDICTS, "failed", "only-in-base", "only-in-new")

# The comparison table: one row per cell present in either run.
COMPARISON_COLUMNS = (
    *KEY_COLUMNS,
    "device_name",  # the new run's, else the base run's
    "base_median_seconds",  # s/step; NaN where the cell is missing or failed
    "new_median_seconds",
    "ratio",  # new / base; > 1 is slower
    "ratio_low",  # (1 - alpha) bootstrap interval of the ratio
    "ratio_high",
    "p_value",
    "base_rounds",  # rounds behind each median (0 where missing or failed)
    "new_rounds",
    "verdict",
)

# Columns that should be equal when two runs are compared: a difference is reported as a
# warning (it never changes the exit status). git_commit is left out: comparing commits
# is the point.
ENVIRONMENT_COLUMNS = (
    "host", "cpu_model", "device_name", "os", "python_version", "numpy_version",
    "backend_version", "backend_build", "tf_enable_onednn_opts", "xla_flags", "tf_xla_flags",
    "omp_num_threads", "intra_op_threads", "inter_op_threads", "git_dirty",
)

# Time units for display, largest first: the first whose scale fits is used.
_TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


@dataclass(frozen=True)
class Difference:
    """A column whose value differs between the runs in some matched cells."""

    column: str
    base_value: str
    new_value: str
    cells: int  # cells ok in both runs with exactly these two values

    def __str__(self) -> str:
        cells = "cell" if self.cells == 1 else "cells"
        return (f"{self.column} differs: {self.base_value!r} (base) vs {self.new_value!r} "
                f"(new) in {self.cells} {cells}")


@dataclass(frozen=True, eq=False)
class Comparison:
    """What :func:`compare_frames` found.

    Attributes:
        table: one row per cell in either run, with :data:`COMPARISON_COLUMNS`, ordered by
            device, backend, dtype, n_examples, variant and steps_per_call.
        differences: machine, software and environment differences (warnings only).
        threshold, alpha: the settings the verdicts used.
    """

    table: pd.DataFrame
    differences: tuple[Difference, ...]
    threshold: float
    alpha: float

    @property
    def worsened(self) -> pd.DataFrame:
        """Cells significantly slower by more than the threshold: the regressions."""
        return self.table[self.table["verdict"] == "slower"]

    @property
    def improved(self) -> pd.DataFrame:
        """Cells significantly faster by more than the threshold."""
        return self.table[self.table["verdict"] == "faster"]

    def counts(self) -> dict[str, int]:
        """Cells per verdict, for every verdict in :data:`ALL_VERDICTS` (zeros included)."""
        found = Counter(self.table["verdict"])
        return {name: found[name] for name in ALL_VERDICTS}


def format_seconds(seconds: float) -> str:
    """A time with its unit and three significant digits: ``2.13 µs``, ``21.3 ms``, ``213 s``.

    NaN is shown as ``-``; a negative time (a difference, such as a compile cost below
    eager's) keeps its sign and gets the unit of its magnitude: ``-2.00 ms``.
    """
    if math.isnan(seconds):
        return "-"
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    # Decide on the rounded value, so 999.96 µs shows as 1.00 ms, not 1000 µs; below 1 ns
    # the last unit stays.
    unit, scale = next(((unit, scale) for unit, scale in _TIME_UNITS
                        if float(f"{seconds / scale:.3g}") >= 1), _TIME_UNITS[-1])
    value = seconds / scale
    decimals = 2 if value < 9.995 else 1 if value < 99.95 else 0
    return f"{value:.{decimals}f} {unit}"


def format_ratio(ratio: float, low: float, high: float) -> str:
    """``1.27 [1.21, 1.33]``; the interval is left out where it is NaN; ``-`` for NaN."""
    if math.isnan(ratio):
        return "-"
    if math.isnan(low):
        return f"{ratio:.2f}"
    return f"{ratio:.2f} [{low:.2f}, {high:.2f}]"


def _by_cell(frame: pd.DataFrame) -> dict[Cell, Mapping[str, Any]]:
    return {Cell.from_row(row): row for row in frame.to_dict("records")}


def _median(row: Mapping[str, Any], label: str, cell: Cell) -> tuple[np.ndarray, float]:
    samples = np.asarray(row["samples_seconds"], dtype=float)
    if samples.size == 0:
        raise ResultsFileError(f"{label}: cell {cell} is ok but has no samples_seconds")
    median = float(np.median(samples))
    if not median > 0:
        raise ResultsFileError(f"{label}: cell {cell} has a median of {median} s per step; "
                               "a step time must be > 0")
    return samples, median


def _compare_cell(cell: Cell, base: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
                  threshold: float, alpha: float, base_label: str,
                  new_label: str) -> dict[str, Any]:
    either = new if new is not None else base
    assert either is not None
    record: dict[str, Any] = {
        **{name: getattr(cell, name) for name in KEY_COLUMNS},
        "device_name": either["device_name"],
        "base_median_seconds": math.nan, "new_median_seconds": math.nan,
        "ratio": math.nan, "ratio_low": math.nan, "ratio_high": math.nan,
        "p_value": math.nan, "base_rounds": 0, "new_rounds": 0,
    }
    sides = {}
    for side, row, label in (("base", base, base_label), ("new", new, new_label)):
        if row is not None and row["status"] == "ok":
            samples, median = _median(row, label, cell)
            sides[side] = samples
            record[f"{side}_median_seconds"] = median
            record[f"{side}_rounds"] = samples.size
    if base is None or new is None:
        record["verdict"] = "only-in-new" if base is None else "only-in-base"
    elif len(sides) < 2:
        record["verdict"] = "failed"
    else:
        estimate = ratio_of_medians(sides["base"], sides["new"], alpha)
        record.update(ratio=estimate.ratio, ratio_low=estimate.low, ratio_high=estimate.high,
                      p_value=estimate.p_value, verdict=verdict(estimate, threshold))
    return record


def _differences(base: Mapping[Cell, Mapping[str, Any]],
                 new: Mapping[Cell, Mapping[str, Any]]) -> tuple[Difference, ...]:
    pairs: Counter[tuple[str, str, str]] = Counter()
    # Only cells that ran ok in both: a failed row may lack what it never got to measure.
    for cell in base.keys() & new.keys():
        if base[cell]["status"] != "ok" or new[cell]["status"] != "ok":
            continue
        for column in ENVIRONMENT_COLUMNS:
            base_value, new_value = str(base[cell][column]), str(new[cell][column])
            if base_value != new_value:
                pairs[column, base_value, new_value] += 1
    order = {column: index for index, column in enumerate(ENVIRONMENT_COLUMNS)}
    return tuple(Difference(column, base_value, new_value, cells)
                 for (column, base_value, new_value), cells
                 in sorted(pairs.items(), key=lambda item: (order[item[0][0]], item[0][1:])))


def _sort_key(cell: Cell) -> tuple[Any, ...]:
    return (cell.device, cell.backend, cell.dtype, cell.n_examples, cell.variant,
            cell.steps_per_call)


def compare_frames(base: pd.DataFrame, new: pd.DataFrame,
                   threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                   base_label: str = "base", new_label: str = "new") -> Comparison:
    """Compare two runs cell by cell.

    Args:
        base, new: result frames as :func:`linfit.results.read_results` returns them
            (``samples_seconds`` holds sequences of per-step times, in round order).
        threshold: the smallest change that matters (0.10 = 10%); see
            :func:`linfit.stats.verdict`.
        alpha: significance level of the intervals (0.01 = 99% intervals).
        base_label, new_label: how messages name the two runs (their file names).

    Returns:
        The comparison table and the environment differences.

    Raises:
        ResultsFileError: when an ok cell has no samples or a median step time of 0.
    """
    base_cells, new_cells = _by_cell(base), _by_cell(new)
    records = [
        _compare_cell(cell, base_cells.get(cell), new_cells.get(cell), threshold, alpha,
                      base_label, new_label)
        for cell in sorted(base_cells.keys() | new_cells.keys(), key=_sort_key)
    ]
    table = pd.DataFrame.from_records(records, columns=list(COMPARISON_COLUMNS))
    return Comparison(table, _differences(base_cells, new_cells), threshold, alpha)


def compare_files(base_path: str | os.PathLike[str], new_path: str | os.PathLike[str],
                  threshold: float = DEFAULT_THRESHOLD,
                  alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Read two results CSVs (never changing them) and :func:`compare_frames` them.

    Raises:
        ResultsFileError: naming the file, line and column, for unusable input.
    """
    return compare_frames(read_results(base_path), read_results(new_path), threshold, alpha,
                          base_label=str(base_path), new_label=str(new_path))
