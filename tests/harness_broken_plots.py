"""Test-only fault for tests/test_harness.py, loaded into a ``pytest bench/`` subprocess with
``-p harness_broken_plots`` (tests/ on PYTHONPATH). Never imported by linfit.

Drawing a run's figures raises an error that is no LinfitError, as a matplotlib failure
would: the results CSV must be written all the same, and the failure said once.
"""

from __future__ import annotations

import linfit.plots


def _broken(*args: object, **kwargs: object) -> list[str]:
    raise RuntimeError("the figure broke")


linfit.plots.write_run_plots = _broken
