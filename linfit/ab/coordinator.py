"""The coordinator of an A/B session: starts one worker per side, alternates their bursts.

Protocol of a session (issue 11):

1. Start every side's worker (``PYTHON -m linfit.ab.worker`` with the side's environment,
   this linfit source first on PYTHONPATH so that only the environment differs) and ask
   ``hello``. A side that cannot start, or cannot import linfit, is bad input.
2. ``plan`` on every side: the cells the options select there; a session measures the
   cells every side has.
3. ``build`` on every side at once (start-up only, nothing is timed yet): every cell is
   built and checked once; a failed check fails that cell, recorded in the pairs file.
4. Rounds. In each round every cell still undecided gets one burst from every side, one
   worker at a time (the machine may have 2 cores). Cells come in a seeded random order,
   and the sides of a cell in a seeded random order whose reverse follows in the next
   round, so each cell has as many AB as BA pairs (and, with more sides, every pair of
   sides is balanced). A slow drift then hits every cell's A and B alike.
5. Adaptive sampling, as Chromium Pinpoint: after ``min_pairs`` pairs, a cell keeps
   getting pairs only while its interval straddles a threshold boundary
   (:func:`linfit.stats.paired_decided`), up to ``max_pairs``, within the time budget.

Every burst is written to the pairs file as it comes back. A worker that crashes, hangs or
times out ends the session with its stderr; Ctrl-C and SIGTERM end it too; in every case
the workers are killed (their process group) and the pairs measured so far are kept.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import linfit
from linfit._errors import LinfitError
from linfit._paths import check_output_dir
from linfit._process import KIND_INPUT, WorkerFailed, WorkerProcess
from linfit.ab.analysis import DEFAULT_AB_THRESHOLD, is_decided
from linfit.ab.spec import Side
from linfit.backends.variants import KERAS_VARIANTS
from linfit.environment import quiet_framework_env
from linfit.results import KEY_COLUMNS, KEY_DEFAULTS
from linfit.results.pairs import PairsWriter
from linfit.stats import DEFAULT_ALPHA

__all__ = [
    "CALLS_PER_SAMPLE",
    "DEFAULT_MAX_PAIRS",
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_MIN_PAIRS",
    "DEFAULT_TARGET_BURST_SECONDS",
    "MAX_SAMPLE_SECONDS",
    "SessionConfig",
    "SessionResult",
    "WorkerFailed",
    "balanced_orders",
    "run_session",
]

# Pairs every cell gets before adaptive sampling may stop it: at alpha 0.01 the signed-rank
# interval needs 8 pairs to exist at all; 10 gives it a little room.
DEFAULT_MIN_PAIRS = 10
# No cell gets more (a cell whose true change sits on the threshold would never decide).
DEFAULT_MAX_PAIRS = 200
# Wall-time budget of a whole session, start-up and compilation included: the issue's
# 3 minutes for the default TensorFlow cells, less a few seconds to report.
DEFAULT_MAX_SECONDS = 170.0
# A burst's length: short enough that A and B of a pair see the same machine (drift is
# slow: seconds to minutes), long enough for a few samples of the fast cells.
DEFAULT_TARGET_BURST_SECONDS = 0.06
# A sample is this many consecutive calls, and its time their sum. The median of single
# calls is blind to a cost that fewer than half the calls pay (one call in ten that
# retraces, refills an allocator or doubles its work: a 10% regression); the median of
# sums of ten calls moves by it, and still shrugs off a burst's odd slow sample. Ten calls
# of the slowest default cell (function-loop at n=1e6, ~80 ms a call here) make a 0.8 s
# burst, the only ones far over the target; drift over a second is small.
CALLS_PER_SAMPLE = 10
# Longest sample, seconds: where ten calls take longer (loop variants at n >= 1e7: a second
# a call on the 2-core VM), a sample has fewer calls, down to one, so that A and B of a pair
# stay seconds apart. Every default cell (n <= 1e6; at most ~140 ms a call here) keeps its
# ten calls, with room for a machine 40% slower.
MAX_SAMPLE_SECONDS = 2.0
# Longest burst in samples (the fastest cells at n=1e3 need ~20).
MAX_SAMPLES_PER_BURST = 1000
# Request time-outs, seconds: start-up (import linfit), plan (import the framework),
# build (compile every cell: XLA at 1e8 takes a while), and a burst's floor; a burst may
# also take 50 times its expected length before it counts as hung.
HELLO_TIMEOUT_SECONDS = 120.0
BUILD_TIMEOUT_SECONDS = 900.0
BURST_TIMEOUT_SECONDS = 30.0
BURST_TIMEOUT_FACTOR = 50
DEFAULT_SEED = 0
# Variants a session leaves out unless --variants (or LINFIT_VARIANTS) names variants: Keras'
# model.fit cells take 0.5 to 1.2 s each to build, check and calibrate on the 2-core VM, and
# with them TensorFlow's default cells (33) used the whole default budget in building (one
# round, no cell decided: results/cpu-2core-ab/aa-all-variants). `pytest bench/` still runs
# them by default.
OPT_IN_VARIANTS = {"tensorflow": frozenset(KERAS_VARIANTS)}


def default_worker_argv(side: Side) -> list[str]:
    """The command that starts a side's worker."""
    return [side.python, "-m", "linfit.ab.worker"]


