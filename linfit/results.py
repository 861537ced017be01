"""The results CSV: its columns (declared once), its one writer and its one reader.

One row per benchmark cell, one :class:`linfit.record.CellResult` per row. Since schema 2
the file keeps each round's **per-call** time exactly (``call_samples_seconds``, repr
floats, space-separated); every ``s/step`` column (min, median, mean, stddev, IQR, max)
and ``rounds`` is derived from those samples for pandas users, and the reader refuses a
file where they disagree. Schema-1 files (per-step ``samples_seconds``) are still read;
the columns they lack come back as "unknown" or empty. Schema 3 adds ``replicas`` and
``convention`` to the cell key and a ``strategy`` column; schema-1 and -2 rows get
replicas 1, strategy ``none`` and the convention linfit used then
(:func:`legacy_convention`). Schema 4 adds ``floor_rounds`` and ``floor_spread``: the floor
is the best of several probe rounds, and how far apart those rounds were (empty in older
files).

This module is also the one home of the atomic-write helpers
(:func:`atomic_write_text`, :func:`atomic_write_bytes`) and of the duplicate-cell check
(:func:`duplicate_cells`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import pandas as pd

from linfit._errors import ResultsFileError

if TYPE_CHECKING:
    from linfit.record import CellResult

__all__ = [
    "ALL_COLUMNS",
    "ARGS_CONVENTION",
    "COLUMNS",
    "COLUMN_NAMES",
    "KEY_COLUMNS",
    "KEY_DEFAULTS",
    "NO_STRATEGY",
    "READABLE_SCHEMA_VERSIONS",
    "SCHEMA_VERSION",
    "STATISTIC_RTOL",
    "Cell",
    "Column",
    "ResultSet",
    "atomic_write_bytes",
    "atomic_write_text",
    "columns_of",
    "duplicate_cells",
    "format_samples",
    "is_missing",
    "legacy_convention",
    "read_frame",
    "read_results",
    "records_frame",
    "render_results",
    "write_results",
]

# Bump when a column changes meaning or is removed; the reader refuses versions it does
# not know. 2: per-call samples (call_samples_seconds) replace per-step samples_seconds;
# reference, reference_w/b, check_placement/traces/convergence and run_interrupted added.
# 3: the cell key gains replicas and convention (issues 12 and 13); strategy added.
# 4: floor_rounds and floor_spread (issue 12: the floor is the best of several probe rounds).
SCHEMA_VERSION = 4
READABLE_SCHEMA_VERSIONS = (1, 2, 3, 4)

# How linfit called a TensorFlow compiled step before schema 3 recorded it: W, b, x, y and
# the learning rate as arguments of the tf.function (issue 12's "arguments" convention).
ARGS_CONVENTION = "args"
# The strategy of a cell that runs on one device, without tf.distribute or sharding.
NO_STRATEGY = "none"

# How closely a stored statistic must agree with the one derived from the samples.
# The writer stores the derived value itself, so a genuine file agrees to the last bit
# for schema 2; schema-1 files stored per-step samples, which come back as per-call *
# k / k, a few ulps (~1e-16 relative) away. 1e-9 leaves room for both and still catches
# any edit a person could make by hand.
STATISTIC_RTOL = 1e-9

# Column domains the reader enforces, beyond the type.
_POSITIVE = "positive"  # strictly > 0 (times, sizes, bandwidths)
_NON_NEGATIVE = "non-negative"
_RATIO = "ratio"  # >= 1 (worst / best)
_STATUS = "status"
_OUTCOME = "outcome"
_BACKEND = "backend"
_DTYPE = "dtype"


@dataclass(frozen=True)
class Column:
    """One column of the results CSV.

    Attributes:
        name, type, unit, doc: the column; type is int, float, bool, str or samples.
        required: False: may be empty in an ok row (e.g. floors not measured).
        domain: the values allowed beyond the type ("positive", "non-negative", "ratio"
            (>= 1), "status", "outcome", "backend", "dtype"; '' = any).
        versions: the schema versions that have this column.
    """

    name: str
    type: str
    unit: str
    doc: str
    required: bool = True
    domain: str = ""
    versions: tuple[int, ...] = (1, 2, 3, 4)


def _c(name: str, type_: str, unit: str, doc: str, required: bool = True, domain: str = "",
       versions: tuple[int, ...] = (1, 2, 3, 4)) -> Column:
    return Column(name, type_, unit, doc, required, domain, versions)


_V2 = (2, 3, 4)
_V3 = (3, 4)
_V4 = (4,)

# Every column of every readable version, in file order; columns_of() picks a version's.
ALL_COLUMNS: tuple[Column, ...] = (
    # run
    _c("schema_version", "int", "", "version of this column layout"),
    _c("run_id", "str", "", "UTC time, host and short commit of the run; also the file name"),
    _c("timestamp_utc", "str", "ISO 8601", "when the run started"),
    _c("git_commit", "str", "", "short commit of the linfit checkout ('unknown' outside git)"),
    _c("git_dirty", "bool", "", "whether tracked files differed from that commit"),
    _c("run_interrupted", "bool", "", "the session was interrupted (Ctrl-C, SIGTERM) or the "
       "file was recovered from a journal: cells may be missing", versions=_V2),
    # machine
    _c("host", "str", "", "host name"),
    _c("os", "str", "", "system, kernel release and architecture"),
    _c("python_version", "str", "", "Python version"),
    _c("numpy_version", "str", "", "NumPy version"),
    _c("cpu_model", "str", "", "CPU model name"),
    _c("backend", "str", "", "framework: tensorflow, jax or torch", domain=_BACKEND),
    _c("backend_version", "str", "", "the framework's version"),
    _c("backend_build", "str", "", "CUDA/cuDNN versions the framework was built with, if any",
       required=False),
    # device
    _c("device", "str", "", "device id as asked for: CPU:0, GPU:0, ..."),
    _c("device_kind", "str", "", "CPU or GPU"),
    _c("device_name", "str", "", "CPU model or GPU name"),
    _c("device_details", "str", "", "driver, CUDA, compute capability where known",
       required=False),
    _c("placement", "str", "", "device that held the step's result, as the framework reported"),
    # environment
    _c("tf_enable_onednn_opts", "str", "", "TF_ENABLE_ONEDNN_OPTS as set ('' = unset)",
       required=False),
    _c("xla_flags", "str", "", "XLA_FLAGS as set", required=False),
    _c("tf_xla_flags", "str", "", "TF_XLA_FLAGS as set", required=False),
    _c("omp_num_threads", "str", "", "OMP_NUM_THREADS as set", required=False),
    _c("intra_op_threads", "int", "threads", "intra-op threads reported (0 = default)",
       domain=_NON_NEGATIVE),
    _c("inter_op_threads", "int", "threads", "inter-op threads reported (0 = default)",
       domain=_NON_NEGATIVE),
    # cell
    _c("variant", "str", "", "how the step runs: eager, function, xla, xla-loop, jit, ..."),
    _c("compiled", "bool", "", "whether the step is traced/compiled"),
    _c("xla", "bool", "", "whether XLA compiles the step"),
    _c("loop", "bool", "", "whether one call runs steps_per_call steps in a device-side loop"),
    _c("n_examples", "int", "examples", "data set size", domain=_POSITIVE),
    _c("dtype", "str", "", "float32, float64, bfloat16 or float16", domain=_DTYPE),
    _c("steps_per_call", "int", "steps", "training steps per timed call", domain=_POSITIVE),
    _c("replicas", "int", "replicas", "replicas the step's data are split across (1: one "
       "device, no strategy)", domain=_POSITIVE, versions=_V3),
    _c("convention", "str", "", "how a TensorFlow compiled step is called: args, captured, "
       "concrete, ... ('' where it does not apply)", required=False, versions=_V3),
    _c("strategy", "str", "", "how replicas share the step: none, mirrored, multi-worker, "
       "jax-sharding", versions=_V3),
    _c("learning_rate", "float", "", "gradient-descent step size", domain=_POSITIVE),
    _c("seed", "int", "", "NumPy seed of the data", domain=_NON_NEGATIVE),
    # timing: every time is per training step, derived from the samples
    _c("rounds", "int", "", "timed rounds: the number of samples", domain=_POSITIVE),
    _c("iterations", "int", "calls", "calls per round", domain=_POSITIVE),
    _c("min_seconds", "float", "s/step", "fastest round", domain=_POSITIVE),
    _c("median_seconds", "float", "s/step", "median round", domain=_POSITIVE),
    _c("mean_seconds", "float", "s/step", "mean of rounds", domain=_POSITIVE),
    _c("stddev_seconds", "float", "s/step", "standard deviation of rounds",
       domain=_NON_NEGATIVE),
    _c("iqr_seconds", "float", "s/step", "interquartile range of rounds", domain=_NON_NEGATIVE),
    _c("max_seconds", "float", "s/step", "slowest round", domain=_POSITIVE),
    _c("first_call_seconds", "float", "s", "first call, whole (trace + compile + its steps)",
       domain=_POSITIVE),
    _c("traces", "int", "", "times the step was traced/compiled during the cell (1 when compiled)",
       domain=_NON_NEGATIVE),
    _c("samples_seconds", "samples", "s/step", "every round's time per step, space-separated",
       domain=_POSITIVE, versions=(1,)),
    _c("call_samples_seconds", "samples", "s/call",
       "every round's time per call (k steps), space-separated, exact (repr)",
       domain=_POSITIVE, versions=_V2),
    # result
    _c("convergence_steps", "int", "steps", "steps from W=5, b=0 before final_w/final_b",
       domain=_POSITIVE),
    _c("final_w", "float", "", "W after convergence_steps"),
    _c("final_b", "float", "", "b after convergence_steps"),
    _c("final_loss", "float", "", "loss at the start of the last convergence call"),
    _c("w_ols", "float", "", "float64 least-squares W of the same data"),
    _c("b_ols", "float", "", "float64 least-squares b of the same data"),
    _c("reference", "str", "", "the run W and b were checked against: 'backend variant "
       "device' (linfit.convergence.reference_for), 'unknown' in schema-1 files",
       versions=_V2),
    _c("reference_w", "float", "", "that run's W", required=False, versions=_V2),
    _c("reference_b", "float", "", "that run's b", required=False, versions=_V2),
    _c("check_placement", "str", "", "placement check: ok, failed, not-run (unknown: a "
       "converted schema-1 row, as in the next two)", domain=_OUTCOME, versions=_V2),
    _c("check_traces", "str", "", "trace-count check: ok, failed, not-run", domain=_OUTCOME,
       versions=_V2),
    _c("check_convergence", "str", "", "W and b check: ok, failed, not-run", domain=_OUTCOME,
       versions=_V2),
    _c("status", "str", "", "ok, or failed (see message)", domain=_STATUS),
    _c("message", "str", "", "why the cell failed ('' when ok)", required=False),
    # floors (issue 7): empty when floors were not measured
    _c("bytes_min", "int", "bytes", "bytes of x and y, read once per step", required=False,
       domain=_POSITIVE),
    _c("read_bandwidth_bytes_per_second", "float", "B/s",
       "measured sustained read bandwidth of the device (in the round that gave "
       "floor_seconds)", required=False, domain=_POSITIVE),
    _c("dispatch_floor_seconds", "float", "s/call",
       "measured cost of the backend's cheapest compiled call on the device (in the round "
       "that gave floor_seconds)", required=False, domain=_POSITIVE),
    _c("floor_seconds", "float", "s/step",
       "max(bytes_min / read bandwidth, dispatch floor / steps_per_call), in the probe round "
       "where it is lowest", required=False, domain=_POSITIVE),
    _c("floor_rounds", "int", "rounds", "probe rounds floor_seconds is the best of",
       required=False, domain=_POSITIVE, versions=_V4),
    _c("floor_spread", "float", "", "the worst round's floor / the best round's (>= 1)",
       required=False, domain=_RATIO, versions=_V4),
    _c("efficiency", "float", "", "floor_seconds / median_seconds (1.0 = at the floor)",
       required=False, domain=_POSITIVE),
)


def columns_of(version: int) -> tuple[Column, ...]:
    """The columns of schema ``version``, in file order.

    Raises:
        ValueError: for a version this linfit does not read.
    """
    if version not in READABLE_SCHEMA_VERSIONS:
        raise ValueError(f"schema version {version} is not one of {READABLE_SCHEMA_VERSIONS}")
    return tuple(column for column in ALL_COLUMNS if version in column.versions)


COLUMNS: tuple[Column, ...] = columns_of(SCHEMA_VERSION)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
KEY_COLUMNS = ("backend", "device", "variant", "n_examples", "dtype", "steps_per_call",
               "replicas", "convention")
# The key columns added in schema 3, and their value in a row that lacks them (an older
# file's, journal's or harness's row): one device, no calling convention recorded.
KEY_DEFAULTS: Mapping[str, Any] = {"replicas": 1, "convention": ""}

# Columns derived from the samples; the reader checks them, the record recomputes them.
_STATISTICS = ("min_seconds", "median_seconds", "mean_seconds", "stddev_seconds",
               "iqr_seconds", "max_seconds")


@dataclass(frozen=True, order=True)
class Cell:
    """The key of one benchmark cell: everything else measured hangs off it.

    Attributes:
        backend, device, variant, n_examples, dtype, steps_per_call: what runs, where, on
            how much data, and how many steps one call makes.
        replicas: replicas the data are split across (1: one device, no strategy).
        convention: how a TensorFlow compiled step is called (``args``, ``captured``,
            ``concrete``, ...); '' where that does not apply.
    """

    backend: str
    device: str
    variant: str
    n_examples: int
    dtype: str
    steps_per_call: int
    replicas: int = 1
    convention: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Cell:
        """The cell of a result row (a dict or a pandas row); a row without ``replicas`` or
        ``convention`` (or with no value there) gets :data:`KEY_DEFAULTS`."""
        replicas = row.get("replicas")
        convention = row.get("convention")
        return cls(str(row["backend"]), str(row["device"]), str(row["variant"]),
                   int(row["n_examples"]), str(row["dtype"]), int(row["steps_per_call"]),
                   KEY_DEFAULTS["replicas"] if is_missing(replicas) else int(replicas),
                   KEY_DEFAULTS["convention"] if is_missing(convention) else str(convention))

    @property
    def qualifiers(self) -> str:
        """The replicas and convention where they are not the default (``r=2``,
        ``captured``), space-separated; '' for a one-device cell called as linfit always did.
        """
        parts = [f"r={self.replicas}"] if self.replicas != KEY_DEFAULTS["replicas"] else []
        if self.convention not in (KEY_DEFAULTS["convention"], ARGS_CONVENTION):
            parts.append(self.convention)
        return " ".join(parts)

    @property
    def variant_label(self) -> str:
        """The variant with its :attr:`qualifiers`, for a table's variant column:
        ``function``, ``function r=2``, ``xla captured``."""
        return f"{self.variant} {self.qualifiers}" if self.qualifiers else self.variant

    def __str__(self) -> str:
        text = (f"{self.backend} {self.device} {self.variant} n={self.n_examples:g} "
                f"{self.dtype} k={self.steps_per_call}")
        return f"{text} {self.qualifiers}" if self.qualifiers else text


def is_missing(value: Any) -> bool:
    """Whether a row's value means "no value": None, '' or NaN (the one home of that test:
    the reader, the writer and :meth:`linfit.record.CellResult.from_row` use it)."""
    return value is None or (isinstance(value, str) and value == "") or (
        isinstance(value, float) and math.isnan(value))


def legacy_convention(backend: str, compiled: bool) -> str:
    """The calling convention of a cell from before schema 3 recorded one, and of a cell
    whose backend does not say: ``args`` for TensorFlow's compiled variants (linfit passed
    W, b, x, y and the learning rate as arguments), '' elsewhere.

    Args:
        backend: the cell's backend.
        compiled: whether its variant is traced/compiled.
    """
    return ARGS_CONVENTION if backend == "tensorflow" and compiled else ""


def format_samples(samples: Iterable[float]) -> str:
    """Times as one space-separated field, exact to float64 (repr)."""
    return " ".join(repr(float(s)) for s in samples)


def duplicate_cells(cells: Iterable[Cell]) -> tuple[int, int, Cell] | None:
    """The first cell that appears twice: (index of its first, index of its twin, cell).

    The one home of the duplicate-cell check (reader, writer, plot and report inputs).

    Args:
        cells: cells in order.

    Returns:
        None when every cell is unique.
    """
    seen: dict[Cell, int] = {}
    for index, cell in enumerate(cells):
        if cell in seen:
            return seen[cell], index, cell
        seen[cell] = index
    return None


# --- atomic writes ---------------------------------------------------------------------


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *,
                       overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then
    linked (or, with ``overwrite``, renamed) into place. A reader never sees half a file.

    The one home of atomic writes: results, reports, floors, figures.

    Args:
        path: the file to create; its folder is created when missing.
        data: the whole content.
        overwrite: replace an existing file (os.replace) instead of refusing.

    Returns:
        The path written.

    Raises:
        FileExistsError: when ``path`` exists and ``overwrite`` is false (also when it
            appeared while writing: link() fails, there is no check-then-write race).
        OSError: when the folder cannot be created or written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); results and reports are for everyone.
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *,
                      overwrite: bool = False) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8 (newlines as given).

    Raises:
        FileExistsError: when ``path`` exists and ``overwrite`` is false.
        OSError: when the folder cannot be created or written.
    """
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


