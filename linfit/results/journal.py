"""Nothing measured is lost: the journal of finished cells, and a run's results file.

While ``pytest bench/`` runs, every finished cell (ok or failed) is appended to
``<results>/<run_id>.journal.jsonl`` as one JSON line and flushed to disk (fsync) before the
next cell starts, so that SIGKILL or the OOM killer loses at most the cell in flight. At the
end of the session the results CSV is written atomically and the journal removed. A journal
left behind is turned into a results file by :func:`recover` (``linfit recover``).

The journal's first line names it: ``{"linfit_journal": 1, "run_id": ...}``; each further
line is one cell's :meth:`~linfit.results.record.CellResult.to_row` (the CSV's columns, samples as
a JSON list). A cell that ran again has a later line, which wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, TypeVar

from linfit._errors import LinfitError
from linfit._paths import open_input
from linfit.results.cell import KEY_COLUMNS, KEY_DEFAULTS, Cell
from linfit.results.columns import ALL_COLUMNS
from linfit.results.csv import record_problem, write_results
from linfit.results.record import CellResult

__all__ = [
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_SUFFIX",
    "Journal",
    "JournalContents",
    "JournalError",
    "leftover_journals",
    "read_journal",
    "recover",
    "write_run",
]

# Bump when the line layout changes; read_journal refuses versions it does not know.
JOURNAL_FORMAT_VERSION = 1
JOURNAL_SUFFIX = ".journal.jsonl"
_MAGIC = "linfit_journal"
# Key columns that count something: each an integer >= 1.
_COUNT_COLUMNS = ("n_examples", "steps_per_call", "replicas")
_T = TypeVar("_T")


class JournalError(LinfitError):
    """Raised when a journal cannot be used: missing, not linfit's, a format version this
    linfit does not know, a malformed line other than a torn last one, or no finished cell.

    The message names the file and, where it applies, the line.
    """


def _plain(value: Any) -> Any:
    # NumPy scalars (np.float32, np.int64) as the Python numbers json knows.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _with_free_name(run_id: str, create: Callable[[str], _T],
                    target: Callable[[str], Path]) -> _T:
    """``create(name)`` for the first of ``run_id``, ``run_id-2``, ``run_id-3``, ... whose
    file is not taken: the one collision retry of a run's journal and results file (two
    runs started in the same second). Only a name collision is retried: a FileExistsError
    where ``target(name)`` does not exist (mkdir of a folder whose name is a file) is raised.
    """
    suffix = 1
    while True:
        name = run_id if suffix == 1 else f"{run_id}-{suffix}"
        try:
            return create(name)
        except FileExistsError:
            if not os.path.lexists(target(name)):
                raise
            suffix += 1


class Journal:
    """An append-only journal of one run's finished cells.

    The file is created on the first :meth:`append`, never over an existing file.
    """

    def __init__(self, path: Path, run_id: str, *, free_name: bool = False) -> None:
        """A journal, not on disk yet.

        Args:
            path: the file.
            run_id: the run it journals (its header).
            free_name: when ``path`` is ``<run_id>.journal.jsonl`` and is taken at the first
                append (another run of the same second), take ``<run_id>-2`` and so on,
                as the results file does; :attr:`run_id` and :attr:`path` follow.
        """
        self.path = path
        self.run_id = run_id
        self._free_name = free_name
        self._handle: IO[str] | None = None

    def append(self, row: Mapping[str, Any] | CellResult) -> None:
        """Write one finished cell's row (or record) and flush it to disk before returning.

        Raises:
            FileExistsError: on the first append, when the journal's name is taken (and
                ``free_name`` was not asked for).
            OSError: when the disk refuses the write.
        """
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._free_name and self.path.name == f"{self.run_id}{JOURNAL_SUFFIX}":
                self._handle = _with_free_name(self.run_id, self._open, self._path_of)
            else:
                self._handle = self._open(self.run_id, self.path)
            self._write({_MAGIC: JOURNAL_FORMAT_VERSION, "run_id": self.run_id})
        if isinstance(row, CellResult):
            row = row.to_row()
        self._write({name: value for name, value in row.items()})

    def _path_of(self, run_id: str) -> Path:
        return self.path.with_name(f"{run_id}{JOURNAL_SUFFIX}")

    def _open(self, run_id: str, path: Path | None = None) -> IO[str]:
        path = self._path_of(run_id) if path is None else path
        # "x": a journal of another run is never appended to.
        handle = open(path, "x", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.path, self.run_id = path, run_id
        return handle

    def _write(self, record: Mapping[str, Any]) -> None:
        assert self._handle is not None
        # One write of the whole line: a kill tears at most this line.
        self._handle.write(json.dumps(record, default=_plain, separators=(",", ":")) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    @property
    def started(self) -> bool:
        """Whether the journal file was created."""
        return self._handle is not None

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        if self._handle is not None:
            self._handle.close()

    def discard(self) -> None:
        """Close and remove the journal: its rows are in a results file now."""
        self.close()
        if self._handle is not None:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class JournalContents:
    """What a journal holds: the run, its finished cells' records (the last one of each
    cell), and the line number of a torn last line (None when the journal ends cleanly)."""

    run_id: str
    results: tuple[CellResult, ...]
    torn_line: int | None


def _bad(path: Path, line: int, what: str) -> JournalError:
    return JournalError(f"{path} line {line}: {what}")


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Read a journal; it is only read, never changed.

    A last line that is not complete JSON and has no newline is the cell that was being
    written when the run died: it is left out and reported, not refused.

    Raises:
        JournalError: naming the file and line, for a missing or empty file, a first line
            that is not a linfit journal's, an unknown format version, a malformed line, a
            row without the cell's key columns, with columns linfit does not know or with
            values a result cannot hold; a path that is not a regular file (see
            :func:`linfit._paths.open_input`).
    """
    path = Path(path)
    text = open_input(path, "a journal (<run_id>.journal.jsonl)", error=JournalError)
    lines = text.split("\n")
    ends_cleanly = lines[-1] == ""
    if ends_cleanly:
        lines.pop()
    if not lines:
        raise JournalError(f"{path}: the file is empty")
    records: list[tuple[int, Any]] = []
    torn_line = None
    for number, line in enumerate(lines, start=1):
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError:
            if number == len(lines) and not ends_cleanly and number > 1:
                torn_line = number  # the cell in flight when the run died
                break
            raise _bad(path, number, "not a JSON line") from None
    header = records[0][1]
    if not isinstance(header, dict) or _MAGIC not in header:
        raise _bad(path, 1, "not a linfit journal (no linfit_journal header)")
    if header[_MAGIC] != JOURNAL_FORMAT_VERSION:
        raise _bad(path, 1, f"journal format {header[_MAGIC]!r} is not one this linfit reads "
                            f"(it reads {JOURNAL_FORMAT_VERSION})")
    run_id = header.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise _bad(path, 1, "the header names no run_id")
    known = {column.name for column in ALL_COLUMNS}
    results: dict[Cell, CellResult] = {}
    for number, record in records[1:]:
        if not isinstance(record, dict):
            raise _bad(path, number, "not a result row (a JSON object)")
        missing = [name for name in KEY_COLUMNS
                   if name not in record and name not in KEY_DEFAULTS]
        if missing:
            raise _bad(path, number, f"a row without {', '.join(missing)}")
        unknown = sorted(set(record) - known)
        if unknown:
            raise _bad(path, number, f"unknown columns: {', '.join(unknown)}")
        # The key's counts divide the times (per step, per replica): checked before anything
        # is derived from them.
        for name in _COUNT_COLUMNS:
            value = record.get(name, KEY_DEFAULTS.get(name))
            # Written as the results file writes it: an int, or its text.
            text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) \
                else ""
            if not text.strip().isdigit() or int(text) < 1:
                raise _bad(path, number, f"column {name}: {value!r} is not an integer >= 1")
        try:
            result = CellResult.from_row(record)
        except (KeyError, TypeError, ValueError) as error:
            raise _bad(path, number, f"a malformed row ({error})") from None
        results.pop(result.cell, None)  # a cell that ran again: its later row
        results[result.cell] = result
    return JournalContents(run_id, tuple(results.values()), torn_line)


