"""Compare runs cell by cell: how much slower or faster, and is it real?

:func:`compare_results` matches the cells of BASE runs and NEW runs by
:data:`linfit.results.KEY_COLUMNS` and gives each cell a ratio new/base with a confidence
interval and a verdict:

* **one run per side**: the ratio of the two medians, with a block-bootstrap interval of
  the rounds (:func:`linfit.stats.ratio_of_medians`). That interval sees the noise within
  each run, not the drift between runs (:data:`DRIFT_NOTE`);
* **several runs per side**: the unit is the per-run median, and the interval runs over
  runs (:func:`linfit.stats.ratio_of_run_medians`), so drift between runs is in it.

It also lists how the runs' machines and software differ, and warns where a run's machine
was loaded beyond its CPUs or the two sides ran on different machines
(:func:`machine_warnings`). It returns data;
:func:`decide` turns a comparison into a :class:`Decision` (exit status and reasons), and
the ``linfit compare`` command renders both.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from linfit._errors import LinfitError, ResultsFileError
from linfit._format import format_ratio, format_seconds  # re-exported; home: linfit._format
from linfit.machine import load_warning, machine_differences
from linfit.results import KEY_COLUMNS, Cell, read_results
from linfit.results.record import CellResult
from linfit.stats import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    VERDICTS,
    RatioEstimate,
    ratio_of_medians,
    ratio_of_run_medians,
    verdict,
)

__all__ = [
    "ALL_VERDICTS",
    "COMPARISON_COLUMNS",
    "DRIFT_NOTE",
    "ENVIRONMENT_COLUMNS",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "Comparison",
    "Decision",
    "Difference",
    "compare_files",
    "compare_frames",
    "compare_results",
    "decide",
    "format_ratio",
    "format_seconds",
    "machine_warnings",
    "records_of",
]

# Exit statuses of compare and check; bad input exits with linfit.cli.EXIT_INPUT_ERROR (2).
# 1 covers every failed gate: a significant slowdown, a BASE cell missing from NEW, a cell
# ok in BASE that failed in NEW, and a comparison that compared nothing.
EXIT_OK = 0
EXIT_REGRESSION = 1

# Every verdict a cell can get, in the order summaries count them. "failed": the cell
# failed in either run (kept apart from cells missing from a run).
ALL_VERDICTS = (*VERDICTS, "failed", "only-in-base", "only-in-new")

# Said wherever a verdict rests on one run per side (compare, check, the bench gate).
DRIFT_NOTE = ("one run per side: the interval covers the noise within each run, not the "
              "drift between runs (10-30% between back-to-back runs on a shared 2-core VM); "
              "give several runs per side (linfit compare --base A1 A2 A3 --new B1 B2 B3), "
              "or measure both sides interleaved with 'linfit ab'")

# The comparison table: one row per cell present in either side.
COMPARISON_COLUMNS = (
    *KEY_COLUMNS,
    "device_name",  # the new run's, else the base run's
    "base_median_seconds",  # s/step (several runs: geometric mean of per-run medians)
    "new_median_seconds",  # NaN where the cell is missing or failed
    "ratio",  # new / base; > 1 is slower
    "ratio_low",  # (1 - alpha) interval of the ratio
    "ratio_high",
    "p_value",
    "base_rounds",  # rounds behind the base side (0 where missing or failed)
    "new_rounds",
    "base_runs",  # runs behind each side (0 where missing or failed)
    "new_runs",
    "base_status",  # ok, failed or missing
    "new_status",
    "verdict",
)

# Columns that should be equal when two runs are compared: a difference is reported as a
# warning (it never changes the exit status). git_commit is left out: comparing commits
# is the point.
ENVIRONMENT_COLUMNS = (
    "host", "cpu_model", "device_name", "os", "python_version", "numpy_version",
    "keras_version", "backend_version", "backend_build", "tf_enable_onednn_opts", "xla_flags",
    "tf_xla_flags", "omp_num_threads", "intra_op_threads", "inter_op_threads", "git_dirty",
)

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
    """What :func:`compare_results` found.

    Attributes:
        table: one row per cell in either side, with :data:`COMPARISON_COLUMNS`, ordered
            by device, backend, dtype, n_examples, variant and steps_per_call.
        differences: machine, software and environment differences (warnings only).
        threshold, alpha: the settings the verdicts used.
        base_runs, new_runs: how many runs each side had.
        machine_warnings: :func:`machine_warnings` of the runs (warnings only).
    """

    table: pd.DataFrame
    differences: tuple[Difference, ...]
    threshold: float
    alpha: float
    base_runs: int = 1
    new_runs: int = 1
    machine_warnings: tuple[str, ...] = ()

    @property
    def over_runs(self) -> bool:
        """Whether the intervals run over runs (several per side), not over rounds."""
        return self.base_runs > 1 or self.new_runs > 1

    @property
    def worsened(self) -> pd.DataFrame:
        """Cells significantly slower by more than the threshold: the regressions."""
        return self.table[self.table["verdict"] == "slower"]

    @property
    def improved(self) -> pd.DataFrame:
        """Cells significantly faster by more than the threshold."""
        return self.table[self.table["verdict"] == "faster"]

    @property
    def missing(self) -> pd.DataFrame:
        """BASE cells that NEW does not have."""
        return self.table[self.table["verdict"] == "only-in-base"]

    @property
    def newly_failed(self) -> pd.DataFrame:
        """Cells ok in BASE that failed in NEW."""
        return self.table[(self.table["base_status"] == "ok")
                          & (self.table["new_status"] == "failed")]

    @property
    def compared(self) -> pd.DataFrame:
        """Cells ok on both sides: the ones that got a ratio."""
        return self.table[self.table["verdict"].isin(VERDICTS)]

    def counts(self) -> dict[str, int]:
        """Cells per verdict, for every verdict in :data:`ALL_VERDICTS` (zeros included)."""
        found = Counter(self.table["verdict"])
        return {name: found[name] for name in ALL_VERDICTS}


@dataclass(frozen=True)
class Decision:
    """What a comparison means for a gate: :func:`decide`'s answer.

    Attributes:
        exit_status: :data:`EXIT_OK` or :data:`EXIT_REGRESSION`.
        failures: why the gate fails, one line each (empty when it passes).
        notes: what was relaxed or cannot be known, one line each.
    """

    exit_status: int
    failures: tuple[str, ...]
    notes: tuple[str, ...]


def _first(rows: pd.DataFrame) -> str:
    return str(Cell.from_row(rows.iloc[0]))


def decide(comparison: Comparison, allow_missing: bool = False) -> Decision:
    """Whether a comparison passes as a gate. It fails (exit 1) when:

    * a cell is significantly slower by more than the threshold;
    * a cell ok in BASE failed in NEW;
    * a BASE cell is missing from NEW (unless ``allow_missing``, which is then noted);
    * nothing at all was compared (no cell ok on both sides).

    Args:
        comparison: what :func:`compare_results` returned.
        allow_missing: BASE cells missing from NEW do not fail the gate.

    Returns:
        The exit status, the failures and the notes.
    """
    failures, notes = [], []
    worse = comparison.worsened
    if len(worse):
        failures.append(f"{len(worse)} cell(s) significantly slower by more than "
                        f"{comparison.threshold:.0%} (the first: {_first(worse)})")
    failed = comparison.newly_failed
    if len(failed):
        failures.append(f"{len(failed)} cell(s) ok in base failed in new "
                        f"(the first: {_first(failed)})")
    missing = comparison.missing
    if len(missing):
        line = (f"{len(missing)} base cell(s) missing from new "
                f"(the first: {_first(missing)})")
        if allow_missing:
            notes.append(f"{line}: allowed by --allow-missing")
        else:
            failures.append(f"{line}; --allow-missing accepts that")
    if len(comparison.compared) == 0:
        failures.append("nothing was compared: no cell is ok in both base and new")
    if not comparison.over_runs:
        notes.append(DRIFT_NOTE)
    return Decision(EXIT_REGRESSION if failures else EXIT_OK, tuple(failures), tuple(notes))


def records_of(results: pd.DataFrame | Iterable[CellResult]) -> tuple[CellResult, ...]:
    """The records of one run, whichever form it comes in.

    Args:
        results: records (returned as they are), or a results frame: its rows go through
            :meth:`CellResult.from_row`, which takes per-step ``samples_seconds`` as
            :meth:`~linfit.results.ResultSet.to_frame` and the harness's older rows have
            them.

    Returns:
        The records, in order.
    """
    if isinstance(results, pd.DataFrame):
        return tuple(CellResult.from_row(row) for row in results.to_dict("records"))
    return tuple(results)


def _by_cell(run: Iterable[CellResult]) -> dict[Cell, CellResult]:
    return {record.cell: record for record in run}


def _step_samples(record: CellResult, label: str) -> np.ndarray:
    samples = np.asarray(record.per_step_seconds, dtype=float)
    if samples.size == 0:
        raise ResultsFileError(f"{label}: cell {record.cell} is ok but has no samples")
    median = float(np.median(samples))
    if not median > 0:
        raise ResultsFileError(f"{label}: cell {record.cell} has a median of {median} s per "
                               "step; a step time must be > 0")
    return samples


def _side_status(records: Sequence[CellResult]) -> str:
    if not records:
        return "missing"
    return "ok" if all(record.ok for record in records) else "failed"


def _compare_cell(cell: Cell, base: Sequence[CellResult], new: Sequence[CellResult],
                  threshold: float, alpha: float, base_label: str,
                  new_label: str) -> dict[str, Any]:
    either = new[-1] if new else base[-1]
    record: dict[str, Any] = {
        **{name: getattr(cell, name) for name in KEY_COLUMNS},
        "device_name": either.facts.get("device_name", ""),
        "base_median_seconds": math.nan, "new_median_seconds": math.nan,
        "ratio": math.nan, "ratio_low": math.nan, "ratio_high": math.nan,
        "p_value": math.nan, "base_rounds": 0, "new_rounds": 0, "base_runs": 0,
        "new_runs": 0, "base_status": _side_status(base), "new_status": _side_status(new),
    }
    sides: dict[str, list[np.ndarray]] = {}
    for side, records, label in (("base", base, base_label), ("new", new, new_label)):
        if record[f"{side}_status"] == "ok":
            sides[side] = [_step_samples(r, label) for r in records]
            medians = [float(np.median(samples)) for samples in sides[side]]
            # One run: its median; several: the geometric mean of their medians, the
            # centre the run-level ratio uses.
            record[f"{side}_median_seconds"] = (
                medians[0] if len(medians) == 1 else float(np.exp(np.mean(np.log(medians)))))
            record[f"{side}_rounds"] = sum(samples.size for samples in sides[side])
            record[f"{side}_runs"] = len(records)
    if not base or not new:
        record["verdict"] = "only-in-new" if not base else "only-in-base"
        return record
    if len(sides) < 2:
        record["verdict"] = "failed"
        return record
    estimate: RatioEstimate
    if len(sides["base"]) == 1 and len(sides["new"]) == 1:
        estimate = ratio_of_medians(sides["base"][0], sides["new"][0], alpha)
    else:
        estimate = ratio_of_run_medians([float(np.median(s)) for s in sides["base"]],
                                        [float(np.median(s)) for s in sides["new"]], alpha)
    record.update(ratio=estimate.ratio, ratio_low=estimate.low, ratio_high=estimate.high,
                  p_value=estimate.p_value, verdict=verdict(estimate, threshold))
    return record


def _differences(base_runs: Sequence[Mapping[Cell, CellResult]],
                 new_runs: Sequence[Mapping[Cell, CellResult]]) -> tuple[Difference, ...]:
    pairs: Counter[tuple[str, str, str]] = Counter()
    for base in base_runs:
        for new in new_runs:
            # Only cells that ran ok in both: a failed row may lack what it never measured.
            for cell in base.keys() & new.keys():
                if not (base[cell].ok and new[cell].ok):
                    continue
                for column in ENVIRONMENT_COLUMNS:
                    base_value = str(base[cell].facts.get(column, ""))
                    new_value = str(new[cell].facts.get(column, ""))
                    if base_value != new_value:
                        pairs[column, base_value, new_value] += 1
    order = {column: index for index, column in enumerate(ENVIRONMENT_COLUMNS)}
    return tuple(Difference(column, base_value, new_value, cells)
                 for (column, base_value, new_value), cells
                 in sorted(pairs.items(), key=lambda item: (order[item[0][0]], item[0][1:])))


def _machine(run: Sequence[CellResult]) -> Mapping[str, Any]:
    """A run's machine facts: every record of a run has the same; {} for no record."""
    return run[0].facts if run else {}


