"""The pairs file of an A/B session: its columns (declared once), its writer and its reader.

One row per burst, written as the burst comes back (flushed at once, synced to disk every
round) to ``<name>.partial`` in the results folder; at the end of the session it is linked
to its final name, never over an existing file. A session that is killed leaves the
``.partial`` file, which the reader accepts: no measured pair is ever lost.

A burst keeps its raw per-call times (``call_ns``); its one number, the median time per step
over its samples of ``calls_per_sample`` consecutive calls, is derived in one place,
:func:`burst_seconds_per_step`. A cell that failed its checks on a side has one row for
that side with ``status`` = ``failed``, ``round`` = -1 and the reason in ``message``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from linfit._errors import ResultsFileError
from linfit.results import KEY_DEFAULTS

__all__ = [
    "PAIRS_COLUMNS",
    "PAIRS_SCHEMA_VERSION",
    "PARTIAL_SUFFIX",
    "PairsWriter",
    "burst_seconds_per_step",
    "is_pairs_file",
    "read_pairs",
]

# Bump when a column changes meaning or is removed; the reader refuses other versions.
# 2: replicas and convention, the cell key's columns of results schema 3.
PAIRS_SCHEMA_VERSION = 2
READABLE_PAIRS_SCHEMA_VERSIONS = (1, 2)
# The file a session appends to until it ends.
PARTIAL_SUFFIX = ".partial"
# The column that tells a pairs file from a results file.
_MARKER = "session_id"


@dataclass(frozen=True)
class PairsColumn:
    """One column of the pairs file: name, type (int, str, ints), unit, meaning."""

    name: str
    type: str
    unit: str
    doc: str


PAIRS_COLUMNS: tuple[PairsColumn, ...] = (
    PairsColumn("schema_version", "int", "", "version of this column layout"),
    PairsColumn("session_id", "str", "", "UTC start, host and short commit of the session"),
    PairsColumn("backend", "str", "", "framework of the cell"),
    PairsColumn("device", "str", "", "device id: CPU:0, GPU:0, ..."),
    PairsColumn("variant", "str", "", "eager, function, xla, ..."),
    PairsColumn("n_examples", "int", "examples", "data set size"),
    PairsColumn("dtype", "str", "", "float32, ..."),
    PairsColumn("steps_per_call", "int", "steps", "training steps per call"),
    PairsColumn("replicas", "int", "replicas", "replicas the data are split across (1 in a "
                "schema-1 file)"),
    PairsColumn("convention", "str", "", "how a TensorFlow compiled step is called ('' where "
                "it does not apply; in a schema-1 file, args for TensorFlow's compiled "
                "variants)"),
    PairsColumn("side_index", "int", "", "0 for the first side (the base), 1, 2, ..."),
    PairsColumn("side_label", "str", "", "the side's label"),
    PairsColumn("round", "int", "", "the round the burst belongs to: its pair index for the "
                "cell (-1 in a failed row)"),
    PairsColumn("order_position", "int", "", "position of this side's burst in its round for "
                "this cell (0: ran first)"),
    PairsColumn("sequence", "int", "", "the burst's number in the session, in measurement "
                "order"),
    PairsColumn("start_unix_ns", "int", "ns", "wall-clock start of the burst (time.time_ns)"),
    PairsColumn("calls_per_sample", "int", "calls", "consecutive calls per sample; the same "
                "on every side"),
    PairsColumn("call_ns", "ints", "ns/call", "every call's time, space-separated, in order"),
    PairsColumn("status", "str", "", "ok, or failed: the cell failed its checks on this side"),
    PairsColumn("message", "str", "", "why it failed ('' when ok)"),
    PairsColumn("python", "str", "", "the side's interpreter"),
    PairsColumn("python_version", "str", "", "its Python version"),
    PairsColumn("backend_version", "str", "", "the framework's version on this side"),
    PairsColumn("device_name", "str", "", "CPU model or GPU name"),
    PairsColumn("env_settings", "str", "", "the side's environment settings, NAME=VALUE ..."),
    PairsColumn("host", "str", "", "host name"),
    PairsColumn("git_commit", "str", "", "short commit of the linfit source the worker ran"),
)
PAIRS_COLUMN_NAMES = tuple(column.name for column in PAIRS_COLUMNS)
_INT_COLUMNS = tuple(c.name for c in PAIRS_COLUMNS if c.type == "int")
# The columns schema 2 added; a schema-1 file gets them from _upgrade().
_SCHEMA_2_COLUMNS = ("replicas", "convention")


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


class PairsWriter:
    """Appends burst rows to ``<target>.partial``; :meth:`finish` gives it its final name.

    Every row is flushed to the operating system as it is written (a crash of the
    coordinator keeps it); :meth:`sync` also forces it to disk.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(target.name + PARTIAL_SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": never over an existing file, also not over another session's partial one.
        self._handle: TextIO | None = open(self.partial, "x", newline="")  # noqa: SIM115
        self._writer = csv.DictWriter(self._handle, fieldnames=list(PAIRS_COLUMN_NAMES),
                                      lineterminator="\n")
        self._writer.writeheader()
        self.rows = 0
        self.sync()

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (missing columns empty, but a missing ``replicas`` or ``convention``
        :data:`linfit.results.KEY_DEFAULTS`) and flush it."""
        if self._handle is None:
            raise RuntimeError("append() after finish()")
        unknown = set(row) - set(PAIRS_COLUMN_NAMES)
        if unknown:
            raise ValueError(f"unknown pairs columns: {sorted(unknown)}")
        record = {name: row.get(name, KEY_DEFAULTS.get(name, "")) for name in PAIRS_COLUMN_NAMES}
        if not isinstance(record["call_ns"], str):
            record["call_ns"] = " ".join(str(int(ns)) for ns in record["call_ns"])
        record["schema_version"] = PAIRS_SCHEMA_VERSION
        self._writer.writerow(record)
        self._handle.flush()
        self.rows += 1

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
            return None
        os.chmod(self.partial, 0o644)
        suffix = 1
        while True:
            name = (self.target if suffix == 1 else
                    self.target.with_name(f"{self.target.stem}-{suffix}{self.target.suffix}"))
            try:
                # link() fails if the name exists: no check-then-write race.
                os.link(self.partial, name)
            except FileExistsError:
                suffix += 1
                continue
            self.partial.unlink()
            self.target = name
            return name


def is_pairs_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a pairs file (its header has ``session_id``), by its first line."""
    try:
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return _MARKER in header


def _fail(path: Path, where: str, what: str) -> ResultsFileError:
    return ResultsFileError(f"{path}{where}: {what}")


def _upgrade(frame: pd.DataFrame) -> pd.DataFrame:
    """A schema-1 frame (text columns) with the key columns of schema 2: one replica, and
    TensorFlow's compiled variants called with arguments, as linfit then called them."""
    from linfit.backends import VARIANTS_BY_BACKEND
    from linfit.results import legacy_convention

    def convention(backend: str, variant: str) -> str:
        known = VARIANTS_BY_BACKEND.get(backend, {}).get(variant)
        return legacy_convention(backend, known is not None and known.compiled)

    return frame.assign(replicas="1", convention=[
        convention(backend, variant)
        for backend, variant in zip(frame["backend"], frame["variant"], strict=True)])


def read_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a pairs file (also a ``.partial`` one). The file is only read.

    Returns:
        One row per burst (and per failed cell and side), typed; ``call_ns`` holds tuples
        of ints, and ``seconds_per_step`` the burst's one number
        (:func:`burst_seconds_per_step`, NaN in failed rows). A schema-1 file's rows get
        ``replicas`` 1 and the convention linfit then used
        (:func:`linfit.results.legacy_convention`).

    Raises:
        ResultsFileError: naming the file, line and column, for a missing, empty or foreign
            file, an unknown schema_version, missing columns or bad values.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "", "no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise _fail(path, "", f"not a readable CSV ({str(error).splitlines()[0]})") from None
    if _MARKER not in frame.columns or "schema_version" not in frame.columns:
        raise _fail(path, "", "not a linfit pairs file (it has no session_id column)")
    if frame.empty:
        raise _fail(path, "", "holds a header but no bursts")
    readable = tuple(str(version) for version in READABLE_PAIRS_SCHEMA_VERSIONS)
    for index, version in enumerate(frame["schema_version"]):
        if version not in readable or version != frame["schema_version"].iloc[0]:
            raise _fail(path, f" line {index + 2}", f"schema_version {version!r} is not one "
                        f"this linfit reads (it reads {' and '.join(readable)})"
                        if version not in readable else f"schema_version {version!r} "
                        f"differs from the first row's")
    version_1 = frame["schema_version"].iloc[0] == "1"
    missing = [name for name in PAIRS_COLUMN_NAMES if name not in frame.columns
               and not (version_1 and name in _SCHEMA_2_COLUMNS)]
    if missing:
        raise _fail(path, "", f"missing columns: {', '.join(missing)}")
    if version_1:
        frame = _upgrade(frame)
    frame = frame[list(PAIRS_COLUMN_NAMES)].copy()
    for name in _INT_COLUMNS:
        values = pd.to_numeric(frame[name].replace("", np.nan), errors="coerce")
        needed = (frame["status"] == "ok") | (name in ("n_examples", "steps_per_call",
                                                       "replicas", "side_index"))
        bad = (values.isna() & ((frame[name] != "") | needed)).to_numpy()
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise _fail(path, f" line {index + 2}, column {name}",
                        f"{frame[name].iloc[index]!r} is not an integer")
        frame[name] = values.fillna(-1).astype(np.int64)
    calls = []
    for index, text in enumerate(frame["call_ns"]):
        try:
            values = tuple(int(v) for v in text.split())
        except ValueError:
            raise _fail(path, f" line {index + 2}, column call_ns",
                        "holds a value that is not an integer") from None
        if frame["status"].iloc[index] == "ok" and not values:
            raise _fail(path, f" line {index + 2}, column call_ns", "is empty in an ok row")
        calls.append(values)
    frame["call_ns"] = calls
    frame["seconds_per_step"] = [
        burst_seconds_per_step(ns, cps, k) if status == "ok" and cps > 0 else float("nan")
        for ns, cps, k, status in zip(frame["call_ns"], frame["calls_per_sample"],
                                      frame["steps_per_call"], frame["status"], strict=True)]
    return frame
