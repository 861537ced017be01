"""The pairs file of an A/B session: its columns (declared once), its writer and its reader.

One row per burst, written as the burst comes back (flushed at once, synced to disk every
round) to ``<name>.partial`` in the results folder; at the end of the session it is linked
to its final name, never over an existing file. A session that is killed leaves the
``.partial`` file, which the reader accepts: no measured pair is ever lost. A session
continued by ``linfit ab --resume`` (:meth:`PairsWriter.resume`) copies the finished file to
``<name>.partial``, adds its rows there, and renames it over the file when it ends: the
pairs file stays one file, and a crash meanwhile leaves it as it was.

A burst keeps its raw per-call times (``call_ns``); its one number, the median time per step
over its samples of ``calls_per_sample`` consecutive calls, is derived in one place,
:func:`burst_seconds_per_step`. A cell that failed its checks on a side has one row for
that side with ``status`` = ``failed``, ``round`` = -1, the reason in ``message`` and no
burst (``order_position``, ``sequence``, ``start_unix_ns`` and ``call_ns`` empty).
Since schema 3 every row also carries its side's machine (as the results file does), the
load average when its burst started, and the peak memory the side's build of the cell added.

The columns are declared with the results file's :class:`~linfit.results.columns.Column`
type, and the reader is as strict as the results reader: field counts, types, vocabularies,
ranges, the sides and rounds of a session, and duplicates, each refused in one line naming
the file, line and column. pandas is imported only to build the frame the reader returns.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from linfit._errors import LinfitError, ResultsFileError
from linfit._paths import link_unique, open_input
from linfit.builds import git_commit
from linfit.results.cell import KEY_COLUMNS, KEY_DEFAULTS, legacy_convention
from linfit.results.columns import (
    DTYPE,
    NON_NEGATIVE,
    POSITIVE,
    ROUND,
    STATUS,
    Column,
    csv_line,
    csv_records,
    domain_problem,
    escape_text,
    unescape_text,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PAIRS_COLUMNS",
    "PAIRS_COLUMN_NAMES",
    "PAIRS_MACHINE_COLUMNS",
    "PAIRS_SCHEMA_VERSION",
    "PARTIAL_SUFFIX",
    "READABLE_PAIRS_SCHEMA_VERSIONS",
    "PairsWriter",
    "burst_seconds_per_step",
    "is_pairs_file",
    "read_pairs",
    "read_pairs_text",
]

# Bump when a column changes meaning or is removed; the reader refuses other versions.
# 2: replicas and convention, the cell key's columns of results schema 3.
# 3: build, tensorflow_git_version and tensorflow_commit: each side's TensorFlow build
# (issue 17); each side's machine (results schema 5's columns), the load at each burst,
# and the peak memory each side's build of a cell added (issue 18).
# 3 also: what `linfit ab --resume` needs to continue a session (issue 22): its part,
# settings, cell options, and each side's interpreter and framework settings.
PAIRS_SCHEMA_VERSION = 3
READABLE_PAIRS_SCHEMA_VERSIONS = (1, 2, 3)
# The file a session appends to until it ends.
PARTIAL_SUFFIX = ".partial"
# The column that tells a pairs file from a results file.
_MARKER = "session_id"
# The largest integer a column holds: the frame keeps them as int64.
_MAX_INT = 2**63 - 1
# A whole integer, as the writer writes one (str(int)); and several, separated by what
# str.split() splits on (re's \s is str.isspace(), as split's is).
_INTEGER = re.compile(r"-?[0-9]+")
_INTEGERS = re.compile(r"\s*(?:-?[0-9]+(?:\s+-?[0-9]+)*)?\s*")

_BOTH = (1, 2, 3)
_V2 = (2, 3)
_V3 = (3,)


def _p(name: str, type_: str, unit: str, doc: str, required: bool = True, domain: str = "",
       versions: tuple[int, ...] = _BOTH) -> Column:
    return Column(name, type_, unit, doc, required, domain, versions)


PAIRS_COLUMNS: tuple[Column, ...] = (
    _p("schema_version", "int", "", "version of this column layout"),
    _p("session_id", "str", "", "UTC start, host and short commit of the session"),
    # Not checked against linfit's backends: a worker names what it runs.
    _p("backend", "str", "", "framework of the cell"),
    _p("device", "str", "", "device id: CPU:0, GPU:0, ..."),
    _p("variant", "str", "", "eager, function, xla, ..."),
    _p("n_examples", "int", "examples", "data set size", domain=POSITIVE),
    _p("dtype", "str", "", "float32, ...", domain=DTYPE),
    _p("steps_per_call", "int", "steps", "training steps per call", domain=POSITIVE),
    _p("replicas", "int", "replicas", "replicas the data are split across (1 in a "
       "schema-1 file)", domain=POSITIVE, versions=_V2),
    _p("convention", "str", "", "how a TensorFlow compiled step is called ('' where it does "
       "not apply; in a schema-1 file, args for TensorFlow's compiled variants)",
       required=False, versions=_V2),
    _p("side_index", "int", "", "0 for the first side (the base), 1, 2, ...",
       domain=NON_NEGATIVE),
    _p("side_label", "str", "", "the side's label"),
    _p("round", "int", "", "the round the burst belongs to: its pair index for the cell "
       "(-1 in a failed row)", domain=ROUND),
    _p("order_position", "int", "", "position of this side's burst in its round for this "
       "cell (0: ran first; empty in a failed row)", domain=NON_NEGATIVE),
    _p("sequence", "int", "", "the burst's number in the session, in measurement order "
       "(0, 1, 2, ...: the writer numbers the bursts; empty in a failed row)",
       domain=NON_NEGATIVE),
    _p("start_unix_ns", "int", "ns", "wall-clock start of the burst (time.time_ns; empty in a "
       "failed row)", domain=NON_NEGATIVE),
    _p("calls_per_sample", "int", "calls", "consecutive calls per sample; the same on every "
       "side", domain=POSITIVE),
    _p("call_ns", "ints", "ns/call", "every call's time, space-separated, in order (empty in "
       "a failed row)", domain=POSITIVE),
    _p("status", "str", "", "ok, or failed: the cell failed its checks on this side",
       domain=STATUS),
    _p("message", "str", "", "why it failed ('' when ok)", required=False),
    _p("python", "str", "", "the side's interpreter", required=False),
    _p("python_version", "str", "", "its Python version", required=False),
    _p("backend_version", "str", "", "the framework's version on this side", required=False),
    _p("device_name", "str", "", "CPU model or GPU name", required=False),
    _p("env_settings", "str", "", "the side's environment settings, NAME=VALUE ...",
       required=False),
    _p("host", "str", "", "host name", required=False),
    _p("git_commit", "str", "", "short commit of the linfit source the worker ran",
       required=False),
    _p("build", "str", "", "the TensorFlow build the side named (tf-nightly==2.23.0.dev20261026; "
       "'' for a side named by its interpreter)", required=False, versions=_V3),
    _p("tensorflow_git_version", "str", "", "the side's tf.version.GIT_VERSION, as its worker "
       "reported ('' without TensorFlow)", required=False, versions=_V3),
    _p("tensorflow_commit", "str", "", "the short commit in tensorflow_git_version ('' where it "
       "has none)", required=False, versions=_V3),
    # The side's machine, as its worker found it at start (results schema 5's columns).
    _p("keras_version", "str", "", "the side's Keras version ('' = not installed)",
       required=False, versions=_V3),
    _p("cpu_model", "str", "", "CPU model name", required=False, versions=_V3),
    _p("logical_cores", "int", "CPUs", "logical CPUs", required=False, domain=POSITIVE,
       versions=_V3),
    _p("physical_cores", "int", "cores", "physical cores", required=False, domain=POSITIVE,
       versions=_V3),
    _p("memory_bytes", "int", "bytes", "physical memory (MemTotal)", required=False,
       domain=POSITIVE, versions=_V3),
    _p("cpu_affinity", "str", "", "the CPUs the worker could use (0-1)", required=False,
       versions=_V3),
    _p("cpu_frequency_mhz", "float", "MHz", "mean current frequency of those CPUs",
       required=False, domain=POSITIVE, versions=_V3),
    _p("cpu_governor", "str", "", "their cpufreq governor(s)", required=False, versions=_V3),
    _p("virtual_machine", "str", "", "hypervisor, none, or '' where unknown", required=False,
       versions=_V3),
    _p("container", "str", "", "container, none, or '' where unknown", required=False,
       versions=_V3),
    # Of the burst, and of the side's build of the cell.
    _p("load_average", "float", "", "1-minute load average when the burst started (empty "
       "in a failed row, or where unknown)", required=False, domain=NON_NEGATIVE,
       versions=_V3),
    _p("peak_rss_bytes", "int", "bytes", "the most resident memory the side's build of the "
       "cell added to its worker, at its peak (linfit.memory; empty where unknown)",
       required=False, domain=NON_NEGATIVE, versions=_V3),
    _p("device_peak_bytes", "int", "bytes", "the same on its device, by the framework's "
       "allocator (empty on a CPU or where unknown)", required=False, domain=NON_NEGATIVE,
       versions=_V3),
    # Schema 3 (issue 22): what --resume reads to continue the session as it was. Empty in
    # rows written without them (the session can then not be resumed).
    _p("part", "int", "", "the set of worker processes that measured the burst: 0 for the "
       "session's first, 1, 2, ... for each restart of its workers (--restart-every) or "
       "--resume that added to it", required=False, domain=NON_NEGATIVE, versions=_V3),
    _p("part_start_unix_ns", "int", "ns", "wall-clock start of the part (before its workers "
       "started): up to its first burst, the part's start-up", required=False,
       domain=NON_NEGATIVE, versions=_V3),
    _p("seed", "int", "", "seed of the session's burst order", required=False,
       domain=NON_NEGATIVE, versions=_V3),
    _p("threshold", "float", "", "the session's threshold, a fraction", required=False,
       domain=POSITIVE, versions=_V3),
    _p("alpha", "float", "", "the session's significance level, over all of a cell's looks",
       required=False, domain=POSITIVE, versions=_V3),
    _p("min_pairs", "int", "pairs", "pairs every cell gets before it may stop",
       required=False, domain=POSITIVE, versions=_V3),
    _p("max_pairs", "int", "pairs", "the most pairs a cell gets: its last look",
       required=False, domain=POSITIVE, versions=_V3),
    _p("cell_options", "str", "", "the options that chose the cells, as linfit ab's flags "
       "(--backends tensorflow --sizes 1e3 ...)", required=False, versions=_V3),
    _p("side_python", "str", "", "the interpreter the session started for the side (python "
       "is the one its worker reported)", required=False, versions=_V3),
    _p("env_flags", "str", "", "the framework settings the side's worker ran with, "
       "NAME=VALUE of those set (TF_ENABLE_ONEDNN_OPTS, XLA_FLAGS, TF_XLA_FLAGS, "
       "OMP_NUM_THREADS)", required=False, versions=_V3),
)
PAIRS_COLUMN_NAMES = tuple(column.name for column in PAIRS_COLUMNS)
_BY_NAME = {column.name: column for column in PAIRS_COLUMNS}
# Columns that hold a burst: empty in a failed row, required in an ok one.
_BURST_COLUMNS = ("order_position", "sequence", "start_unix_ns", "call_ns")
# Columns of schema 3: a side's TensorFlow build.
_BUILD_COLUMNS = ("build", "tensorflow_git_version", "tensorflow_commit")
# Columns that are one side's, the same in each of its rows.
# The side columns a worker's hello fills from its machine facts (linfit.environment).
PAIRS_MACHINE_COLUMNS = ("keras_version", "cpu_model", "logical_cores", "physical_cores",
                         "memory_bytes", "cpu_affinity", "cpu_frequency_mhz", "cpu_governor",
                         "virtual_machine", "container")
# Optional numbers that are measurements (the machine's, the load, the peak memory): NaN in
# the frame where a row or an older file has none. Other missing integers read as -1.
_MEASURED_NUMBERS = ("logical_cores", "physical_cores", "memory_bytes", "cpu_frequency_mhz",
                     "load_average", "peak_rss_bytes", "device_peak_bytes")
# The same in each of a side's rows: what a side is (a resumed part runs it again, and
# --resume refuses a side that changed). The CPU frequency is a reading when a worker
# started, not what a side is: it may differ between parts.
_SIDE_COLUMNS = ("side_label", "python", "python_version", "env_settings", "git_commit",
                 "side_python", "env_flags", *_BUILD_COLUMNS,
                 *(name for name in PAIRS_MACHINE_COLUMNS if name != "cpu_frequency_mhz"))
# Columns that are the session's, the same in every row.
_SESSION_COLUMNS = ("schema_version", "session_id", "host", "seed", "threshold", "alpha",
                    "min_pairs", "max_pairs", "cell_options")


def burst_seconds_per_step(call_ns: Sequence[int], calls_per_sample: int,
                           steps_per_call: int) -> float:
    """A burst's one number: the median over its samples of the time per training step.

    A sample is ``calls_per_sample`` consecutive calls; its time is the sum of theirs.
    Trailing calls that do not fill a sample are left out. NaN for no complete sample.
    """
    times = np.asarray(call_ns, dtype=np.float64)
    samples = times.size // calls_per_sample
    if samples == 0:
        return float("nan")
    per_sample = times[:samples * calls_per_sample].reshape(samples, calls_per_sample).sum(1)
    return float(np.median(per_sample)) * 1e-9 / (calls_per_sample * steps_per_call)


def _field(column: Column, value: Any) -> str:
    """One value as the writer writes it: None and NaN (a frame's missing number) empty, a
    whole float in an int column as the integer (the frame holds optional integers as
    floats)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column.type == "ints" and not isinstance(value, str):
        return " ".join(str(int(ns)) for ns in value)
    if column.type == "int" and isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return escape_text(text) if column.type == "str" else text


class PairsWriter:
    """Appends burst rows to ``<target>.partial``; :meth:`finish` gives it its final name.

    Every row is flushed to the operating system as it is written (a crash of the
    coordinator keeps it); :meth:`sync` also forces it to disk.
    """

    def __init__(self, target: Path, *, resumed: str | None = None, bursts: int = 0) -> None:
        """Open ``<target>.partial`` for a new session, or, with ``resumed``, for a session
        that continues the finished file ``target`` (see :meth:`resume`)."""
        self.target = target
        self.partial = target.with_name(target.name + PARTIAL_SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": never over an existing file, also not over another session's partial one.
        self._handle: TextIO | None = open(self.partial, "x", newline="",  # noqa: SIM115
                                           encoding="utf-8")
        self._resumed = resumed
        self._handle.write(csv_line(PAIRS_COLUMN_NAMES) if resumed is None else resumed)
        self.rows = 0
        self.bursts = bursts
        self.sync()

    @classmethod
    def resume(cls, target: Path, text: str, bursts: int) -> PairsWriter:
        """A writer that adds rows to the finished pairs file ``target``, whose text is
        ``text`` (as :func:`read_pairs_text` read it) holding ``bursts`` bursts.

        The file is never written in place: its text and the new rows go to
        ``<target>.partial``, which :meth:`finish` renames over ``target`` in one step
        (os.replace). A crash meanwhile leaves ``target`` as it was, and the partial file
        with every pair of both. New bursts are numbered on from ``bursts``.

        Raises:
            FileExistsError: when ``<target>.partial`` exists (a session resuming the file
                now, or one that was killed).
        """
        return cls(target, resumed=text, bursts=bursts)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (missing columns empty, but a missing ``replicas`` or ``convention``
        :data:`linfit.results.cell.KEY_DEFAULTS`) and flush it. ``sequence`` is the writer's:
        the number of ok rows before this one (empty in a failed row). Text that a
        spreadsheet would run as a formula gets a leading single quote (the reader drops
        it)."""
        if self._handle is None:
            raise RuntimeError("append() after finish()")
        unknown = set(row) - set(PAIRS_COLUMN_NAMES)
        if unknown:
            raise ValueError(f"unknown pairs columns: {sorted(unknown)}")
        record = {name: row.get(name, KEY_DEFAULTS.get(name, "")) for name in PAIRS_COLUMN_NAMES}
        record["schema_version"] = PAIRS_SCHEMA_VERSION
        ok = record["status"] == "ok"
        record["sequence"] = self.bursts if ok else ""
        self._handle.write(csv_line([_field(column, record[column.name])
                                     for column in PAIRS_COLUMNS]))
        self._handle.flush()
        self.rows += 1
        self.bursts += ok

    def sync(self) -> None:
        """Force what was written to disk."""
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def finish(self) -> Path | None:
        """Close the file and link it to its final name (``-2``, ``-3``, ... when taken).

        Returns:
            The final path, or None when no row was written (the partial file is removed).
        """
        if self._handle is None:
            return self.target
        self.sync()
        self._handle.close()
        self._handle = None
        if self.rows == 0:
            self.partial.unlink()
            return None if self._resumed is None else self.target
        os.chmod(self.partial, 0o644)
        if self._resumed is not None and _text_now(self.target) == self._resumed:
            # The file is as it was read: it becomes the file with the new rows at once.
            os.replace(self.partial, self.target)
            return self.target
        # A new session, or a resumed file that changed meanwhile: a name of its own.
        self.target = link_unique(self.partial, self.target)
        return self.target


def _text_now(path: Path) -> str | None:
    """The text of ``path`` as :func:`read_pairs_text` reads it; None when unreadable."""
    try:
        return open_input(path, "a pairs file", error=ResultsFileError)
    except LinfitError:
        return None


# The most bytes is_pairs_file reads to find the header: a header is ~350 bytes.
_HEADER_BYTES = 64 * 1024


def is_pairs_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a pairs file (its header has ``session_id``), by its first line.
    False for anything that is not a readable regular file (it never blocks on a FIFO)."""
    try:
        text = open_input(path, "a pairs file", max_bytes=_HEADER_BYTES, head=True)
    except LinfitError:
        return False
    try:
        header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    except csv.Error:
        return False
    return _MARKER in header


class _Reader:
    """One pass over a pairs file's text: parses and checks every row, then the session."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int | None, column: str | None, what: str) -> ResultsFileError:
        where = "" if line is None else f" line {line}"
        if column is not None:
            where += f", column {column}" if line is not None else f" column {column}"
        return ResultsFileError(f"{self.path}{where}: {what}")

    def records(self, text: str) -> list[tuple[int, list[str]]]:
        """(physical line, fields) of every non-blank record."""
        return csv_records(text, lambda line, what: self.fail(line, None, what))

    def value(self, line: int, column: Column, text: str) -> Any:
        """The typed value of one field (None for an empty number); type and domain."""
        if column.type == "str":
            value = unescape_text(text)
            # An empty cell of a required column with a vocabulary (status) is refused
            # as the value it is, not read as whatever the rest of the row implies.
            checked = value != "" or (column.required and bool(column.domain))
            problem = domain_problem(column, value) if checked else None
            if problem is not None:
                raise self.fail(line, column.name, problem)
            return value
        if text == "":
            return () if column.type == "ints" else None
        if column.type == "float":
            return self.float_value(line, column, text)
        whole = _INTEGER if column.type == "int" else _INTEGERS
        if not whole.fullmatch(text):
            raise self.fail(line, column.name, f"{text!r} is not an integer" if column.type
                            == "int" else "holds a value that is not an integer")
        values = tuple(map(int, text.split()))
        if values and (max(values) > _MAX_INT or min(values) < -_MAX_INT):
            raise self.fail(line, column.name, "holds a value beyond a 64-bit integer")
        value: Any = values if column.type == "ints" else values[0]
        problem = domain_problem(column, value)
        if problem is not None:
            raise self.fail(line, column.name, problem)
        return value

    def float_value(self, line: int, column: Column, text: str) -> float:
        """A float field's value: finite, within its domain."""
        try:
            value = float(text)
        except ValueError:
            raise self.fail(line, column.name, f"{text!r} is not a number") from None
        problem = (f"{text!r} is NaN or infinite" if not np.isfinite(value)
                   else domain_problem(column, value))
        if problem is not None:
            raise self.fail(line, column.name, problem)
        return value

    def row(self, line: int, fields: Sequence[str], index: Mapping[str, int],
            columns: Sequence[Column]) -> dict[str, Any]:
        row = {column.name: self.value(line, column, fields[index[column.name]])
               for column in columns}
        ok = row["status"] == "ok"
        for column in columns:
            value = row[column.name]
            empty = value is None or value == "" or value == ()
            if column.name in _BURST_COLUMNS:
                if ok and empty:
                    raise self.fail(line, column.name, "is empty in an ok row, where the "
                                    "burst is required")
                if not ok and not empty:
                    raise self.fail(line, column.name, "holds a value in a failed row, "
                                    "which has no burst")
            elif empty and column.required and (ok or column.name != "calls_per_sample"):
                raise self.fail(line, column.name, "is empty where a value is required")
        if ok and row["round"] < 0:
            raise self.fail(line, "round", f"{row['round']} in an ok row (a burst's round is "
                            "0, 1, ...; -1 only where the cell failed)")
        if not ok and row["round"] != -1:
            raise self.fail(line, "round", f"{row['round']} in a failed row (which has round "
                            "-1)")
        if "tensorflow_commit" in row and row["tensorflow_commit"] != git_commit(
                row["tensorflow_git_version"]):
            raise self.fail(line, "tensorflow_commit", f"{row['tensorflow_commit']!r} is not the "
                            "commit in tensorflow_git_version "
                            f"({git_commit(row['tensorflow_git_version'])!r})")
        if ok and len(row["call_ns"]) < row["calls_per_sample"]:
            raise self.fail(line, "call_ns", f"{len(row['call_ns'])} calls, fewer than one "
                            f"sample of calls_per_sample {row['calls_per_sample']}")
        return row

    def read(self, text: str) -> list[dict[str, Any]]:
        if not text.strip():
            raise self.fail(None, None, "the file is empty")
        physical = self.records(text)
        (_, header), data = physical[0], physical[1:]
        if _MARKER not in header or "schema_version" not in header:
            raise self.fail(None, None, "not a linfit pairs file (it has no session_id "
                            "column)")
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise self.fail(1, None, f"the header names {', '.join(twice)} twice")
        if not data:
            raise self.fail(None, None, "holds a header but no bursts")
        if not text.endswith(("\n", "\r")):
            raise self.fail(data[-1][0], None, "the last row has no line end: it is cut "
                            "short (a torn write?)")
        index = {name: position for position, name in enumerate(header)}
        first = self.version(data[0][0], data[0][1][index["schema_version"]])
        columns = [column for column in PAIRS_COLUMNS if first in column.versions]
        missing = [c.name for c in columns if c.name not in index]
        if missing:
            raise self.fail(None, None, f"missing columns: {', '.join(missing)}")
        unknown = [name for name in header if name not in _BY_NAME]
        if unknown:
            raise self.fail(1, None, f"unknown columns: {', '.join(unknown)}")
        rows = []
        for line, fields in data:
            if len(fields) != len(header):
                if len(fields) < len(header):
                    raise self.fail(line, header[len(fields)], f"the row ends after "
                                    f"{len(fields)} of the header's {len(header)} fields "
                                    "(cut short?)")
                raise self.fail(line, None, f"{len(fields)} fields where the header has "
                                f"{len(header)} (extra after column {header[-1]})")
            version = self.version(line, fields[index["schema_version"]])
            if version != first:
                raise self.fail(line, "schema_version", f"{version} differs from the first "
                                f"row's {first}")
            rows.append((line, self.row(line, fields, index, columns)))
        if first == 1:
            rows = list(zip([line for line, _ in rows], _upgrade(row for _, row in rows),
                            strict=True))
        if first < 3:
            # No side named a build before schema 3, and none recorded TensorFlow's commit.
            rows = [(line, {**row, **dict.fromkeys(_BUILD_COLUMNS, "")}) for line, row in rows]
        self.session(rows)
        return [row for _, row in rows]

    def version(self, line: int, text: str) -> int:
        readable = tuple(str(version) for version in READABLE_PAIRS_SCHEMA_VERSIONS)
        if text not in readable:
            raise self.fail(line, "schema_version", f"schema_version {text!r} is not one this "
                            f"linfit reads (it reads {', '.join(readable[:-1])} and "
                            f"{readable[-1]})")
        return int(text)

    def session(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """What holds across rows: one session, sides 0..S-1 each with one label and one
        interpreter, bursts numbered in order, each cell's rounds 0, 1, ... on every side
        with one burst per side and position, and no row twice."""
        first = rows[0][1]
        # A side is the index most rows give its label (and the label most rows give its
        # index): the row that disagrees is the one named.
        pairs = Counter((row["side_index"], row["side_label"]) for _, row in rows)
        owner: dict[str, int] = {}
        name: dict[int, str] = {}
        for (side, label), _ in pairs.most_common():
            owner.setdefault(label, side)
            name.setdefault(side, label)
        sides: dict[int, tuple[int, dict[str, Any]]] = {}
        session_columns = [column for column in _SESSION_COLUMNS if column in first]
        side_columns = [column for column in _SIDE_COLUMNS if column in first]
        part_starts: dict[int, tuple[int, int]] = {}
        for line, row in rows:
            for column in session_columns:
                if row[column] != first[column]:
                    raise self.fail(line, column, f"{row[column]!r} differs from the first "
                                    f"row's {first[column]!r} (a pairs file is one session)")
            side, label = row["side_index"], row["side_label"]
            if owner[label] != side:
                raise self.fail(line, "side_index", f"{side} is labelled {label!r}, the label "
                                f"of side {owner[label]}")
            if name[side] != label:
                raise self.fail(line, "side_label", f"{label!r} where side {side} is "
                                f"labelled {name[side]!r}")
            sides.setdefault(side, (line, row))
            if row.get("part") is not None:
                start = part_starts.setdefault(row["part"], (line, row["part_start_unix_ns"]))
                if row["part_start_unix_ns"] != start[1]:
                    raise self.fail(line, "part_start_unix_ns", f"{row['part_start_unix_ns']} "
                                    f"differs from part {row['part']}'s {start[1]} (line "
                                    f"{start[0]})")
            for column in side_columns:
                if row.get(column) != sides[side][1].get(column):
                    raise self.fail(line, column, f"{row[column]!r} differs from side {side}'s "
                                    f"{sides[side][1][column]!r} (line {sides[side][0]})")
        invented = sorted(set(sides) - set(range(len(sides))))
        if invented:
            line = sides[invented[0]][0]
            raise self.fail(line, "side_index", f"{invented[0]} is not one of the file's "
                            f"{len(sides)} sides (0 to {len(sides) - 1})")
        self.duplicates(rows)
        ok = [(line, row) for line, row in rows if row["status"] == "ok"]
        for number, (line, row) in enumerate(ok):
            if row["sequence"] != number:
                raise self.fail(line, "sequence", f"{row['sequence']} where the bursts so far "
                                f"make it {number} (bursts are numbered 0, 1, ... in order)")
            if row["order_position"] >= len(sides):
                raise self.fail(line, "order_position", f"{row['order_position']} with "
                                f"{len(sides)} sides (0 to {len(sides) - 1})")

    def duplicates(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """No burst, failed row or order position twice; each side's bursts of a cell in
        rounds 0, 1, ... (a resumed part may skip a torn one: :func:`_skips_torn_round`);
        one calls_per_sample per cell."""
        seen: dict[tuple[Any, ...], int] = {}
        bursts: Counter[tuple[Any, ...]] = Counter()
        parts: dict[tuple[Any, ...], int] = {}
        rounds_of_cell: dict[tuple[Any, ...], set[int]] = {}
        calls: dict[tuple[Any, ...], tuple[int, int]] = {}
        for line, row in rows:
            cell = tuple(row[name] for name in KEY_COLUMNS)
            keys = [("burst", cell, row["side_index"], row["round"])]
            if row["status"] == "ok":
                keys.append(("position", cell, row["round"], row["order_position"]))
                before = calls.setdefault(cell, (line, row["calls_per_sample"]))
                if before[1] != row["calls_per_sample"]:
                    raise self.fail(line, "calls_per_sample", f"{row['calls_per_sample']} "
                                    f"where the cell's bursts have {before[1]} (line "
                                    f"{before[0]})")
            for key in keys:
                if key in seen:
                    what = ("this side's burst of the cell's round" if key[0] == "burst"
                            else "this order_position in the cell's round")
                    raise self.fail(line, "side_index" if key[0] == "burst" else
                                    "order_position", f"a second row for {what} (first at "
                                    f"line {seen[key]})")
                seen[key] = line
            if row["status"] == "ok":
                side = (cell, row["side_index"])
                expected = bursts[side]
                if row["round"] != expected and not _skips_torn_round(
                        row, expected, parts.get(side), rounds_of_cell.get(cell, set())):
                    raise self.fail(line, "round", f"{row['round']} where this side's bursts "
                                    f"of the cell so far make it {expected} (rounds are 0, 1, "
                                    "... in order)")
                bursts[side] = row["round"] + 1
                parts[side] = row.get("part")
                rounds_of_cell.setdefault(cell, set()).add(row["round"])


def _skips_torn_round(row: Mapping[str, Any], expected: int, last_part: int | None,
                      rounds: set[int]) -> bool:
    """Whether a side's burst may skip round ``expected`` of its cell: only the first burst
    of a resumed part (``part`` above the side's last), skipping one round that another
    side has, a pair the previous part left torn (it ended between the pair's bursts)."""
    part = row.get("part")
    return (part is not None and last_part is not None and part > last_part
            and row["round"] == expected + 1 and expected in rounds)


def _upgrade(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Schema-1 rows with the key columns of schema 2: one replica, and TensorFlow's
    compiled variants called with arguments, as linfit then called them."""
    from linfit.backends import VARIANTS_BY_BACKEND

    def convention(backend: str, variant: str) -> str:
        known = VARIANTS_BY_BACKEND.get(backend, {}).get(variant)
        return legacy_convention(backend, known is not None and known.compiled)

    return [{**row, "replicas": 1, "convention": convention(row["backend"], row["variant"])}
            for row in rows]


def read_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a pairs file (also a ``.partial`` one). The file is only read.

    Returns:
        One row per burst (and per failed cell and side), typed; ``call_ns`` holds tuples
        of ints, and ``seconds_per_step`` the burst's one number
        (:func:`burst_seconds_per_step`, NaN in failed rows). Integers that a failed row
        (or a file before schema 3) does not have are -1. A schema-1 file's rows get
        ``replicas`` 1 and the convention linfit then used
        (:func:`linfit.results.cell.legacy_convention`). The optional numbers of schema 3
        that are measurements (the machine's, the load, the peak memory) are floats, NaN
        where a row or an older file has none; its text columns are '' there.

    Raises:
        ResultsFileError: one line naming the file and, where it applies, the line and the
            column: a missing or empty file, not a regular file, a foreign file, an unknown
            schema_version; missing, unknown or repeated columns; a row with another number
            of fields than the header, or a last row without its line end (cut short); a
            value of the wrong type or outside its domain (status other than ok/failed, an
            unknown backend or dtype, a time, size or calls_per_sample that is not
            strictly positive, a negative side, position or sequence, a round below -1);
            an ok row without its burst or a failed row with one; a round of -1 in an ok
            row or other than -1 in a failed one; fewer calls than one sample; a second
            session, label or interpreter for a side; a side outside 0..S-1; bursts not
            numbered 0, 1, ... in order; an order_position beyond the sides; a cell whose
            bursts differ in calls_per_sample; a burst, failed row or order position twice;
            a side's rounds of a cell that are not 0, 1, ... in order (a resumed part may
            skip one round that the part before left torn); a part whose rows differ in
            part_start_unix_ns.
    """
    return read_pairs_text(path)[0]


def read_pairs_text(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, str]:
    """:func:`read_pairs`, and the file's text as it was read (what
    :meth:`PairsWriter.resume` continues). Raises as :func:`read_pairs`."""
    import pandas as pd  # only here: the frame is for analysis and figures

    path = Path(path)
    reader = _Reader(path)
    text = open_input(path, "a pairs file", error=ResultsFileError)
    rows = reader.read(text)
    frame = pd.DataFrame.from_records(rows, columns=list(PAIRS_COLUMN_NAMES))
    for column in PAIRS_COLUMNS:
        if column.name in _MEASURED_NUMBERS:
            frame[column.name] = pd.to_numeric(frame[column.name]).astype(np.float64)
        elif column.type == "int":
            frame[column.name] = frame[column.name].fillna(-1).astype(np.int64)
        elif column.type == "float":
            frame[column.name] = frame[column.name].astype(float)
        elif column.type == "str":
            # '' for the text columns a file of an older schema does not have
            frame[column.name] = frame[column.name].astype(object).fillna("")
    frame["seconds_per_step"] = [
        burst_seconds_per_step(ns, cps, k) if status == "ok" else float("nan")
        for ns, cps, k, status in zip(frame["call_ns"], frame["calls_per_sample"],
                                      frame["steps_per_call"], frame["status"], strict=True)]
    return frame, text
