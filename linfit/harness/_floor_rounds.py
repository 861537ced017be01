"""A session's hardware floors: probe rounds through the session, and each record's floor
columns.

The floors are probe rounds spread through a session (:mod:`linfit.floors`): in ``measure``
mode a round at the start, one between cells each :data:`FLOOR_ROUND_INTERVAL_SECONDS`, and
one at the end; in ``cache`` mode this machine's cached rounds and one more at the end; in
``off`` mode none. A record gets its floor columns as known when it finished
(:meth:`FloorRounds.with_columns`); the CSV's are computed again from every round at the end.

Floors are derived figures (issue 20): a round that fails, a cache whose figures are not
finite times, a floor that cannot be computed for a cell, each leaves the floor columns
empty and is said once, in :attr:`FloorRounds.note`. None of it ever costs a measured cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from linfit.backends import Backend
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
from linfit.harness._render import error_line
from linfit.results import Cell
from linfit.results.record import CellResult

__all__ = ["FLOOR_FIELDS", "FLOOR_ROUND_INTERVAL_SECONDS", "MAX_SESSION_ROUNDS", "FloorRounds"]

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

# The CellResult fields :func:`linfit.floors.floor_columns` fills (efficiency is derived).
FLOOR_FIELDS = ("bytes_min", "read_bandwidth_bytes_per_second", "dispatch_floor_seconds",
                "floor_seconds", "floor_rounds", "floor_spread")


class FloorRounds:
    """The floor rounds of one session: when they are measured, and the columns they give.

    Call :meth:`start` before the first cell, :meth:`between_cells` before each cell,
    :meth:`with_columns` on each finished record, and :meth:`finish` once at the end.
    """

    def __init__(self, mode: str, backends: Callable[[], Sequence[Backend]], *,
                 clock: Callable[[], float] = time.monotonic,
                 interval_seconds: float = FLOOR_ROUND_INTERVAL_SECONDS) -> None:
        """No floors yet.

        Args:
            mode: ``measure``, ``cache`` or ``off`` (:data:`linfit.harness.FLOORS_MODES`).
            backends: the backends whose probes measure the floors (called when a round is
                measured, so that no framework loads before it is needed).
            clock: the clock that times the interval between rounds (seconds).
            interval_seconds: time between rounds in measure mode.
        """
        self.mode = mode
        self._backends = backends
        self._clock = clock
        self._interval = interval_seconds
        self._floors: Floors | None = None
        # Why there are no floors ('' while there are none yet or where there are).
        self._status = ""
        self._cache: Path | None = None
        self._cache_problem = ""
        self._cached_rounds = 0
        self._session_rounds = 0
        self._last_round_end = 0.0
        self._finished = False
        self._round_problems: list[str] = []
        # Cells whose floor columns are unknown, and why: said once, in the note.
        self._unknown: dict[Cell, str] = {}

    @property
    def floors(self) -> Floors | None:
        """The floors as known now: every round so far (None: off, or not recorded)."""
        return self._floors

    @property
    def note(self) -> str:
        """One line on the floors for the session's summary: how many rounds (how many of
        them cached), their largest read and dispatch spreads, the cache, and what failed
        or is unknown, each once."""
        if self._floors is None:
            return self._status
        parts = [f"floors: {rounds_summary(self._floors, self._cached_rounds)}"]
        if self._cache is not None:
            parts.append(f"cache {self._cache}")
        if self._cache_problem:
            parts.append(f"not cached: {self._cache_problem}")
        parts += self._round_problems
        if self._unknown:
            (cell, why), count = next(iter(self._unknown.items())), len(self._unknown)
            parts.append(f"warning: floor columns unknown for {count} "
                         f"cell{'s' if count != 1 else ''} ({cell}: {why})")
        return "; ".join(parts)

    def start(self) -> list[str]:
        """The first floors of the session, before any cell runs: this machine's cached
        probe rounds, or a round measured now (an interrupted measurement then costs no
        result).

        Every device of the backends is measured, not only this run's: the cache key then
        stays the same from run to run on this machine (and matches ``linfit floors``). A
        floor that cannot be had (a cache of another machine, a probe that fails) leaves
        the floor columns empty; :attr:`note` says why.

        Returns:
            Warnings for the session's start: an unusable cache folder (the floors are then
            measured for this run only), cached figures that are not finite times.
        """
        if self.mode == "off":
            self._status = "floors: off"
            return []
        notes = []
        use_cache = self.mode == "cache"
        problem = cache_dir_problem() if use_cache else ""
        if problem:
            notes.append(f"warning: the floors cache is not used: {problem}; the floors are "
                         "measured for this run only")
            use_cache = False
        try:
            floors, path, cached = load_or_measure(self._backends(), use_cache=use_cache)
        except Exception as error:
            # Broad on purpose, as for every round: a cache of another machine (a
            # LinfitError) or a probe that fails leaves the floors unknown, never the session.
            self._status = f"floors not recorded: {error_line(error)}"
            return notes
        self._floors, self._cache, self._cached_rounds = floors, path, cached
        self._cache_problem = problem
        self._session_rounds = floors.rounds - cached
        self._last_round_end = self._clock()
        unusable = sum(len(device.unusable_measurements) for device in floors.devices)
        if unusable:
            where = f"the floors cache {path}" if cached else "the floors"
            notes.append(f"warning: {unusable} probe figure{'s' if unusable != 1 else ''} of "
                         f"{where} {'are' if unusable != 1 else 'is'} not a finite time > 0; "
                         "left out of every floor (unknown)")
        return notes

    def _round(self, when: str) -> bool:
        """Measure one more probe round and add it to the floors; whether it was added.

        A round that fails is named in :attr:`note`, and no later round is tried: the
        floors stay those of the rounds before it.
        """
        try:
            round_floors = measure_floors(self._backends())
        except Exception as error:
            # Broad on purpose: a probe that fails (a framework error, memory) must not cost
            # the session's results. It is not hidden: the note names it.
            self._round_problems.append(f"the {when} floor round failed ({error_line(error)})")
            return False
        assert self._floors is not None
        self._floors = merge_rounds(self._floors, round_floors)
        self._session_rounds += 1
        self._last_round_end = self._clock()
        return True

    def between_cells(self) -> None:
        """In measure mode, a probe round once the interval went by since the last one,
        while the session has rounds left (one is kept for the end)."""
        if (self.mode != "measure" or self._floors is None or self._round_problems
                or self._session_rounds >= MAX_SESSION_ROUNDS - 1
                or self._clock() - self._last_round_end < self._interval):
            return
        self._round("between-cells")

    def finish(self, interrupted: bool) -> None:
        """The end round (not after an interrupt), and the cache updated with it; once per
        session. The records' columns are then computed again with :meth:`with_columns`."""
        if self._floors is None or self._finished:
            return
        self._finished = True
        self._unknown.clear()  # found again, with every round
        if interrupted or self._round_problems:
            return
        try:
            added = self._round("end")
        except KeyboardInterrupt:
            # A second Ctrl-C during the end round: the results are written without it.
            self._round_problems.append("the end floor round was interrupted")
            added = False
        if added and self.mode == "cache" and self._cache is not None:
            path = self._cache
            self._cache = update_cache(path, self._floors)
            if self._cache is None:
                self._cache_problem = f"{path} could not be written"

    def with_columns(self, result: CellResult) -> CellResult:
        """``result`` with the floor columns of the floors known now: where it is an ok,
        timed cell the floors cover; otherwise, or where a floor cannot be computed, with
        them empty (unknown; :attr:`note` says why, once)."""
        unknown = replace(result, **dict.fromkeys(FLOOR_FIELDS))
        if self._floors is None or not result.ok or not result.timed:
            return unknown
        cell = result.cell
        try:
            columns = floor_columns(self._floors, cell.backend, cell.device, cell.n_examples,
                                    cell.dtype, cell.steps_per_call, result.median_seconds)
        except Exception as error:
            # Broad on purpose: a floor is derived, and nothing derived may cost the measured
            # cell (issue 20). Not hidden: the note names the first cell and why.
            self._unknown[cell] = error_line(error)
            return unknown
        self._unknown.pop(cell, None)
        return replace(result, **{name: columns[name] for name in FLOOR_FIELDS})