# --- the writer ------------------------------------------------------------------------


def _format(value: Any, column: Column) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column.type == "samples":
        return value if isinstance(value, str) else format_samples(value)
    if column.type == "bool":
        return value if isinstance(value, str) else str(bool(value))
    if column.type == "int" and not isinstance(value, str):
        return str(int(value))
    if column.type == "float" and not isinstance(value, str):
        # repr: the shortest text that reads back as the same float64.
        return repr(float(value))
    return str(value)


def _as_record(row: CellResult | Mapping[str, Any]) -> CellResult:
    from linfit.record import CellResult

    if isinstance(row, CellResult):
        return row
    known = {column.name for column in ALL_COLUMNS}
    unknown = set(row) - known
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    return CellResult.from_row(row)


def render_results(rows: Iterable[CellResult | Mapping[str, Any]]) -> str:
    """The CSV text of result records (or row dicts), in the current schema.

    Args:
        rows: records, or row dicts (see :func:`write_results`).

    Returns:
        The header and one line per record; floats as repr (exact), samples
        space-separated, ``run_interrupted`` False where a record does not say.

    Raises:
        ValueError: for a row with a column this schema does not know, a status or check
            outcome outside the vocabulary, or a duplicated cell.
    """
    records = [_as_record(row) for row in rows]
    twin = duplicate_cells(record.cell for record in records)
    if twin is not None:
        raise ValueError(f"rows {twin[0]} and {twin[1]}: duplicated cell ({twin[2]})")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for record in records:
        row = record.to_row()
        row["schema_version"] = SCHEMA_VERSION
        if row.get("run_interrupted") is None:
            # A harness that does not say otherwise ran to its end.
            row["run_interrupted"] = False
        if is_missing(row.get("strategy")):
            # A record that names no strategy ran on one device.
            row["strategy"] = NO_STRATEGY
        writer.writerow([_format(row.get(column.name), column) for column in COLUMNS])
    return buffer.getvalue()


