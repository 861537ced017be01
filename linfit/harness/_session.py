"""One benchmark session: its run facts, one cell measured and checked, the journal, the file.

Nothing here knows pytest. :meth:`Harness.run_cell` builds the trainer, times the first call,
warms up, checks placement, has the calls timed, trains the convergence steps from the start,
checks traces and weights, and records one row per cell: in memory, and in the journal on
disk (:mod:`linfit.journal`) before the next cell starts. At the end of the session
:meth:`Harness.write` writes the rows to ``<results>/<run_id>.csv`` and removes the journal.

Each finished cell is a :class:`~linfit.record.CellResult`: raw per-call times from
pytest-benchmark, the checks' outcomes and the reference the weights were checked against
(:func:`linfit.convergence.reference_for`); its statistics derive from the samples there.

The hardware floors are probe rounds spread through the session (:mod:`linfit.floors`): in
``measure`` mode a round at the start, one between cells each
:data:`FLOOR_ROUND_INTERVAL_SECONDS`, and one at the end; in ``cache`` mode this machine's
cached rounds and one more at the end. A record journaled mid-session carries the floor as
known then; the CSV's floor columns are computed again from every round at the end.
"""

from __future__ import annotations

import contextlib
import os
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

from linfit._errors import LinfitError
from linfit._paths import check_output_dir
from linfit.backends import Backend, Variant, get_backend
from linfit.convergence import CONVERGENCE_STEPS, convergence_problems, reference_for
from linfit.data import make_dataset
from linfit.distributed import (
    DistributedVariant,
    RemoteTrainer,
    distributed_variant,
    open_trainer,
    strategy_of,
)
from linfit.environment import env_flags, git_state, machine_facts
from linfit.fit import fit, train
from linfit.floors import (
    Floors,
    cache_dir_problem,
    floor_columns,
    load_or_measure,
    measure_floors,
    merge_rounds,
    rounds_summary,
    update_cache,
)
from linfit.harness._options import BY_DEST, HarnessOptions
from linfit.results import Cell
from linfit.results.journal import JOURNAL_SUFFIX, Journal, leftover_journals, write_run
from linfit.results.record import CellResult, Reference