def machine_warnings(base_runs: Sequence[Iterable[CellResult]],
                     new_runs: Sequence[Iterable[CellResult]],
                     base_label: str = "base", new_label: str = "new") -> tuple[str, ...]:
    """Why the runs' times may not be what their machines can do, one line each: a run whose
    load average exceeded the CPUs it could use (:func:`linfit.machine.load_warning`), and
    each base and new machine that differ in cores, memory, CPU model, VM or container
    (:func:`linfit.machine.machine_differences`). Figures a run did not record (files
    before schema 5) are not compared.

    Args:
        base_runs, new_runs: the runs of each side (either may be empty: the load of the
            other side's runs is still checked).
        base_label, new_label: how the lines name the sides; a side of several runs names
            each by its run_id.

    Returns:
        The lines, without a prefix, duplicates dropped.
    """
    lines: list[str] = []
    sides = []
    for label, runs in ((base_label, base_runs), (new_label, new_runs)):
        machines = [_machine(list(run)) for run in runs]
        for machine in machines:
            name = label if len(machines) == 1 else str(machine.get("run_id") or label)
            warning = load_warning(machine)
            if warning is not None:
                lines.append(f"{name}: {warning}")
        sides.append(machines)
    for base in sides[0]:
        for new in sides[1]:
            differences = machine_differences(base, new)
            if differences:
                lines.append(f"the machines of {base_label} and {new_label} differ: "
                             f"{'; '.join(differences)}; their times are not like for like")
    return tuple(dict.fromkeys(lines))


