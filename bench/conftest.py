"""pytest glue for ``pytest bench/``: linfit's options, the matrix, the results file, the summary.

The logic lives in :mod:`linfit.harness`; this file only connects it to pytest and
pytest-benchmark. A bad option value is a pytest usage error (one line, exit status 4).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from linfit._errors import LinfitError
from linfit.check import Finding, check_frame, exit_status
from linfit.harness import (
    OPTIONS,
    Harness,
    MatrixCell,
    build_matrix,
    cell_id,
    format_speedups,
    resolve_options,
)
from linfit.results import read_results

HARNESS = pytest.StashKey[Harness]()
MATRIX = pytest.StashKey[list[MatrixCell]]()
BASELINE = pytest.StashKey[pd.DataFrame]()
FINDINGS = pytest.StashKey[list[Finding]]()
PLOTS = pytest.StashKey[list[str]]()
NO_PLOTS_ENV = "LINFIT_NO_PLOTS"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linfit", "linfit benchmark matrix (each also an environment "
                                      "variable; the flag wins)")
    for option in OPTIONS:
        group.addoption(option.flag, dest=option.dest, default=None, metavar=option.metavar,
                        help=f"{option.help} [env {option.env}]")
    group.addoption("--linfit-no-plots", dest="linfit_no_plots", action="store_true",
                    help="do not draw the figures beside the results CSV "
                         f"[env {NO_PLOTS_ENV}=1]")


def pytest_configure(config: pytest.Config) -> None:
    values = {option.dest: config.getoption(option.dest) for option in OPTIONS}
    try:
        options = resolve_options(values, os.environ, Path(config.rootpath),
                                  Path(config.invocation_params.dir))
    except LinfitError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[HARNESS] = Harness(options)
    if options.baseline is not None:
        # Read now, so that an unusable baseline stops the run before anything is timed.
        try:
            config.stash[BASELINE] = read_results(options.baseline)
        except LinfitError as error:
            raise pytest.UsageError(f"--linfit-baseline: {error}") from None


def pytest_sessionstart(session: pytest.Session) -> None:
    # Here rather than at collection, so that a bad variant or device is a usage error.
    config = session.config
    harness = config.stash[HARNESS]
    try:
        config.stash[MATRIX] = build_matrix(harness.options)
    except LinfitError as error:
        raise pytest.UsageError(str(error)) from None
    timing = not (config.getoption("benchmark_disable", False)
                  or config.getoption("benchmark_skip", False)
                  or config.getoption("collectonly", False))
    if timing:
        harness.measure_floors()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "linfit_cell" not in metafunc.fixturenames:
        return
    config = metafunc.config
    # One parameter holding the whole cell keeps the matrix's order: by (n, dtype) first,
    # so each data set is generated once.
    metafunc.parametrize("linfit_cell", [
        pytest.param(entry.cell, id=cell_id(entry.cell),
                     marks=[pytest.mark.skip(reason=entry.skip_reason)] if entry.skip_reason
                     else [])
        for entry in config.stash[MATRIX]
    ])


@pytest.fixture
def linfit_harness(request: pytest.FixtureRequest) -> Harness:
    """The session's harness: options, run facts and the rows recorded so far."""
    return request.config.stash[HARNESS]


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Runs even when cells failed or the run was interrupted: what was measured is kept.
    config = session.config
    harness = config.stash.get(HARNESS, None)
    if harness is None or harness.write() is None:
        return
    frame = read_results(harness.written)
    if not (config.getoption("linfit_no_plots") or os.environ.get(NO_PLOTS_ENV)):
        config.stash[PLOTS] = _draw(frame, harness.written)
    baseline = config.stash.get(BASELINE, None)
    if baseline is not None:
        findings = check_frame(frame, baseline, results_label=str(harness.written),
                               baseline_label=str(harness.options.baseline))
        config.stash[FINDINGS] = findings
        if exit_status(findings) != 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _draw(frame: pd.DataFrame, written: Path) -> list[str]:
    """Draw the run's figures beside its CSV; a figure that cannot be drawn costs no result."""
    from linfit.plots import write_run_plots  # matplotlib only when plots are wanted

    try:
        paths = write_run_plots(frame, written.parent, written.stem)
    except LinfitError as error:
        return [f"figures not drawn: {error}"]
    return [f"figure: {path}" for path in paths]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    # trylast: after pytest-benchmark's table.
    harness = config.stash.get(HARNESS, None)
    if harness is None:
        return
    skipped = config.getoption("benchmark_skip", False) and not config.getoption(
        "benchmark_only", False)
    if harness.written is None:
        if harness.rows or skipped:
            terminalreporter.write_sep("-", "linfit")
            terminalreporter.write_line("nothing was timed (--benchmark-disable or "
                                        "--benchmark-skip): no results CSV written")
        return
    # Read back what was written: the summary shows the file, checked by its own reader.
    frame = read_results(harness.written)
    failed = int((frame["status"] != "ok").sum())
    terminalreporter.write_sep("-", "linfit")
    terminalreporter.write_line(f"results: {harness.written} ({len(frame)} cells, "
                                f"{len(frame) - failed} ok, {failed} failed); times in it are "
                                "per training step, the table above is per call of k steps")
    terminalreporter.write_line("speed-up over the same backend's eager (median step time of "
                                "eager / of the variant):")
    for line in format_speedups(frame):
        terminalreporter.write_line("  " + line)
    terminalreporter.write_line(harness.floors_note)
    for line in config.stash.get(PLOTS, []):
        terminalreporter.write_line(line)
    findings = config.stash.get(FINDINGS, None)
    if findings is not None:
        terminalreporter.write_sep("-", f"linfit check against {harness.options.baseline}")
        for finding in findings:
            terminalreporter.write_line(str(finding))
        verdict = ("regression: the session fails" if exit_status(findings)
                   else "no regression")
        terminalreporter.write_line(f"{len(findings)} findings; {verdict}")
