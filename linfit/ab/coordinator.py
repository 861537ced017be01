"""The coordinator of an A/B session: starts one worker per side, alternates their bursts.

Protocol of a session (issue 11):

0. Make the venv of every side that names a TensorFlow build, or take it from the build
   cache (:class:`linfit.builds.BuildCache`). A build that does not install or import is
   one line, and the session goes on without that side while two sides are left.
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
   Its interval is read after every round, so it is taken at the level that keeps alpha
   over all those looks (:func:`linfit.ab.analysis.look_alpha`).
6. Restarts: every ``restart_seconds`` of measuring, and as soon as every cell still
   measured waits for one, every side's worker is replaced by a fresh one (steps 1 to 3
   again, for the cells still measured, each with its calls per sample). Each set of
   workers is a ``part`` of the session, as a ``--resume`` is: two processes of one
   environment can differ by a few per cent for their whole life, and across parts that
   offset shows, and enters the interval (:func:`linfit.stats.paired_ratio_across_processes`).
   A cell is decided only once parts other than its largest have given it ``min_pairs``
   pairs, and its interval over them all is decided; a cell decided on one part's pairs
   waits for the next part. Where the budget leaves no room for another part
   (:data:`RESTART_BUILDS`), the pairs it has decide.

A session may be continued (``linfit ab --resume``, :mod:`linfit.ab.resume`): the same
sides, cells and seed, only its undecided cells, its rounds numbered on, its new bursts
added to the same pairs file.

Every burst is written to the pairs file as it comes back. A worker that crashes, hangs or
times out ends the session with its stderr; Ctrl-C and SIGTERM end it too; in every case
the workers are killed (their process group) and the pairs measured so far are kept.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import linfit
from linfit._errors import LinfitError
from linfit._paths import check_output_dir
from linfit._process import KIND_INPUT, WorkerFailed, WorkerProcess
from linfit.ab.analysis import DEFAULT_AB_THRESHOLD, is_decided, look_alpha
from linfit.ab.hlo_files import HloCapture, capture_changed_hlo
from linfit.ab.spec import Side, check_sides
from linfit.backends import BACKENDS, VARIANTS_BY_BACKEND
from linfit.backends.variants import KERAS_VARIANTS
from linfit.builds import BuildCache, BuildUnavailable, git_commit
from linfit.distributed.variants import DISTRIBUTED_VARIANTS
from linfit.environment import ENV_FLAGS, quiet_framework_env
from linfit.harness import (
    BY_DEST,
    OPTIONS,
    Option,
    available_backends,
    make_run_id,
    resolve_options,
    sigterm_as_interrupt,
)
from linfit.results import KEY_COLUMNS, Cell
from linfit.results.pairs import PAIRS_MACHINE_COLUMNS, PARTIAL_SUFFIX, PairsWriter
from linfit.stats import DEFAULT_ALPHA

if TYPE_CHECKING:
    from linfit.ab.resume import ResumeState

__all__ = [
    "CALLS_PER_SAMPLE",
    "DEFAULT_MAX_PAIRS",
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_MIN_PAIRS",
    "DEFAULT_RESTART_SECONDS",
    "DEFAULT_TARGET_BURST_SECONDS",
    "DEFAULT_UNTIL_DECIDED_SECONDS",
    "MAX_ADAPTIVE_PAIRS",
    "MAX_SAMPLE_SECONDS",
    "SessionCell",
    "SessionConfig",
    "SessionResult",
    "SideBuild",
    "WorkerFailed",
    "cell_options_text",
    "check_config",
    "cli_flag",
    "env_flags_text",
    "option_text",
    "parse_cell_options",
    "resolve_builds",
    "round_orders",
    "run_session",
]

# Pairs every cell gets before adaptive sampling may stop it: at alpha 0.01 the signed-rank
# interval needs 8 pairs to exist at all; 10 gives it a little room.
DEFAULT_MIN_PAIRS = 10
# No cell gets more (a cell whose true change sits on the threshold would never decide).
DEFAULT_MAX_PAIRS = 200
# The most pairs adaptive sampling may give a cell: every pair is a look, and the level that
# keeps alpha over them is simulated look by look (linfit.stats.sequential_alpha: a few
# seconds at 1000 looks, growing as their square). 1000 pairs of a 60 ms cell are 2 minutes.
MAX_ADAPTIVE_PAIRS = 1000
# Wall-time budget of a whole session, start-up and compilation included: the issue's
# 3 minutes for the default TensorFlow cells, less a few seconds to report.
DEFAULT_MAX_SECONDS = 170.0
# The cap of `linfit ab --until-decided` when --max-seconds is not given: on a noisy day on
# the 2-core VM (12-17% from one burst to the next), a real 10% slowdown took 432 s to
# decide the 15 default TensorFlow cells (issue 22), where the 170 s budget decided 5 to 9.
DEFAULT_UNTIL_DECIDED_SECONDS = 600.0
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
# Measuring seconds of one set of workers before they are replaced (step 6): four parts in
# the 600 s of --until-decided, one in the default 170 s session (whose budget leaves no
# room for another build).
DEFAULT_RESTART_SECONDS = 150.0
# A restart needs this many times the seconds the last start-up and build took left in the
# budget: one for the new workers' build, two for their pairs.
RESTART_BUILDS = 3
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
        build_cache: where sides that name a TensorFlow build get their venv (default:
            a :class:`~linfit.builds.BuildCache` of the default folder, made when needed).
        resume: the session this one continues (:func:`linfit.ab.resume.resumed_config`),
            None for a new session.
        restart_seconds: measuring seconds of one set of workers before fresh ones take
            over (step 6 of the module docstring); 0: never restart.
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
    build_cache: BuildCache | None = None
    resume: ResumeState | None = None
    restart_seconds: float = DEFAULT_RESTART_SECONDS


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
        unavailable: one line per side left out because its build does not install or
            import (:class:`linfit.builds.BuildUnavailable`).
        hlo: the optimized HLO of every changed cell on its base and changed sides
            (:mod:`linfit.ab.hlo_files`); empty when none changed or the session ended early.
        budget_reached: whether it ended because the time budget was spent.
        restarts: how many times fresh workers took over (step 6).
    """

    path: Path | None = None
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    skipped: list[str] = field(default_factory=list)
    rounds: int = 0
    seconds: float = 0.0
    cells: int = 0
    decided: int = 0
    unavailable: list[str] = field(default_factory=list)
    hlo: tuple[HloCapture, ...] = ()
    budget_reached: bool = False
    restarts: int = 0


