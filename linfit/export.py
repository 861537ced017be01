"""A results CSV or a pairs file in formats other tools read (``linfit export``).

Each ok cell of a results CSV is one benchmark; in a pairs file each side of each cell is
one (its name ends in ``[side label]``), its samples the side's bursts. A benchmark's
number is its median time per training step, with the 95% block-bootstrap interval of the
median (:func:`linfit.steps.median_interval`, as ``linfit history`` draws it).

- ``bmf``: Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format):
  ``{name: {"latency": {"value", "lower_value", "upper_value"}}}``, in nanoseconds, the unit
  of Bencher's built-in ``latency`` measure.
- ``benchmark-action``: github-action-benchmark's ``customSmallerIsBetter`` input, a list of
  ``{"name", "unit", "value", "range", "extra"}`` (range and extra are text).
- ``pytest-benchmark``: the JSON ``pytest --benchmark-save`` writes (``machine_info``,
  ``commit_info``, ``benchmarks`` with ``stats`` from pytest-benchmark's own ``Stats`` over
  the per-step samples, ``datetime``, ``version``), so ``pytest-benchmark compare`` reads it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linfit._errors import LinfitError
from linfit.results import KEY_COLUMNS, Cell, read_results
from linfit.results.pairs import is_pairs_file, read_pairs
from linfit.steps import INTERVAL_ALPHA, median_interval

__all__ = ["FORMATS", "Benchmark", "load_benchmarks", "render"]

FORMATS = ("bmf", "benchmark-action", "pytest-benchmark")
# Bencher's built-in latency measure is in nanoseconds.
BMF_MEASURE = "latency"
NANOSECONDS_PER_SECOND = 1e9


@dataclass(frozen=True)
class Benchmark:
    """One exported benchmark: a cell of a results run, or a cell on one side of a session.

    Attributes:
        name: unique within the export: the cell, with ``[side]`` for a pairs file.
        cell: the benchmark cell.
        samples_seconds: the per-step samples (rounds, or bursts), in order.
        median_seconds, low_seconds, high_seconds: the median and its interval.
        info: facts about the run: run or session id, host, commit, backend version.
    """

    name: str
    cell: Cell
    samples_seconds: tuple[float, ...]
    median_seconds: float
    low_seconds: float
    high_seconds: float
    info: dict[str, str]


def _benchmark(name: str, cell: Cell, samples: Sequence[float],
               info: dict[str, str]) -> Benchmark:
    median, low, high = median_interval(samples)
    return Benchmark(name, cell, tuple(float(s) for s in samples), median, low, high, info)


def load_benchmarks(path: str | os.PathLike[str]) -> list[Benchmark]:
    """The benchmarks of a results CSV or a pairs file (told apart by their header).

    Raises:
        ResultsFileError: a file that is neither, or does not validate (named).
        LinfitError: a file without one ok cell.
    """
    path = Path(path)
    benchmarks = []
    if is_pairs_file(path):
        frame = read_pairs(path)
        ok = frame[frame["status"] == "ok"]
        for key, rows in ok.groupby([*KEY_COLUMNS, "side_label"], sort=False):
            cell = Cell.from_row(dict(zip(KEY_COLUMNS, key[:-1], strict=True)))
            rows = rows.sort_values("sequence")
            samples = [s for s in rows["seconds_per_step"] if math.isfinite(s)]
            if not samples:
                continue
            first = rows.iloc[0]
            benchmarks.append(_benchmark(f"{cell} [{key[-1]}]", cell, samples, {
                "session_id": str(first["session_id"]), "side": str(key[-1]),
                "host": str(first["host"]), "git_commit": str(first["git_commit"]),
                "backend_version": str(first["backend_version"])}))
    else:
        for record in read_results(path):
            if not record.ok or not record.per_step_seconds:
                continue
            facts = record.facts
            benchmarks.append(_benchmark(str(record.cell), record.cell,
                                         record.per_step_seconds, {
                "run_id": str(facts.get("run_id", "")), "host": str(facts.get("host", "")),
                "git_commit": str(facts.get("git_commit", "")),
                "timestamp_utc": str(facts.get("timestamp_utc", "")),
                "backend_version": str(facts.get("backend_version", ""))}))
    if not benchmarks:
        raise LinfitError(f"{path}: no ok cell with samples to export")
    return benchmarks


def _bmf(benchmarks: Sequence[Benchmark]) -> Any:
    return {b.name: {BMF_MEASURE: {
        "value": b.median_seconds * NANOSECONDS_PER_SECOND,
        "lower_value": b.low_seconds * NANOSECONDS_PER_SECOND,
        "upper_value": b.high_seconds * NANOSECONDS_PER_SECOND}} for b in benchmarks}


def _benchmark_action(benchmarks: Sequence[Benchmark]) -> Any:
    level = round(100 * (1 - INTERVAL_ALPHA))
    return [{
        "name": b.name, "unit": "s/step", "value": b.median_seconds,
        "range": f"{b.low_seconds:.4g} to {b.high_seconds:.4g} ({level}% interval)",
        "extra": f"median of {len(b.samples_seconds)} samples; "
                 + "; ".join(f"{k}: {v}" for k, v in b.info.items())}
        for b in benchmarks]


def _pytest_benchmark(benchmarks: Sequence[Benchmark]) -> Any:
    import pytest_benchmark
    from pytest_benchmark.stats import Stats

    entries = []
    for b in benchmarks:
        stats = Stats()
        for sample in b.samples_seconds:
            stats.update(sample)
        values = stats.as_dict()
        values.update(data=list(b.samples_seconds), iterations=1)
        entries.append({
            "group": None, "name": b.name, "fullname": b.name,
            "params": None, "param": None,
            "extra_info": {**b.info, "median_interval_seconds": [b.low_seconds,
                                                                 b.high_seconds]},
            "options": {}, "stats": values})
    first = benchmarks[0].info
    return {
        "machine_info": {"node": first.get("host", ""), "source": "linfit export"},
        "commit_info": {"id": first.get("git_commit", ""), "dirty": False},
        "benchmarks": entries,
        "datetime": first.get("timestamp_utc", ""),
        "version": pytest_benchmark.__version__,
    }


def render(benchmarks: Sequence[Benchmark], fmt: str) -> str:
    """The export as JSON text.

    Raises:
        LinfitError: an unknown format.
    """
    renderers = {"bmf": _bmf, "benchmark-action": _benchmark_action,
                 "pytest-benchmark": _pytest_benchmark}
    if fmt not in renderers:
        raise LinfitError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return json.dumps(renderers[fmt](benchmarks), indent=2, allow_nan=False) + "\n"
