"""The results CSV's one writer and one reader.

One row per benchmark cell, one :class:`linfit.results.record.CellResult` per row; the
columns are declared once in :mod:`linfit.results.columns`. Since schema 2 the file keeps
each round's **per-call** time exactly (``call_samples_seconds``, repr floats,
space-separated); every ``s/step`` column (min, median, mean, stddev, IQR, max) and
``rounds`` is derived from those samples for pandas users, and the reader refuses a file
where they disagree. Schema-1 files (per-step ``samples_seconds``) are still read; the
columns they lack come back as "unknown" or empty. Schema 3 adds ``replicas`` and
``convention`` to the cell key and a ``strategy`` column; schema-1 and -2 rows get
replicas 1, strategy ``none`` and the convention linfit used then
(:func:`~linfit.results.cell.legacy_convention`). Schema 4 adds ``floor_rounds`` and
``floor_spread``: the floor is the best of several probe rounds, and how far apart those
rounds were (empty in older files). Schema 5 adds ``tensorflow_git_version`` and
``tensorflow_commit``, the TensorFlow build a row ran, the machine's state (cores, memory,
affinity, load at the start and end, frequency, governor, VM, container), the Keras version
and the peak memory a cell adds (:mod:`linfit.memory`); older files read with them empty.

Text cells that a spreadsheet would run as a formula are written with a leading single
quote, and read back without it (:func:`linfit.results.columns.escape_text`). The file is
read through :func:`linfit._paths.open_input`. pandas is imported only to build a frame.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from linfit._errors import ResultsFileError
from linfit._paths import atomic_write_text, open_input
from linfit.builds import git_commit
from linfit.results.cell import (
    KEY_COLUMNS,
    KEY_DEFAULTS,
    NO_STRATEGY,
    Cell,
    duplicate_cells,
    is_missing,
    legacy_convention,
)
from linfit.results.columns import (
    ALL_COLUMNS,
    COLUMN_NAMES,
    COLUMNS,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    Column,
    columns_of,
    csv_line,
    csv_records,
    domain_problem,
    escape_text,
    unescape_text,
)
from linfit.results.record import CellResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "STATISTIC_RTOL",
    "ResultSet",
    "format_samples",
    "read_frame",
    "read_results",
    "record_problem",
    "records_frame",
    "render_results",
    "write_results",
]

# How closely a stored statistic must agree with the one derived from the samples.
# The writer stores the derived value itself, so a genuine file agrees to the last bit
# for schema 2; schema-1 files stored per-step samples, which come back as per-call *
# k / k, a few ulps (~1e-16 relative) away. 1e-9 leaves room for both and still catches
# any edit a person could make by hand.
STATISTIC_RTOL = 1e-9

# Columns new in schema 5 that record the machine and the memory (issue 18).
_MACHINE_AND_MEMORY = ("keras_version", "logical_cores", "physical_cores", "memory_bytes",
                       "cpu_affinity", "cpu_frequency_mhz", "cpu_governor", "virtual_machine",
                       "container", "load_average_start", "load_average_end",
                       "peak_rss_bytes", "device_peak_bytes")

# Columns derived from the samples; the reader checks them, the record recomputes them.
_STATISTICS = ("min_seconds", "median_seconds", "mean_seconds", "stddev_seconds",
               "iqr_seconds", "max_seconds")


def format_samples(samples: Iterable[float]) -> str:
    """Times as one space-separated field, exact to float64 (repr)."""
    return " ".join(repr(float(s)) for s in samples)


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
    return escape_text(str(value)) if column.type == "str" else str(value)


def _as_record(row: CellResult | Mapping[str, Any]) -> CellResult:
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
    lines = [csv_line(COLUMN_NAMES)]
    for record in records:
        row = record.to_row()
        row["schema_version"] = SCHEMA_VERSION
        if row.get("run_interrupted") is None:
            # A harness that does not say otherwise ran to its end.
            row["run_interrupted"] = False
        if is_missing(row.get("strategy")):
            # A record that names no strategy ran on one device.
            row["strategy"] = NO_STRATEGY
        lines.append(csv_line([_format(row.get(column.name), column) for column in COLUMNS]))
    return "".join(lines)


def write_results(rows: Iterable[CellResult | Mapping[str, Any]],
                  path: str | os.PathLike[str]) -> Path:
    """Write results to a new CSV at ``path``, atomically, never over an existing file.

    Args:
        rows: :class:`~linfit.results.record.CellResult` records, or row dicts (column -> value;
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
    import pandas as pd  # only here: reading and writing records needs no pandas

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
    """(first physical line, fields) of every non-blank CSV record."""
    return csv_records(text, lambda line, what: _fail(path, line, None, what))


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
        if column.type == "str":
            value = unescape_text(text)
        elif column.type == "int":
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
        what = domain_problem(column, value)
    if what is not None:
        raise _fail(path, line, column.name, what)
    return value


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
    stored_ratio, derived_ratio = row.get("hlo_bytes_ratio"), record.hlo_bytes_ratio
    if stored_ratio is not None and (derived_ratio is None or not math.isclose(
            stored_ratio, derived_ratio, rel_tol=STATISTIC_RTOL)):
        raise _fail(path, line, "hlo_bytes_ratio", f"{stored_ratio!r} is not hlo_bytes_per_step "
                    f"/ the bytes of x and y ({derived_ratio!r})")


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
    reference = row.get("reference")
    if reference not in (None, "", "unknown") and len(str(reference).split()) != 3:
        raise _fail(path, line, "reference", f"{reference!r} is not 'backend variant "
                    "device' (or unknown)")
    if "tensorflow_commit" in row:
        derived = git_commit(row["tensorflow_git_version"] or "")
        if (row["tensorflow_commit"] or "") != derived:
            raise _fail(path, line, "tensorflow_commit", f"{row['tensorflow_commit']!r} is not "
                        f"the commit in tensorflow_git_version ({derived!r})")
    return row


def _upgrade(row: dict[str, Any], version: int) -> dict[str, Any]:
    """A row of an older schema with the current columns it lacks.

    Schema 1 lacks the checks and the reference: what was not recorded is unknown. Schemas
    1 and 2 lack replicas, convention and strategy: every cell then ran on one device, and
    TensorFlow's compiled steps were called with arguments (:func:`legacy_convention`).
    Schemas 1 to 3 lack floor_rounds and floor_spread: their floors were one measurement
    whose spread nobody knew, so both are empty. Schemas 1 to 4 did not record the
    TensorFlow build's commit, the machine's state, the Keras version, the peak memory or
    the HLO account: unknown, empty.
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
    if version < 5:
        row = {**row, "tensorflow_git_version": "", "tensorflow_commit": "",
               **{column.name: "" if column.type == "str" else None
                  for column in ALL_COLUMNS if column.name in _MACHINE_AND_MEMORY},
               "hlo_kernels_per_step": None, "hlo_loops": "", "hlo_bytes_per_step": None,
               "hlo_bytes_ratio": None}
    return row


def read_results(path: str | os.PathLike[str]) -> ResultSet:
    """Read and validate a results CSV of any readable schema. The file is only read.

    Args:
        path: the CSV.

    Returns:
        Its records, in file order. Schema-1 rows get ``reference`` "unknown", check
        outcomes "unknown" and ``run_interrupted`` None; schema-1 and -2 rows get
        ``replicas`` 1, ``strategy`` "none" and ``convention`` :func:`legacy_convention`;
        rows of schemas 1 to 3 get ``floor_rounds`` and ``floor_spread`` None; rows of
        schemas 1 to 4 get ``tensorflow_git_version`` and ``tensorflow_commit`` '' and the
        machine and memory columns of schema 5 empty.

    Raises:
        ResultsFileError: one line naming the file and, where it applies, the physical line
            and the column: a missing, unreadable or empty file; a CSV that is not
            linfit's; an unknown schema_version; missing columns; a row with another number
            of fields than the header; a value of the wrong type or outside its domain (a
            status other than ok/failed, a time that is not strictly positive, an
            n_examples or steps_per_call that is not a positive integer, an unknown backend
            or dtype); an empty required value; a statistic or round count that disagrees
            with the samples; a floor_spread below 1, or above 1 for one round; a
            tensorflow_commit that is not the one in tensorflow_git_version; a duplicated
            cell; a path that is not a regular file (see
            :func:`linfit._paths.open_input`).
    """
    path = Path(path)
    return _parse_results(path, open_input(path, "a results CSV", error=ResultsFileError))


def record_problem(record: CellResult) -> str | None:
    """Why :func:`read_results` would refuse ``record`` once written; None when it reads
    back. For writers of records that did not come from a measurement in this process
    (``linfit recover``): they check before they write.

    Returns:
        The reader's reason, without a file or line ("column final_w: is empty where a
        value is required (the cell is ok)").
    """
    try:
        text = render_results([record])
    except ValueError as error:
        return str(error)
    nowhere = Path("<record>")
    try:
        _parse_results(nowhere, text)
    except ResultsFileError as error:
        # The one row is line 2 (its quoted text may span more): keep the column and why.
        return re.sub(r"^ line [0-9]+(, |: )", "", str(error).removeprefix(str(nowhere)))
    return None


def _parse_results(path: Path, text: str) -> ResultSet:
    """The records of a results CSV's ``text``, read from ``path`` (for the messages)."""
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