def worker_environ(side: Side, base: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: ``base``, the side's settings, this linfit source first on
    PYTHONPATH (every side runs the same linfit code), TensorFlow's C++ logging quiet."""
    environ = quiet_framework_env(side.environ(base))
    source = str(Path(linfit.__file__).resolve().parents[1])
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [source, environ.get("PYTHONPATH", "")]))
    return environ


class _SideWorker(WorkerProcess):
    """A side's worker process, which knows its side."""

    def __init__(self, side: Side, argv: Sequence[str], environ: Mapping[str, str]) -> None:
        super().__init__(f"side {side.label}", argv, environ)
        self.side = side


@dataclass(frozen=True)
class SessionConfig:
    """Everything a session needs to run.

    Attributes:
        sides: two or more; each is compared with the first.
        values: cell options by :attr:`linfit.harness.Option.dest` (None: not given).
        environ: where unset options are read from, as ``pytest bench/`` does
            (``LINFIT_SIZES``, ...).
        results_dir: folder of the pairs file.
        threshold, alpha: as in :func:`linfit.stats.verdict` and the intervals; they drive
            adaptive sampling.
        min_pairs, max_pairs: pairs per cell before it may stop, and at most.
        max_seconds: wall-time budget of the session from its start.
        target_burst_seconds: length of one burst.
        seed: seed of the cell and side orders.
        worker_argv: the command of a side's worker (tests give a fake one).
    """

    sides: tuple[Side, ...]
    values: Mapping[str, str | None] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    results_dir: Path = Path("results")
    threshold: float = DEFAULT_AB_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    min_pairs: int = DEFAULT_MIN_PAIRS
    max_pairs: int = DEFAULT_MAX_PAIRS
    max_seconds: float = DEFAULT_MAX_SECONDS
    target_burst_seconds: float = DEFAULT_TARGET_BURST_SECONDS
    seed: int = DEFAULT_SEED
    worker_argv: Callable[[Side], list[str]] = default_worker_argv
    hello_timeout: float = HELLO_TIMEOUT_SECONDS
    build_timeout: float = BUILD_TIMEOUT_SECONDS
    burst_timeout: float = BURST_TIMEOUT_SECONDS


@dataclass
class SessionResult:
    """What a session did: its pairs file and how it ended.

    Attributes:
        path: the pairs file (None when nothing was written).
        failures: one message per worker that failed mid-session.
        interrupted: whether Ctrl-C or SIGTERM ended it.
        skipped: "cell: reason" for cells left out (a skip reason, or not on every side).
        rounds: rounds run.
        seconds: wall time of the session.
        decided: cells decided when it ended, of ``cells``.
    """

    path: Path | None = None
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    skipped: list[str] = field(default_factory=list)
    rounds: int = 0
    seconds: float = 0.0
    cells: int = 0
    decided: int = 0


def balanced_orders(sides: int, rounds: int, rng: np.random.Generator) -> list[list[int]]:
    """Side orders for ``rounds`` rounds of one cell: a random permutation, then its
    reverse, and so on, so that every two sides swap places every two rounds (as many
    AB as BA pairs after each even round)."""
    orders: list[list[int]] = []
    for index in range(rounds):
        if index % 2:
            orders.append(orders[-1][::-1])
        else:
            orders.append([int(i) for i in rng.permutation(sides)])
    return orders


