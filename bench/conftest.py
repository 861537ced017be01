"""pytest glue for ``pytest bench/``: linfit's options, the matrix, the results file, the summary.

The logic lives in :mod:`linfit.harness`; this file only connects it to pytest and
pytest-benchmark. A bad option value, or a results folder that cannot be written, is a
pytest usage error (one line, exit status 4) before anything is timed.

Exit status, beyond pytest's own: 5 when timing was on but no cell was timed (every cell
skipped, for example for memory), 1 when the ``--linfit-baseline`` gate fails or the
results could not be written. SIGTERM is handled like Ctrl-C (exit status 2): the results
file holds every cell that finished, and says the run was interrupted.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from pathlib import Path

import pandas as pd
import pytest

from linfit._errors import LinfitError
from linfit.check import Finding, check_results, exit_status
from linfit.environment import env_flag
from linfit.fit import FitResult
from linfit.harness import (
    OPTIONS,
    Harness,
    MatrixCell,
    benchmark_settings,
    build_matrix,
    cell_id,
    gate_lines,
    resolve_options,
    results_lines,
    sigterm_as_interrupt,
)
from linfit.results import ResultSet, read_results

HARNESS = pytest.StashKey[Harness]()
MATRIX = pytest.StashKey[list[MatrixCell]]()
BASELINE = pytest.StashKey[ResultSet]()
FINDINGS = pytest.StashKey[list[Finding]]()
GATE_REASON = pytest.StashKey[str]()
PLOTS = pytest.StashKey[list[str]]()
TIMING = pytest.StashKey[bool]()
NO_PLOTS_ENV = "LINFIT_NO_PLOTS"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("linfit", "linfit benchmark matrix (each also an environment "
                                      "variable; the flag wins)")
    for option in OPTIONS:
        group.addoption(option.flag, dest=option.dest, default=None, metavar=option.metavar,
                        help=f"{option.help} [env {option.env}]")
    group.addoption("--linfit-no-plots", dest="linfit_no_plots", action="store_true",
                    help="do not draw the figures beside the results CSV "
                         f"[env {NO_PLOTS_ENV}=1; 0 draws them]")


def pytest_configure(config: pytest.Config) -> None:
    values = {option.dest: config.getoption(option.dest) for option in OPTIONS}
    try:
        options = resolve_options(values, os.environ, Path(config.rootpath),
                                  Path(config.invocation_params.dir))
        # Parsed now: a value such as LINFIT_NO_PLOTS=maybe is a usage error, not a guess.
        env_flag(NO_PLOTS_ENV)
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
    timing = not (config.getoption("benchmark_disable", False)
                  or config.getoption("benchmark_skip", False)
                  or config.getoption("collectonly", False))
    config.stash[TIMING] = timing
    try:
        if timing:
            # Before anything is timed (and before the frameworks load): the results would
            # be lost at the end otherwise.
            harness.check_output()
        config.stash[MATRIX] = build_matrix(harness.options)
    except LinfitError as error:
        raise pytest.UsageError(str(error)) from None
    if timing:
        harness.start_journal()
        harness.measure_floors()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for note in harness.notes:
        if reporter is not None:
            reporter.write_line(f"linfit: {note}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "linfit_cell" not in metafunc.fixturenames:
        return
    config = metafunc.config
    # Each cell's pytest-benchmark settings (GC off, the profile's time per cell) as its own
    # mark: test_step_time carries none, since pytest-benchmark reads the closest mark only.
    timing = pytest.mark.benchmark(**benchmark_settings(
        config.stash[HARNESS].options, float(config.getoption("benchmark_max_time"))))
    # One parameter holding the whole cell keeps the matrix's order: by (n, dtype) first,
    # so each data set is generated once.
    metafunc.parametrize("linfit_cell", [
        pytest.param(entry.cell, id=cell_id(entry.cell),
                     marks=[timing, pytest.mark.skip(reason=entry.skip_reason)]
                     if entry.skip_reason else [timing])
        for entry in config.stash[MATRIX]
    ])


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    # SIGTERM (CI cancellation, `timeout`) while cells run is handled like Ctrl-C, so the
    # session still ends and writes what finished; the previous handler comes back after.
    # shouldstop too: pytest stops after the cell in flight even where the KeyboardInterrupt
    # was lost (raised inside a __del__), instead of running on to exit 0.
    def stop(reason: str) -> None:
        session.shouldstop = reason

    with sigterm_as_interrupt(on_signal=stop):
        return (yield)


@pytest.fixture
def linfit_harness(request: pytest.FixtureRequest) -> Harness:
    """The session's harness: options, run facts and the rows recorded so far."""
    return request.config.stash[HARNESS]


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Runs even when cells failed or the run was interrupted: what was measured is kept.
    config = session.config
    harness = config.stash.get(HARNESS, None)
    if harness is None or not config.stash.get(TIMING, False):
        return
    interrupted = (session.exitstatus == pytest.ExitCode.INTERRUPTED
                   or bool(session.shouldstop) or bool(session.shouldfail))
    written = harness.write(interrupted=interrupted)
    baseline = config.stash.get(BASELINE, None)
    if written is None:
        if harness.write_error:
            _fail_session(session, pytest.ExitCode.TESTS_FAILED)
        elif not interrupted:
            # Every cell skipped (for memory, for a dtype): a run that measured nothing
            # must not look like a success to CI.
            _fail_session(session, pytest.ExitCode.NO_TESTS_COLLECTED)
        if baseline is not None:
            config.stash[GATE_REASON] = (harness.write_error or "no cell was timed, "
                                         "no results file was written")
            _fail_session(session, pytest.ExitCode.TESTS_FAILED)
        return
    results = read_results(written)
    if not (config.getoption("linfit_no_plots") or env_flag(NO_PLOTS_ENV)):
        config.stash[PLOTS] = _draw(results.to_frame(), written, harness.convergence_fits)
    if baseline is not None:
        findings = check_results(results, baseline, results_label=str(written),
                                 baseline_label=str(harness.options.baseline))
        config.stash[FINDINGS] = findings
        if exit_status(findings) != 0:
            _fail_session(session, pytest.ExitCode.TESTS_FAILED)


