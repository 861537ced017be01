"""The benchmark harness behind ``pytest bench/``: everything of it that is not pytest glue.

Five modules, one role each, behind this public face:

- ``_options``: :data:`OPTIONS` (each a flag and an environment variable),
  :func:`resolve_options` and :class:`HarnessOptions`;
- ``_matrix``: :func:`build_matrix`, the cells the options select and why a cell cannot run
  here (:class:`MatrixCell`), and :func:`benchmark_settings`, pytest-benchmark's settings
  for each cell (the profile's time per cell);
- ``_session``: :class:`Harness`, one session: a cell measured and checked
  (:meth:`Harness.run_cell`), the journal of finished cells, the results file;
- ``_floor_rounds``: :class:`FloorRounds`, the session's floor probe rounds (at the start,
  between cells, at the end) and each record's floor columns;
- ``_render``: the speed-up table and the summary lines on the terminal.

``bench/conftest.py`` registers :data:`OPTIONS`, parametrises the benchmark with
:func:`build_matrix`, and hands each cell to :meth:`Harness.run_cell` together with a
function that times a trainer's ``call`` with pytest-benchmark (:data:`TimeCalls`).
"""

from linfit.convergence import REFERENCE_DEVICE, REFERENCE_VARIANT
from linfit.harness._floor_rounds import (
    FLOOR_ROUND_INTERVAL_SECONDS,
    MAX_SESSION_ROUNDS,
    FloorRounds,
)
from linfit.harness._matrix import (
    MatrixCell,
    benchmark_settings,
    build_matrix,
    cell_group,
    cell_id,
)
from linfit.harness._options import (
    BY_DEST,
    DEFAULT_DTYPES,
    DEFAULT_PROFILE,
    DEFAULT_RESULTS_DIR,
    DEFAULT_SIZES,
    FLOORS_MODES,
    FULL_PROFILE_EXTRA_SIZES,
    OPTIONS,
    PROFILES,
    QUICK_MAX_TIME_SECONDS,
    HarnessOptions,
    Option,
    Profile,
    available_backends,
    parse_sizes,
    resolve_options,
)
from linfit.harness._render import MESSAGE_MAX_CHARS, format_speedups, gate_lines, results_lines
from linfit.harness._session import (
    WARMUP_CALLS,
    Harness,
    RawTiming,
    TimeCalls,
    make_run_id,
    per_step_samples,
    sigterm_as_interrupt,
    trace_problems,
)
from linfit.results.record import step_statistics

__all__ = [
    "BY_DEST",
    "DEFAULT_DTYPES",
    "DEFAULT_PROFILE",
    "DEFAULT_RESULTS_DIR",
    "DEFAULT_SIZES",
    "FLOORS_MODES",
    "FLOOR_ROUND_INTERVAL_SECONDS",
    "FULL_PROFILE_EXTRA_SIZES",
    "MAX_SESSION_ROUNDS",
    "MESSAGE_MAX_CHARS",
    "OPTIONS",
    "PROFILES",
    "QUICK_MAX_TIME_SECONDS",
    "REFERENCE_DEVICE",
    "REFERENCE_VARIANT",
    "WARMUP_CALLS",
    "FloorRounds",
    "Harness",
    "HarnessOptions",
    "MatrixCell",
    "Option",
    "Profile",
    "RawTiming",
    "TimeCalls",
    "available_backends",
    "benchmark_settings",
    "build_matrix",
    "cell_group",
    "cell_id",
    "format_speedups",
    "gate_lines",
    "make_run_id",
    "parse_sizes",
    "per_step_samples",
    "resolve_options",
    "results_lines",
    "sigterm_as_interrupt",
    "step_statistics",
    "trace_problems",
]