# Calls after the first one (which traces and compiles) and before timing starts: the second
# call of a compiled function can still pay one-off costs (allocator growth, XLA's
# executable cache warming), and pytest-benchmark's own warm-up is off by default on CPython.
WARMUP_CALLS = 3
# A failed cell's message is one line of at most this many characters (framework errors can
# run to pages; the row keeps their start).
MESSAGE_MAX_CHARS = 1000
# In --linfit-floors measure mode, a probe round between cells once this much time went by
# since the last one. One round of every probe of TensorFlow, JAX, PyTorch and NumPy took
# 5.6 to 7.2 s on the 2-core CPU VM (most of it filling the 256 MiB probe arrays: with 5
# repeats instead of 11 it still took 6.1 s, so the in-session rounds keep the cache's
# repeats, which are part of its key). Every 2 minutes that is about 5% of the session; the
# default matrix (about 3 minutes) still gets a round between its start and its end.
FLOOR_ROUND_INTERVAL_SECONDS = 120.0
# At most this many rounds in one measure-mode session, the start and the end round
# included: a long session (--linfit-profile full) pays under a minute for its floors.
MAX_SESSION_ROUNDS = 8


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


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, LinfitError):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= MESSAGE_MAX_CHARS else text[:MESSAGE_MAX_CHARS - 3] + "..."


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does; the previous
    handler is restored on the way out.

    SIGTERM is what CI cancellation and ``timeout`` send: handled like Ctrl-C, the session
    still writes the results of the cells that finished. Outside the main thread (where
    Python cannot install handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Harness:
    """One benchmark session: its run facts, the reference weights, and a record per cell.

    Records are kept in the order cells ran; a cell that runs again replaces its record.
    Once :meth:`start_journal` was called, every record is also on disk as it is made.
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
        self.machine = machine_facts()
        self.run_id = make_run_id(self.started, self.machine["host"], self.git_commit)
        self._run_base, self._name_suffix = self.run_id, 1
        self.written: Path | None = None
        # Lines for the user at session start: left-over journals, an unusable cache.
        self.notes: list[str] = []
        # Why the results or the journal could not be written ('' when they could).
        self.write_error = ""
        self.journal_error = ""
        self.journal: Journal | None = None
        self._clock = clock
        self._floor_backends = floor_backends
        self._floor_round_interval = floor_round_interval_seconds
        self._floors: Floors | None = None
        # Why there are no floors ('' while there are none yet or where there are).
        self._floors_status = ""
        self._floors_cache: Path | None = None
        self._floors_cache_problem = ""
        self._cached_rounds = 0
        self._session_rounds = 0
        self._last_round_end = 0.0
        self._floors_finished = False
        self._round_problems: list[str] = []
        self._cell_floor_problems: dict[Cell, str] = {}
        self._results: dict[Cell, CellResult] = {}
        self._references: dict[tuple[str, int, str], tuple[float, float]] = {}

    @property
    def results(self) -> list[CellResult]:
        """The records made so far, in the order their cells ran."""
        return list(self._results.values())

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The records made so far as result rows (:meth:`CellResult.to_row`)."""
        return [result.to_row() for result in self._results.values()]

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
        self.journal = Journal(self.options.results_dir / f"{self.run_id}{JOURNAL_SUFFIX}",
                               self.run_id)

    def measure_floors(self) -> None:
        """The first floors of the session (issue 7), before any cell runs: this machine's
        cached probe rounds, or a round measured now (an interrupted measurement then costs
        no result).

        Every device of the selected backends is measured, not only this run's: the cache
        key then stays the same from run to run on this machine (and matches
        ``linfit floors``). A floor that cannot be had (a cache of another machine, a
        probe that fails) leaves the floor columns empty; :attr:`floors_note` says why. An
        unusable cache folder is a warning in :attr:`notes`, and the floors are measured
        for this run only. Later rounds: :meth:`run_cell` (between cells, measure mode) and
        :meth:`write` (the end round).
        """
        if self.options.floors == "off":
            self._floors_status = "floors: off"
            return
        use_cache = self.options.floors == "cache"
        problem = cache_dir_problem() if use_cache else ""
        if problem:
            self.notes.append(f"warning: the floors cache is not used: {problem}; the "
                              "floors are measured for this run only")
            use_cache = False
        try:
            floors, path, cached = load_or_measure(self._probe_backends(), use_cache=use_cache)
        except LinfitError as error:
            self._floors_status = f"floors not recorded: {error}"
            return
        self._floors, self._floors_cache, self._cached_rounds = floors, path, cached
        self._floors_cache_problem = problem
        self._session_rounds = floors.rounds - cached
        self._last_round_end = self._clock()

    @property
    def floors(self) -> Floors | None:
        """The floors as known now: every round so far (None: off, or not recorded)."""
        return self._floors

    @property
    def floors_note(self) -> str:
        """One line on the floors for the session's summary: how many rounds (how many of
        them cached), their largest read and dispatch spreads, the cache, and what failed."""
        if self._floors is None:
            return self._floors_status
        parts = [f"floors: {rounds_summary(self._floors, self._cached_rounds)}"]
        if self._floors_cache is not None:
            parts.append(f"cache {self._floors_cache}")
        if self._floors_cache_problem:
            parts.append(f"not cached: {self._floors_cache_problem}")
        parts += self._round_problems
        parts += [f"{cell}: {problem}" for cell, problem in self._cell_floor_problems.items()]
        return "; ".join(parts)

    def _probe_backends(self) -> list[Backend]:
        if self._floor_backends is not None:
            return list(self._floor_backends)
        return [get_backend(name) for name in self.options.backends]

    def _floor_round(self, when: str) -> bool:
        """Measure one more probe round and add it to the floors; whether it was added.

        A round that fails is named in :attr:`floors_note`, and no later round is tried:
        the floors stay those of the rounds before it.
        """
        try:
            round_floors = measure_floors(self._probe_backends())
        except Exception as error:
            # Broad on purpose: a probe that fails (a framework error, memory) must not cost
            # the session's results. It is not hidden: the note names it.
            self._round_problems.append(f"the {when} floor round failed ({_one_line(error)})")
            return False
        assert self._floors is not None
        self._floors = merge_rounds(self._floors, round_floors)
        self._session_rounds += 1
        self._last_round_end = self._clock()
        return True

    def _floor_round_between_cells(self) -> None:
        """In measure mode, a probe round once the interval went by since the last one,
        while the session has rounds left (one is kept for the end)."""
        if (self.options.floors != "measure" or self._floors is None or self._round_problems
                or self._session_rounds >= MAX_SESSION_ROUNDS - 1
                or self._clock() - self._last_round_end < self._floor_round_interval):
            return
        self._floor_round("between-cells")

    def _finish_floors(self, interrupted: bool) -> None:
        """The end round (not after an interrupt), the cache updated with it, and every
        record's floor columns computed again from all the rounds. Once per session."""
        if self._floors is None or self._floors_finished:
            return
        self._floors_finished = True
        if not interrupted and not self._round_problems:
            try:
                added = self._floor_round("end")
            except KeyboardInterrupt:
                # A second Ctrl-C during the end round: the results are written without it.
                self._round_problems.append("the end floor round was interrupted")
                added = False
            if added and self.options.floors == "cache" and self._floors_cache is not None:
                path = self._floors_cache
                self._floors_cache = update_cache(path, self._floors)
                if self._floors_cache is None:
                    self._floors_cache_problem = f"{path} could not be written"
        self._cell_floor_problems.clear()  # found again below, with every round
        for cell, result in self._results.items():
            columns = self._floor_columns(result)
            if columns:
                self._results[cell] = CellResult.from_row({**result.to_row(), **columns})

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

    def run_cell(self, cell: Cell,
                 time_calls: Callable[[Callable[[], None]], RawTiming | None]) -> CellResult:
        """Measure and check one cell, record it and return its record.

        Args:
            cell: the cell to run.
            time_calls: times the callable it is given (pytest-benchmark) and returns the
                raw per-call times, or None when timing is disabled (it still calls it once).

        Returns:
            The record: status "ok", or "failed" with the retrace or convergence problems
            in ``message``.

        Raises:
            Whatever the cell raised (a LinfitError, a framework error), after its record
            was made with status "failed" and the error's message. An interrupt
            (KeyboardInterrupt, SIGTERM in a session) records nothing: the cell did not
            finish.
        """
        # Before the cell, not while it is timed: a floors round between cells.
        self._floor_round_between_cells()
        row: dict[str, Any] = {
            "backend": cell.backend, "device": cell.device, "variant": cell.variant,
            "n_examples": cell.n_examples, "dtype": cell.dtype,
            "steps_per_call": cell.steps_per_call, "replicas": cell.replicas,
            "convention": cell.convention, "learning_rate": self.options.learning_rate,
            "seed": self.options.seed, "timestamp_utc": self.started.isoformat(timespec="seconds"),
            "git_commit": self.git_commit, "git_dirty": self.git_dirty,
            **self.machine, **env_flags(),
        }
        try:
            problems = self._measure(cell, row, time_calls)
        except Exception as error:
            # Never lose a result: the record is kept, then the error fails the test as usual.
            row.update(status="failed", message=_one_line(error))
            self._record(cell, row)
            raise
        row.update(status="failed" if problems else "ok", message="; ".join(problems))
        return self._record(cell, row)

    def _measure(self, cell: Cell, row: dict[str, Any],
                 time_calls: Callable[[Callable[[], None]], RawTiming | None]) -> list[str]:
        """Fill ``row`` step by step (so a failure keeps what was measured); return the
        problems found."""
        backend = get_backend(cell.backend)
        device = backend.device(cell.device)
        variant = distributed_variant(cell.backend, cell.variant) or backend.variant(cell.variant)
        row["strategy"] = strategy_of(variant)
        row.update(backend_version=backend.version, backend_build=backend.build_info(),
                   device_kind=device.kind, device_name=device.name,
                   device_details=device.details, compiled=variant.compiled, xla=variant.xla,
                   loop=variant.loop, **backend.thread_settings())
        data = make_dataset(cell.n_examples, cell.dtype, self.options.seed)
        row.update(w_ols=data.w_ols, b_ols=data.b_ols)
        with backend.session(), contextlib.ExitStack() as workers:
            if isinstance(variant, DistributedVariant):
                # Its worker processes are killed when this block is left, however.
                trainer = workers.enter_context(open_trainer(
                    cell.backend, variant, device, data, self.options.learning_rate,
                    cell.replicas))
            else:
                trainer = backend.make_trainer(cell.variant, device, data,
                                               self.options.learning_rate, cell.steps_per_call,
                                               convention=cell.convention)
            start = time.perf_counter()
            trainer.call()
            row["first_call_seconds"] = time.perf_counter() - start
            for _ in range(WARMUP_CALLS):
                trainer.call()
            row["check_placement"] = "failed"  # until check_placement() returns
            row["placement"] = trainer.check_placement()
            row["check_placement"] = "ok"
            if isinstance(trainer, RemoteTrainer):
                trainer.start_timing()
            timing = time_calls(trainer.call)
            if timing is not None and isinstance(trainer, RemoteTrainer):
                # The chief's own clock, one sample per call: the parent's clock would count
                # the pipe and the other workers' replies.
                timing = RawTiming(trainer.chief_times(), iterations=1)
            if timing is not None:
                row.update(call_samples_seconds=tuple(timing.per_call_seconds),
                           iterations=timing.iterations)
            # The weights to check come from a fixed number of steps from the start, not from
            # however many rounds pytest-benchmark ran.
            trainer.reset()
            history = train(trainer, CONVERGENCE_STEPS)
            final_w, final_b = trainer.weights()
            row.update(convergence_steps=CONVERGENCE_STEPS, final_w=final_w, final_b=final_b,
                       final_loss=history[-1].loss, traces=trainer.traces)
        problems = trace_problems(variant, row["traces"])
        row["check_traces"] = "failed" if problems else "ok"
        reference = reference_for(cell)
        row["reference"] = str(reference)
        reference_w, reference_b = self.reference_weights(reference, cell.n_examples, cell.dtype)
        row.update(reference_w=reference_w, reference_b=reference_b)
        numerics = convergence_problems(final_w, final_b, reference_w, reference_b,
                                        data.w_ols, data.b_ols, cell.dtype)
        row["check_convergence"] = "failed" if numerics else "ok"
        return problems + numerics

    def _record(self, cell: Cell, row: dict[str, Any]) -> CellResult:
        """Make a finished cell's record, with its floor columns, keep it and put it in the
        journal."""
        result = CellResult.from_row(row)
        floors = self._floor_columns(result)
        if floors:
            result = CellResult.from_row({**row, **floors})
        self._results.pop(cell, None)  # a cell that ran again: its new record, in its new place
        self._results[cell] = result
        if self.journal is not None and not self.journal_error:
            try:
                self._append_to_journal(result)
            except OSError as error:
                # The run goes on without a journal; the CSV at the end still holds every cell.
                self.journal_error = (f"the journal {self.journal.path} could not be written "
                                      f"({error.strerror or error}); the run went on without it")
        return result

    def _append_to_journal(self, result: CellResult) -> None:
        assert self.journal is not None
        while True:
            try:
                self.journal.append(result.to_row())
                return
            except FileExistsError:
                # Only a name collision (another run that started in the same second) gets
                # another name; the run id follows, so the CSV gets the same suffix.
                if self.journal.started or not os.path.lexists(self.journal.path):
                    raise
                self._name_suffix += 1
                self.run_id = f"{self._run_base}-{self._name_suffix}"
                self.journal = Journal(
                    self.options.results_dir / f"{self.run_id}{JOURNAL_SUFFIX}", self.run_id)

    def _floor_columns(self, result: CellResult) -> dict[str, Any]:
        """The floor columns of an ok, timed cell, where the floors cover it; else none."""
        if self._floors is None or not result.ok or not result.timed:
            return {}
        cell = result.cell
        try:
            return floor_columns(self._floors, cell.backend, cell.device, cell.n_examples,
                                 cell.dtype, cell.steps_per_call, result.median_seconds)
        except LinfitError as error:
            self._cell_floor_problems[cell] = str(error)
            return {}

    # --- the end of the session ---------------------------------------------------------

    def write(self, interrupted: bool = False) -> Path | None:
        """Write the records to ``<results_dir>/<run_id>.csv`` if any cell was timed, then
        remove the journal.

        Before the file is written, the floors get their end round (not after an
        interrupt; in cache mode the cache keeps it) and every record's floor columns are
        computed from all the session's rounds.

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
        self._finish_floors(interrupted)
        results = [replace(result, facts={**result.facts, "run_interrupted": interrupted})
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
