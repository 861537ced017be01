"""One benchmark session: its run facts, one cell measured and checked, the journal, the file.

Nothing here knows pytest. :meth:`Harness.run_cell` builds the trainer, times the first call,
warms up, checks placement, hands the trainer to the timer (the
:class:`~linfit.backends.base.Trainer` protocol), trains the convergence steps from the
start, checks traces and weights, and records the cell: in memory, and in the journal on
disk (:mod:`linfit.results.journal`) before the next cell starts. At the end of the session
:meth:`Harness.write` writes the records to ``<results>/<run_id>.csv`` and removes the
journal.

Each finished cell is a :class:`~linfit.results.record.CellResult`, built field by field as the cell
is measured: raw per-call times from the timer, the checks' outcomes and the reference the
weights were checked against (:func:`linfit.convergence.reference_for`); its statistics
derive from the samples there. Its facts hold the machine's state (:mod:`linfit.machine`,
with the load average when the session started, and when it wrote its file) and the peak
memory the cell added (:class:`linfit.memory.PeakWatch`, from its trainer's build, once its
data are made, to its convergence run).

The HLO account of a compiled cell (issue 17, :mod:`linfit.hlo`) is taken from the trainer
once its checks are done: its columns are derived, so a failure to take it leaves them
empty and :attr:`Harness.hlo_note` says why, once; it never costs the cell.

A measurement outranks everything derived from it (issue 20): a finished cell reaches the
journal first; only then does :class:`~linfit.harness._floor_rounds.FloorRounds` add its
floor columns, as known then, and a failure there leaves them empty and costs nothing. The
CSV's floor columns are computed again from every round at the end.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from linfit._paths import check_output_dir
from linfit.backends import Backend, Trainer, Variant, get_backend
from linfit.builds import git_commit, imported_git_version
from linfit.convergence import CONVERGENCE_STEPS, convergence_problems, reference_for
from linfit.data import make_dataset, xy_bytes
from linfit.distributed import DistributedVariant, distributed_variant, open_trainer, strategy_of
from linfit.environment import env_flags, git_state, machine_facts
from linfit.fit import FitResult, fit, train
from linfit.floors import Floors
from linfit.harness._floor_rounds import FLOOR_ROUND_INTERVAL_SECONDS, FloorRounds
from linfit.harness._options import BY_DEST, HarnessOptions
from linfit.harness._render import error_line
from linfit.hlo import account
from linfit.machine import load_average
from linfit.memory import PeakWatch, device_meter
from linfit.results import Cell
from linfit.results.journal import JOURNAL_SUFFIX, Journal, leftover_journals, write_run
from linfit.results.record import CellResult, Reference

# Calls after the first one (which traces and compiles) and before timing starts: the second
# call of a compiled function can still pay one-off costs (allocator growth, XLA's
# executable cache warming), and pytest-benchmark's own warm-up is off by default on CPython.
WARMUP_CALLS = 3


def make_run_id(started: datetime, host: str, commit: str) -> str:
    """``20261127T013000Z-host-abc1234567``: UTC start time, host, short commit.

    Characters other than letters, digits, '.' and '-' in the host become '-', so the id
    is a safe file name.
    """
    safe_host = re.sub(r"[^A-Za-z0-9.-]+", "-", host).strip("-.") or "host"
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}-{safe_host}-{commit}"


@dataclass(frozen=True)
class RawTiming:
    """What the timer measured: each round's time per call, and calls per round."""

    per_call_seconds: tuple[float, ...]
    iterations: int


# What :meth:`Harness.run_cell` hands a trainer to: times ``trainer.call`` (pytest-benchmark,
# the ab worker's calibration) and returns the raw times, or None when timing is disabled.
TimeCalls = Callable[[Trainer], RawTiming | None]


class _CellProgress:
    """A cell's record while it is measured: each step replaces it with one that holds more,
    so that a step that fails keeps what the steps before it measured."""

    def __init__(self, result: CellResult) -> None:
        self.result = result

    def add(self, **fields: Any) -> None:
        self.result = replace(self.result, **fields)

    def add_facts(self, **facts: Any) -> None:
        self.result = replace(self.result, facts={**self.result.facts, **facts})


