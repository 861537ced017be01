"""The results CSV: its columns (declared once), its one writer and its one reader.

One row per benchmark cell. Times are seconds per training step everywhere: a loop
variant's call time is divided by its steps_per_call before it is stored. The raw
per-round samples are kept in ``samples_seconds`` (space-separated), so comparisons can
test on them; ``pandas`` expands them with ``frame.samples_seconds.explode()``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linfit._errors import ResultsFileError

__all__ = [
    "COLUMNS",
    "KEY_COLUMNS",
    "SCHEMA_VERSION",
    "Cell",
    "Column",
    "read_results",
    "write_results",
]

# Bump when a column changes meaning or is removed; the reader refuses other versions.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Column:
    """One column of the results CSV: name, type (int, float, bool, str), unit, meaning."""

    name: str
    type: str
    unit: str
    doc: str
    required: bool = True  # False: may be empty in an ok row (e.g. floors not measured)


def _c(name: str, type_: str, unit: str, doc: str, required: bool = True) -> Column:
    return Column(name, type_, unit, doc, required)


COLUMNS: tuple[Column, ...] = (
    # run
    _c("schema_version", "int", "", "version of this column layout"),
    _c("run_id", "str", "", "UTC time, host and short commit of the run; also the file name"),
    _c("timestamp_utc", "str", "ISO 8601", "when the run started"),
    _c("git_commit", "str", "", "short commit of the linfit checkout ('unknown' outside git)"),
    _c("git_dirty", "bool", "", "whether tracked files differed from that commit"),
    # machine
    _c("host", "str", "", "host name"),
    _c("os", "str", "", "system, kernel release and architecture"),
    _c("python_version", "str", "", "Python version"),
    _c("numpy_version", "str", "", "NumPy version"),
    _c("cpu_model", "str", "", "CPU model name"),
    _c("backend", "str", "", "framework: tensorflow, jax or torch"),
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
    _c("intra_op_threads", "int", "threads", "intra-op threads reported (0 = default)"),
    _c("inter_op_threads", "int", "threads", "inter-op threads reported (0 = default)"),
    # cell
    _c("variant", "str", "", "how the step runs: eager, function, xla, xla-loop, jit, ..."),
    _c("compiled", "bool", "", "whether the step is traced/compiled"),
    _c("xla", "bool", "", "whether XLA compiles the step"),
    _c("loop", "bool", "", "whether one call runs steps_per_call steps in a device-side loop"),
    _c("n_examples", "int", "examples", "data set size"),
    _c("dtype", "str", "", "float32, float64, bfloat16 or float16"),
    _c("steps_per_call", "int", "steps", "training steps per timed call"),
    _c("learning_rate", "float", "", "gradient-descent step size"),
    _c("seed", "int", "", "NumPy seed of the data"),
    # timing: every time is per training step
    _c("rounds", "int", "", "timed rounds pytest-benchmark ran"),
    _c("iterations", "int", "calls", "calls per round"),
    _c("min_seconds", "float", "s/step", "fastest round"),
    _c("median_seconds", "float", "s/step", "median round"),
    _c("mean_seconds", "float", "s/step", "mean of rounds"),
    _c("stddev_seconds", "float", "s/step", "standard deviation of rounds"),
    _c("iqr_seconds", "float", "s/step", "interquartile range of rounds"),
    _c("max_seconds", "float", "s/step", "slowest round"),
    _c("first_call_seconds", "float", "s", "first call, whole (trace + compile + its steps)"),
    _c("traces", "int", "", "times the step was traced/compiled during the cell (1 when compiled)"),
    _c("samples_seconds", "samples", "s/step", "every round's time per step, space-separated"),
    # result
    _c("convergence_steps", "int", "steps", "steps from W=5, b=0 before final_w/final_b"),
    _c("final_w", "float", "", "W after convergence_steps"),
    _c("final_b", "float", "", "b after convergence_steps"),
    _c("final_loss", "float", "", "loss at the start of the last convergence call"),
    _c("w_ols", "float", "", "float64 least-squares W of the same data"),
    _c("b_ols", "float", "", "float64 least-squares b of the same data"),
    _c("status", "str", "", "ok, or failed (see message)"),
    _c("message", "str", "", "why the cell failed ('' when ok)", required=False),
    # floors (issue 7): empty when floors were not measured
    _c("bytes_min", "int", "bytes", "bytes of x and y, read once per step", required=False),
    _c("read_bandwidth_bytes_per_second", "float", "B/s",
       "measured sustained read bandwidth of the device", required=False),
    _c("dispatch_floor_seconds", "float", "s/call",
       "measured cost of the backend's cheapest compiled call on the device", required=False),
    _c("floor_seconds", "float", "s/step",
       "max(bytes_min / read bandwidth, dispatch floor / steps_per_call)", required=False),
    _c("efficiency", "float", "", "floor_seconds / median_seconds (1.0 = at the floor)",
       required=False),
)

COLUMN_NAMES = tuple(c.name for c in COLUMNS)
KEY_COLUMNS = ("backend", "device", "variant", "n_examples", "dtype", "steps_per_call")


@dataclass(frozen=True, order=True)
class Cell:
    """The key of one benchmark cell: everything else measured hangs off it."""

    backend: str
    device: str
    variant: str
    n_examples: int
    dtype: str
    steps_per_call: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Cell:
        """The cell of a result row (a dict or a pandas row)."""
        return cls(str(row["backend"]), str(row["device"]), str(row["variant"]),
                   int(row["n_examples"]), str(row["dtype"]), int(row["steps_per_call"]))

    def __str__(self) -> str:
        return (f"{self.backend} {self.device} {self.variant} n={self.n_examples:g} "
                f"{self.dtype} k={self.steps_per_call}")


def format_samples(samples: Iterable[float]) -> str:
    """Per-round times as one space-separated field, exact to float64 (repr)."""
    return " ".join(repr(float(s)) for s in samples)


def _to_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    records = []
    for row in rows:
        unknown = set(row) - set(COLUMN_NAMES)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        record = {name: row.get(name, "") for name in COLUMN_NAMES}
        if not isinstance(record["samples_seconds"], str):
            record["samples_seconds"] = format_samples(record["samples_seconds"])
        record["schema_version"] = SCHEMA_VERSION
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(COLUMN_NAMES))


def write_results(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write result rows to a new CSV at ``path``, atomically, never over an existing file.

    The file is written to a temporary name in the same folder and linked into place, so a
    reader never sees half a file and an existing file is never replaced.

    Raises:
        FileExistsError: when ``path`` exists already.
        ValueError: when a row has a column this schema does not know.
    """
    target = Path(path)
    frame = _to_frame(rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, index=False)
        # mkstemp makes the file private (0600); a results file is for everyone to read.
        os.chmod(tmp, 0o644)
        # link() fails if the target exists: no check-then-write race.
        os.link(tmp, target)
    finally:
        os.unlink(tmp)
    return target


