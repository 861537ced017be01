"""The device regression check: did every cell compute the right answer, on the device it
names, as fast as before?

:func:`check_frame` applies the rules below to a results frame and returns
:class:`Finding` objects; it prints nothing. ``linfit check`` and the benchmark session's
``--linfit-baseline`` gate both render the findings and turn them into an exit status with
:func:`exit_status`.

Rules, in the order findings are listed:

* ``failed``: a cell whose status is not ok (error).
* ``numerics``: W and b agree with the CPU:0 eager cell of the same backend, n and dtype
  (else TensorFlow's) within rtol, and with the least-squares W and b (error). Where there
  is no reference cell, that is said (warning) and the cells are checked against the
  least-squares solution only.
* ``placement``: the step's result was on the device the cell names (error).
* ``performance``, with a baseline: no cell on a device with the same name regressed, by
  the rule of ``linfit compare`` (error); cells missing from the results, devices with
  another name and environment differences are warnings.
* ``sanity``: on a GPU, at the largest n, the best GPU variant beats the best CPU variant
  (warning only: a small problem can be faster on the CPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from linfit.compare import (
    EXIT_OK,
    EXIT_REGRESSION,
    compare_frames,
    format_ratio,
    format_seconds,
)
from linfit.convergence import TOLERANCES, convergence_problems
from linfit.results import Cell
from linfit.stats import BOOTSTRAP_RESAMPLES, DEFAULT_ALPHA, DEFAULT_THRESHOLD

__all__ = [
    "REFERENCE_BACKEND",
    "REFERENCE_DEVICE",
    "REFERENCE_VARIANT",
    "RULES",
    "Finding",
    "check_frame",
    "exit_status",
]

# The rules, in the order findings are reported.
RULES = ("failed", "numerics", "placement", "performance", "sanity")

# The numerics reference: the CPU eager cell of the same backend, n and dtype, else the
# reference backend's (the harness computes its references the same way).
REFERENCE_DEVICE = "CPU:0"
REFERENCE_VARIANT = "eager"
REFERENCE_BACKEND = "tensorflow"


@dataclass(frozen=True)
class Finding:
    """One failed rule: which, how bad, for which cell (None: for the run), and the numbers."""

    rule: str
    severity: str  # "error" fails the check; "warning" is reported only
    message: str
    cell: Cell | None = None

    def __str__(self) -> str:
        where = f"{self.cell}: " if self.cell is not None else ""
        return f"{self.severity}: {self.rule}: {where}{self.message}"


def exit_status(findings: Iterable[Finding]) -> int:
    """:data:`~linfit.compare.EXIT_REGRESSION` (1) when any finding is an error, else 0."""
    return EXIT_REGRESSION if any(f.severity == "error" for f in findings) else EXIT_OK


def _rows(frame: pd.DataFrame) -> dict[Cell, Mapping[str, Any]]:
    return {Cell.from_row(row): row for row in frame.to_dict("records")}


def _failed(rows: Mapping[Cell, Mapping[str, Any]]) -> list[Finding]:
    findings = []
    for cell, row in rows.items():
        if row["status"] != "ok":
            message = str(row["message"] or "no message")
            if row["status"] != "failed":
                message = f"status {row['status']!r}: {message}"
            findings.append(Finding("failed", "error", message, cell))
    return findings


def _reference(rows: Mapping[Cell, Mapping[str, Any]], cell: Cell) -> Mapping[str, Any] | None:
    for backend in dict.fromkeys((cell.backend, REFERENCE_BACKEND)):
        key = Cell(backend, REFERENCE_DEVICE, REFERENCE_VARIANT, cell.n_examples, cell.dtype, 1)
        if key in rows and rows[key]["status"] == "ok":
            return rows[key]
    return None


def _numerics(rows: Mapping[Cell, Mapping[str, Any]], rtol: float | None) -> list[Finding]:
    findings = []
    unreferenced: dict[tuple[int, str], int] = {}
    for cell, row in rows.items():
        if row["status"] != "ok":
            continue
        if cell.dtype not in TOLERANCES:
            findings.append(Finding("numerics", "error", f"no tolerances for dtype {cell.dtype!r} "
                                    f"(known: {', '.join(TOLERANCES)})", cell))
            continue
        reference = _reference(rows, cell)
        if reference is None:
            unreferenced[cell.n_examples, cell.dtype] = (
                unreferenced.get((cell.n_examples, cell.dtype), 0) + 1)
            # Against itself the rtol comparison holds trivially: only OLS is checked.
            reference = row
        problems = convergence_problems(
            float(row["final_w"]), float(row["final_b"]), float(reference["final_w"]),
            float(reference["final_b"]), float(row["w_ols"]), float(row["b_ols"]), cell.dtype,
            rtol)
        if problems:
            findings.append(Finding("numerics", "error", "; ".join(problems), cell))
    findings += [
        Finding("numerics", "warning",
                f"no ok {REFERENCE_DEVICE} {REFERENCE_VARIANT} cell for n={n_examples:g} "
                f"{dtype}: the rtol rule could not be applied; {count} cell(s) were checked "
                "against the least-squares W and b only")
        for (n_examples, dtype), count in sorted(unreferenced.items())
    ]
    return findings


def _placement(rows: Mapping[Cell, Mapping[str, Any]]) -> list[Finding]:
    return [Finding("placement", "error",
                    f"the result was on {row['placement']}, not on {cell.device}", cell)
            for cell, row in rows.items()
            if row["status"] == "ok" and str(row["placement"]) != cell.device]


def _performance(results: pd.DataFrame, baseline: pd.DataFrame, threshold: float,
                 alpha: float, results_label: str, baseline_label: str) -> list[Finding]:
    result_rows, baseline_rows = _rows(results), _rows(baseline)
    # Only devices with the same name are judged: other hardware is not a regression.
    renamed: dict[tuple[str, str, str], int] = {}
    for cell in result_rows.keys() & baseline_rows.keys():
        key = (cell.device, str(baseline_rows[cell]["device_name"]),
               str(result_rows[cell]["device_name"]))
        if key[1] != key[2]:
            renamed[key] = renamed.get(key, 0) + 1
    findings = [
        Finding("performance", "warning",
                f"{device} is {base_name!r} in the baseline but {new_name!r} here: "
                f"{count} cell(s) not compared")
        for (device, base_name, new_name), count in sorted(renamed.items())
    ]
    renamed_devices = sorted({device for device, _, _ in renamed})
    comparable_results = results[~results["device"].isin(renamed_devices)]
    comparable_baseline = baseline[~baseline["device"].isin(renamed_devices)]
    comparison = compare_frames(comparable_baseline, comparable_results, threshold, alpha,
                                base_label=baseline_label, new_label=results_label)
    for row in comparison.worsened.to_dict("records"):
        findings.append(Finding(
            "performance", "error",
            f"{format_ratio(row['ratio'], row['ratio_low'], row['ratio_high'])} x the "
            f"baseline ({format_seconds(row['base_median_seconds'])} -> "
            f"{format_seconds(row['new_median_seconds'])} per step, {_p_value(row['p_value'])}), "
            f"slower than the {threshold:.0%} threshold", Cell.from_row(row)))
    missing = comparison.table[comparison.table["verdict"] == "only-in-base"]
    if len(missing):
        first = Cell.from_row(missing.iloc[0])
        findings.append(Finding("performance", "warning",
                                f"{len(missing)} baseline cell(s) are not in the results "
                                f"(the first: {first})"))
    findings += [Finding("performance", "warning", f"baseline {difference}")
                 for difference in comparison.differences]
    return findings


def _p_value(p_value: float) -> str:
    # A bootstrap p-value of 0 only says that no resample crossed 1.
    return f"p < {1 / BOOTSTRAP_RESAMPLES:g}" if p_value == 0 else f"p = {p_value:.2g}"


def _sanity(rows: Mapping[Cell, Mapping[str, Any]]) -> list[Finding]:
    ok = {cell: row for cell, row in rows.items() if row["status"] == "ok"}
    best: dict[tuple[str, str, int, str], tuple[float, Cell]] = {}
    for cell, row in ok.items():
        kind = str(row["device_kind"])
        # Per GPU device; all CPUs of a backend together.
        where = cell.device if kind == "GPU" else "CPU"
        key = (cell.backend, where, cell.n_examples, cell.dtype)
        median = float(np.median(row["samples_seconds"]))
        if key not in best or median < best[key][0]:
            best[key] = (median, cell)
    findings = []
    gpus = sorted({(backend, where, dtype) for backend, where, _, dtype in best if where != "CPU"})
    for backend, gpu, dtype in gpus:
        n_largest = max(n for b, w, n, d in best if (b, w, d) == (backend, gpu, dtype))
        cpu_key = (backend, "CPU", n_largest, dtype)
        if cpu_key not in best:
            continue
        gpu_median, gpu_cell = best[backend, gpu, n_largest, dtype]
        cpu_median, cpu_cell = best[cpu_key]
        if gpu_median >= cpu_median:
            findings.append(Finding(
                "sanity", "warning",
                f"at the largest n the best {gpu} variant ({gpu_cell.variant} "
                f"k={gpu_cell.steps_per_call}, {format_seconds(gpu_median)} per step) does not "
                f"beat the best CPU variant ({cpu_cell.variant} on {cpu_cell.device} "
                f"k={cpu_cell.steps_per_call}, {format_seconds(cpu_median)})", gpu_cell))
    return findings


def check_frame(results: pd.DataFrame, baseline: pd.DataFrame | None = None,
                rtol: float | None = None, threshold: float = DEFAULT_THRESHOLD,
                alpha: float = DEFAULT_ALPHA, results_label: str = "results",
                baseline_label: str = "baseline") -> list[Finding]:
    """Apply the check's rules to a run; the findings, errors and warnings, in rule order.

    This is the function the benchmark session's gate calls.

    Args:
        results: the run, as :func:`linfit.results.read_results` returns it (or the
            harness's rows as a frame: ``samples_seconds`` holds sequences of floats).
        baseline: an earlier run to check performance against; None skips that rule.
        rtol: overrides the dtype's relative tolerance against the reference cell
            (:data:`linfit.convergence.TOLERANCES`).
        threshold, alpha: as for :func:`linfit.compare.compare_frames`.
        results_label, baseline_label: how messages name the two runs.

    Returns:
        Every failed rule, one finding per cell (or per run); empty when all passed.

    Raises:
        ResultsFileError: when an ok cell has no samples or a median step time of 0.
    """
    rows = _rows(results)
    findings = _failed(rows) + _numerics(rows, rtol) + _placement(rows)
    if baseline is not None:
        findings += _performance(results, baseline, threshold, alpha, results_label,
                                 baseline_label)
    findings += _sanity(rows)
    return findings