def leftover_journals(directory: str | os.PathLike[str]) -> list[Path]:
    """The journals in ``directory`` that a run left behind, sorted; [] when none or when
    the folder does not exist."""
    try:
        return sorted(Path(directory).glob(f"*{JOURNAL_SUFFIX}"))
    except OSError:
        return []


def write_run(results: Sequence[CellResult], directory: Path, run_id: str) -> Path:
    """Write a run's records to ``<directory>/<run_id>.csv`` (atomically, never over a file).

    When the name is taken (two runs started in the same second), the run gets ``-2``,
    ``-3``, ... in the file name and in its rows' ``run_id``. Only a name collision is
    retried: any other error (the folder is a file, a full disk) is raised.

    Raises:
        OSError: when the file cannot be written.
    """
    def target(name: str) -> Path:
        return directory / f"{name}.csv"

    return _with_free_name(run_id, lambda name: write_results(
        [replace(result, facts={**result.facts, "run_id": name}) for result in results],
        target(name)), target)


def recover(journal: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None,
            write: Callable[[Sequence[CellResult], Path, str], Path] = write_run,
            ) -> tuple[Path, JournalContents]:
    """Turn a left-over journal into a results file, marked as an interrupted run.

    Args:
        journal: the journal file; it is only read.
        output_dir: the folder for the results file (default: the journal's folder).
        write: writes the records (default :func:`write_run`: never over a file).

    Returns:
        (the results file written, what the journal held).

    Every record goes through the results reader (:func:`linfit.results.csv.record_problem`)
    before anything is written: a file ``linfit check`` would refuse is never written.

    Raises:
        JournalError: for a journal that cannot be used or holds no finished cell, a cell
            the results reader would refuse (naming the cell and why; nothing is written),
            or a folder the results cannot be written to.
    """
    journal = Path(journal)
    contents = read_journal(journal)
    if not contents.results:
        raise JournalError(f"{journal}: holds no finished cell; there is nothing to recover")
    directory = Path(output_dir) if output_dir is not None else journal.parent
    results = [replace(result, facts={**result.facts, "run_interrupted": True})
               for result in contents.results]
    for result in results:
        problem = record_problem(result)
        if problem is not None:
            raise JournalError(f"{journal}: cell {result.cell} cannot be recovered: {problem}; "
                               "nothing was written")
    try:
        written = write(results, directory, contents.run_id)
    except ValueError as error:  # a value the results file refuses
        raise JournalError(f"{journal}: {error}") from None
    except OSError as error:
        raise JournalError(f"cannot write the results into {directory}: "
                           f"{error.strerror or error}") from None
    return written, contents
