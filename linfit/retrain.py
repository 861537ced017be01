"""The convergence figure's re-runs: train each variant of a results file again, every step kept.

A results file keeps the final W and b of each cell only; the tutorial's figure needs the
path. This is the one place outside the benchmark and ``linfit fit`` that trains: the
analysis (:mod:`linfit.summary`) and the presentation (:mod:`linfit.plots`,
:mod:`linfit.report`) never do, and whoever draws the convergence figure (``linfit plot``,
``linfit report``, the bench session) calls :func:`convergence_runs` explicitly and hands
the runs over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from linfit._errors import LinfitError
from linfit.backends import get_backend, installed_backends
from linfit.convergence import CONVERGENCE_STEPS
from linfit.data import make_dataset
from linfit.fit import FitResult, fit
from linfit.summary import ok_rows

__all__ = ["CONVERGENCE_MAX_N_EXAMPLES", "ConvergenceRuns", "SkippedCell", "convergence_runs"]

# The convergence figure re-trains at the results file's smallest n_examples, but no more
# than this: the figure is about the path of W and b, which n barely changes, and a re-run
# at n=1e8 would take as long as the benchmark.
CONVERGENCE_MAX_N_EXAMPLES = 10_000


@dataclass(frozen=True)
class SkippedCell:
    """A (backend, variant, device) the convergence figure could not run here, and why."""

    backend: str
    variant: str
    device: str
    reason: str

    def __str__(self) -> str:
        return f"{self.backend} {self.variant} on {self.device}: {self.reason}"


@dataclass(frozen=True)
class ConvergenceRuns:
    """The fits behind the convergence figure, and what could not be run here.

    Attributes:
        results: one fit per (backend, variant, device) that ran, every step recorded (loop
            variants ran with steps_per_call=1).
        skipped: every (backend, variant, device) not run, with the reason.
        loop_variants: the (backend, variant) pairs of the file that are loop variants.
        n_examples, dtype, seed, learning_rate: the data and step size every fit used.
        steps: training steps of every fit.
    """

    results: tuple[FitResult, ...]
    skipped: tuple[SkippedCell, ...]
    loop_variants: frozenset[tuple[str, str]]
    n_examples: int
    dtype: str
    seed: int
    learning_rate: float
    steps: int


def _convergence_dtype(dtypes: Sequence[str]) -> str:
    # float32 is the tutorial's dtype; another one only when the file has no float32 cell.
    return "float32" if "float32" in dtypes else sorted(dtypes)[0]


def convergence_runs(frame: pd.DataFrame, steps: int = CONVERGENCE_STEPS,
                     max_n_examples: int = CONVERGENCE_MAX_N_EXAMPLES,
                     fits: Sequence[FitResult] = ()) -> ConvergenceRuns:
    """Train every (backend, variant, device) that ran in ``frame`` again, here, every step kept.

    The results file has only the final W and b; the tutorial's figure needs the path. Every
    fit uses the same data: the smallest n_examples of the cells that ran (at most
    ``max_n_examples``), float32 (or, without float32 cells, the first dtype by name), and
    the seed and learning rate of the first cell that ran. Loop variants run one step per
    call so that every step is recorded.

    Cells whose backend is not installed here, whose device does not exist here, whose
    variant this linfit does not know, or whose fit fails with a :class:`LinfitError`
    (divergence, unsupported dtype) are skipped and listed in ``skipped``.

    Args:
        frame: a results frame.
        steps: training steps per fit.
        max_n_examples: cap on the data set size.
        fits: fits already made on ``frame``'s data seed (the bench session passes its cells'
            convergence runs). One is used instead of training again when it has the
            figure's variant, device, n_examples, dtype, learning rate and steps, one step
            per call.

    Raises:
        LinfitError: when no cell of ``frame`` ran (every status is failed).
    """
    rows = ok_rows(frame)
    if rows.empty:
        raise LinfitError("no cell in the results ran (every status is failed): nothing to "
                          "train again")
    dtype = _convergence_dtype(list(rows["dtype"].unique()))
    n_examples = int(min(rows["n_examples"].min(), max_n_examples))
    seed = int(rows["seed"].iloc[0])
    learning_rate = float(rows["learning_rate"].iloc[0])
    data = make_dataset(n_examples, dtype, seed)
    installed = installed_backends()
    results = []
    skipped = []
    at_hand = {(done.backend, done.variant, done.device): done for done in fits
               if (done.n_examples, done.dtype, done.learning_rate, len(done.history),
                   done.steps_per_call) == (n_examples, dtype, learning_rate, steps, 1)}
    cells = rows[["backend", "variant", "device"]].drop_duplicates()
    for backend_name, variant, device in cells.itertuples(index=False):
        if (backend_name, variant, device) in at_hand:
            results.append(at_hand[backend_name, variant, device])
            continue
        if backend_name not in installed:
            reason = f"backend {backend_name} is not installed here"
        elif variant not in get_backend(backend_name).variants:
            reason = f"this linfit has no {backend_name} variant {variant}"
        elif device not in {d.id for d in get_backend(backend_name).devices()}:
            reason = f"{backend_name} has no device {device} here"
        else:
            try:
                results.append(fit(get_backend(backend_name), variant, device, data, steps,
                                   learning_rate))
                continue
            except LinfitError as error:
                reason = str(error)
        skipped.append(SkippedCell(backend_name, variant, device, reason))
    loops = rows[rows["loop"]][["backend", "variant"]].drop_duplicates()
    return ConvergenceRuns(results=tuple(results), skipped=tuple(skipped),
                           loop_variants=frozenset(loops.itertuples(index=False, name=None)),
                           n_examples=n_examples, dtype=dtype, seed=seed,
                           learning_rate=learning_rate, steps=steps)