def write_results(rows: Iterable[CellResult | Mapping[str, Any]],
                  path: str | os.PathLike[str]) -> Path:
    """Write results to a new CSV at ``path``, atomically, never over an existing file.

    Args:
        rows: :class:`~linfit.record.CellResult` records, or row dicts (column -> value;
            they are converted with :meth:`CellResult.from_row`, so statistic columns in
            them are recomputed from the samples).
        path: the file to create.

    Returns:
        The path written.

    Raises:
        FileExistsError: when ``path`` exists already.
        ValueError: as :func:`render_results`.
        OSError: when the folder cannot be created or written.
    """
    return atomic_write_text(path, render_results(rows))


# --- the reader ------------------------------------------------------------------------


class ResultSet(Sequence["CellResult"]):
    """The records of one results file, in file order.

    Attributes:
        path: the file they were read from.
        schema_version: the file's schema version.
    """

    def __init__(self, records: Iterable[CellResult], path: Path | None = None,
                 schema_version: int = SCHEMA_VERSION) -> None:
        self._records = tuple(records)
        self.path = path
        self.schema_version = schema_version

    @overload
    def __getitem__(self, index: int) -> CellResult: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CellResult]: ...

    def __getitem__(self, index: int | slice) -> CellResult | Sequence[CellResult]:
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CellResult]:
        return iter(self._records)

    def __repr__(self) -> str:
        return f"ResultSet({len(self)} cells from {self.path})"

    def by_cell(self) -> dict[Cell, CellResult]:
        """The records keyed by cell (cells are unique in a file)."""
        return {record.cell: record for record in self._records}

    def to_frame(self) -> pd.DataFrame:
        """One row per cell, typed: the current schema's :data:`COLUMNS`, but with
        ``samples_seconds`` (each round's time **per step**, a tuple of floats, as frames
        have always had it) in place of ``call_samples_seconds``, so that the frame holds
        one truth: a per-call time is ``samples_seconds`` x ``steps_per_call``.

        Empty text columns are ''; numbers that are missing are NaN. The records stay the
        exact source (a frame turned back into records goes through per-step times).
        """
        return records_frame(self._records, self.schema_version)


