"""The benchmark: the time of one training step, for every cell conftest.py parametrises."""

from __future__ import annotations

import pytest

from linfit._errors import LinfitError
from linfit._process import WorkerFailed
from linfit.backends import Trainer
from linfit.harness import Harness, RawTiming, cell_group
from linfit.results import Cell


# Its pytest-benchmark settings (the garbage collector off during each round, the profile's
# time per cell) come as each cell's mark from conftest.py: linfit.harness.benchmark_settings.
def test_step_time(benchmark, linfit_harness: Harness, linfit_cell: Cell) -> None:
    benchmark.group = cell_group(linfit_cell)
    benchmark.extra_info["steps_per_call"] = linfit_cell.steps_per_call

    def time_calls(trainer: Trainer) -> RawTiming | None:
        benchmark(trainer.call)
        if benchmark.stats is None:
            # --benchmark-disable: pytest-benchmark called it once, untimed.
            return None
        # stats.data holds each round's time divided by the calls in the round: per call.
        return RawTiming(tuple(benchmark.stats.stats.data), benchmark.stats.iterations)

    try:
        result = linfit_harness.run_cell(linfit_cell, time_calls)
    except (LinfitError, WorkerFailed) as error:
        pytest.fail(f"{linfit_cell}: {error}", pytrace=False)
    benchmark.extra_info.update(first_call_seconds=result.first_call_seconds,
                                traces=result.traces, status=result.status)
    if not result.ok:
        pytest.fail(f"{linfit_cell}: {result.message}", pytrace=False)
