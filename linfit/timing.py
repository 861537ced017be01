"""The one timing loop: the ab worker's bursts, the floor probes and the distributed chief's
calls are all timed by :func:`time_calls`.

A pure measurement function: it calls, reads a clock and returns raw times; what a time is
per (a call, a step, a byte) is the caller's to derive.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator

__all__ = ["time_calls"]


@contextlib.contextmanager
def _gc_disabled(disable: bool = True) -> Iterator[None]:
    """Garbage collection off inside the block (a collection inside a sample is noise, as
    pytest-benchmark's ``--benchmark-disable-gc`` has it), restored on the way out."""
    was_enabled = gc.isenabled()
    if disable:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_calls(call: Callable[[], object], samples: int, calls_per_sample: int = 1, *,
               warmup: int = 0, sync: Callable[[], object] | None = None,
               disable_gc: bool = True,
               clock: Callable[[], float] = time.perf_counter_ns) -> list[float]:
    """Time ``samples`` samples of ``calls_per_sample`` back-to-back calls of ``call``.

    Args:
        call: what is timed.
        samples: how many clock intervals to return.
        calls_per_sample: calls inside each interval (its time is their sum).
        warmup: untimed calls first (garbage collection as it was).
        sync: called after each sample's calls and before the clock is read, so that the
            reading follows finished device work; None where ``call`` synchronises itself
            (every linfit Trainer's ``call()`` and every floor probe does).
        disable_gc: garbage collection off while timing, restored after.
        clock: the clock; each sample is the difference of two readings, in its unit
            (default: ``time.perf_counter_ns``, integer nanoseconds).

    Returns:
        The ``samples`` interval times, in order, in the clock's unit.
    """
    for _ in range(warmup):
        call()
    times = []
    with _gc_disabled(disable_gc):
        for _ in range(samples):
            start = clock()
            for _ in range(calls_per_sample):
                call()
            if sync is not None:
                sync()
            times.append(clock() - start)
    return times
