"""From a pairs file to verdicts: each side against the first, cell by cell.

Computes only; :mod:`linfit.commands.ab` renders. The statistics are
:func:`linfit.stats.paired_ratio` and :func:`linfit.stats.verdict` on the paired log ratios
of the burst medians (one number per burst, two bursts per pair, same round).

A session reads a cell's interval after every round and stops the cell once it is decided
(adaptive sampling), so each interval is taken at the level that keeps alpha over all the
looks a cell may get (:func:`look_alpha`, :func:`linfit.stats.sequential_alpha`); files that
do not record their pairs bounds (before pairs schema 3) are read at alpha, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linfit.backends import VARIANTS_BY_BACKEND
from linfit.machine import load_warning, machine_differences
from linfit.results import KEY_COLUMNS
from linfit.stats import (
    DEFAULT_ALPHA,
    PairedEstimate,
    paired_decided,
    paired_log_ratios,
    paired_ratio_across_processes,
    process_heterogeneity,
    sequential_alpha,
    verdict,
)

__all__ = [
    "AB_COLUMNS",
    "CELL_COLUMNS",
    "DEFAULT_AB_THRESHOLD",
    "DISAGREE_ALPHA",
    "ABComparison",
    "analyse",
    "cell_pairs",
    "estimate_cell",
    "is_decided",
    "look_alpha",
    "machine_warnings",
    "processes_disagree",
    "session_pairs_bounds",
]

# The smallest change an A/B session reports: 5%, well under the 10% that must be caught.
# From five default A/A sessions on the 2-core VM (bench/ab_figures.sh aa; results/cpu-2core-ab/):
# the largest A/A estimate was 3.9% off 1, and 3 of 75 cells had a 99% interval that
# excluded 1 (a steady per-process offset of a few per cent between two workers of the same
# environment, which pairing cannot cancel); the median minimum detectable effect per
# session was 2.4-4.1%. 5% sits above the A/A offsets and below the 10% change, which was
# called slower in 75 of 75 cells.
DEFAULT_AB_THRESHOLD = 0.05
# A cell's parts are said to disagree (a note, and an undecided "unchanged" becomes "noise")
# where Cochran's test rejects one shared ratio at this level. The interval takes in any
# between-part variance it finds (tau^2 > 0), said or not.
DISAGREE_ALPHA = 0.01

CELL_COLUMNS = KEY_COLUMNS
AB_COLUMNS = (*CELL_COLUMNS, "device_name", "base_label", "new_label", "pairs",
              "base_median_seconds", "new_median_seconds", "ratio", "ratio_low",
              "ratio_high", "p_value", "mde", "verdict", "message")


@dataclass(frozen=True)
class ABComparison:
    """Every cell and side against the first side: one row each, :data:`AB_COLUMNS`.

    ``verdict`` is slower, faster, noise or unchanged (:func:`linfit.stats.verdict`), or
    ``failed`` (the cell failed its checks on a side), ``no-pairs`` or ``too-few-pairs``
    (fewer pairs than an interval at alpha needs: the time budget ran out first).
    """

    table: pd.DataFrame
    threshold: float
    alpha: float
    labels: tuple[str, ...]
    look_alpha: float = math.nan
    max_pairs: int = 0

    @property
    def sequential(self) -> bool:
        """Whether each interval was taken below alpha, to hold over every look a cell may
        get (:func:`look_alpha`)."""
        return self.look_alpha < self.alpha

    @property
    def worsened(self) -> pd.DataFrame:
        """The rows called slower."""
        return self.table[self.table["verdict"] == "slower"]

    @property
    def failed(self) -> pd.DataFrame:
        """The rows whose cell failed on a side, or that got too few pairs for a verdict."""
        return self.table[self.table["verdict"].isin(["failed", "no-pairs", "too-few-pairs"])]

    def counts(self) -> dict[str, int]:
        """How many rows have each verdict."""
        return {str(k): int(v) for k, v in self.table["verdict"].value_counts().items()}


def cell_pairs(frame: pd.DataFrame, side_index: int) -> pd.DataFrame:
    """The complete pairs of one side against side 0 in one cell's rows: round, base and new
    burst times per step, the pair's start time, and its part (the set of worker processes
    that measured it: a new one at each restart and resume; 0 in files without parts), in
    round order."""
    ok = frame[frame["status"] == "ok"]
    base = ok[ok["side_index"] == 0].set_index("round")
    new = ok[ok["side_index"] == side_index].set_index("round")
    rounds = sorted(set(base.index) & set(new.index))
    return pd.DataFrame({
        "round": rounds,
        "base_seconds": base.loc[rounds, "seconds_per_step"].to_numpy(dtype=float),
        "new_seconds": new.loc[rounds, "seconds_per_step"].to_numpy(dtype=float),
        "start_unix_ns": np.minimum(base.loc[rounds, "start_unix_ns"].to_numpy(),
                                    new.loc[rounds, "start_unix_ns"].to_numpy()),
        "part": (base.loc[rounds, "part"].to_numpy(dtype=int) if "part" in base
                 else np.zeros(len(rounds), dtype=int)),
    })


def estimate_cell(pairs: pd.DataFrame, alpha: float) -> PairedEstimate | None:
    """The paired estimate of one cell and side, None without pairs; its interval takes in
    the offsets of the worker processes where its parts disagree
    (:func:`linfit.stats.paired_ratio_across_processes`)."""
    if pairs.empty:
        return None
    return paired_ratio_across_processes(
        paired_log_ratios(pairs["base_seconds"], pairs["new_seconds"]), pairs["part"], alpha)


def processes_disagree(pairs: pd.DataFrame, alpha: float = DISAGREE_ALPHA) -> str:
    """'' unless a cell's parts (its sets of worker processes) disagree by Cochran's test at
    ``alpha``; then a line with the ratio each part measured
    (:func:`linfit.stats.process_heterogeneity`)."""
    if pairs.empty:
        return ""
    check = process_heterogeneity(
        paired_log_ratios(pairs["base_seconds"], pairs["new_seconds"]), pairs["part"].to_numpy())
    if check is None or not check.p_value < alpha:
        return ""
    ratios = [f"{math.exp(estimate):.2f} ({size} pairs)"
              for size, estimate in zip(check.sizes, check.estimates, strict=True)]
    chance = f"p = {check.p_value:.1g}" if check.p_value >= 1e-16 else "p < 1e-16"
    return (f"its sets of worker processes disagree (Cochran's Q {chance}), "
            f"and its interval takes that in: B/A by part {', '.join(ratios)}")


def look_alpha(alpha: float, min_pairs: int, max_pairs: int) -> float:
    """The level of each look's interval in a session with these pairs bounds.

    Adaptive sampling (``min_pairs`` < ``max_pairs``) reads a cell's interval after every
    pair, and a session cut short or continued (``--resume``) is read at any pair count up
    to ``max_pairs``: every count from 1 to ``max_pairs`` is a look, and the level is
    :func:`linfit.stats.sequential_alpha`. A session of exactly N pairs a cell is read once,
    at alpha.
    """
    if min_pairs >= max_pairs:
        return alpha
    return sequential_alpha(alpha, max_pairs)


def session_pairs_bounds(frame: pd.DataFrame) -> tuple[int, int] | None:
    """The (min_pairs, max_pairs) a pairs file records (pairs schema 3), else None."""
    if "max_pairs" not in frame or frame.empty:
        return None
    low, high = int(frame["min_pairs"].iloc[0]), int(frame["max_pairs"].iloc[0])
    return (low, high) if low >= 1 and high >= 1 else None


def is_decided(frame: pd.DataFrame, sides: int, threshold: float, alpha: float) -> bool:
    """Whether every side's comparison with side 0 in one cell's rows is decided
    (:func:`linfit.stats.paired_decided`), its intervals taken at ``alpha`` (the look level
    of :func:`look_alpha`)."""
    for side in range(1, sides):
        estimate = estimate_cell(cell_pairs(frame, side), alpha)
        if estimate is None or not paired_decided(estimate, threshold):
            return False
    return True


def analyse(frame: pd.DataFrame, threshold: float = DEFAULT_AB_THRESHOLD,
            alpha: float = DEFAULT_ALPHA) -> ABComparison:
    """Each side against side 0, per cell, from a pairs frame (:func:`read_pairs`).

    Args:
        frame: the pairs file's rows.
        threshold: the smallest change that counts, a fraction.
        alpha: two-sided significance level over all of a cell's looks; each interval is
            taken at :func:`look_alpha` of it and the file's pairs bounds.
    """
    labels = tuple(frame.sort_values("side_index").drop_duplicates("side_index")["side_label"])
    bounds = session_pairs_bounds(frame)
    level = look_alpha(alpha, *bounds) if bounds else alpha
    rows = []
    for cell, rows_of_cell in frame.groupby(list(CELL_COLUMNS), sort=False):
        names = rows_of_cell["device_name"]
        for side in range(1, len(labels)):
            failed = rows_of_cell[(rows_of_cell["status"] == "failed")
                                  & rows_of_cell["side_index"].isin([0, side])]
            pairs = cell_pairs(rows_of_cell, side)
            estimate = estimate_cell(pairs, level)
            row = dict(zip(CELL_COLUMNS, cell, strict=True))
            row.update(device_name=str(names.iloc[0]) if len(names) else "",
                       base_label=labels[0], new_label=labels[side], pairs=len(pairs),
                       base_median_seconds=float(np.median(pairs["base_seconds"]))
                       if len(pairs) else math.nan,
                       new_median_seconds=float(np.median(pairs["new_seconds"]))
                       if len(pairs) else math.nan,
                       ratio=math.nan, ratio_low=math.nan, ratio_high=math.nan,
                       p_value=math.nan, mde=math.nan, message="")
            if not failed.empty:
                row.update(verdict="failed", message="; ".join(
                    f"{label}: {message}" for label, message
                    in zip(failed["side_label"], failed["message"], strict=True)))
            elif estimate is None:
                row.update(verdict="no-pairs")
            elif math.isnan(estimate.low):
                # Too few pairs for any interval at alpha (8 at 0.01): the ratio is shown,
                # but "unchanged" would be a verdict on nothing.
                row.update(ratio=estimate.ratio, mde=estimate.mde, verdict="too-few-pairs",
                           message="too few pairs for an interval: raise --max-seconds or "
                                   "select fewer cells")
            else:
                called = verdict(estimate, threshold)
                disagree = processes_disagree(pairs)
                if (disagree and called == "unchanged"
                        and not paired_decided(estimate, threshold)):
                    # An estimate within the threshold says little where the parts
                    # disagree and the interval reaches beyond it: undecided.
                    called = "noise"
                row.update(ratio=estimate.ratio, ratio_low=estimate.low,
                           ratio_high=estimate.high, p_value=estimate.p_value,
                           mde=estimate.mde, verdict=called, message=disagree)
            rows.append(row)
    table = pd.DataFrame.from_records(rows, columns=list(AB_COLUMNS))
    # The order of `pytest bench/`'s tables: device, n, dtype, backend, then the
    # backend's variant order (the rows came in the session's shuffled order).
    order = {(backend, name): index for backend, names in VARIANTS_BY_BACKEND.items()
             for index, name in enumerate(names)}
    table["_variant_order"] = [order.get((b, v), len(order))
                               for b, v in zip(table["backend"], table["variant"], strict=True)]
    table = table.sort_values(["device", "n_examples", "dtype", "backend", "_variant_order",
                               "variant", "new_label"], kind="stable")
    table = table.drop(columns="_variant_order").reset_index(drop=True)
    return ABComparison(table, threshold, alpha, labels, level, bounds[1] if bounds else 0)


def machine_warnings(frame: pd.DataFrame) -> tuple[str, ...]:
    """Why a session's times may not be what its machines can do, one line each: a side
    whose load average at its bursts exceeded the CPUs its worker could use
    (:func:`linfit.machine.load_warning`), and a side whose machine differs from side 0's
    (:func:`linfit.machine.machine_differences`). Files before pairs schema 3 record
    neither: no line.

    Args:
        frame: a pairs frame (:func:`linfit.results.pairs.read_pairs`).
    """
    lines = []
    machines = []
    for _, rows in frame.sort_values("side_index").groupby("side_index", sort=True):
        machine = rows.iloc[0].to_dict()
        machines.append(machine)
        loads = rows.get("load_average", ())
        warning = load_warning(machine, loads)
        if warning is not None:
            lines.append(f"side {machine['side_label']}: {warning}")
    base = machines[0] if machines else {}
    for machine in machines[1:]:
        differences = machine_differences(base, machine)
        if differences:
            lines.append(f"the machines of sides {base['side_label']} and "
                         f"{machine['side_label']} differ: {'; '.join(differences)}")
    return tuple(lines)