def records_frame(records: Iterable[CellResult],
                  schema_version: int = SCHEMA_VERSION) -> pd.DataFrame:
    """Records as the pandas frame :meth:`ResultSet.to_frame` documents.

    Args:
        records: the records, in the frame's row order.
        schema_version: the value of the frame's ``schema_version`` column.

    Returns:
        One typed row per record.
    """
    rows = []
    for record in records:
        row = record.to_row()
        row["schema_version"] = schema_version
        del row["call_samples_seconds"]
        row["samples_seconds"] = record.per_step_seconds
        for column in COLUMNS:
            if column.type == "str" and row.get(column.name) is None:
                row[column.name] = ""
        rows.append(row)
    names = [name if name != "call_samples_seconds" else "samples_seconds"
             for name in COLUMN_NAMES]
    frame = pd.DataFrame.from_records(rows, columns=names)
    for column in COLUMNS:
        if column.type in ("int", "float"):
            frame[column.name] = pd.to_numeric(frame[column.name])
    return frame


def _fail(path: Path, line: int | None, column: str | None, what: str) -> ResultsFileError:
    where = "" if line is None else f" line {line}"
    if column is not None:
        where += f", column {column}" if line is not None else f" column {column}"
    return ResultsFileError(f"{path}{where}: {what}")


