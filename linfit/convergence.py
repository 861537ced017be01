"""Do two runs compute the same W and b? Tolerances per dtype, the check itself, and the
one reference policy (:func:`reference_for`): which run a cell is checked against."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from linfit.results import Cell

if TYPE_CHECKING:
    from linfit.results.record import Reference

__all__ = [
    "CONVERGENCE_STEPS",
    "REFERENCE_DEVICE",
    "REFERENCE_STEPS_PER_CALL",
    "REFERENCE_VARIANT",
    "TOLERANCES",
    "convergence_problems",
    "reference_cell",
    "reference_for",
]

# Steps from W=5, b=0 at lr 0.1 before weights are compared: with var(x) = 1 the error
# shrinks by about 0.8 per step, so 100 steps leave 0.8**100 ~ 2e-10 of it.
CONVERGENCE_STEPS = 100

# dtype -> (rtol against the reference run (reference_for: CPU eager of the same backend,
# same n and dtype), atol against the float64 OLS solution). float32 figures are the
# design's (1e-5 and 1e-3); float64 is near its rounding; float16 and bfloat16 were set
# from runs at n=1e3 (final W off OLS by 5e-3 in float16 and 3e-2 in bfloat16, where one
# ulp at 3.0 is 2e-3 and 1.6e-2), with room for a different summation order on another
# device.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-6),
    "float32": (1e-5, 1e-3),
    "float16": (1e-2, 3e-2),
    "bfloat16": (4e-2, 1.5e-1),
}


def convergence_problems(w: float, b: float, reference_w: float, reference_b: float,
                         w_ols: float, b_ols: float, dtype: str,
                         rtol: float | None = None) -> list[str]:
    """What is wrong with a run's final (W, b); an empty list when nothing is.

    Args:
        w, b: the run's final weights.
        reference_w, reference_b: the reference run's (:func:`reference_for`).
        w_ols, b_ols: the float64 least-squares solution of the same data.
        dtype: the training dtype, which picks the tolerances in :data:`TOLERANCES`.
        rtol: overrides the relative tolerance against the reference.

    Returns:
        One message per failed comparison, with the numbers.
    """
    default_rtol, atol_ols = TOLERANCES[dtype]
    rtol = default_rtol if rtol is None else rtol
    problems = []
    for name, value, reference in (("W", w, reference_w), ("b", b, reference_b)):
        if not math.isclose(value, reference, rel_tol=rtol, abs_tol=0.0):
            problems.append(f"{name}={value:.9g} differs from the reference {reference:.9g} "
                            f"by more than rtol {rtol:g}")
    for name, value, ols in (("W", w, w_ols), ("b", b, b_ols)):
        if not abs(value - ols) <= atol_ols:
            problems.append(f"{name}={value:.9g} is {abs(value - ols):.3g} from the OLS "
                            f"{ols:.9g} (tolerance {atol_ols:g})")
    return problems


# --- the reference policy ----------------------------------------------------------------

# The reference run: op by op on the host CPU, where every backend has an eager variant.
REFERENCE_VARIANT = "eager"
REFERENCE_DEVICE = "CPU:0"
# Its steps per call: eager runs one step per call.
REFERENCE_STEPS_PER_CALL = 1


def reference_for(cell: Cell) -> Reference:
    """The run whose final W and b a cell's W and b are checked against: the one policy,
    used by the harness (which trains it) and by ``linfit check`` (which finds its row).

    Policy: **the cell's own backend, eager, on CPU:0**, same n_examples and dtype, after
    :data:`CONVERGENCE_STEPS` steps from W=5, b=0.

    Why this one, and not one reference backend for all (TensorFlow, else PyTorch, else
    JAX, which the harness used before):

    * It asks what a compiled variant or another device does to *this framework's* step:
      that is what linfit measures. Frameworks sum their reductions in different orders,
      so a cross-framework mismatch at rtol is not a fault of the variant; agreement
      across frameworks is still checked, against the float64 least-squares solution.
    * It depends only on the cell, never on which backends were installed or selected.
      With a preferred backend, the same cell was checked against TensorFlow on one
      machine and against PyTorch on another (the GPU hosts have no TensorFlow), and
      ``linfit check`` could not tell which from the file.
    * Every backend has an eager variant and a CPU:0, so a reference always exists.

    Args:
        cell: the cell to check.

    Returns:
        The reference's backend, variant and device (W and b unset: the caller trains it,
        or reads its row).
    """
    from linfit.results.record import Reference

    return Reference(cell.backend, REFERENCE_VARIANT, REFERENCE_DEVICE)


def reference_cell(cell: Cell) -> Cell:
    """The key of the reference run's own cell, where a results file would hold it.

    Args:
        cell: the cell to check.

    Returns:
        :func:`reference_for`'s backend, variant and device, with the cell's n_examples
        and dtype and :data:`REFERENCE_STEPS_PER_CALL`.
    """
    reference = reference_for(cell)
    return Cell(reference.backend, reference.device, reference.variant, cell.n_examples,
                cell.dtype, REFERENCE_STEPS_PER_CALL)