def _fail(path: Path, where: str, what: str) -> ResultsFileError:
    return ResultsFileError(f"{path}{where}: {what}")


def _line(index: int) -> str:
    # Row index 0 is the CSV's line 2 (line 1 is the header).
    return f" line {index + 2}"


def _parse_samples(path: Path, index: int, text: Any) -> tuple[float, ...]:
    if not isinstance(text, str) or not text.strip():
        return ()
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        raise _fail(path, _line(index) + ", column samples_seconds",
                    "holds a value that is not a number") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise _fail(path, _line(index) + ", column samples_seconds",
                    "holds NaN, infinite or negative times")
    return values


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a results CSV. The file is only read, never changed.

    Returns:
        One row per cell, typed by :data:`COLUMNS`; ``samples_seconds`` holds tuples of
        floats.

    Raises:
        ResultsFileError: naming the file, line and column, for a missing or empty file, a
            CSV that is not linfit's, an unknown schema_version, missing columns,
            non-numeric or NaN values where numbers are required, or duplicated cells.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "", "no such file")
    if path.stat().st_size == 0:
        raise _fail(path, "", "the file is empty")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise _fail(path, "", f"not a readable CSV ({str(error).splitlines()[0]})") from None
    if "schema_version" not in frame.columns:
        raise _fail(path, "", "not a linfit results CSV (it has no schema_version column)")
    if frame.empty:
        raise _fail(path, "", "holds a header but no result rows")
    for index, version in enumerate(frame["schema_version"]):
        if version != str(SCHEMA_VERSION):
            newer = version.isdigit() and int(version) > SCHEMA_VERSION
            hint = "; it was written by a newer linfit" if newer else ""
            raise _fail(path, _line(index), f"schema_version {version!r} is not one this linfit "
                        f"reads (it reads {SCHEMA_VERSION}){hint}")
    missing = [name for name in COLUMN_NAMES if name not in frame.columns]
    if missing:
        raise _fail(path, "", f"missing columns: {', '.join(missing)}")
    frame = frame[list(COLUMN_NAMES)].copy()
    ok = frame["status"] == "ok"
    for column in COLUMNS:
        text = frame[column.name]
        if column.type in ("int", "float"):
            values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
            bad = values.isna() & (text != "")
            if bad.any():
                index = int(np.flatnonzero(bad.to_numpy())[0])
                raise _fail(path, _line(index) + f", column {column.name}",
                            f"{text.iloc[index]!r} is not a number")
            # Key columns need a number in every row; other required numbers only in ok
            # rows (a failed cell may have no timings); optional columns may stay empty.
            if column.name in KEY_COLUMNS:
                needs_value = pd.Series(True, index=frame.index)
            else:
                needs_value = ok & column.required
            empty = needs_value & ~np.isfinite(values.astype(float))
            if empty.any():
                index = int(np.flatnonzero(empty.to_numpy())[0])
                raise _fail(path, _line(index) + f", column {column.name}",
                            "is empty, NaN or infinite where a number is required")
            frame[column.name] = values
        elif column.type == "bool":
            lowered = text.str.lower()
            if not lowered.isin(["true", "false"]).all():
                index = int(np.flatnonzero(~lowered.isin(["true", "false"]).to_numpy())[0])
                raise _fail(path, _line(index) + f", column {column.name}",
                            f"{text.iloc[index]!r} is not True or False")
            frame[column.name] = lowered == "true"
    frame["samples_seconds"] = [
        _parse_samples(path, index, text) for index, text in enumerate(frame["samples_seconds"])
    ]
    no_samples = ok & (frame["samples_seconds"].map(len) == 0)
    if no_samples.any():
        index = int(np.flatnonzero(no_samples.to_numpy())[0])
        raise _fail(path, _line(index) + ", column samples_seconds",
                    "is empty in an ok row, where per-round times are required")
    for column in ("n_examples", "steps_per_call"):
        frame[column] = frame[column].astype(int)
    keys = frame[list(KEY_COLUMNS)]
    duplicated = keys.duplicated(keep=False)
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy())
        first = Cell.from_row(frame.iloc[rows[0]])
        twin = next(r for r in rows[1:] if Cell.from_row(frame.iloc[r]) == first)
        raise _fail(path, f" lines {rows[0] + 2} and {twin + 2}", f"duplicated cell ({first})")
    return frame