def _physical_records(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(first physical line, fields) of every non-blank CSV record; a quoted field may span
    lines, so the record's line is where it starts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    previous = 0
    # A samples field of thousands of rounds exceeds csv's default limit of 128 KiB; no
    # field can be longer than the whole text. The limit is global: restored in finally.
    limit = csv.field_size_limit(max(len(text) + 1, csv.field_size_limit()))
    try:
        for fields in reader:
            if fields:
                records.append((previous + 1, fields))
            previous = reader.line_num
    except csv.Error as error:
        raise _fail(path, previous + 1, None, f"not a readable CSV ({error})") from None
    finally:
        csv.field_size_limit(limit)
    return records


def _parse_int(text: str) -> int:
    value = float(text)
    if not math.isfinite(value) or value != int(value):
        raise ValueError
    return int(value)


def _parse_value(path: Path, line: int, column: Column, text: str) -> Any:
    """The typed value of one field, or None for an empty one; checks type and domain."""
    if text == "":
        return "" if column.type == "str" else None
    what = None
    value: Any = text
    try:
        if column.type == "int":
            value = _parse_int(text)
        elif column.type == "float":
            value = float(text)
            if not math.isfinite(value):
                what = f"{text!r} is NaN or infinite"
        elif column.type == "samples":
            value = tuple(float(v) for v in text.split())
            if not all(math.isfinite(v) for v in value):
                what = "holds NaN or infinite times"
        elif column.type == "bool":
            if text.lower() not in ("true", "false"):
                what = f"{text!r} is not True or False"
            value = text.lower() == "true"
    except ValueError:
        kind = {"int": "an integer", "float": "a number"}.get(column.type)
        what = (f"{text!r} is not {kind}" if kind
                else "holds a value that is not a number")
    if what is None:
        what = _domain_problem(column, value)
    if what is not None:
        raise _fail(path, line, column.name, what)
    return value


def _domain_problem(column: Column, value: Any) -> str | None:
    from linfit.backends import BACKENDS
    from linfit.data import DTYPES
    from linfit.record import CHECK_OUTCOMES, STATUSES

    values = value if column.type == "samples" else (value,)
    if column.domain == _POSITIVE and not all(v > 0 for v in values):
        return (f"{value!r} is not strictly positive" if column.type != "samples"
                else "holds a time that is not strictly positive")
    if column.domain == _NON_NEGATIVE and not all(v >= 0 for v in values):
        return f"{value!r} is negative"
    if column.domain == _RATIO and not value >= 1:
        return f"{value!r} is below 1 (it is the worst of several figures over the best)"
    vocabularies = {_STATUS: STATUSES, _OUTCOME: CHECK_OUTCOMES, _BACKEND: tuple(BACKENDS),
                    _DTYPE: DTYPES}
    allowed = vocabularies.get(column.domain)
    if allowed is not None and value not in allowed:
        return f"{value!r} is not one of {', '.join(allowed)}"
    return None


def _version(path: Path, line: int, text: str) -> int:
    try:
        version = int(text)
    except ValueError:
        version = -1
    if version not in READABLE_SCHEMA_VERSIONS or text != str(version):
        *earlier, last = (str(v) for v in READABLE_SCHEMA_VERSIONS)
        readable = f"{', '.join(earlier)} and {last}" if earlier else last
        hint = ("; it was written by a newer linfit"
                if version > max(READABLE_SCHEMA_VERSIONS) else "")
        raise _fail(path, line, "schema_version", f"{text!r} is not a schema_version this "
                    f"linfit reads (it reads {readable}){hint}")
    return version


def _check_statistics(path: Path, line: int, row: Mapping[str, Any],
                      record: CellResult) -> None:
    """The stored statistic columns must agree with those derived from the samples."""
    samples_column = "call_samples_seconds" if "call_samples_seconds" in row else "samples_seconds"
    stored_rounds = row.get("rounds")
    if stored_rounds is not None and stored_rounds != record.rounds:
        raise _fail(path, line, "rounds", f"{stored_rounds} rounds, but {samples_column} "
                    f"holds {record.rounds} samples")
    for name in _STATISTICS:
        stored = row.get(name)
        if stored is None:
            continue
        if not record.timed:
            raise _fail(path, line, name, f"holds {stored!r} but {samples_column} is empty")
        derived = float(record.statistics[name])
        if not math.isclose(stored, derived, rel_tol=STATISTIC_RTOL,
                            abs_tol=STATISTIC_RTOL * record.median_seconds):
            raise _fail(path, line, name, f"{stored!r} disagrees with the samples, whose "
                        f"{name.removesuffix('_seconds')} is {derived!r}")
    if row.get("floor_rounds") == 1 and row.get("floor_spread") not in (None, 1.0):
        raise _fail(path, line, "floor_spread", f"{row['floor_spread']!r} where floor_rounds "
                    "is 1: one round has no spread (1.0)")
    stored_efficiency, derived_efficiency = row.get("efficiency"), record.efficiency
    if stored_efficiency is not None and (derived_efficiency is None or not math.isclose(
            stored_efficiency, derived_efficiency, rel_tol=STATISTIC_RTOL)):
        raise _fail(path, line, "efficiency", f"{stored_efficiency!r} is not floor_seconds / "
                    f"the median of the samples ({derived_efficiency!r})")


def _parse_row(path: Path, line: int, fields: Sequence[str], index: Mapping[str, int],
               columns: Sequence[Column]) -> dict[str, Any]:
    row = {column.name: _parse_value(path, line, column, fields[index[column.name]])
           for column in columns}
    ok = row["status"] == "ok"
    for column in columns:
        always = column.name in (*KEY_COLUMNS, "status", "schema_version") and (
            column.name != "convention")
        empty = row[column.name] is None or (always and row[column.name] == "")
        # Samples missing from an ok row get their own message, after this loop.
        required = ok and column.required and column.type != "samples"
        if empty and (always or required):
            raise _fail(path, line, column.name, "is empty where a value is required"
                        + ("" if always else " (the cell is ok)"))
    return row


def _upgrade(row: dict[str, Any], version: int) -> dict[str, Any]:
    """A row of an older schema with the current columns it lacks.

    Schema 1 lacks the checks and the reference: what was not recorded is unknown. Schemas
    1 and 2 lack replicas, convention and strategy: every cell then ran on one device, and
    TensorFlow's compiled steps were called with arguments (:func:`legacy_convention`).
    Schemas 1 to 3 lack floor_rounds and floor_spread: their floors were one measurement
    whose spread nobody knew, so both are empty.
    """
    if version == 1:
        row = {**row, "reference": "unknown", "reference_w": None, "reference_b": None,
               "check_placement": "unknown", "check_traces": "unknown",
               "check_convergence": "unknown", "run_interrupted": None}
    if version < 3:
        row = {**row, "replicas": KEY_DEFAULTS["replicas"], "strategy": NO_STRATEGY,
               "convention": legacy_convention(row["backend"], bool(row["compiled"]))}
    if version < 4:
        row = {**row, "floor_rounds": None, "floor_spread": None}
    return row


def read_results(path: str | os.PathLike[str]) -> ResultSet:
    """Read and validate a results CSV of any readable schema. The file is only read.

    Args:
        path: the CSV.

    Returns:
        Its records, in file order. Schema-1 rows get ``reference`` "unknown", check
        outcomes "unknown" and ``run_interrupted`` None; schema-1 and -2 rows get
        ``replicas`` 1, ``strategy`` "none" and ``convention`` :func:`legacy_convention`;
        rows of schemas 1 to 3 get ``floor_rounds`` and ``floor_spread`` None.

    Raises:
        ResultsFileError: one line naming the file and, where it applies, the physical line
            and the column: a missing, unreadable or empty file; a CSV that is not
            linfit's; an unknown schema_version; missing columns; a row with another number
            of fields than the header; a value of the wrong type or outside its domain (a
            status other than ok/failed, a time that is not strictly positive, an
            n_examples or steps_per_call that is not a positive integer, an unknown backend
            or dtype); an empty required value; a statistic or round count that disagrees
            with the samples; a floor_spread below 1, or above 1 for one round; a
            duplicated cell.
    """
    from linfit.record import CellResult

    path = Path(path)
    if not path.is_file():
        raise _fail(path, None, None, "no such file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise _fail(path, None, None, f"cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise _fail(path, None, None, "not a readable CSV (not UTF-8 text)") from None
    if not text.strip():
        raise _fail(path, None, None, "the file is empty")
    physical = _physical_records(path, text)
    (_, header), data = physical[0], physical[1:]
    if "schema_version" not in header:
        raise _fail(path, None, None,
                    "not a linfit results CSV (it has no schema_version column)")
    if not data:
        raise _fail(path, None, None, "holds a header but no result rows")
    index = {name: position for position, name in reversed(list(enumerate(header)))}
    version = None
    records = []
    for line, fields in data:
        if len(fields) != len(header):
            if len(fields) < len(header):
                raise _fail(path, line, header[len(fields)], f"the row ends after "
                            f"{len(fields)} of the header's {len(header)} fields (cut short?)")
            raise _fail(path, line, None, f"{len(fields)} fields where the header has "
                        f"{len(header)} (extra after column {header[-1]})")
        row_version = _version(path, line, fields[index["schema_version"]])
        if version is None:
            version = row_version
            columns = columns_of(version)
            missing = [column.name for column in columns if column.name not in index]
            if missing:
                raise _fail(path, None, None, f"missing columns: {', '.join(missing)}")
        elif row_version != version:
            raise _fail(path, line, "schema_version",
                        f"{row_version} differs from the first row's {version}")
        row = _parse_row(path, line, fields, index, columns)
        if version < SCHEMA_VERSION:
            row = _upgrade(row, version)
        record = CellResult.from_row(row)
        samples_column = "samples_seconds" if version == 1 else "call_samples_seconds"
        if record.ok and not record.timed:
            raise _fail(path, line, samples_column,
                        "is empty in an ok row, where per-round times are required")
        _check_statistics(path, line, row, record)
        records.append((line, record))
    twin = duplicate_cells(record.cell for _, record in records)
    if twin is not None:
        first, second, cell = twin
        raise ResultsFileError(f"{path} lines {records[first][0]} and {records[second][0]}: "
                               f"duplicated cell ({cell})")
    assert version is not None
    return ResultSet((record for _, record in records), path, version)


def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """``read_results(path).to_frame()``: for presentation code that works on frames.

    Raises:
        ResultsFileError: as :func:`read_results`.
    """
    return read_results(path).to_frame()