def _sort_key(cell: Cell) -> tuple[Any, ...]:
    return (cell.device, cell.backend, cell.dtype, cell.n_examples, cell.variant,
            cell.steps_per_call)


def compare_results(base_runs: Sequence[Iterable[CellResult]],
                    new_runs: Sequence[Iterable[CellResult]],
                    threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                    base_label: str = "base", new_label: str = "new") -> Comparison:
    """Compare BASE runs with NEW runs cell by cell.

    With one run per side, each cell's interval comes from its rounds
    (:func:`linfit.stats.ratio_of_medians`); with several runs on a side, from the
    per-run medians (:func:`linfit.stats.ratio_of_run_medians`), which needs at least two
    runs on each side. A cell that failed in any run of a side is ``failed``.

    Args:
        base_runs, new_runs: one or more runs per side, each a sequence of records (a
            :class:`~linfit.results.ResultSet`).
        threshold: the smallest change that matters (0.10 = 10%); see
            :func:`linfit.stats.verdict`.
        alpha: significance level of the intervals (0.01 = 99% intervals).
        base_label, new_label: how messages name the two sides.

    Returns:
        The comparison table, the environment differences and the machine warnings.

    Raises:
        LinfitError: for a side without runs, or one run on one side and several on the
            other (no interval over runs can be had from one run).
        ResultsFileError: when an ok cell has no samples or a median step time of 0.
    """
    base_maps = [_by_cell(run) for run in base_runs]
    new_maps = [_by_cell(run) for run in new_runs]
    if not base_maps or not new_maps:
        raise LinfitError("compare needs at least one run on each side")
    if (len(base_maps) == 1) != (len(new_maps) == 1):
        raise LinfitError(f"{len(base_maps)} base run(s) and {len(new_maps)} new run(s): "
                          "an interval over runs needs at least 2 runs on each side "
                          "(or give one run on each side)")
    cells = set().union(*base_maps, *new_maps)
    records = [
        _compare_cell(cell, [m[cell] for m in base_maps if cell in m],
                      [m[cell] for m in new_maps if cell in m], threshold, alpha,
                      base_label, new_label)
        for cell in sorted(cells, key=_sort_key)
    ]
    table = pd.DataFrame.from_records(records, columns=list(COMPARISON_COLUMNS))
    return Comparison(table, _differences(base_maps, new_maps), threshold, alpha,
                      len(base_maps), len(new_maps),
                      machine_warnings([list(m.values()) for m in base_maps],
                                       [list(m.values()) for m in new_maps],
                                       base_label, new_label))


