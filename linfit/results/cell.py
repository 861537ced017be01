"""The key of a benchmark cell: :class:`Cell`, the key columns and their defaults.

Everything measured about a cell hangs off this key; grouping and matching use it. This
module imports nothing of linfit, so that any layer can name a cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ARGS_CONVENTION",
    "KEY_COLUMNS",
    "KEY_DEFAULTS",
    "NO_STRATEGY",
    "Cell",
    "duplicate_cells",
    "is_missing",
    "legacy_convention",
]

KEY_COLUMNS = ("backend", "device", "variant", "n_examples", "dtype", "steps_per_call",
               "replicas", "convention")
# The key columns added in results schema 3, and their value in a row that lacks them (an
# older file's, journal's or harness's row): one device, no calling convention recorded.
KEY_DEFAULTS: Mapping[str, Any] = {"replicas": 1, "convention": ""}

# How linfit called a TensorFlow compiled step before schema 3 recorded it: W, b, x, y and
# the learning rate as arguments of the tf.function (issue 12's "arguments" convention).
ARGS_CONVENTION = "args"
# The strategy of a cell that runs on one device, without tf.distribute or sharding.
NO_STRATEGY = "none"


def is_missing(value: Any) -> bool:
    """Whether a row's value means "no value": None, '' or NaN (the one home of that test:
    the reader, the writer and :meth:`linfit.results.record.CellResult.from_row` use it)."""
    return value is None or (isinstance(value, str) and value == "") or (
        isinstance(value, float) and math.isnan(value))


def legacy_convention(backend: str, compiled: bool) -> str:
    """The calling convention of a cell from before schema 3 recorded one, and of a cell
    whose backend does not say: ``args`` for TensorFlow's compiled variants (linfit passed
    W, b, x, y and the learning rate as arguments), '' elsewhere.

    Args:
        backend: the cell's backend.
        compiled: whether its variant is traced/compiled.
    """
    return ARGS_CONVENTION if backend == "tensorflow" and compiled else ""


@dataclass(frozen=True, order=True)
class Cell:
    """The key of one benchmark cell: everything else measured hangs off it.

    Attributes:
        backend, device, variant, n_examples, dtype, steps_per_call: what runs, where, on
            how much data, and how many steps one call makes.
        replicas: replicas the data are split across (1: one device, no strategy).
        convention: how a TensorFlow compiled step is called (``args``, ``captured``,
            ``concrete``, ...); '' where that does not apply.
    """

    backend: str
    device: str
    variant: str
    n_examples: int
    dtype: str
    steps_per_call: int
    replicas: int = 1
    convention: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Cell:
        """The cell of a result row (a dict or a pandas row); a row without ``replicas`` or
        ``convention`` (or with no value there) gets :data:`KEY_DEFAULTS`."""
        replicas = row.get("replicas")
        convention = row.get("convention")
        return cls(str(row["backend"]), str(row["device"]), str(row["variant"]),
                   int(row["n_examples"]), str(row["dtype"]), int(row["steps_per_call"]),
                   KEY_DEFAULTS["replicas"] if is_missing(replicas) else int(replicas),
                   KEY_DEFAULTS["convention"] if is_missing(convention) else str(convention))

    @property
    def qualifiers(self) -> str:
        """The replicas and convention where they are not the default (``r=2``,
        ``captured``), space-separated; '' for a one-device cell called as linfit always did.
        """
        parts = [f"r={self.replicas}"] if self.replicas != KEY_DEFAULTS["replicas"] else []
        if self.convention not in (KEY_DEFAULTS["convention"], ARGS_CONVENTION):
            parts.append(self.convention)
        return " ".join(parts)

    @property
    def variant_label(self) -> str:
        """The variant with its :attr:`qualifiers`, for a table's variant column:
        ``function``, ``function r=2``, ``xla captured``."""
        return f"{self.variant} {self.qualifiers}" if self.qualifiers else self.variant

    def __str__(self) -> str:
        text = (f"{self.backend} {self.device} {self.variant} n={self.n_examples:g} "
                f"{self.dtype} k={self.steps_per_call}")
        return f"{text} {self.qualifiers}" if self.qualifiers else text


def duplicate_cells(cells: Iterable[Cell]) -> tuple[int, int, Cell] | None:
    """The first cell that appears twice: (index of its first, index of its twin, cell).

    The one home of the duplicate-cell check (reader, writer, plot and report inputs).

    Args:
        cells: cells in order.

    Returns:
        None when every cell is unique.
    """
    seen: dict[Cell, int] = {}
    for index, cell in enumerate(cells):
        if cell in seen:
            return seen[cell], index, cell
        seen[cell] = index
    return None
