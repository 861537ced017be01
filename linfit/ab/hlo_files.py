"""The optimized HLO of the cells an A/B session found changed, and its files (issue 17).

After the bursts, while the workers still hold the built cells, the coordinator asks every
side for the HLO of each cell whose verdict is ``slower`` or ``faster``
(:func:`capture_changed_hlo`, the workers' ``hlo`` request). ``linfit ab`` then writes them
beside the pairs file (:func:`write_hlo_files`): each side's text, and for each changed
side a readable diff against the base (:func:`linfit.hlo.diff_accounts`: figures, the
kernels and ops that came and went, a unified diff of the normalized text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from linfit._paths import atomic_write_text
from linfit.ab.analysis import analyse
from linfit.hlo import HloParseError, HloProgram, diff_accounts
from linfit.results import Cell

__all__ = ["CHANGED_VERDICTS", "HLO_FOLDER_SUFFIX", "HLO_TIMEOUT_SECONDS", "HloCapture",
           "capture_changed_hlo", "hlo_folder", "write_hlo_files"]

# The verdicts whose cells get their HLO saved (linfit.stats.verdict).
CHANGED_VERDICTS = ("slower", "faster")
# Time a worker has to print one cell's optimized HLO: TensorFlow runs XLA's HLO passes
# again (under a second for the default cells on the 2-core VM; more at n=1e8, whose
# constants are not in the text but whose compile is slower).
HLO_TIMEOUT_SECONDS = 120.0
# The folder beside a pairs file that holds its HLO files: results/<session>-hlo/.
HLO_FOLDER_SUFFIX = "-hlo"
# Characters a cell's key may keep in a file name (the rest become '_').
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


class _Worker(Protocol):
    def request(self, message: Mapping[str, Any], timeout: float) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class HloCapture:
    """One side's HLO of one changed cell.

    Attributes:
        cell: the cell.
        worker_key: the id the workers know it by (the file names use it).
        side_index, side_label: the side.
        program: the optimized HLO; None where XLA does not compile the cell there, or
            where it could not be read (``error`` says why).
        error: why the side could not print it ('' when it did, or had nothing to print).
    """

    cell: Cell
    worker_key: str
    side_index: int
    side_label: str
    program: HloProgram | None
    error: str = ""


def _changed(frame: Any, threshold: float, alpha: float) -> dict[Cell, list[int]]:
    """Each cell with a changed side: the indices of the sides that changed (by
    :func:`linfit.ab.analysis.analyse`, the verdicts ``linfit ab`` prints)."""
    table = analyse(frame, threshold, alpha).table
    labels = list(dict.fromkeys(frame.sort_values("side_index")["side_label"]))
    changed: dict[Cell, list[int]] = {}
    for row in table.to_dict("records"):
        if row["verdict"] in CHANGED_VERDICTS:
            changed.setdefault(Cell.from_row(row), []).append(labels.index(row["new_label"]))
    return changed


def capture_changed_hlo(workers: Sequence[_Worker], labels: Sequence[str], frame: Any,
                        keys: Mapping[Cell, str], threshold: float, alpha: float,
                        progress: Callable[[str], None],
                        timeout: float = HLO_TIMEOUT_SECONDS,
                        prepare: Callable[[list[str]], None] | None = None,
                        ) -> tuple[HloCapture, ...]:
    """Ask the base and every changed side for the HLO of each changed cell.

    Args:
        workers: one per side, in side order, their cells still built.
        labels: the sides' labels, in side order.
        frame: the session's burst rows, as :func:`linfit.ab.analysis.analyse` takes them.
        keys: each measured cell's worker key.
        threshold, alpha: the session's.
        progress: takes a line of progress.
        timeout: seconds a worker has for one cell.
        prepare: called with the changed cells' worker keys before any is asked for (the
            session builds there those its current workers have not).

    Returns:
        The captures, cell by cell, the base side first.

    Raises:
        WorkerFailed: where a worker dies or hangs (from its ``request``).
    """
    if frame is None or len(frame) == 0:
        return ()
    changed = _changed(frame, threshold, alpha)
    if changed:
        progress(f"reading the optimized HLO of {len(changed)} changed cells")
        if prepare is not None:
            prepare([keys[cell] for cell in changed])
    captures = []
    for cell, sides in changed.items():
        key = keys[cell]
        for side in [0, *sides]:
            reply = workers[side].request({"op": "hlo", "key": key}, timeout)
            error = str(reply.get("error") or "") if reply.get("ok") else str(
                reply.get("error", "failed"))
            program = None
            if reply.get("ok") and reply.get("text") is not None:
                program = HloProgram(str(reply["text"]), int(reply["steps_per_execution"]),
                                     None if reply.get("loop_trip_count") is None
                                     else int(reply["loop_trip_count"]),
                                     str(reply.get("source") or ""))
            captures.append(HloCapture(cell, key, side, labels[side], program, error))
    return tuple(captures)


def hlo_folder(pairs_path: Path) -> Path:
    """The folder of a pairs file's HLO files: ``<pairs stem>-hlo`` beside it."""
    return pairs_path.with_name(pairs_path.stem + HLO_FOLDER_SUFFIX)


def write_hlo_files(captures: Sequence[HloCapture], pairs_path: Path) -> tuple[list[Path],
                                                                               list[str]]:
    """Write the captures beside the pairs file: ``<cell>.<label>.hlo.txt`` for each side
    that printed its HLO, and ``<cell>.<base>-vs-<label>.diff.txt`` for each changed side
    whose HLO and the base's are both there. Never overwrites (a session's folder is new).

    Returns:
        The files written, and one line for each side whose HLO could not be had.

    Raises:
        OSError: where the folder or a file cannot be written (or already exists).
    """
    folder = hlo_folder(pairs_path)
    written, problems = [], []
    by_cell: dict[str, list[HloCapture]] = {}
    for capture in captures:
        by_cell.setdefault(capture.worker_key, []).append(capture)
    for key, sides in by_cell.items():
        name = _UNSAFE.sub("_", key)
        for capture in sides:
            if capture.program is None:
                if capture.error:
                    problems.append(f"{key} on side {capture.side_label}: no HLO "
                                    f"({capture.error})")
                continue
            written.append(atomic_write_text(
                folder / f"{name}.{capture.side_label}.hlo.txt", capture.program.text))
        base = sides[0]
        for capture in sides[1:]:
            if base.program is None or capture.program is None:
                continue
            try:
                diff = diff_accounts(base.program.text, capture.program.text, base.side_label,
                                     capture.side_label, capture.program.steps_per_execution,
                                     capture.program.loop_trip_count)
            except HloParseError as error:
                problems.append(f"{key}: no diff of {base.side_label} and "
                                f"{capture.side_label} ({error})")
                continue
            written.append(atomic_write_text(
                folder / f"{name}.{base.side_label}-vs-{capture.side_label}.diff.txt", diff))
    return written, problems
