"""One typed, immutable record per benchmark cell: :class:`CellResult`.

In the style of torch.utils.benchmark's ``Measurement`` and pyperf's ``Run``: the record
keeps the cell's key, the run's facts, the **raw per-call** times with their calls per
round and steps per call, the checks' outcomes and the reference the numerics were checked
against. Every statistic (per-step samples, min, median, mean, stddev, IQR, max, rounds)
is a derived property computed in one place, :func:`step_statistics`.

The harness builds a record directly; the readers convert rows with
:meth:`CellResult.from_row`, and the results file and the journal are written from
:meth:`CellResult.to_row` (see :mod:`linfit.results.csv`).
This module imports NumPy but not pandas: a measurement can be recorded without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from linfit.data import xy_bytes
from linfit.results.cell import KEY_COLUMNS, Cell, is_missing
from linfit.results.columns import CHECK_OUTCOMES, COLUMN_NAMES, STATUSES

__all__ = [
    "CHECK_OUTCOMES",
    "FACT_COLUMNS",
    "STATISTIC_COLUMNS",
    "STATUSES",
    "CellResult",
    "Reference",
    "step_statistics",
]


# Columns derived from the samples: written for pandas users, never read back as a truth.
STATISTIC_COLUMNS = ("rounds", "min_seconds", "median_seconds", "mean_seconds",
                     "stddev_seconds", "iqr_seconds", "max_seconds")

# Fields of CellResult that map one-to-one to a column of the same name.
_FIELD_COLUMNS = ("status", "message", "iterations", "first_call_seconds", "traces",
                  "placement", "convergence_steps", "final_w", "final_b", "final_loss",
                  "w_ols", "b_ols", "check_placement", "check_traces", "check_convergence",
                  "bytes_min", "read_bandwidth_bytes_per_second", "dispatch_floor_seconds",
                  "floor_seconds", "floor_rounds", "floor_spread", "hlo_kernels_per_step",
                  "hlo_loops", "hlo_bytes_per_step")
_INT_FIELDS = ("iterations", "traces", "convergence_steps", "bytes_min", "floor_rounds")
_TEXT_FIELDS = ("status", "message", "placement", "hlo_loops")

# Derived or structured columns, built by to_row() from fields and properties.
_DERIVED_COLUMNS = (*STATISTIC_COLUMNS, "call_samples_seconds", "efficiency", "reference",
                    "reference_w", "reference_b", "schema_version", "hlo_bytes_ratio")

# The run's facts: machine, software, environment, git, and what the variant is. Every
# column that is neither the key, a field, nor derived.
FACT_COLUMNS = tuple(name for name in COLUMN_NAMES
                     if name not in (*KEY_COLUMNS, *_FIELD_COLUMNS, *_DERIVED_COLUMNS))


def _optional_float(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def _optional_int(value: Any) -> int | None:
    return None if is_missing(value) else int(value)


def step_statistics(samples: Sequence[float]) -> dict[str, float | int]:
    """rounds, min, median, mean, stddev, IQR and max of per-step samples, as result columns.

    The one place these are computed. The standard deviation is the sample one (n - 1), 0
    for one sample; the IQR is q3 - q1 with NumPy's default (linear) interpolation, the
    quartiles the figures draw.

    Args:
        samples: per-step times in seconds, at least one.

    Returns:
        A dict keyed by :data:`STATISTIC_COLUMNS`.

    Raises:
        ValueError: for no samples.
    """
    if len(samples) == 0:
        raise ValueError("step_statistics() needs at least one sample")
    values = np.asarray(samples, dtype=np.float64)
    q1, q3 = np.percentile(values, [25, 75])
    return {
        "rounds": int(values.size),
        "min_seconds": float(values.min()),
        "median_seconds": float(np.median(values)),
        "mean_seconds": float(values.mean()),
        "stddev_seconds": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "iqr_seconds": float(q3 - q1),
        "max_seconds": float(values.max()),
    }


@dataclass(frozen=True)
class Reference:
    """The run a cell's W and b were checked against (see
    :func:`linfit.convergence.reference_for`), and its W and b where known."""

    backend: str
    variant: str
    device: str
    w: float | None = None
    b: float | None = None

    def __str__(self) -> str:
        return f"{self.backend} {self.variant} {self.device}"

    @classmethod
    def parse(cls, text: str, w: float | None = None, b: float | None = None) -> Reference:
        """``tensorflow eager CPU:0`` (the ``reference`` column) as a Reference.

        Raises:
            ValueError: when the text is not three words.
        """
        parts = text.split()
        if len(parts) != 3:
            raise ValueError(f"{text!r} is not 'backend variant device'")
        return cls(parts[0], parts[1], parts[2], w, b)


@dataclass(frozen=True)
class CellResult:
    """Everything measured and checked about one cell in one run. Immutable.

    Attributes:
        cell: the key (backend, device, variant, n_examples, dtype, steps_per_call,
            replicas, convention).
        status: "ok" or "failed"; ``message`` says why it failed ('' when ok).
        per_call_seconds: each round's time of one call (k = steps_per_call steps), in
            round order; empty when the cell was not timed.
        iterations: calls per round (pytest-benchmark's calibration).
        first_call_seconds: the first call, whole (trace + compile + its k steps).
        traces: times the step was traced/compiled.
        placement: the device that held the step's result.
        convergence_steps, final_w, final_b, final_loss: the convergence re-run.
        w_ols, b_ols: the float64 least-squares solution of the data.
        reference: the run W and b were checked against, with its W and b; None when
            unknown (a schema-1 file) or not reached.
        check_placement, check_traces, check_convergence: each check's outcome, one of
            :data:`CHECK_OUTCOMES`.
        bytes_min, read_bandwidth_bytes_per_second, dispatch_floor_seconds,
            floor_seconds: the hardware floors, of the probe round where the floor is
            lowest (None where not measured).
        floor_rounds: the probe rounds the floor is the best of (None where not measured,
            or not recorded: files before schema 4).
        floor_spread: the worst round's floor / the best's, >= 1 (None as floor_rounds).
        hlo_kernels_per_step, hlo_loops, hlo_bytes_per_step: the account of the optimized
            HLO (:class:`linfit.hlo.HloAccount`): kernels and bytes per training step, and
            the loop structure; None and '' where XLA does not compile the step, the
            account could not be made, or the file predates them (schema < 5).
        facts: the run's facts, column name -> value (:data:`FACT_COLUMNS`: run id, git,
            machine, software, environment flags, what the variant is, run_interrupted).
    """

    cell: Cell
    status: str
    message: str = ""
    per_call_seconds: tuple[float, ...] = ()
    iterations: int | None = None
    first_call_seconds: float | None = None
    traces: int | None = None
    placement: str = ""
    convergence_steps: int | None = None
    final_w: float | None = None
    final_b: float | None = None
    final_loss: float | None = None
    w_ols: float | None = None
    b_ols: float | None = None
    reference: Reference | None = None
    check_placement: str = "not-run"
    check_traces: str = "not-run"
    check_convergence: str = "not-run"
    bytes_min: int | None = None
    read_bandwidth_bytes_per_second: float | None = None
    dispatch_floor_seconds: float | None = None
    floor_seconds: float | None = None
    floor_rounds: int | None = None
    floor_spread: float | None = None
    hlo_kernels_per_step: float | None = None
    hlo_loops: str = ""
    hlo_bytes_per_step: float | None = None
    facts: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        for name in ("check_placement", "check_traces", "check_convergence"):
            if getattr(self, name) not in CHECK_OUTCOMES:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of "
                                 f"{', '.join(CHECK_OUTCOMES)}")
        object.__setattr__(self, "per_call_seconds",
                           tuple(float(s) for s in self.per_call_seconds))
        object.__setattr__(self, "facts", MappingProxyType(dict(self.facts)))

    # --- derived: the one place statistics come from ---------------------------------

    @property
    def steps_per_call(self) -> int:
        """Training steps per timed call (k), from the key."""
        return self.cell.steps_per_call

    @cached_property
    def per_step_seconds(self) -> tuple[float, ...]:
        """Each round's time per training step: per-call time / steps_per_call."""
        return tuple(seconds / self.cell.steps_per_call for seconds in self.per_call_seconds)

    @property
    def timed(self) -> bool:
        """Whether the cell has samples."""
        return bool(self.per_call_seconds)

    @cached_property
    def statistics(self) -> Mapping[str, float | int]:
        """:func:`step_statistics` of the per-step samples; empty when not timed."""
        if not self.per_call_seconds:
            return MappingProxyType({})
        return MappingProxyType(step_statistics(self.per_step_seconds))

    @property
    def rounds(self) -> int:
        """Timed rounds: the number of samples (0 when not timed)."""
        return len(self.per_call_seconds)

    def _statistic(self, name: str) -> float:
        return float(self.statistics.get(name, math.nan))

    @property
    def min_seconds(self) -> float:
        """Fastest round, per step (NaN when not timed)."""
        return self._statistic("min_seconds")

    @property
    def median_seconds(self) -> float:
        """Median round, per step (NaN when not timed)."""
        return self._statistic("median_seconds")

    @property
    def mean_seconds(self) -> float:
        """Mean of the rounds, per step (NaN when not timed)."""
        return self._statistic("mean_seconds")

    @property
    def stddev_seconds(self) -> float:
        """Sample standard deviation of the rounds, per step (NaN when not timed)."""
        return self._statistic("stddev_seconds")

    @property
    def iqr_seconds(self) -> float:
        """Interquartile range of the rounds, per step (NaN when not timed)."""
        return self._statistic("iqr_seconds")

    @property
    def max_seconds(self) -> float:
        """Slowest round, per step (NaN when not timed)."""
        return self._statistic("max_seconds")

    @property
    def efficiency(self) -> float | None:
        """floor_seconds / median_seconds (1.0 = at the floor); None without both, or where
        either is not a finite number > 0 (a derived figure is unknown, never an error)."""
        if self.floor_seconds is None or not self.timed:
            return None
        floor, median = self.floor_seconds, self.median_seconds
        if not (math.isfinite(floor) and floor > 0 and math.isfinite(median) and median > 0):
            return None
        return floor / median

    @property
    def efficiency_low(self) -> float | None:
        """The efficiency against the best round's floor: :attr:`efficiency` itself."""
        return self.efficiency

    @property
    def efficiency_high(self) -> float | None:
        """The efficiency had the floor been the worst round's: efficiency x floor_spread
        (the efficiency where the spread is unknown)."""
        efficiency = self.efficiency
        if efficiency is None or self.floor_spread is None:
            return efficiency
        return efficiency * self.floor_spread

    @property
    def hlo_bytes_ratio(self) -> float | None:
        """hlo_bytes_per_step over the read floor (x and y read once, 2 * n * itemsize);
        None without an HLO account."""
        if self.hlo_bytes_per_step is None:
            return None
        return self.hlo_bytes_per_step / xy_bytes(self.cell.n_examples, self.cell.dtype)

    @property
    def ok(self) -> bool:
        """Whether the cell passed every check."""
        return self.status == "ok"

    # --- conversion -------------------------------------------------------------------

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CellResult:
        """A record from a result row: the harness's dict, or a typed row of the reader.

        Per-call samples come from ``call_samples_seconds``, or, where only per-step ones
        are given (``samples_seconds``: schema-1 files, older harness rows), from those times
        steps_per_call. Statistic columns in the row are ignored (they are derived); the
        reader checks them against the samples before it calls this. Columns the record
        does not model (other than statistics) go to :attr:`facts`.

        Args:
            row: column name -> value; empty strings, None and NaN mean "no value".

        Returns:
            The record.

        Raises:
            KeyError: when a key column is missing.
            ValueError: for a status or check outcome outside the vocabulary, or a
                ``reference`` that is not "backend variant device".
        """
        cell = Cell.from_row(row)
        samples: Iterable[Any] = ()
        call_samples = row.get("call_samples_seconds")
        step_samples = row.get("samples_seconds")
        if not is_missing(call_samples) and len(_as_samples(call_samples)):
            samples = _as_samples(call_samples)
        elif not is_missing(step_samples) and len(_as_samples(step_samples)):
            samples = [s * cell.steps_per_call for s in _as_samples(step_samples)]
        values: dict[str, Any] = {}
        for name in _FIELD_COLUMNS:
            value = row.get(name)
            if name in _TEXT_FIELDS:
                values[name] = "" if is_missing(value) else str(value)
            elif name.startswith("check_"):
                values[name] = "not-run" if is_missing(value) else str(value)
            elif name in _INT_FIELDS:
                values[name] = _optional_int(value)
            else:
                values[name] = _optional_float(value)
        reference = None
        text = row.get("reference")
        if not is_missing(text) and str(text) != "unknown":
            reference = Reference.parse(str(text), _optional_float(row.get("reference_w")),
                                        _optional_float(row.get("reference_b")))
        facts = {name: row[name] for name in FACT_COLUMNS if name in row}
        return cls(cell=cell, per_call_seconds=tuple(samples), reference=reference,
                   facts=facts, **values)

    def to_row(self) -> dict[str, Any]:
        """The record as a results-CSV row: every column of :data:`linfit.results.columns.COLUMNS`
        but ``schema_version`` (the writer adds it), None where there is no value.

        ``call_samples_seconds`` is a tuple of floats here; the writer formats it.
        """
        row: dict[str, Any] = {name: self.facts.get(name) for name in FACT_COLUMNS}
        row.update({name: getattr(self.cell, name) for name in KEY_COLUMNS})
        row.update({name: getattr(self, name) for name in _FIELD_COLUMNS})
        row.update({name: self.statistics.get(name) for name in STATISTIC_COLUMNS})
        row["call_samples_seconds"] = self.per_call_seconds
        row["efficiency"] = self.efficiency
        row["hlo_bytes_ratio"] = self.hlo_bytes_ratio
        row["reference"] = "unknown" if self.reference is None else str(self.reference)
        row["reference_w"] = None if self.reference is None else self.reference.w
        row["reference_b"] = None if self.reference is None else self.reference.b
        return row


def _as_samples(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        return tuple(float(v) for v in value.split())
    return tuple(float(v) for v in value)
