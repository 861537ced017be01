"""A history from the files on disk: every results CSV and pairs file under some folders,
as typed records (runs, one point per cell and run, paired verdicts), and the steps of
each cell's series per machine.

A results CSV is one run. A pairs file (``linfit ab``) holds one run per side: its bursts
of a cell are that run's samples, and its verdicts (each side against the first) are the
paired confirmations a step is shown with. Other CSVs under the folders (``linfit ab
--format csv`` tables, say) are not linfit's records and are listed as skipped; a results
or pairs file that does not validate stops the build (:class:`ResultsFileError`).

A point's build is its backend's version (``backend_version``: the TensorFlow build for
TensorFlow's cells). The build order sorts versions numerically, a pre-release (``.dev``,
``rc``) before its release, then by run date.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from linfit._errors import LinfitError, ResultsFileError
from linfit._paths import open_input
from linfit.ab import analyse
from linfit.results import KEY_COLUMNS, Cell, read_results
from linfit.results.pairs import PARTIAL_SUFFIX, is_pairs_file, read_pairs
from linfit.steps import detect_steps, median_interval

# Bytes read to see which kind of file a *.csv is: its header line fits many times over.
HEADER_BYTES = 64 * 1024

__all__ = [
    "DetectedStep",
    "History",
    "PairedVerdict",
    "Point",
    "Run",
    "build_key",
    "collect_history",
    "find_steps",
    "machine_label",
]

# The kinds of run: one results CSV, or one side of an A/B session.
RESULTS_RUN = "results"
AB_SIDE_RUN = "ab-side"
# File names looked at under the folders: results and pairs files, and a killed session's
# pairs file (its bursts are kept as they are).
_SUFFIXES = (".csv", ".csv" + PARTIAL_SUFFIX)
# Pre-release stages in the order they come before a release ("2.22.0.dev2026..." <
# "2.22.0rc0" < "2.22.0"); a local suffix (+cpu) is the release.
_STAGES = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "rc": 3, "c": 3}
_RELEASE_STAGE = 4


@dataclass(frozen=True)
class Run:
    """One run: a results CSV, or one side of an A/B session.

    Attributes:
        run_id: the results file's ``run_id``, or ``<session_id>/<side label>``.
        kind: ``results`` or ``ab-side``.
        host: the machine: its host name, with its CPU model where the file gives one
            (two machines may share a host name: a VM's ``vm``).
        started: when it started (UTC): the run's timestamp, or the side's first burst.
        git_commit: linfit's commit.
        path: the file it was read from.
        session_id, side_label: the A/B session and side ('' for a results run).
    """

    run_id: str
    kind: str
    host: str
    started: datetime
    git_commit: str
    path: Path
    session_id: str = ""
    side_label: str = ""


@dataclass(frozen=True)
class Point:
    """One cell in one run: its median step time and interval.

    Attributes:
        cell: the benchmark cell.
        run: the run.
        build: the backend's version in that run.
        median_seconds, low_seconds, high_seconds: median per step, and its interval
            (:func:`linfit.steps.median_interval` of the run's samples: rounds of a results
            run, bursts of an A/B side).
        samples: how many samples the median is of.
    """

    cell: Cell
    run: Run
    build: str
    median_seconds: float
    low_seconds: float
    high_seconds: float
    samples: int


@dataclass(frozen=True)
class PairedVerdict:
    """One cell's paired verdict in an A/B session: a side against the first.

    Attributes:
        session_id, path: the session and its pairs file.
        cell, host: the cell and machine.
        base_label, new_label: the two sides.
        base_build, new_build: the backend's version on each.
        ratio, low, high: new / base and its interval (NaN without one).
        verdict: slower, faster, unchanged, noise, failed, too-few-pairs, no-pairs.
    """

    session_id: str
    path: Path
    cell: Cell
    host: str
    base_label: str
    new_label: str
    base_build: str
    new_build: str
    ratio: float
    low: float
    high: float
    verdict: str


@dataclass(frozen=True)
class DetectedStep:
    """A step in one cell's series on one machine, in build order.

    Attributes:
        cell, host: the series.
        before, after: the last run's point before the step and the first after it.
        level_before, level_after: the fitted levels on either side (s/step).
        ratio: level_after / level_before.
        confirmation: the paired verdict of an A/B session of the same two runs or of the
            same two builds, if one exists (its ratio is after / before).
    """

    cell: Cell
    host: str
    before: Point
    after: Point
    level_before: float
    level_after: float
    ratio: float
    confirmation: PairedVerdict | None


@dataclass(frozen=True)
class History:
    """Everything found under the folders.

    Attributes:
        runs: every run, oldest first.
        points: every ok cell of every run.
        verdicts: every paired verdict of every A/B session.
        skipped: CSVs that are neither results nor pairs files, with why.
    """

    runs: tuple[Run, ...]
    points: tuple[Point, ...]
    verdicts: tuple[PairedVerdict, ...]
    skipped: tuple[tuple[Path, str], ...]

    def cells(self) -> list[Cell]:
        """The cells with at least one point, sorted."""
        return sorted({point.cell for point in self.points})

    def series(self, cell: Cell) -> dict[str, list[Point]]:
        """One cell's points per host, each list in build order."""
        by_host: dict[str, list[Point]] = {}
        for point in self.points:
            if point.cell == cell:
                by_host.setdefault(point.run.host, []).append(point)
        return {host: sorted(points, key=point_order)
                for host, points in sorted(by_host.items())}


def build_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """A sort key for a version string: its release numbers (trailing zeros dropped, so
    2.21 == 2.21.0), then pre-release stage before the release, then the rest as text.
    A string without a leading number sorts first."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)(.*)", version)
    if match is None:
        return ((), -1, version)
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    rest = match.group(2).split("+")[0].lstrip(".-_").lower()
    stage_match = re.match(r"(dev|alpha|beta|rc|a|b|c)", rest)
    stage = _STAGES[stage_match.group(1)] if stage_match else _RELEASE_STAGE
    return (tuple(numbers), stage, rest)


def point_order(point: Point) -> tuple[tuple[tuple[int, ...], int, str], datetime, str]:
    """The build order of points: build, then run date, then run id."""
    return (build_key(point.build), point.run.started, point.run.run_id)


def _header(path: Path) -> list[str]:
    """The first line's fields of a file found under the folders, read through the one input
    door (so a FIFO or a device named *.csv is refused in one line, never read); [] for text
    that is not CSV."""
    text = open_input(path, "a results CSV or pairs file", max_bytes=HEADER_BYTES, head=True)
    try:
        return next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    except csv.Error:
        return []


def _files(folders: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: set[Path] = set()
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise LinfitError(f"{root}: not a folder (give folders that hold results CSVs "
                              f"and pairs files)")
        for directory, _, names in os.walk(root):
            for name in names:
                if name.endswith(_SUFFIXES):
                    files.add(Path(directory, name))
    return sorted(files)


def _timestamp(text: str, path: Path) -> datetime:
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        raise ResultsFileError(f"{path}: timestamp_utc {text!r} is not an ISO 8601 "
                               f"time") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _results_run(path: Path) -> tuple[list[Run], list[Point]]:
    records = read_results(path)
    facts = records[0].facts
    run = Run(str(facts.get("run_id", path.stem)), RESULTS_RUN,
              machine_label(str(facts.get("host", "")), str(facts.get("cpu_model", ""))),
              _timestamp(str(facts.get("timestamp_utc", "")), path),
              str(facts.get("git_commit", "")), path)
    points = []
    for record in records:
        if not record.ok or not record.per_step_seconds:
            continue
        median, low, high = median_interval(record.per_step_seconds)
        points.append(Point(record.cell, run, str(record.facts.get("backend_version", "")),
                            median, low, high, len(record.per_step_seconds)))
    return [run], points


def machine_label(host: str, cpu_model: str) -> str:
    """A machine's name in the history: ``host (CPU model)``, or the host alone."""
    return f"{host} ({cpu_model})" if cpu_model and cpu_model != host else host


def _pairs_machine(rows: pd.DataFrame) -> str:
    """The machine of a pairs file's rows: the host, with the CPU model of a CPU cell."""
    cpu = rows.loc[rows["device"].str.startswith("CPU"), "device_name"]
    return machine_label(str(rows["host"].iloc[0]), str(cpu.iloc[0]) if len(cpu) else "")


def _cell_of(values: Iterable[object]) -> Cell:
    return Cell.from_row(dict(zip(KEY_COLUMNS, values, strict=True)))


def _pairs_runs(path: Path) -> tuple[list[Run], list[Point], list[PairedVerdict]]:
    frame = read_pairs(path)
    session = str(frame["session_id"].iloc[0])
    runs: dict[int, Run] = {}
    builds: dict[tuple[str, Cell], str] = {}
    points = []
    ok = frame[frame["status"] == "ok"]
    for side_index, side in frame.groupby("side_index", sort=True):
        label = str(side["side_label"].iloc[0])
        started = side.loc[side["start_unix_ns"] >= 0, "start_unix_ns"]
        when = (datetime.fromtimestamp(int(started.min()) / 1e9, UTC) if len(started)
                else _session_start(session, path))
        runs[int(side_index)] = Run(f"{session}/{label}", AB_SIDE_RUN,
                                    _pairs_machine(side), when,
                                    str(side["git_commit"].iloc[0]), path, session, label)
    for key, rows in ok.groupby([*KEY_COLUMNS, "side_index"], sort=True):
        cell = _cell_of(key[:-1])
        run = runs[int(key[-1])]
        seconds = rows.sort_values("sequence")["seconds_per_step"].to_numpy(dtype=float)
        seconds = seconds[np.isfinite(seconds)]
        build = str(rows["backend_version"].iloc[0])
        builds[(run.side_label, cell)] = build
        if seconds.size:
            median, low, high = median_interval(seconds)
            points.append(Point(cell, run, build, median, low, high, int(seconds.size)))
    verdicts = []
    host = _pairs_machine(frame)
    for row in analyse(frame).table.to_dict("records"):
        cell = _cell_of(row[name] for name in KEY_COLUMNS)
        verdicts.append(PairedVerdict(
            session, path, cell, host, str(row["base_label"]), str(row["new_label"]),
            builds.get((str(row["base_label"]), cell), ""),
            builds.get((str(row["new_label"]), cell), ""),
            float(row["ratio"]), float(row["ratio_low"]), float(row["ratio_high"]),
            str(row["verdict"])))
    return list(runs.values()), points, verdicts


def _session_start(session: str, path: Path) -> datetime:
    match = re.match(r"(\d{8}T\d{6}Z)", session)
    if match is None:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def collect_history(folders: Sequence[str | os.PathLike[str]]) -> History:
    """Read every results CSV and pairs file under ``folders`` (recursively).

    Raises:
        LinfitError: a folder that does not exist; no results or pairs file at all.
        ResultsFileError: a results or pairs file that does not validate (named).
    """
    runs: list[Run] = []
    points: list[Point] = []
    verdicts: list[PairedVerdict] = []
    skipped: list[tuple[Path, str]] = []
    for path in _files(folders):
        if is_pairs_file(path):
            new_runs, new_points, new_verdicts = _pairs_runs(path)
            verdicts.extend(new_verdicts)
        elif {"schema_version", "run_id"} <= set(_header(path)):
            new_runs, new_points = _results_run(path)
        else:
            skipped.append((path, "neither a results CSV nor a pairs file"))
            continue
        runs.extend(new_runs)
        points.extend(new_points)
    if not runs:
        raise LinfitError(f"no results CSV or pairs file under {', '.join(map(str, folders))}")
    ids = [run.run_id for run in runs]
    duplicates = sorted({run_id for run_id in ids if ids.count(run_id) > 1})
    if duplicates:
        paths = [str(run.path) for run in runs if run.run_id == duplicates[0]]
        raise LinfitError(f"run {duplicates[0]} is in more than one file: {', '.join(paths)}")
    runs.sort(key=lambda run: (run.started, run.run_id))
    return History(tuple(runs), tuple(points), tuple(verdicts), tuple(skipped))


def _confirmation(step_before: Point, step_after: Point,
                  verdicts: Sequence[PairedVerdict]) -> PairedVerdict | None:
    """The paired verdict of the step's two runs (sides of one session), else the newest
    session of the same cell and machine that compared the two builds; its ratio is
    turned to after / before."""
    same_cell = [v for v in verdicts if v.cell == step_before.cell
                 and v.host == step_before.run.host]
    before_run, after_run = step_before.run, step_after.run
    for verdict in same_cell:
        if before_run.session_id == after_run.session_id == verdict.session_id and {
                before_run.side_label, after_run.side_label} == {verdict.base_label,
                                                                 verdict.new_label}:
            return _oriented(verdict, verdict.base_label == before_run.side_label)
    if step_before.build == step_after.build:
        return None
    builds = [v for v in same_cell if {v.base_build, v.new_build}
              == {step_before.build, step_after.build}]
    if not builds:
        return None
    newest = max(builds, key=lambda v: v.session_id)
    return _oriented(newest, newest.base_build == step_before.build)


def _oriented(verdict: PairedVerdict, forward: bool) -> PairedVerdict:
    if forward:
        return verdict
    flipped = {"slower": "faster", "faster": "slower"}
    return PairedVerdict(verdict.session_id, verdict.path, verdict.cell, verdict.host,
                         verdict.new_label, verdict.base_label, verdict.new_build,
                         verdict.base_build, 1 / verdict.ratio, 1 / verdict.high,
                         1 / verdict.low, flipped.get(verdict.verdict, verdict.verdict))


def find_steps(history: History) -> list[DetectedStep]:
    """The steps of every cell's series on every machine, in build order
    (:func:`linfit.steps.detect_steps` on the run medians), newest first (by the date of
    the first run after the step)."""
    found = []
    for cell in history.cells():
        for host, points in history.series(cell).items():
            medians = [point.median_seconds for point in points]
            for step in detect_steps(medians):
                before, after = points[step.index - 1], points[step.index]
                found.append(DetectedStep(cell, host, before, after, step.before, step.after,
                                          step.ratio, _confirmation(before, after,
                                                                    history.verdicts)))
    found.sort(key=lambda s: (s.after.run.started, str(s.cell)), reverse=True)
    return found