# A session's id is a run id (linfit.harness.make_run_id: UTC start, host, commit) and this.
SESSION_ID_SUFFIX = "-ab"
# How `linfit ab` spells a harness option: --sizes for pytest's --linfit-sizes.
_HARNESS_FLAG_PREFIX = "--linfit-"
_AB_FLAG_PREFIX = "--"
# The options a session resolves itself, before the workers resolve the rest.
_BACKENDS_OPTION = BY_DEST["linfit_backends"]
_VARIANTS_OPTION = BY_DEST["linfit_variants"]


def cli_flag(option: Option) -> str:
    """The flag ``linfit ab`` gives a harness option: ``--sizes`` for ``--linfit-sizes``."""
    return _AB_FLAG_PREFIX + option.flag.removeprefix(_HARNESS_FLAG_PREFIX)


def option_text(option: Option, values: Mapping[str, str | None],
                environ: Mapping[str, str]) -> str | None:
    """An option's text as :func:`linfit.harness.resolve_options` reads it: the flag's value,
    else its environment variable (an empty one counts as unset), else None."""
    text = values.get(option.dest)
    return text if text is not None else (environ.get(option.env) or None)


def cell_options_text(values: Mapping[str, str | None], environ: Mapping[str, str]) -> str:
    """The options a plan used (flag, else environment variable) as ``linfit ab``'s flags,
    shell-quoted, in the option table's order: the pairs file's ``cell_options``."""
    given = ((option, option_text(option, values, environ)) for option in OPTIONS)
    return " ".join(f"{cli_flag(option)} {shlex.quote(text)}" for option, text in given
                    if text is not None)


def parse_cell_options(text: str) -> dict[str, str]:
    """:func:`cell_options_text` read back: the options' text by dest.

    Raises:
        LinfitError: for text that is not such flags (quoting, an unknown flag, a flag
            without its value).
    """
    by_flag = {cli_flag(option): option for option in OPTIONS}
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise LinfitError(f"cell options {text!r}: {error}") from None
    if len(words) % 2 or any(word not in by_flag for word in words[::2]):
        raise LinfitError(f"cell options {text!r} are not linfit ab's flags and values")
    return {by_flag[flag].dest: value for flag, value in zip(words[::2], words[1::2],
                                                            strict=True)}


def env_flags_text(flags: Mapping[str, str]) -> str:
    """A worker's framework settings (its hello's ``env_flags``: lower-cased names, '' where
    unset) as the pairs file's ``env_flags``: NAME=VALUE of those set, shell-quoted, in
    :data:`linfit.environment.ENV_FLAGS` order."""
    return " ".join(f"{name}={shlex.quote(flags[name.lower()])}" for name in ENV_FLAGS
                    if flags.get(name.lower()))


