"""Do two runs compute the same W and b? Tolerances per dtype, and the check itself."""

from __future__ import annotations

import math

__all__ = ["CONVERGENCE_STEPS", "TOLERANCES", "convergence_problems"]

# Steps from W=5, b=0 at lr 0.1 before weights are compared: with var(x) = 1 the error
# shrinks by about 0.8 per step, so 100 steps leave 0.8**100 ~ 2e-10 of it.
CONVERGENCE_STEPS = 100

# dtype -> (rtol against the reference run (CPU eager, same n and dtype), atol against the
# float64 OLS solution). float32 figures are the design's (1e-5 and 1e-3); float64 is near
# its rounding; float16 and bfloat16 were set from runs at n=1e3 (final W off OLS by 5e-3
# in float16 and 3e-2 in bfloat16, where one ulp at 3.0 is 2e-3 and 1.6e-2), with room for
# a different summation order on another device.
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
        reference_w, reference_b: the reference run's (CPU eager, same n and dtype).
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
