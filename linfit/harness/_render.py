"""The terminal rendering of ``pytest bench/``: the speed-up table and the summary lines.

Everything here lays out numbers computed elsewhere (:mod:`linfit.summary`,
:mod:`linfit.check`); nothing computes, measures or writes a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from linfit import summary
from linfit._errors import LinfitError
from linfit._format import format_seconds, text_table
from linfit.check import Finding, exit_status
from linfit.compare import DRIFT_NOTE
from linfit.results import Cell

# A failed cell's message is one line of at most this many characters (framework errors can
# run to pages; the row keeps their start).
MESSAGE_MAX_CHARS = 1000


def error_line(error: BaseException) -> str:
    """An error as one line of at most :data:`MESSAGE_MAX_CHARS` characters: a LinfitError's
    message as it is, any other prefixed with its type (a cell's ``message``, a note)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, LinfitError):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= MESSAGE_MAX_CHARS else text[:MESSAGE_MAX_CHARS - 3] + "..."


def _columns(cells: list[Cell]) -> dict[Cell, str]:
    """Each cell's column in the speed-up table: its variant, its replicas where several, and
    its calling convention where the variant runs in more than one (``--linfit-conventions
    all``); the cells of one column differ only in device, n and dtype."""
    conventions: dict[tuple[str, int], set[str]] = {}
    for cell in cells:
        conventions.setdefault((cell.variant, cell.replicas), set()).add(cell.convention)
    columns = {}
    for cell in cells:
        name = cell.variant if cell.replicas == 1 else f"{cell.variant} r={cell.replicas}"
        several = len(conventions[cell.variant, cell.replicas]) > 1
        columns[cell] = f"{name} {cell.convention}" if several and cell.convention else name
    return columns


def format_speedups(frame: pd.DataFrame) -> list[str]:
    """The speed-up of every variant over its backend's eager, per (device, n, dtype), as
    aligned text lines: one block per backend, its variants as columns.

    The numbers are :func:`linfit.summary.speedups` (eager's median step time / the
    variant's); this only lays them out, with ``failed`` for a cell that failed and ``-``
    where there is no number (no ok eager cell to compare with, or the cell did not run).

    Args:
        frame: a results file as :func:`linfit.results.read_frame` returns it.
    """
    ratios = {Cell.from_row(row): row["speedup"]
              for row in summary.speedups(frame).to_dict("records")}
    cells = [(Cell.from_row(row), row["status"], row["median_seconds"])
             for row in frame.to_dict("records")]
    lines: list[str] = []
    for backend in dict.fromkeys(cell.backend for cell, _, _ in cells):
        mine = [entry for entry in cells if entry[0].backend == backend]
        column = _columns([cell for cell, _, _ in mine])
        variants = list(dict.fromkeys(column[cell] for cell, _, _ in mine
                                      if cell.variant != summary.BASELINE_VARIANT))
        groups = sorted({(cell.device, cell.n_examples, cell.dtype) for cell, _, _ in mine})
        block = [["backend", "device", "n", "dtype", "eager/step", *variants]]
        for device, n_examples, dtype in groups:
            texts = {}
            for cell, status, median in mine:
                if (cell.device, cell.n_examples, cell.dtype) != (device, n_examples, dtype):
                    continue
                if status != "ok":
                    texts[column[cell]] = "failed"
                elif cell.variant == summary.BASELINE_VARIANT:
                    texts[column[cell]] = format_seconds(median)
                elif cell in ratios:
                    texts[column[cell]] = f"{ratios[cell]:.2f}x"
            block.append([backend, device, f"{n_examples:,}", dtype,
                          *(texts.get(name, "-")
                            for name in (summary.BASELINE_VARIANT, *variants))])
        lines += text_table(block)
    return lines


def results_lines(frame: pd.DataFrame, written: Path) -> list[str]:
    """The summary of a written results file: its path, its counts, the speed-ups."""
    failed = int((frame["status"] != "ok").sum())
    interrupted = ""
    if "run_interrupted" in frame.columns and bool(frame["run_interrupted"].any()):
        interrupted = "; the run was interrupted: it holds the cells that finished"
    return [
        f"results: {written} ({len(frame)} cells, {len(frame) - failed} ok, {failed} failed)"
        f"; times in it are per training step, the table above is per call of k steps"
        f"{interrupted}",
        "speed-up over the same backend's eager (median step time of eager / of the variant):",
        *("  " + line for line in format_speedups(frame)),
    ]


def gate_lines(findings: Sequence[Finding] | None, baseline: Path, reason: str = "") -> list[str]:
    """What the ``--linfit-baseline`` gate found, its verdict, and what it cannot see.

    Args:
        findings: linfit check's findings, or None when nothing could be checked.
        baseline: the baseline file.
        reason: why nothing could be checked (with findings None).
    """
    if findings is None:
        return [f"nothing was compared with {baseline}: {reason}; the gate fails"]
    errors = sum(finding.severity == "error" for finding in findings)
    verdict = (f"{errors} errors: the gate fails" if exit_status(findings)
               else "no regression: the gate passes")
    return [*(str(finding) for finding in findings),
            f"{len(findings)} findings; {verdict}", f"note: {DRIFT_NOTE}"]
