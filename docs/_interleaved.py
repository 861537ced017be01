"""What the docs' loop scripts (loops.py, jax_loops.py) share: interleaved timing (every
call timed in each round, round after round, so that a drift of the machine reaches all of
them alike; the median over the rounds per call) and the check that every form trains the
same W and b."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import numpy as np

# Rounds, and the time each call's share of a round lasts (its call count is calibrated).
ROUNDS = 15
ROUND_SECONDS = 0.02
WARMUP_CALLS = 3


def per_step_medians(calls: dict[str, Callable[[], object]],
                     steps_per_call: int) -> dict[str, float]:
    """Median microseconds per step of each call over ROUNDS interleaved rounds, GC off.

    Args:
        calls: name -> a call of ``steps_per_call`` steps that returns when they are done
            (synchronised: the caller blocks on the device).
        steps_per_call: steps each call runs.
    """
    counts = {}
    for name, call in calls.items():
        for _ in range(WARMUP_CALLS):
            call()
        start = time.perf_counter()
        call()
        counts[name] = max(1, int(ROUND_SECONDS / (time.perf_counter() - start)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for name, call in calls.items():
                start = time.perf_counter()
                for _ in range(counts[name]):
                    call()
                samples[name].append((time.perf_counter() - start) / counts[name])
    finally:
        gc.enable()
    return {name: statistics.median(values) / steps_per_call * 1e6
            for name, values in samples.items()}


def require_same_weights(n_examples: int, weights: dict[str, tuple[float, float]],
                         reference: str, rtol: float) -> None:
    """Stop the script unless every form ended at ``reference``'s W and b (within rtol).

    Raises:
        SystemExit: naming the first form that did not.
    """
    for name, pair in weights.items():
        if not np.allclose(pair, weights[reference], rtol=rtol):
            raise SystemExit(f"n={n_examples}: {name} ends at W, b = {pair}, "
                             f"{reference} at {weights[reference]}")