def _fail_session(session: pytest.Session, status: pytest.ExitCode) -> None:
    """Make the session's exit status ``status``, unless it already fails otherwise."""
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = status


def _draw(frame: pd.DataFrame, written: Path, fits: Sequence[FitResult]) -> list[str]:
    """Draw the run's figures beside its CSV; a figure that cannot be drawn costs no result.

    The convergence figure reuses the cells' own convergence runs (``fits``) where they are
    at its data, and trains again only the rest (loop variants: their cells ran many steps
    per call).
    """
    from linfit.plots import write_run_plots  # matplotlib only when plots are wanted
    from linfit.retrain import convergence_runs

    try:
        # The convergence figure's re-runs, explicitly: drawing never trains.
        paths = write_run_plots(frame, written.parent, written.stem,
                                convergence=convergence_runs(frame, fits=fits))
    except LinfitError as error:
        return [f"figures not drawn: {error}"]
    except Exception as error:
        # Broad on purpose: figures are derived, and the CSV is written already; a
        # figure that fails (matplotlib, a full disk) warns once and costs no result.
        text = " ".join(str(error).split())
        return [f"warning: figures not drawn ({type(error).__name__}: {text})"]
    return [f"figure: {path}" for path in paths]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    # trylast: after pytest-benchmark's table.
    harness = config.stash.get(HARNESS, None)
    if harness is None:
        return
    write = terminalreporter.write_line
    if harness.written is None:
        if not (config.stash.get(TIMING, False) or harness.results
                or config.getoption("benchmark_skip", False)):
            return
        terminalreporter.write_sep("-", "linfit")
        if harness.write_error:
            write(f"error: {harness.write_error}")
            if harness.journal is not None and harness.journal.started:
                write(f"every finished cell is in the journal {harness.journal.path}: "
                      f"linfit recover {harness.journal.path} -o DIR")
        elif config.stash.get(TIMING, False):
            write("no cell was timed (every cell was skipped or did not finish): no results "
                  "CSV written")
        elif harness.results or config.getoption("benchmark_skip", False):
            write("nothing was timed (--benchmark-disable or --benchmark-skip): no results "
                  "CSV written")
        if config.stash.get(BASELINE, None) is not None and config.stash.get(TIMING, False):
            terminalreporter.write_sep("-", f"linfit check against {harness.options.baseline}")
            for line in gate_lines(None, harness.options.baseline,
                                   config.stash.get(GATE_REASON, "")):
                write(line)
        return
    # Read back what was written: the summary shows the file, checked by its own reader.
    frame = read_results(harness.written).to_frame()
    terminalreporter.write_sep("-", "linfit")
    for line in results_lines(frame, harness.written):
        write(line)
    write(harness.floors_note)
    if harness.hlo_note:
        write(harness.hlo_note)
    if harness.journal_error:
        write(f"warning: {harness.journal_error}")
    for line in config.stash.get(PLOTS, []):
        write(line)
    findings = config.stash.get(FINDINGS, None)
    if findings is not None:
        terminalreporter.write_sep("-", f"linfit check against {harness.options.baseline}")
        for line in gate_lines(findings, harness.options.baseline):
            write(line)
