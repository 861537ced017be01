"""The device regression check: did every cell compute the right answer, on the device it
names, as fast as before?

:func:`check_results` applies the rules below to a run's records and returns
:class:`Finding` objects; it prints nothing. ``linfit check`` and the benchmark session's
``--linfit-baseline`` gate both render the findings and turn them into an exit status with
:func:`exit_status`.

Rules, in the order findings are listed:

* ``failed``: a cell whose status is not ok (error).
* ``numerics``: W and b agree with the reference run of
  :func:`linfit.convergence.reference_for` (the one policy, also the harness's: the CPU:0
  eager cell of the cell's own backend, same n and dtype) within rtol, and with the
  least-squares W and b (error). The reference's W and b come from its cell in the file,
  else from the W and b the row recorded for that same reference (schema 2). Where there
  is neither, that is said (warning) and the cell is checked against least squares only.
* ``placement``: the step's result was on the device the cell names (error).
* ``performance``, with a baseline: no cell on a device with the same name regressed, by
  the rule of ``linfit compare``; no baseline cell is missing from the results (unless
  allowed); no cell ok in the baseline failed; something was compared at all (errors).
  Devices with another name and environment differences are warnings. A verdict rests on
  one run per side: see :data:`linfit.compare.DRIFT_NOTE`.
* ``sanity``: on a GPU, at the largest n, the best GPU variant beats the best CPU variant
  (warning only: a small problem can be faster on the CPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from linfit._format import format_ratio, format_seconds
from linfit.compare import EXIT_OK, EXIT_REGRESSION, compare_results, records_of
from linfit.convergence import (
    REFERENCE_DEVICE,
    REFERENCE_VARIANT,
    TOLERANCES,
    convergence_problems,
    reference_cell,
    reference_for,
)
from linfit.results import Cell
from linfit.results.record import CellResult
from linfit.stats import BOOTSTRAP_RESAMPLES, DEFAULT_ALPHA, DEFAULT_THRESHOLD

__all__ = [
    "REFERENCE_DEVICE",
    "REFERENCE_VARIANT",
    "RULES",
    "SEVERITIES",
    "Finding",
    "check_frame",
    "check_results",
    "exit_status",
    "reference_weights",
]

# The rules, in the order findings are reported.
RULES = ("failed", "numerics", "placement", "performance", "sanity")

# "error" fails the check; "warning" is reported only.
SEVERITIES = ("error", "warning")


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


def _failed(records: Mapping[Cell, CellResult]) -> list[Finding]:
    return [Finding("failed", "error", record.message or "no message", cell)
            for cell, record in records.items() if not record.ok]


def reference_weights(records: Mapping[Cell, CellResult],
                      cell: Cell) -> tuple[float, float, str] | None:
    """(W, b, where from) of the reference run of ``cell`` by the one policy
    (:func:`linfit.convergence.reference_for`), as far as a file can tell.

    Args:
        records: a run's records by cell.
        cell: the cell to check.

    Returns:
        The reference cell's final W and b when it is in ``records`` and ok; else the
        reference W and b the cell's own row recorded, when it names the same reference;
        else None.
    """
    key = reference_cell(cell)
    found = records.get(key)
    if found is not None and found.ok and found.final_w is not None and found.final_b is not None:
        return found.final_w, found.final_b, f"the {key} cell"
    recorded = records[cell].reference if cell in records else None
    if (recorded is not None and str(recorded) == str(reference_for(cell))
            and recorded.w is not None and recorded.b is not None):
        return recorded.w, recorded.b, f"the recorded {recorded}"
    return None


def _numerics(records: Mapping[Cell, CellResult], rtol: float | None) -> list[Finding]:
    findings = []
    unreferenced: dict[tuple[str, int, str], int] = {}
    for cell, record in records.items():
        if not record.ok:
            continue
        if cell.dtype not in TOLERANCES:
            findings.append(Finding("numerics", "error", f"no tolerances for dtype {cell.dtype!r} "
                                    f"(known: {', '.join(TOLERANCES)})", cell))
            continue
        values = (record.final_w, record.final_b, record.w_ols, record.b_ols)
        if any(value is None for value in values):
            findings.append(Finding("numerics", "error", "final_w, final_b, w_ols or b_ols "
                                    "is missing", cell))
            continue
        final_w, final_b, w_ols, b_ols = (float(v) for v in values)  # type: ignore[arg-type]
        reference = reference_weights(records, cell)
        if reference is None:
            key = (cell.backend, cell.n_examples, cell.dtype)
            unreferenced[key] = unreferenced.get(key, 0) + 1
            # Against itself the rtol comparison holds trivially: only OLS is checked.
            reference = (final_w, final_b, "itself")
        problems = convergence_problems(final_w, final_b, reference[0], reference[1], w_ols,
                                        b_ols, cell.dtype, rtol)
        if problems:
            findings.append(Finding("numerics", "error", "; ".join(problems)
                                    + f" (reference: {reference[2]})", cell))
    findings += [
        Finding("numerics", "warning",
                f"no ok {backend} {REFERENCE_VARIANT} {REFERENCE_DEVICE} cell for "
                f"n={n_examples:g} {dtype}, nor a recorded reference W and b: the rtol rule "
                f"could not be applied; {count} cell(s) were checked against the "
                "least-squares W and b only")
        for (backend, n_examples, dtype), count in sorted(unreferenced.items())
    ]
    return findings


def _placement(records: Mapping[Cell, CellResult]) -> list[Finding]:
    return [Finding("placement", "error",
                    f"the result was on {record.placement}, not on {cell.device}", cell)
            for cell, record in records.items()
            if record.ok and record.placement != cell.device]


def _performance(results: Mapping[Cell, CellResult], baseline: Mapping[Cell, CellResult],
                 threshold: float, alpha: float, results_label: str, baseline_label: str,
                 allow_missing: bool) -> list[Finding]:
    # Only devices with the same name are judged: other hardware is not a regression.
    renamed: dict[tuple[str, str, str], int] = {}
    for cell in results.keys() & baseline.keys():
        if not (results[cell].ok and baseline[cell].ok):
            continue  # a failed row may lack the device name it never got to
        key = (cell.device, str(baseline[cell].facts.get("device_name", "")),
               str(results[cell].facts.get("device_name", "")))
        if key[1] != key[2]:
            renamed[key] = renamed.get(key, 0) + 1
    findings = [
        Finding("performance", "warning",
                f"{device} is {base_name!r} in the baseline but {new_name!r} here: "
                f"{count} cell(s) not compared")
        for (device, base_name, new_name), count in sorted(renamed.items())
    ]
    renamed_devices = {device for device, _, _ in renamed}
    comparison = compare_results(
        [[r for c, r in baseline.items() if c.device not in renamed_devices]],
        [[r for c, r in results.items() if c.device not in renamed_devices]],
        threshold, alpha, base_label=baseline_label, new_label=results_label)
    for row in comparison.worsened.to_dict("records"):
        findings.append(Finding(
            "performance", "error",
            f"{format_ratio(row['ratio'], row['ratio_low'], row['ratio_high'])} x the "
            f"baseline ({format_seconds(row['base_median_seconds'])} -> "
            f"{format_seconds(row['new_median_seconds'])} per step, {_p_value(row['p_value'])}), "
            f"slower than the {threshold:.0%} threshold", Cell.from_row(row)))
    findings += [Finding("performance", "error", "ok in the baseline, failed here",
                         Cell.from_row(row))
                 for row in comparison.newly_failed.to_dict("records")]
    missing = comparison.missing
    if len(missing):
        first = Cell.from_row(missing.iloc[0])
        line = f"{len(missing)} baseline cell(s) are not in the results (the first: {first})"
        findings.append(Finding("performance", "warning", f"{line}; allowed by --allow-missing")
                        if allow_missing else
                        Finding("performance", "error", f"{line}; --allow-missing accepts that"))
    if len(comparison.compared) == 0:
        findings.append(Finding("performance", "error", "nothing was compared: no cell on a "
                                "device of the same name is ok in both the baseline and the "
                                "results"))
    findings += [Finding("performance", "warning", f"baseline {difference}")
                 for difference in comparison.differences]
    return findings


def _p_value(p_value: float) -> str:
    # A bootstrap p-value of 0 only says that no resample crossed 1.
    return f"p < {1 / BOOTSTRAP_RESAMPLES:g}" if p_value == 0 else f"p = {p_value:.2g}"


def _sanity(records: Mapping[Cell, CellResult]) -> list[Finding]:
    best: dict[tuple[str, str, int, str], tuple[float, Cell]] = {}
    for cell, record in records.items():
        if not record.ok:
            continue
        # Per GPU device; all CPUs of a backend together.
        where = cell.device if record.facts.get("device_kind") == "GPU" else "CPU"
        key = (cell.backend, where, cell.n_examples, cell.dtype)
        median = record.median_seconds
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


def check_results(results: pd.DataFrame | Iterable[CellResult],
                  baseline: pd.DataFrame | Iterable[CellResult] | None = None,
                  rtol: float | None = None, threshold: float = DEFAULT_THRESHOLD,
                  alpha: float = DEFAULT_ALPHA, results_label: str = "results",
                  baseline_label: str = "baseline",
                  allow_missing: bool = False) -> list[Finding]:
    """Apply the check's rules to a run; the findings, errors and warnings, in rule order.

    This is the function the benchmark session's gate calls. With a baseline, the
    verdicts rest on one run per side (:data:`linfit.compare.DRIFT_NOTE`): whoever renders
    the findings says so.

    Args:
        results: the run: records (a :class:`~linfit.results.ResultSet`), or a results
            frame (see :func:`linfit.compare.records_of`).
        baseline: an earlier run to check performance against; None skips that rule.
        rtol: overrides the dtype's relative tolerance against the reference
            (:data:`linfit.convergence.TOLERANCES`).
        threshold, alpha: as for :func:`linfit.compare.compare_results`.
        results_label, baseline_label: how messages name the two runs.
        allow_missing: baseline cells missing from the results are a warning, not an
            error.

    Returns:
        Every failed rule, one finding per cell (or per run); empty when all passed.

    Raises:
        ResultsFileError: when an ok cell has no samples or a median step time of 0.
    """
    records = {record.cell: record for record in records_of(results)}
    findings = _failed(records) + _numerics(records, rtol) + _placement(records)
    if baseline is not None:
        base = {record.cell: record for record in records_of(baseline)}
        findings += _performance(records, base, threshold, alpha, results_label,
                                 baseline_label, allow_missing)
    findings += _sanity(records)
    return findings


# The name the benchmark session and linfit's public API have used since the first gate.
check_frame = check_results