def _checked(side: Side, reply: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if reply.get("ok"):
        return reply
    # Bad options are bad input (exit 2); a worker's own failure is a failed session (exit 1).
    # Either stops the session before any timing; the message names the side.
    if reply.get("kind") == KIND_INPUT:
        raise LinfitError(f"side {side.label}: {what}: {reply.get('error', 'failed')}")
    raise WorkerFailed(f"side {side.label}", f"failed {what}: {reply.get('error', 'failed')}")


class _Session:
    """The state of one running session (see the module docstring for the protocol)."""

    def __init__(self, config: SessionConfig, progress: Callable[[str], None]) -> None:
        self.config = config
        self.progress = progress
        self.workers: list[_SideWorker] = []
        self.hellos: list[Mapping[str, Any]] = []
        self.result = SessionResult()
        self.writer: PairsWriter | None = None
        self.started = time.monotonic()
        self.sequence = 0

    # -- start-up: failures here are bad input (exit 2) ----------------------------------
    def start(self) -> None:
        # Before any worker starts: a folder that cannot take the pairs file is bad input.
        check_output_dir(self.config.results_dir, "pairs file folder (--results)")
        base = dict(os.environ)
        for side in self.config.sides:
            try:
                worker = _SideWorker(side, self.config.worker_argv(side),
                                     worker_environ(side, base))
            except WorkerFailed as error:
                raise LinfitError(str(error)) from None
            self.workers.append(worker)
        for worker in self.workers:
            try:
                reply = worker.request({"op": "hello"}, self.config.hello_timeout)
            except WorkerFailed as error:
                if error.returncode is not None and error.returncode < 0:
                    raise  # killed by a signal: a crash, not the interpreter's fault
                last = error.stderr_tail.strip().splitlines()[-1:] or [error.what]
                raise LinfitError(f"side {worker.side.label}: {worker.side.python} cannot "
                                  f"run linfit's worker: {last[0]}") from None
            self.hellos.append(_checked(worker.side, reply, "hello"))

    def _values(self) -> dict[str, str | None]:
        values = dict(self.config.values)
        if not values.get("linfit_backends") and not self.config.environ.get("LINFIT_BACKENDS"):
            installed = [set(hello["installed_backends"]) for hello in self.hellos]
            common = [name for name in self.hellos[0]["installed_backends"]
                      if all(name in names for names in installed)]
            if not common:
                listed = "; ".join(f"{w.side.label}: {', '.join(h['installed_backends']) or 'none'}"
                                   for w, h in zip(self.workers, self.hellos, strict=True))
                raise LinfitError(f"no backend is installed on every side ({listed})")
            values["linfit_backends"] = ",".join(common)
        asked = values.get("linfit_backends") or self.config.environ.get("LINFIT_BACKENDS", "")
        for worker, hello in zip(self.workers, self.hellos, strict=True):
            for name in filter(None, (part.strip() for part in asked.split(","))):
                if name not in hello["installed_backends"]:
                    there = ", ".join(hello["installed_backends"]) or "none"
                    raise LinfitError(f"side {worker.side.label}: {worker.side.python} cannot "
                                      f"import the {name} backend (installed there: {there})")
        return values

    def plan(self) -> list[dict[str, Any]]:
        request = {"op": "plan", "values": self._values(),
                   "environ": {k: v for k, v in self.config.environ.items()
                               if k.startswith("LINFIT_")}}
        plans = []
        for worker in self.workers:
            # A worker that fails here (killed, hung) is a crash, not bad input: WorkerFailed
            # ends the session with exit 1 (issue 20).
            reply = worker.request(request, self.config.build_timeout)
            plans.append(_checked(worker.side, reply, "cell options")["cells"])
        keys_everywhere = set.intersection(*({c["key"] for c in cells} for cells in plans))
        cells = []
        for cell in plans[0]:
            reasons = [c["skip_reason"] for cells_ in plans for c in cells_
                       if c["key"] == cell["key"] and c["skip_reason"]]
            if cell["key"] not in keys_everywhere:
                self.result.skipped.append(f"{cell['key']}: not on every side")
            elif reasons:
                self.result.skipped.append(f"{cell['key']}: {reasons[0]}")
            else:
                cells.append(cell)
        for plan in plans[1:]:
            self.result.skipped += [f"{c['key']}: not on side {self.config.sides[0].label}"
                                    for c in plan if c["key"] not in keys_everywhere]
        named = (self.config.values.get("linfit_variants")
                 or self.config.environ.get("LINFIT_VARIANTS"))
        opt_in = [] if named else [cell for cell in cells if cell["variant"] in
                                   OPT_IN_VARIANTS.get(cell["backend"], ())]
        if opt_in:
            cells = [cell for cell in cells if cell not in opt_in]
            self.progress(f"left out {len(opt_in)} Keras cells, which take most of a default "
                          "budget to build: name their variants in --variants to measure them")
        if not cells:
            raise LinfitError("the options select no cell that runs on every side")
        return cells

    # -- measurement: failures here end the session, keeping the pairs --------------------
    def _row(self, side_index: int, cell: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        hello = self.hellos[side_index]
        side = self.config.sides[side_index]
        built = cell["built"][side_index]
        return {"session_id": self.session_id, **{k: cell.get(k, KEY_DEFAULTS.get(k))
                                                  for k in KEY_COLUMNS},
            "side_index": side_index, "side_label": side.label,
            "calls_per_sample": cell["calls_per_sample"], "python": hello["python"],
            "python_version": hello["python_version"],
            "backend_version": built.get("backend_version", ""),
            "device_name": built.get("device_name", ""), "env_settings": side.env_text,
            "host": hello["machine"]["host"], "git_commit": hello["git_commit"], **extra}

    def build(self, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for cell in cells:
            cell["calls_per_sample"] = CALLS_PER_SAMPLE
        request = {"op": "build", "keys": [c["key"] for c in cells],
                   "calls_per_sample": {c["key"]: c["calls_per_sample"] for c in cells},
                   "max_sample_seconds": MAX_SAMPLE_SECONDS}
        self.progress(f"building and checking {len(cells)} cells on {len(self.workers)} sides")
        # Every side builds at once: start-up only, nothing is timed until all are done.
        for worker in self.workers:
            worker.send(request)
        replies = []
        for worker in self.workers:
            reply = worker.receive("build", self.config.build_timeout)
            replies.append({c["key"]: c for c in _checked(worker.side, reply, "build")["cells"]})
        ready = []
        for cell in cells:
            cell["built"] = [reply[cell["key"]] for reply in replies]
            failed = [index for index, b in enumerate(cell["built"]) if b["status"] != "ok"]
            for index in failed:
                assert self.writer is not None
                self.writer.append(self._row(index, cell, round=-1, status="failed",
                                             message=cell["built"][index]["message"]))
                self.progress(f"{cell['key']} failed its checks on side "
                              f"{self.config.sides[index].label}: "
                              f"{cell['built'][index]['message']}")
            if failed:
                continue
            call_seconds = [max(b["call_seconds"], 1e-9) for b in cell["built"]]
            typical_call = math.exp(sum(map(math.log, call_seconds)) / len(call_seconds))
            cell["calls_per_sample"] = int(min(CALLS_PER_SAMPLE, max(
                1, MAX_SAMPLE_SECONDS // typical_call)))
            typical = typical_call * cell["calls_per_sample"]
            cell["samples"] = int(min(MAX_SAMPLES_PER_BURST, max(1, round(
                self.config.target_burst_seconds / typical))))
            cell["expected_seconds"] = (cell["samples"] * cell["calls_per_sample"]
                                        * max(call_seconds))
            ready.append(cell)
        if self.writer is not None:
            self.writer.sync()
        return ready

    def measure(self, cells: list[dict[str, Any]]) -> None:
        config = self.config
        rng = np.random.default_rng(config.seed)
        sides = len(self.workers)
        pairs = {c["key"]: 0 for c in cells}
        orders: dict[str, list[int]] = {}
        rows: dict[str, list[dict[str, Any]]] = {c["key"]: [] for c in cells}
        decided: set[str] = set()
        round_seconds = 0.0
        self.result.cells = len(cells)
        while True:
            active = [c for c in cells if c["key"] not in decided
                      and pairs[c["key"]] < config.max_pairs]
            elapsed = time.monotonic() - self.started
            if not active:
                break
            if elapsed + round_seconds > config.max_seconds:
                self.progress(f"time budget of {config.max_seconds:g} s reached")
                break
            round_start = time.monotonic()
            for cell_index in rng.permutation(len(active)):
                cell = active[int(cell_index)]
                key = cell["key"]
                pair = pairs[key]
                if pair % 2 == 0:
                    orders[key] = [int(i) for i in rng.permutation(sides)]
                else:
                    orders[key] = orders[key][::-1]
                for position, side_index in enumerate(orders[key]):
                    worker = self.workers[side_index]
                    reply = worker.request(
                        {"op": "burst", "key": key, "samples": cell["samples"],
                         "calls_per_sample": cell["calls_per_sample"]},
                        max(config.burst_timeout,
                            BURST_TIMEOUT_FACTOR * cell["expected_seconds"]))
                    if not reply.get("ok"):
                        raise worker.failed(f"failed a burst of {key}: {reply.get('error')}")
                    row = self._row(side_index, cell, round=pair, order_position=position,
                                    sequence=self.sequence,
                                    start_unix_ns=reply["start_unix_ns"],
                                    call_ns=reply["call_ns"], status="ok")
                    assert self.writer is not None
                    self.writer.append(row)
                    rows[key].append(row)
                    self.sequence += 1
                pairs[key] = pair + 1
            assert self.writer is not None
            self.writer.sync()
            self.result.rounds += 1
            round_seconds = time.monotonic() - round_start
            for cell in active:
                key = cell["key"]
                if pairs[key] >= config.min_pairs and is_decided(
                        _frame(rows[key]), sides, config.threshold, config.alpha):
                    decided.add(key)
            self.result.decided = len(decided)
            left = config.max_seconds - (time.monotonic() - self.started)
            self.progress(f"round {self.result.rounds}: {len(active)} cells measured, "
                          f"{len(decided)}/{len(cells)} decided, {max(left, 0):.0f} s left")

    @property
    def session_id(self) -> str:
        return self._session_id

    def open_writer(self) -> None:
        from linfit.harness import make_run_id

        hello = self.hellos[0]
        self._session_id = make_run_id(datetime.now(UTC), hello["machine"]["host"],
                                       hello["git_commit"]) + "-ab"
        self.writer = PairsWriter(self.config.results_dir / f"{self._session_id}.csv")

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        if self.writer is not None:
            self.result.path = self.writer.finish()
        self.result.seconds = time.monotonic() - self.started


def _frame(rows: list[dict[str, Any]]) -> Any:
    """Rows of one cell as the frame :func:`linfit.ab.analysis.is_decided` takes."""
    import pandas as pd

    from linfit.results.pairs import burst_seconds_per_step

    frame = pd.DataFrame.from_records(rows)
    frame["seconds_per_step"] = [burst_seconds_per_step(r["call_ns"], r["calls_per_sample"],
                                                        r["steps_per_call"]) for r in rows]
    return frame


def run_session(config: SessionConfig,
                progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
                ) -> SessionResult:
    """Run one A/B session (see the module docstring) and return how it went.

    Args:
        config: the sides, cells and budget.
        progress: takes one line of progress at a time (default: stderr).

    Returns:
        The result; its pairs file holds every burst measured, also when a worker failed
        or the session was interrupted.

    Raises:
        LinfitError: before anything is measured, for a side that cannot start, cannot
            import linfit or the selected backends, or bad cell options.
    """
    from linfit.harness import sigterm_as_interrupt

    session = _Session(config, progress)
    # SIGTERM (CI cancellation, `timeout`) ends the session as Ctrl-C does.
    with sigterm_as_interrupt():
        try:
            session.start()
            cells = session.plan()
            for line in session.result.skipped:
                progress(f"skipped {line}")
            session.open_writer()
            ready = session.build(cells)
            session.measure(ready)
        except WorkerFailed as error:
            session.result.failures.append(str(error))
        except KeyboardInterrupt:
            session.result.interrupted = True
        finally:
            session.close()
    return session.result