def _names(option: Option, text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise LinfitError(f"{cli_flag(option)}/{option.env} {text!r} names nothing; give a "
                          "comma-separated list, or leave it out for the default")
    return names


def _check_cell_options(config: SessionConfig) -> None:
    """The cell options, checked here as far as they do not depend on a side: the workers
    resolve them again (the same code) with their own backends installed."""
    for option in OPTIONS:
        text = config.values.get(option.dest)
        if text is not None and not text.strip():
            # resolve_options reads an empty flag as "not given": the default, silently.
            raise LinfitError(f"{cli_flag(option)} {text!r} names nothing; give "
                              f"{option.metavar}, or leave the option out for its default")
    backends = option_text(_BACKENDS_OPTION, config.values, config.environ)
    for name in _names(_BACKENDS_OPTION, backends) if backends else ():
        if name not in BACKENDS:
            raise LinfitError(f"{cli_flag(_BACKENDS_OPTION)}/{_BACKENDS_OPTION.env}: unknown "
                              f"backend {name!r}; valid: {', '.join(BACKENDS)}")
    _check_variants(config, _names(_BACKENDS_OPTION, backends) if backends else list(BACKENDS))
    if not available_backends():
        return  # nothing to resolve with here (the sides may be other interpreters)
    # Every other option, by the harness's own resolver; the backends were checked above
    # against every backend linfit knows, since a side may have others installed than this
    # interpreter.
    try:
        resolve_options({**config.values, _BACKENDS_OPTION.dest: None},
                        {name: value for name, value in config.environ.items()
                         if name != _BACKENDS_OPTION.env}, Path.cwd(), Path.cwd())
    except LinfitError as error:
        # The harness names its options as pytest spells them: say them as ab does.
        message = str(error)
        for option in OPTIONS:
            message = message.replace(f"{option.flag}/", f"{cli_flag(option)}/")
        raise LinfitError(message) from None


def _check_variants(config: SessionConfig, backends: Sequence[str]) -> None:
    """The variants named, against the registries of ``backends`` (no framework imported):
    a name selects that variant of every backend that has it, ``backend:variant`` one
    backend's, as :func:`linfit.harness.build_matrix` reads them on the workers."""
    text = option_text(_VARIANTS_OPTION, config.values, config.environ)
    registries = {backend: (*VARIANTS_BY_BACKEND[backend], *DISTRIBUTED_VARIANTS[backend])
                  for backend in dict.fromkeys(backends)}
    valid = {form for backend, names in registries.items() for name in names
             for form in (name, f"{backend}:{name}")}
    for name in _names(_VARIANTS_OPTION, text) if text else ():
        if name not in valid:
            listed = "; ".join(f"{backend}: {', '.join(names)}"
                               for backend, names in registries.items())
            among = ("" if list(registries) == list(BACKENDS)
                     else f" of {cli_flag(_BACKENDS_OPTION)} {','.join(registries)}")
            raise LinfitError(f"{cli_flag(_VARIANTS_OPTION)}/{_VARIANTS_OPTION.env}: no "
                              f"backend{among} has variant {name!r}; valid, alone or as "
                              f"backend:variant: {listed}")


def _positive(value: float, flag: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise LinfitError(f"{flag} {value:g} must be a finite number > 0")


def check_config(config: SessionConfig) -> None:
    """Refuse a session that cannot make sense, before any worker starts.

    Run first thing by :func:`run_session`. The messages name ``linfit ab``'s flags.

    Raises:
        LinfitError: one line naming the option and what would be valid: fewer than two
            sides, a malformed or repeated label, ``--min-pairs`` above ``--max-pairs``,
            ``--max-pairs`` above :data:`MAX_ADAPTIVE_PAIRS` with adaptive sampling, a
            budget, time-out, threshold, alpha or seed out of range, a cell option that
            names nothing or holds a bad value, or a results folder that cannot take the
            pairs file.
    """
    check_sides(config.sides)
    if config.min_pairs < 1:
        raise LinfitError(f"--min-pairs {config.min_pairs} must be an integer >= 1")
    if config.max_pairs < config.min_pairs:
        raise LinfitError(f"--min-pairs {config.min_pairs} is above --max-pairs "
                          f"{config.max_pairs}; give --max-pairs >= --min-pairs (or --pairs N "
                          "for exactly N)")
    if config.min_pairs < config.max_pairs and config.max_pairs > MAX_ADAPTIVE_PAIRS:
        raise LinfitError(f"--max-pairs {config.max_pairs} is above {MAX_ADAPTIVE_PAIRS}, the "
                          "most adaptive sampling looks at; give --max-pairs <= "
                          f"{MAX_ADAPTIVE_PAIRS} (or --pairs N for exactly N)")
    for value, flag in ((config.max_seconds, "--max-seconds"),
                        (config.target_burst_seconds, "target_burst_seconds"),
                        (config.hello_timeout, "hello_timeout"),
                        (config.build_timeout, "build_timeout"),
                        (config.burst_timeout, "burst_timeout")):
        _positive(value, flag)
    if not (math.isfinite(config.restart_seconds) and config.restart_seconds >= 0):
        raise LinfitError(f"--restart-every {config.restart_seconds:g} must be a finite "
                          "number of seconds >= 0 (0: never restart the workers)")
    if not (math.isfinite(config.threshold) and config.threshold > 0):
        raise LinfitError(f"--threshold {config.threshold:g} must be a finite fraction > 0")
    if not 0 < config.alpha < 1:
        raise LinfitError(f"--alpha {config.alpha:g} must be between 0 and 1")
    if config.seed < 0:
        # numpy's generators take seeds >= 0 only.
        raise LinfitError(f"--seed {config.seed} must be an integer >= 0")
    _check_cell_options(config)
    check_output_dir(config.results_dir, "pairs file folder (--results)")


@dataclass(frozen=True)
class SideBuild:
    """One side's build of a cell (the worker's ``build`` reply for it).

    Attributes:
        status: ``ok``, or why the cell cannot be measured there (``failed``, ...).
        message: why it failed ('' when ok).
        backend_version, device_name: what the side ran the cell with.
        call_seconds: a call's calibrated time (median of a few samples); NaN when the
            build failed before it was timed.
        peak_rss_bytes, device_peak_bytes: the peak memory the build added (None: unknown).
    """

    status: str
    message: str = ""
    backend_version: str = ""
    device_name: str = ""
    call_seconds: float = math.nan
    peak_rss_bytes: int | None = None
    device_peak_bytes: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the cell passed its checks on this side."""
        return self.status == "ok"

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any]) -> SideBuild:
        """A side's entry of a ``build`` reply."""
        return cls(status=str(reply["status"]), message=str(reply.get("message") or ""),
                   backend_version=str(reply.get("backend_version") or ""),
                   device_name=str(reply.get("device_name") or ""),
                   call_seconds=float(reply.get("call_seconds", math.nan)),
                   peak_rss_bytes=reply.get("peak_rss_bytes"),
                   device_peak_bytes=reply.get("device_peak_bytes"))


@dataclass(frozen=True)
class SessionCell:
    """One cell of a session: its key and what the session learnt about it at build.

    Attributes:
        cell: the key every pairs row of the cell carries.
        worker_key: the id the workers know the cell by (:func:`linfit.harness.cell_id`).
        builds: one per side, in side order; empty until built.
        calls_per_sample: consecutive calls per sample, the same on every side.
        samples_per_burst: samples in one burst.
        expected_burst_seconds: a burst's length on the slowest side, by the calibration.
        resumed_calls: the calls per sample a resumed cell keeps from its pairs file (a
            cell's bursts all have one); 0: calibrated.
    """

    cell: Cell
    worker_key: str
    builds: tuple[SideBuild, ...] = ()
    calls_per_sample: int = CALLS_PER_SAMPLE
    samples_per_burst: int = 1
    expected_burst_seconds: float = 0.0
    resumed_calls: int = 0

    @classmethod
    def from_plan(cls, entry: Mapping[str, Any]) -> SessionCell:
        """A cell of a worker's ``plan`` reply (without ``replicas`` or ``convention``:
        :data:`linfit.results.KEY_DEFAULTS`)."""
        return cls(Cell.from_row(entry), str(entry["key"]))

    @property
    def failed_sides(self) -> list[int]:
        """The sides on which the cell failed its checks."""
        return [index for index, build in enumerate(self.builds) if not build.ok]

    def calibrated(self, builds: Sequence[SideBuild], target_burst_seconds: float
                   ) -> SessionCell:
        """This cell with its builds, and, where it passed on every side, its samples sized
        from the calibrated call times (their geometric mean, so that no side decides
        alone): up to :data:`CALLS_PER_SAMPLE` calls a sample, a sample at most
        :data:`MAX_SAMPLE_SECONDS`, a burst near ``target_burst_seconds``."""
        if not all(build.ok for build in builds):
            return replace(self, builds=tuple(builds))
        call_seconds = [max(build.call_seconds, 1e-9) for build in builds]
        typical_call = math.exp(sum(map(math.log, call_seconds)) / len(call_seconds))
        calls = self.resumed_calls or int(min(CALLS_PER_SAMPLE,
                                              max(1, MAX_SAMPLE_SECONDS // typical_call)))
        samples = int(min(MAX_SAMPLES_PER_BURST, max(1, round(
            target_burst_seconds / (typical_call * calls)))))
        return replace(self, builds=tuple(builds), calls_per_sample=calls,
                       samples_per_burst=samples,
                       expected_burst_seconds=samples * calls * max(call_seconds))


@dataclass
class _CellProgress:
    """A measured cell's state in a session: the round of its next pair (its pairs so far),
    its complete pairs, the side order of the last one, its burst rows, and whether it is
    decided. Only a pair cut short by the end of a session (a resumed cell's torn pair)
    makes ``complete`` differ from ``pairs``. ``waiting``: decided within one part, it
    waits for the next (step 6 of the module docstring)."""

    cell: SessionCell
    pairs: int = 0
    order: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    decided: bool = False
    complete: int = 0
    waiting: bool = False

    def pairs_by_part(self) -> Counter[int]:
        """This cell's bursts on side 0 in each part."""
        return Counter(int(row.get("part") or 0) for row in self.rows if row["side_index"] == 0)


def round_orders(seed: int, round_index: int,
                 cells: Sequence[tuple[int, Sequence[int]]], sides: int
                 ) -> list[tuple[int, list[int]]]:
    """The order of one round: which cell goes when, and each cell's side order.

    Drawn from a generator of (``seed``, ``round_index``) alone, so that a session continued
    with ``--resume`` draws, round after round, what one long session would have drawn: the
    cells in a random order, each cell's sides in a random order after an even number of
    complete pairs and in the reverse of the last pair's order after an odd one, so that
    every two sides swap places every two pairs (as many AB as BA pairs after each even
    number).

    Args:
        seed: the session's seed.
        round_index: the round's number in the session (0, 1, ...; a resumed session goes on
            from the rounds its pairs file holds).
        cells: each active cell's complete pairs and its last pair's side order.
        sides: the number of sides.

    Returns:
        (index into ``cells``, side order) in the order the cells are measured.
    """
    rng = np.random.default_rng([seed, round_index])
    orders = []
    for index in rng.permutation(len(cells)):
        complete, last = cells[int(index)]
        order = ([int(i) for i in rng.permutation(sides)] if complete % 2 == 0 or not last
                 else [int(i) for i in last][::-1])
        orders.append((int(index), order))
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
        # Each side's tf.version.GIT_VERSION, as its worker reported at plan ('' without
        # TensorFlow).
        self.git_versions: list[str] = []
        self.result = SessionResult()
        self.writer: PairsWriter | None = None
        self.started = time.monotonic()
        # The part's wall-clock start, in its rows: with its first burst, its start-up.
        self.started_unix_ns = time.time_ns()
        self.sequence = 0
        self._session_id = ""
        self.measured: list[_CellProgress] = []
        self.cell_options = config.resume.cell_options if config.resume else ""
        # The part the rows are written in: a new one at each restart (step 6).
        self.part = config.resume.part if config.resume else 0
        # Seconds the last start-up (hello, plan, build) took: what a restart costs.
        self.startup_seconds = 0.0
        # The cells the current workers have built (after a restart, those still measured).
        self.built_keys: set[str] = set()
        # The plan request (restarted workers are asked it again).
        self._plan_request: dict[str, Any] = {}

    # -- start-up: failures here are bad input (exit 2) ----------------------------------
    def start(self) -> None:
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
        asked = option_text(_BACKENDS_OPTION, values, self.config.environ)
        if not asked:
            installed = [set(hello["installed_backends"]) for hello in self.hellos]
            common = [name for name in self.hellos[0]["installed_backends"]
                      if all(name in names for names in installed)]
            if not common:
                listed = "; ".join(f"{w.side.label}: {', '.join(h['installed_backends']) or 'none'}"
                                   for w, h in zip(self.workers, self.hellos, strict=True))
                raise LinfitError(f"no backend is installed on every side ({listed})")
            asked = values[_BACKENDS_OPTION.dest] = ",".join(common)
        for worker, hello in zip(self.workers, self.hellos, strict=True):
            for name in filter(None, (part.strip() for part in asked.split(","))):
                if name not in hello["installed_backends"]:
                    there = ", ".join(hello["installed_backends"]) or "none"
                    raise LinfitError(f"side {worker.side.label}: {worker.side.python} cannot "
                                      f"import the {name} backend (installed there: {there})")
        return values

    def plan(self) -> list[SessionCell]:
        request = {"op": "plan", "values": self._values(),
                   "environ": {option.env: self.config.environ[option.env]
                               for option in OPTIONS if option.env in self.config.environ}}
        self._plan_request = request
        # As given (the default backends, those every side has, are found again on resume).
        self.cell_options = self.cell_options or cell_options_text(self.config.values,
                                                                   request["environ"])
        plans: list[dict[str, tuple[SessionCell, str]]] = []
        for worker in self.workers:
            # A worker that fails here (killed, hung) is a crash, not bad input: WorkerFailed
            # ends the session with exit 1 (issue 20).
            reply = worker.request(request, self.config.build_timeout)
            plans.append({str(entry["key"]): (SessionCell.from_plan(entry),
                                              str(entry["skip_reason"] or ""))
                          for entry in _checked(worker.side, reply, "cell options")["cells"]})
            self.git_versions.append(str(reply.get("tensorflow_git_version") or ""))
        keys_everywhere = set.intersection(*(set(plan) for plan in plans))
        cells = []
        for key, (cell, _) in plans[0].items():
            reasons = [plan[key][1] for plan in plans if key in plan and plan[key][1]]
            if key not in keys_everywhere:
                self.result.skipped.append(f"{key}: not on every side")
            elif reasons:
                self.result.skipped.append(f"{key}: {reasons[0]}")
            else:
                cells.append(cell)
        for plan in plans[1:]:
            self.result.skipped += [f"{key}: not on side {self.config.sides[0].label}"
                                    for key in plan if key not in keys_everywhere]
        named = option_text(_VARIANTS_OPTION, self.config.values, self.config.environ)
        opt_in = [] if named else [
            cell for cell in cells
            if cell.cell.variant in OPT_IN_VARIANTS.get(cell.cell.backend, ())]
        if opt_in:
            cells = [cell for cell in cells if cell not in opt_in]
            self.progress(f"left out {len(opt_in)} Keras cells, which take most of a default "
                          "budget to build: name their variants in --variants to measure them")
        if not cells:
            raise LinfitError("the options select no cell that runs on every side")
        return cells

    # -- measurement: failures here end the session, keeping the pairs --------------------
    def _row(self, side_index: int, cell: SessionCell, **burst: Any) -> dict[str, Any]:
        """The one place a pairs row is made: the session, the cell's key, the side's
        facts and what its build found, then ``burst`` (the burst's own columns)."""
        hello = self.hellos[side_index]
        side = self.config.sides[side_index]
        built = cell.builds[side_index]
        return {"session_id": self.session_id,
                **{name: getattr(cell.cell, name) for name in KEY_COLUMNS},
                "side_index": side_index, "side_label": side.label,
                "calls_per_sample": cell.calls_per_sample, "python": hello["python"],
                "python_version": hello["python_version"],
                "backend_version": built.backend_version, "device_name": built.device_name,
                "env_settings": side.env_text, "host": hello["machine"]["host"],
                "git_commit": hello["git_commit"],
                "build": side.build.requirement if side.build else "",
                "tensorflow_git_version": self.git_versions[side_index],
                "tensorflow_commit": git_commit(self.git_versions[side_index]),
                **self._session_facts(side_index),
                **{name: hello["machine"].get(name) for name in PAIRS_MACHINE_COLUMNS},
                "peak_rss_bytes": built.peak_rss_bytes,
                "device_peak_bytes": built.device_peak_bytes, **burst}

    def _session_facts(self, side_index: int) -> dict[str, Any]:
        """A row's schema-3 columns: what ``--resume`` reads to continue the session."""
        config = self.config
        return {"part": self.part,
                "part_start_unix_ns": self.started_unix_ns, "seed": config.seed,
                "threshold": config.threshold, "alpha": config.alpha,
                "min_pairs": config.min_pairs, "max_pairs": config.max_pairs,
                "cell_options": self.cell_options,
                "side_python": config.sides[side_index].python,
                "env_flags": env_flags_text(self.hellos[side_index].get("env_flags") or {})}

    def _build_everywhere(self, calls_per_sample: Mapping[str, int]
                          ) -> list[dict[str, SideBuild]]:
        """Ask every side's worker to build the cells of these keys, each with its calls per
        sample; each side's builds by key, in side order."""
        request = {"op": "build", "keys": list(calls_per_sample),
                   "calls_per_sample": dict(calls_per_sample),
                   "max_sample_seconds": MAX_SAMPLE_SECONDS}
        # Every side builds at once: start-up only, nothing is timed until all are done.
        for worker in self.workers:
            worker.send(request)
        replies = []
        for worker in self.workers:
            reply = worker.receive("build", self.config.build_timeout)
            replies.append({entry["key"]: SideBuild.from_reply(entry)
                            for entry in _checked(worker.side, reply, "build")["cells"]})
        self.built_keys.update(calls_per_sample)
        return replies

    def build(self, cells: list[SessionCell]) -> list[SessionCell]:
        self.progress(f"building and checking {len(cells)} cells on {len(self.workers)} sides")
        replies = self._build_everywhere({c.worker_key: c.calls_per_sample for c in cells})
        if self.config.resume is not None:
            self.config.resume.check_builds(cells, replies)
        assert self.writer is not None
        ready = []
        for planned in cells:
            cell = planned.calibrated([reply[planned.worker_key] for reply in replies],
                                      self.config.target_burst_seconds)
            for index in cell.failed_sides:
                message = cell.builds[index].message
                self.writer.append(self._row(index, cell, round=-1, status="failed",
                                             message=message))
                self.progress(f"{cell.worker_key} failed its checks on side "
                              f"{self.config.sides[index].label}: {message}")
            if not cell.failed_sides:
                ready.append(cell)
        self.writer.sync()
        return ready

    def _burst(self, progress: _CellProgress, position: int, side_index: int) -> None:
        """One burst of a cell on one side, written to the pairs file as it comes back."""
        cell = progress.cell
        worker = self.workers[side_index]
        reply = worker.request(
            {"op": "burst", "key": cell.worker_key, "samples": cell.samples_per_burst,
             "calls_per_sample": cell.calls_per_sample},
            max(self.config.burst_timeout,
                BURST_TIMEOUT_FACTOR * cell.expected_burst_seconds))
        if not reply.get("ok"):
            raise worker.failed(f"failed a burst of {cell.worker_key}: {reply.get('error')}")
        row = self._row(side_index, cell, round=progress.pairs, order_position=position,
                        sequence=self.sequence, start_unix_ns=reply["start_unix_ns"],
                        call_ns=reply["call_ns"], load_average=reply.get("load_average"),
                        status="ok")
        assert self.writer is not None
        self.writer.append(row)
        progress.rows.append(row)
        self.sequence += 1

    def _states(self, cells: list[SessionCell]) -> list[_CellProgress]:
        """Each cell's state at the start: new, or as its pairs file left it (resumed)."""
        if self.config.resume is None:
            return [_CellProgress(cell) for cell in cells]
        resumed = {cell.cell: cell for cell in self.config.resume.cells}
        return [_CellProgress(cell, pairs=resumed[cell.cell].next_round,
                              order=list(resumed[cell.cell].last_order),
                              rows=[dict(row) for row in resumed[cell.cell].rows],
                              complete=resumed[cell.cell].complete) for cell in cells]

    def ensure_built(self, keys: Sequence[str]) -> None:
        """Build the cells of ``keys`` that the current workers have not (a cell decided
        before the last restart), so that they can be asked for its HLO; nothing is timed
        or written."""
        missing = [key for key in keys if key not in self.built_keys]
        if not missing:
            return
        calls = {state.cell.worker_key: state.cell.calls_per_sample for state in self.measured}
        self.progress(f"building {len(missing)} cells again in the current workers, for "
                      "their HLO")
        self._build_everywhere({key: calls[key] for key in missing})

    def _restart_fits(self) -> bool:
        """Whether the budget leaves room for fresh workers and their pairs (step 6)."""
        left = self.config.max_seconds - (time.monotonic() - self.started)
        return self.config.restart_seconds > 0 and left >= RESTART_BUILDS * self.startup_seconds

    def restart(self, states: list[_CellProgress]) -> None:
        """Replace every side's worker with a fresh one, for the cells of ``states``
        (step 6): the rows that follow are a new part. The new workers must report what the
        old ones did (interpreter, versions, commit and whether its tree was edited,
        settings; each cell's framework version and device), and each cell keeps its calls
        per sample.

        Raises:
            WorkerFailed: a new worker that does not start, reports another environment, or
                fails a cell's checks that the old one passed: the session ends there.
        """
        started = time.monotonic()
        self.part += 1
        self.started_unix_ns = time.time_ns()
        self.progress(f"part {self.part}: fresh workers for {len(states)} cells, so that a "
                      "worker process's own offset shows (--restart-every)")
        before = self.hellos
        for worker in self.workers:
            worker.close()
        self.workers, self.hellos, self.built_keys = [], [], set()
        try:
            self.start()
        except LinfitError as error:  # it started a moment ago: a crash, not bad input
            raise WorkerFailed("a restarted side", str(error)) from None
        for worker, old, new in zip(self.workers, before, self.hellos, strict=True):
            changed = [name for name in ("python", "python_version", "git_commit",
                                         "git_dirty", "env_flags")
                       if old.get(name) != new.get(name)]
            if changed:
                raise worker.failed(f"restarted with another {', '.join(changed)}")
        for worker in self.workers:
            reply = _checked(worker.side, worker.request(self._plan_request,
                                                         self.config.build_timeout), "cell options")
            known = {str(entry["key"]) for entry in reply["cells"]}
            missing = [s.cell.worker_key for s in states if s.cell.worker_key not in known]
            if missing:
                raise worker.failed(f"restarted without the cells {', '.join(missing)}")
        cells = [replace(s.cell, resumed_calls=s.cell.calls_per_sample) for s in states]
        rebuilt = {cell.worker_key: cell for cell in self.build(cells)}
        for state in states:
            cell = rebuilt.get(state.cell.worker_key)
            if cell is None:
                raise self.workers[0].failed(f"{state.cell.worker_key} failed its checks "
                                             "after the restart (its row says why)")
            for worker, old, new in zip(self.workers, state.cell.builds, cell.builds,
                                        strict=True):
                if (old.backend_version, old.device_name) != (new.backend_version,
                                                              new.device_name):
                    raise worker.failed(f"{cell.worker_key} restarted with "
                                        f"{new.backend_version} on {new.device_name}, where "
                                        f"it ran {old.backend_version} on {old.device_name}")
            state.cell = cell
            state.waiting = False
        self.result.restarts += 1
        self.startup_seconds = time.monotonic() - started

    def measure(self, cells: list[SessionCell]) -> None:
        config = self.config
        sides = len(self.workers)
        states = self._states(cells)
        self.measured = states
        round_index = config.resume.next_round if config.resume else 0
        # Every round is a look at each cell's interval: each is taken at the level that
        # keeps alpha over all of them.
        level = look_alpha(config.alpha, config.min_pairs, config.max_pairs)
        round_seconds = 0.0
        self.result.cells = len(cells)
        self.startup_seconds = time.monotonic() - self.started
        part_started = time.monotonic()
        while True:
            restart_fits = self._restart_fits()
            for state in states:
                if state.waiting and not restart_fits:
                    # No room for another part: the one part decides.
                    state.waiting, state.decided = False, True
            self.result.decided = sum(state.decided for state in states)
            active = [s for s in states
                      if not s.decided and not s.waiting and s.pairs < config.max_pairs]
            waiting = [s for s in states if s.waiting]
            if not active and not waiting:
                break
            due = time.monotonic() - part_started >= config.restart_seconds
            if restart_fits and (not active or due):
                self.restart(active + waiting)
                part_started = time.monotonic()
                continue
            elapsed = time.monotonic() - self.started
            if elapsed + round_seconds > config.max_seconds:
                self.progress(f"time budget of {config.max_seconds:g} s reached")
                self.result.budget_reached = True
                break
            round_start = time.monotonic()
            cut = False
            for index, order in round_orders(config.seed, round_index,
                                             [(s.complete, s.order) for s in active], sides):
                state = active[index]
                # A round slower than the last (a loaded machine) may not carry a pair past
                # the budget: the session ends between two pairs, each cell's pairs whole.
                if (time.monotonic() - self.started + sides * state.cell.expected_burst_seconds
                        > config.max_seconds):
                    cut = True
                    break
                state.order = order
                for position, side_index in enumerate(state.order):
                    self._burst(state, position, side_index)
                state.pairs += 1
                state.complete += 1
            round_index += 1
            assert self.writer is not None
            self.writer.sync()
            if cut:
                self.progress(f"time budget of {config.max_seconds:g} s reached within a round")
                self.result.budget_reached = True
                break
            self.result.rounds += 1
            round_seconds = time.monotonic() - round_start
            for state in active:
                decided = state.complete >= config.min_pairs and is_decided(
                    _frame(state.rows), sides, config.threshold, level)
                by_part = state.pairs_by_part()
                largest = max(by_part.values())
                if (decided and config.restart_seconds > 0
                        and sum(by_part.values()) - largest < config.min_pairs):
                    # Decided on the pairs of one part, or nearly: more pairs from this part
                    # would not confirm it, where it has the most; then the cell waits for
                    # fresh workers (step 6).
                    state.waiting = by_part[self.part] >= largest
                else:
                    state.decided = decided
            self.result.decided = sum(state.decided for state in states)
            left = config.max_seconds - (time.monotonic() - self.started)
            self.progress(f"round {self.result.rounds}: {len(active)} cells measured, "
                          f"{self.result.decided}/{len(cells)} decided, {max(left, 0):.0f} s "
                          "left")

    @property
    def session_id(self) -> str:
        return self._session_id

    def open_writer(self) -> None:
        """Open the pairs file, named by the session id. Two sessions started in the same
        second on the same host and commit would share an id: as the results writer does
        (:func:`linfit.journal.write_run`), the later one takes ``-2``, ``-3``, ... in its
        id and file name. Only a name collision is retried."""
        if self.config.resume is not None:
            self.writer, self._session_id = self.config.resume.open_writer()
            return
        hello = self.hellos[0]
        base = make_run_id(datetime.now(UTC), hello["machine"]["host"],
                           hello["git_commit"]) + SESSION_ID_SUFFIX
        suffix = 1
        while True:
            session_id = base if suffix == 1 else f"{base}-{suffix}"
            target = self.config.results_dir / f"{session_id}.csv"
            partial = target.with_name(target.name + PARTIAL_SUFFIX)
            if not os.path.lexists(target):
                try:
                    self.writer = PairsWriter(target)
                except FileExistsError:
                    if not os.path.lexists(partial):
                        raise  # the folder's path holds a file: not a collision
                else:
                    self._session_id = session_id
                    return
            suffix += 1

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        if self.writer is not None:
            self.result.path = self.writer.finish()
        self.result.seconds = time.monotonic() - self.started


def _capture_hlo(session: _Session) -> tuple[HloCapture, ...]:
    """The optimized HLO of the cells the session found changed, from the workers that
    still hold them (:func:`linfit.ab.hlo_files.capture_changed_hlo`)."""
    rows = [row for state in session.measured for row in state.rows]
    if not rows:
        return ()
    return capture_changed_hlo(
        session.workers, [side.label for side in session.config.sides], _frame(rows),
        {state.cell.cell: state.cell.worker_key for state in session.measured},
        session.config.threshold, session.config.alpha, session.progress,
        prepare=session.ensure_built)


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
        LinfitError: before any worker starts, for options that cannot make sense
            (:func:`check_config`), or builds that leave fewer than two sides; before
            anything is measured, for a side that cannot start, cannot import linfit or
            the selected backends, or bad cell options.
    """
    check_config(config)
    cache = config.build_cache
    if cache is None and any(side.build for side in config.sides):
        cache = BuildCache()
    # SIGTERM (CI cancellation, `timeout`) ends the session as Ctrl-C does.
    with sigterm_as_interrupt():
        try:
            try:
                sides, unavailable = resolve_builds(config.sides, cache, progress)
            except KeyboardInterrupt:
                return SessionResult(interrupted=True)
            session = _Session(replace(config, sides=sides), progress)
            session.result.unavailable = unavailable
            try:
                session.start()
                if config.resume is not None:
                    config.resume.check_hellos(session.hellos)
                cells = session.plan()
                for line in session.result.skipped:
                    progress(f"skipped {line}")
                if config.resume is not None:
                    cells = config.resume.select(cells)
                session.open_writer()
                ready = session.build(cells)
                session.measure(ready)
                session.result.hlo = _capture_hlo(session)
            except WorkerFailed as error:
                session.result.failures.append(str(error))
            except KeyboardInterrupt:
                session.result.interrupted = True
            finally:
                session.close()
        finally:
            # Other sessions may evict these builds again.
            for side in config.sides:
                if cache is not None and side.build is not None:
                    cache.release(side.build)
    return session.result


def resolve_builds(sides: Sequence[Side], cache: BuildCache | None,
                   progress: Callable[[str], None]) -> tuple[tuple[Side, ...], list[str]]:
    """The sides with the interpreter of every build they name, from ``cache`` (made there
    when missing); a side whose build does not install or import is left out.

    Returns:
        (the sides left, in order; one line per side left out).

    Raises:
        LinfitError: when fewer than two sides are left (every line said).
    """
    resolved: list[Side] = []
    unavailable: list[str] = []
    for side in sides:
        if side.build is None:
            resolved.append(side)
            continue
        assert cache is not None, "a side names a build: give a BuildCache"
        try:
            python = cache.python(side.build, progress)
        except BuildUnavailable as error:
            line = f"side {side.label} left out: {error}"
            progress(line)
            unavailable.append(line)
            continue
        resolved.append(replace(side, python=str(python)))
    if len(resolved) < 2:
        raise LinfitError(f"{'; '.join(unavailable)}; {len(resolved)} side(s) left, a "
                          "session needs two")
    return tuple(resolved), unavailable