def compare_frames(base: pd.DataFrame | Iterable[CellResult],
                   new: pd.DataFrame | Iterable[CellResult],
                   threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                   base_label: str = "base", new_label: str = "new") -> Comparison:
    """One run against one run: :func:`compare_results` of ``[base]`` and ``[new]``.

    Args:
        base, new: records, or results frames (see :func:`records_of`).
        threshold, alpha, base_label, new_label: as :func:`compare_results`.

    Raises:
        ResultsFileError: when an ok cell has no samples or a median step time of 0.
    """
    return compare_results([records_of(base)], [records_of(new)], threshold, alpha,
                           base_label, new_label)


def _label(paths: Sequence[str | os.PathLike[str]]) -> str:
    first = str(paths[0])
    return first if len(paths) == 1 else f"{first} (+{len(paths) - 1} more)"


def compare_files(base_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                  new_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                  threshold: float = DEFAULT_THRESHOLD,
                  alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Read results CSVs (never changing them) and :func:`compare_results` them.

    Args:
        base_path, new_path: one file per side, or several (one run each).
        threshold, alpha: as :func:`compare_results`.

    Raises:
        ResultsFileError: naming the file, line and column, for unusable input.
        LinfitError: as :func:`compare_results`.
    """
    base_paths = ([base_path] if isinstance(base_path, str | os.PathLike)
                  else list(base_path))
    new_paths = [new_path] if isinstance(new_path, str | os.PathLike) else list(new_path)
    base_runs = [read_results(path) for path in base_paths]
    new_runs = [read_results(path) for path in new_paths]
    return compare_results(base_runs, new_runs, threshold, alpha,
                           base_label=_label(base_paths), new_label=_label(new_paths))