def per_step_samples(per_call_seconds: Iterable[float], steps_per_call: int) -> tuple[float, ...]:
    """Per-call times as per-step times: the one place a call time is divided by k."""
    return tuple(float(seconds) / steps_per_call for seconds in per_call_seconds)


def trace_problems(variant: Variant, traces: int) -> list[str]:
    """What is wrong with a cell's trace count: a compiled variant traces once for one
    (device, n, dtype), an eager one never. Empty when nothing is."""
    if variant.compiled and traces > 1:
        return [f"{variant.name} retraced: {traces} traces for one (device, n, dtype); "
                "something passed to the step changes its signature"]
    if variant.compiled and traces < 1:
        return [f"{variant.name} is compiled but reported {traces} traces"]
    if not variant.compiled and traces:
        return [f"{variant.name} is not compiled but reported {traces} traces"]
    return []


@contextlib.contextmanager
def sigterm_as_interrupt(on_signal: Callable[[str], None] | None = None) -> Iterator[None]:
    """Inside the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does; the previous
    handler is restored on the way out.

    SIGTERM is what CI cancellation and ``timeout`` send: handled like Ctrl-C, the session
    still writes the results of the cells that finished. Outside the main thread (where
    Python cannot install handlers) the block runs unchanged.

    Args:
        on_signal: called with the reason ("SIGTERM received") before the KeyboardInterrupt
            is raised, to note the signal where the caller checks it anyway (between cells).
            The raise alone can be lost: a handler runs wherever the main thread is, and a
            KeyboardInterrupt raised inside a ``__del__`` or a weakref callback is only
            reported as "Exception ignored" (Python's unraisable hook), so the run would
            go on and end as a success.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        reason = f"{signal.Signals(signum).name} received"
        if on_signal is not None:
            on_signal(reason)
        raise KeyboardInterrupt(reason)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Harness:
    """One benchmark session: its run facts, the reference weights, and a record per cell.

    Records are kept in the order cells ran; a cell that runs again replaces its record.
    Once :meth:`start_journal` was called, every record is also on disk as it is made. The
    floors are :attr:`floor_rounds`'s.
    """

    def __init__(self, options: HarnessOptions, started: datetime | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 floor_backends: Sequence[Backend] | None = None,
                 floor_round_interval_seconds: float = FLOOR_ROUND_INTERVAL_SECONDS) -> None:
        """A session; nothing is measured yet.

        Args:
            options: the session's options.
            started: when the session started (default: now).
            clock: the clock that times the interval between floor rounds (seconds).
            floor_backends: the backends whose probes measure the floors (default: the
                options' backends); tests pass fakes.
            floor_round_interval_seconds: time between floor rounds in measure mode.
        """
        self.options = options
        self.started = started or datetime.now(UTC)
        self.git_commit, self.git_dirty = git_state()
        # The machine's facts and state, with the load before any cell runs; the load at
        # the end joins them in write().
        self.machine = {**machine_facts(), "load_average_start": load_average()}
        self._run_id = make_run_id(self.started, self.machine["host"], self.git_commit)
        self.written: Path | None = None
        # Lines for the user at session start: left-over journals, an unusable cache.
        self.notes: list[str] = []
        # Why the results or the journal could not be written ('' when they could).
        self.write_error = ""
        self.journal_error = ""
        self.journal: Journal | None = None
        self._floor_backends = floor_backends
        self.floor_rounds = FloorRounds(options.floors, self._probe_backends, clock=clock,
                                        interval_seconds=floor_round_interval_seconds)
        self._results: dict[Cell, CellResult] = {}
        self._references: dict[tuple[str, int, str], tuple[float, float]] = {}
        # The HLO accounts taken, their time in all (extraction and parsing), and the
        # first failure's cell and reason.
        self._hlo_cells = 0
        self._hlo_seconds = 0.0
        self._hlo_failures: list[str] = []
        # Each in-process cell's convergence run of one step per call, for the convergence
        # figure (linfit.retrain uses the ones at its data instead of training again).
        self._convergence_fits: dict[Cell, FitResult] = {}

    @property
    def run_id(self) -> str:
        """``<UTC start>-<host>-<commit>``; ``-2``, ``-3``, ... when another run of the same
        second took the journal's name (the CSV then gets the same suffix)."""
        return self.journal.run_id if self.journal is not None else self._run_id

    @property
    def results(self) -> list[CellResult]:
        """The records made so far, in the order their cells ran."""
        return list(self._results.values())

    @property
    def convergence_fits(self) -> tuple[FitResult, ...]:
        """The convergence runs of the cells measured in this process with one step per
        call (every step recorded), in the order their cells ran; on the session's seed."""
        return tuple(self._convergence_fits.values())

    @property
    def timed(self) -> bool:
        """Whether any cell has timings (false when pytest-benchmark was disabled)."""
        return any(result.timed for result in self._results.values())

    # --- before any cell runs -----------------------------------------------------------

    def check_output(self) -> None:
        """Check that the results folder can take the CSV and the journal, before anything
        is timed, and note the journals earlier runs left there.

        Raises:
            LinfitError: naming the option and why the folder cannot be written.
        """
        check_output_dir(self.options.results_dir, BY_DEST["linfit_results"].label)
        left = leftover_journals(self.options.results_dir)
        if left:
            self.notes.append(
                f"{len(left)} journal(s) of interrupted runs in {self.options.results_dir}: "
                f"turn each into a results file with `linfit recover JOURNAL`, then remove "
                f"it (first: {left[0].name})")

    def start_journal(self) -> None:
        """Journal every cell recorded from now on (the file appears with the first one)."""
        self.journal = Journal(self.options.results_dir / f"{self._run_id}{JOURNAL_SUFFIX}",
                               self._run_id, free_name=True)

    def measure_floors(self) -> None:
        """The first floors of the session, before any cell runs (issue 7):
        :meth:`FloorRounds.start`; its warnings go to :attr:`notes`."""
        self.notes += self.floor_rounds.start()

    @property
    def floors(self) -> Floors | None:
        """The floors as known now: every round so far (None: off, or not recorded)."""
        return self.floor_rounds.floors

    @property
    def hlo_note(self) -> str:
        """One line on the HLO accounts for the session's summary: how many, their time in
        all, and the first that could not be taken; '' where no cell is compiled by XLA."""
        if not (self._hlo_cells or self._hlo_failures):
            return ""
        note = (f"HLO accounts of {self._hlo_cells} compiled cells in "
                f"{self._hlo_seconds:.2f} s (reading and parsing the optimized HLO)")
        if self._hlo_failures:
            note += (f"; {len(self._hlo_failures)} unknown (warning: first: "
                     f"{self._hlo_failures[0]})")
        return note

    @property
    def floors_note(self) -> str:
        """One line on the floors for the session's summary (:attr:`FloorRounds.note`)."""
        return self.floor_rounds.note

    def _probe_backends(self) -> list[Backend]:
        if self._floor_backends is not None:
            return list(self._floor_backends)
        return [get_backend(name) for name in self.options.backends]

    # --- the cells ----------------------------------------------------------------------

    def reference_weights(self, reference: Reference, n_examples: int,
                          dtype: str) -> tuple[float, float]:
        """(W, b) of ``reference`` (:func:`linfit.convergence.reference_for`) after
        CONVERGENCE_STEPS steps from W=5, b=0; trained once per (backend, n, dtype).

        Raises:
            LinfitError: when the reference cannot run (an unsupported dtype) or diverges.
        """
        key = (reference.backend, n_examples, dtype)
        if key not in self._references:
            data = make_dataset(n_examples, dtype, self.options.seed)
            result = fit(get_backend(reference.backend), reference.variant, reference.device,
                         data, CONVERGENCE_STEPS, self.options.learning_rate)
            self._references[key] = (result.final_w, result.final_b)
        return self._references[key]

    def run_cell(self, cell: Cell, time_calls: TimeCalls) -> CellResult:
        """Measure and check one cell, record it and return its record.

        Args:
            cell: the cell to run.
            time_calls: times the trainer it is given (its ``call``, e.g. with
                pytest-benchmark) and returns the raw per-call times, or None when timing
                is disabled (it still calls it once).

        Returns:
            The record: status "ok", or "failed" with the retrace or convergence problems
            in ``message``; with its floor columns as known now.

        Raises:
            Whatever the cell raised (a LinfitError, a framework error), after its record
            was made with status "failed" and the error's message. An interrupt
            (KeyboardInterrupt, SIGTERM in a session) records nothing: the cell did not
            finish.
        """
        # Before the cell, not while it is timed: a floors round between cells.
        self.floor_rounds.between_cells()
        progress = _CellProgress(CellResult(cell, "failed", facts={
            "learning_rate": self.options.learning_rate, "seed": self.options.seed,
            "timestamp_utc": self.started.isoformat(timespec="seconds"),
            "git_commit": self.git_commit, "git_dirty": self.git_dirty,
            **self.machine, **env_flags()}))
        try:
            problems = self._measure(cell, progress, time_calls)
        except Exception as error:
            # Never lose a result: the record is kept, then the error fails the test as usual.
            self._record(replace(progress.result, status="failed", message=error_line(error)))
            raise
        return self._record(replace(progress.result, status="failed" if problems else "ok",
                                    message="; ".join(problems)))

    def _measure(self, cell: Cell, progress: _CellProgress, time_calls: TimeCalls) -> list[str]:
        """Add to ``progress`` step by step (so a failure keeps what was measured); return
        the problems found."""
        backend = get_backend(cell.backend)
        device = backend.device(cell.device)
        variant = distributed_variant(cell.backend, cell.variant) or backend.variant(cell.variant)
        if cell.backend == "tensorflow":
            # The build's commit, for `linfit bisect` and the history (imported just now by
            # get_backend; the other backends' rows leave it empty).
            git_version = imported_git_version()
            progress.add_facts(tensorflow_git_version=git_version,
                               tensorflow_commit=git_commit(git_version))
        progress.add_facts(strategy=strategy_of(variant), backend_version=backend.version,
                           backend_build=backend.build_info(), device_kind=device.kind,
                           device_name=device.name, device_details=device.details,
                           compiled=variant.compiled, xla=variant.xla, loop=variant.loop,
                           **backend.thread_settings())
        in_process = not isinstance(variant, DistributedVariant)
        # The peak memory the cell adds after its data are made (drawing them peaks at several
        # times their size, the same for every variant), up to its convergence run
        # (linfit.memory says what that isolates): in this process and on its one device.
        # A distributed cell's work runs in worker processes, on several devices: not measured.
        data = make_dataset(cell.n_examples, cell.dtype, self.options.seed)
        watch = PeakWatch(device_meter(cell.backend, cell.device, device.kind)
                          if in_process else None, host=in_process)
        progress.add(w_ols=float(data.w_ols), b_ols=float(data.b_ols))
        with backend.session(), contextlib.ExitStack() as workers:
            if isinstance(variant, DistributedVariant):
                # Its worker processes are killed when this block is left, however.
                trainer: Trainer = workers.enter_context(open_trainer(
                    cell.backend, variant, device, data, self.options.learning_rate,
                    cell.replicas))
            else:
                trainer = backend.make_trainer(cell.variant, device, data,
                                               self.options.learning_rate, cell.steps_per_call,
                                               convention=cell.convention)
            start = time.perf_counter()
            trainer.call()
            progress.add(first_call_seconds=time.perf_counter() - start)
            for _ in range(WARMUP_CALLS):
                trainer.call()
            progress.add(check_placement="failed")  # until check_placement() returns
            progress.add(placement=trainer.check_placement(), check_placement="ok")
            trainer.start_timing()
            timing = time_calls(trainer)
            if timing is not None:
                # A trainer that times its calls on its own clock (a distributed one, on its
                # chief) has the better figure: one sample per call.
                own = trainer.own_call_seconds()
                if own is not None:
                    timing = RawTiming(own, iterations=1)
                progress.add(per_call_seconds=timing.per_call_seconds,
                             iterations=timing.iterations)
            # The weights to check come from a fixed number of steps from the start, not from
            # however many rounds the timer ran.
            trainer.reset()
            history = train(trainer, CONVERGENCE_STEPS)
            final_w, final_b = trainer.weights()
            traces = trainer.traces
            progress.add(convergence_steps=CONVERGENCE_STEPS, final_w=float(final_w),
                         final_b=float(final_b), final_loss=float(history[-1].loss),
                         traces=int(traces))
            if in_process and trainer.steps_per_call == 1:
                self._convergence_fits[cell] = FitResult(
                    backend=cell.backend, variant=cell.variant, device=trainer.device.id,
                    device_name=trainer.device.name, dtype=cell.dtype,
                    n_examples=cell.n_examples, learning_rate=self.options.learning_rate,
                    steps_per_call=1, history=history, final_w=final_w, final_b=final_b,
                    w_ols=data.w_ols, b_ols=data.b_ols)
            # Read before the HLO account, whose compilation is not the cell's.
            peak = watch.read()
            progress.add_facts(peak_rss_bytes=peak.host_bytes,
                               device_peak_bytes=peak.device_bytes)
            if self.options.hlo:
                self._add_hlo_account(cell, trainer, progress)
        problems = trace_problems(variant, traces)
        progress.add(check_traces="failed" if problems else "ok")
        reference = reference_for(cell)
        progress.add(reference=reference)
        reference_w, reference_b = self.reference_weights(reference, cell.n_examples, cell.dtype)
        progress.add(reference=replace(reference, w=reference_w, b=reference_b))
        numerics = convergence_problems(final_w, final_b, reference_w, reference_b,
                                        data.w_ols, data.b_ols, cell.dtype)
        progress.add(check_convergence="failed" if numerics else "ok")
        return problems + numerics

    def _add_hlo_account(self, cell: Cell, trainer: Trainer, progress: _CellProgress) -> None:
        """The HLO account's columns of a cell whose step XLA compiles (none otherwise)."""
        start = time.perf_counter()
        try:
            program = trainer.compiled_hlo()
            if program is None:
                return
            result = account(program, xy_bytes(cell.n_examples, cell.dtype))
        except Exception as error:
            # Broad on purpose: the account is derived (a framework that cannot print its
            # HLO, a text this parser does not read), and nothing derived may cost the
            # measured cell (issue 20). Not hidden: hlo_note names the first.
            self._hlo_failures.append(f"{cell}: {error_line(error)}")
            return
        finally:
            self._hlo_seconds += time.perf_counter() - start
        self._hlo_cells += 1
        progress.add(hlo_kernels_per_step=result.kernels_per_step, hlo_loops=result.loops_text,
                     hlo_bytes_per_step=result.bytes_per_step)

    def _record(self, result: CellResult) -> CellResult:
        """Keep a finished cell's record and put it in the journal; then, and only then, add
        its floor columns (derived: they can be unknown, never cost the record)."""
        cell = result.cell
        self._results.pop(cell, None)  # a cell that ran again: its new record, in its new place
        self._results[cell] = result
        if self.journal is not None and not self.journal_error:
            try:
                self.journal.append(result)
            except OSError as error:
                # The run goes on without a journal; the CSV at the end still holds every cell.
                self.journal_error = (f"the journal {self.journal.path} could not be written "
                                      f"({error.strerror or error}); the run went on without it")
        self._results[cell] = result = self.floor_rounds.with_columns(result)
        return result

    # --- the end of the session ---------------------------------------------------------

    def write(self, interrupted: bool = False) -> Path | None:
        """Write the records to ``<results_dir>/<run_id>.csv`` if any cell was timed, then
        remove the journal.

        Before the file is written, the floors get their end round (not after an
        interrupt; in cache mode the cache keeps it) and every record's floor columns are
        computed from all the session's rounds; every record gets the load average now
        (``load_average_end``).

        Never overwrites: when the file exists (two runs in the same second) the name gets
        ``-2``, ``-3``, ... and the rows' run_id says the same. Only a name collision is
        retried. When the file cannot be written, :attr:`write_error` says why and the
        journal stays, for ``linfit recover``.

        Args:
            interrupted: the run stopped before its matrix was done (Ctrl-C, SIGTERM, -x);
                every row says so in ``run_interrupted``.

        Returns:
            The file written, or None when no cell was timed (nothing is written) or the
            file could not be written.
        """
        if not self.timed:
            if self.journal is not None:
                self.journal.discard()
            return None
        self.floor_rounds.finish(interrupted)
        load_end = load_average()
        results = [replace(self.floor_rounds.with_columns(result),
                           facts={**result.facts, "run_interrupted": interrupted,
                                  "load_average_end": load_end})
                   for result in self._results.values()]
        try:
            self.written = write_run(results, self.options.results_dir, self.run_id)
        except OSError as error:
            self.write_error = (f"the results could not be written to "
                                f"{self.options.results_dir}: {error.strerror or error}")
            if self.journal is not None:
                self.journal.close()
            return None
        if self.journal is not None:
            self.journal.discard()
        return self.written
