"""``linfit bisect``'s engine: from two builds that differ to the first build that changed.

1. **Confirm.** One paired session of GOOD against BAD (:func:`linfit.ab.run_session`) over
   the cells the options select. Cells called slower or faster changed; cells whose BAD/GOOD
   intervals overlap (in the same direction) count as one change
   (:func:`linfit.bisect.decide.group_changes`), bisected on its most certain cell. With
   ``--cell``, only that cell's change is bisected. Cells still undecided (``noise``,
   too few pairs) get more pairs first, as a step does.
2. **Steps.** Each step is a paired session of MID, GOOD and BAD (MID first, so that the
   session's adaptive sampling stops on exactly MID/GOOD and MID/BAD), narrowed to the
   cell, with the step's band as its threshold. MID is good, bad, ambiguous or undecided by
   :func:`linfit.bisect.decide.step_outcome`. An undecided step (an interval on an edge of
   the band, or a minimum detectable effect above the change) gets another session with
   twice the time budget and the pairs the MDE asks for, pooled with the first, up to
   ``max_extensions`` times. An ambiguous one gets one more session; if it stays
   ambiguous, the range holds two changes and splits at MID: both halves are bisected in
   turn, each against its own change (MID/GOOD, BAD/MID), at most ``max_changes`` ranges
   per cell.
3. **Skips.** A MID whose environment does not install or import (:class:`Unavailable`),
   whose worker fails, or whose cell fails its checks is skipped as ``git bisect skip``
   does: the nearest testable neighbour of the middle is tried instead, and the report
   names it. When only skipped builds are left between, the range is reported as it is.

Everything measured is saved in the state folder as it finishes
(:mod:`linfit.bisect.state`); decisions are derived again from the saved pairs files on
every run, so rerunning the same command after Ctrl-C, SIGTERM or a crash replays the
saved sessions and measures only what is missing.

Builds are strings the :class:`Environments` object understands
(``tf-nightly==2.23.0.dev20261026``); this module never installs anything itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from linfit._errors import LinfitError
from linfit._format import format_ratio
from linfit._paths import check_output_dir
from linfit.ab.analysis import ABComparison, analyse
from linfit.ab.coordinator import (
    SessionConfig,
    SessionResult,
    check_config,
    option_text,
    run_session,
)
from linfit.ab.hlo_files import hlo_folder, write_hlo_files
from linfit.ab.spec import MAX_LABEL_CHARS, Side
from linfit.bisect.decide import (
    AMBIGUOUS,
    BAD,
    GOOD,
    UNDECIDED,
    Ratio,
    group_changes,
    midpoint,
    step_outcome,
    step_threshold,
    steps_left,
)
from linfit.bisect.state import PAIRS_FOLDER, BisectState, SessionRecord, locked
from linfit.harness import BY_DEST, cell_id, sigterm_as_interrupt
from linfit.results import KEY_COLUMNS, Cell
from linfit.results.pairs import read_pairs

__all__ = [
    "COMPARE_URL",
    "DEFAULT_MAX_CHANGES",
    "DEFAULT_MAX_EXTENSIONS",
    "DEFAULT_STATE_ROOT",
    "FOUND",
    "INTERRUPTED",
    "NO_CHANGE",
    "SKIPPED",
    "UNRESOLVED",
    "BisectConfig",
    "BisectResult",
    "Change",
    "Environments",
    "Step",
    "Unavailable",
    "default_state_dir",
    "run_bisect",
    "settings_of",
    "side_label",
]

# Sessions that may extend a step (or the confirming session) beyond its first, each with
# twice the budget of the one before: 1 + 2 + 4 = 7 budgets at most. Chromium Pinpoint
# likewise adds attempts while a comparison is "unknown", up to a cap.
DEFAULT_MAX_EXTENSIONS = 2
# Ranges one cell's bisect may split into (two changes in a range split it in two): a
# gradual drift would otherwise split on and on; four changes between two builds is
# already more than a bisect can tell apart with confidence.
DEFAULT_MAX_CHANGES = 4
# GitHub's view of the commits between two hashes.
COMPARE_URL = "https://github.com/tensorflow/tensorflow/compare/{good}...{bad}"
# Where the state folders go without --state: results/bisect/<good>..<bad>-<settings hash>.
DEFAULT_STATE_ROOT = Path("results") / "bisect"
# Hex digits of the settings' hash in a default state folder's name.
_HASH_CHARS = 8

# How a bisect ended (BisectResult.status) and how a change's range ended (Change.status).
FOUND, NO_CHANGE, UNRESOLVED, INTERRUPTED = "found", "no-change", "unresolved", "interrupted"
# A step whose MID was skipped (BisectResult.steps' outcome, beside decide's outcomes).
SKIPPED = "skipped"
# Confirm verdicts that mean "not decided yet": the cell gets more pairs.
_UNDECIDED_VERDICTS = ("noise", "too-few-pairs", "no-pairs")
_CHANGED_VERDICTS = ("slower", "faster")
# Characters a build may keep in its side label (linfit.ab.spec.LABEL_RULE).
_LABEL_CHARACTER = re.compile(r"[^A-Za-z0-9._+-]")


class Unavailable(LinfitError):
    """Raised by :meth:`Environments.side` for a build that does not install or does not
    import: the bisect skips it (a MID) or stops with this one line (GOOD or BAD)."""


class Environments(Protocol):
    """Where the builds come from: the command line's default makes and caches a venv per
    TensorFlow build (``linfit.builds``); tests give fakes."""

    def side(self, build: str) -> Side:
        """The side that runs ``build``'s worker (its label is replaced by the bisect's).

        Raises:
            Unavailable: when the build does not install or import.
        """
        ...

    def builds_between(self, good: str, bad: str) -> list[str]:
        """The builds strictly between ``good`` and ``bad``, oldest first."""
        ...


@dataclass(frozen=True)
class BisectConfig:
    """Everything a bisect needs.

    Attributes:
        good, bad: the builds: BAD differs from GOOD.
        session: the template of every session: cell options, environment, threshold,
            alpha, pairs, time budget, seed, timeouts, worker command (its ``sides`` and
            ``results_dir`` are the bisect's own).
        state_dir: the state folder (:func:`default_state_dir` without --state).
        cell: the cell id whose change to bisect; None: every change.
        max_extensions, max_changes: see :data:`DEFAULT_MAX_EXTENSIONS` and
            :data:`DEFAULT_MAX_CHANGES`.
    """

    good: str
    bad: str
    session: SessionConfig
    state_dir: Path
    cell: str | None = None
    max_extensions: int = DEFAULT_MAX_EXTENSIONS
    max_changes: int = DEFAULT_MAX_CHANGES


@dataclass(frozen=True)
class Step:
    """One step: MID against the range's GOOD and BAD, in one cell.

    Attributes:
        number: 1, 2, ... in the order the steps were taken.
        cell: the cell id.
        good, mid, bad: the builds.
        outcome: ``good``, ``bad``, ``ambiguous``, ``undecided`` or ``skipped``.
        mid_vs_good, mid_vs_bad: the ratios the outcome was decided on, from every pair
            of the step's sessions (None for a skipped MID).
        sessions: the sessions the step took.
        band: the step's threshold (:func:`linfit.bisect.decide.step_threshold`).
        note: why a MID was skipped ('' otherwise).
    """

    number: int
    cell: str
    good: str
    mid: str
    bad: str
    outcome: str
    mid_vs_good: Ratio | None
    mid_vs_bad: Ratio | None
    sessions: int
    band: float
    note: str = ""


@dataclass(frozen=True)
class Change:
    """Where one change in one cell was narrowed to.

    Attributes:
        cell: the cell id.
        ratio: BAD/GOOD of the range this change was bisected in, at its start.
        status: ``found`` (last good and first bad are neighbours, or only skipped builds
            lie between), ``ambiguous`` (two changes, but the cell may split no further)
            or ``unresolved`` (a step stayed undecided, or a session failed).
        last_good, first_bad: the range's ends when it ended.
        last_good_commit, first_bad_commit: their commits ('' when unknown).
        untested: the skipped builds between them.
        hlo_diff: the diff of their optimized HLO (kernels and ops that came and went),
            where a step saved one (:mod:`linfit.ab.hlo_files`); None otherwise.
        note: why it is not found.
    """

    cell: str
    ratio: Ratio
    status: str
    last_good: str
    first_bad: str
    last_good_commit: str = ""
    first_bad_commit: str = ""
    untested: tuple[str, ...] = ()
    note: str = ""
    hlo_diff: Path | None = None

    @property
    def compare_url(self) -> str:
        """GitHub's compare view of the two commits; '' when either is unknown."""
        if not (self.last_good_commit and self.first_bad_commit):
            return ""
        return COMPARE_URL.format(good=self.last_good_commit, bad=self.first_bad_commit)


@dataclass(frozen=True)
class BisectResult:
    """What a bisect found; :mod:`linfit.commands.bisect` renders it.

    Attributes:
        good, bad: the builds given.
        status: ``found`` (every change found), ``no-change`` (GOOD and BAD agree in every
            selected cell), ``unresolved`` or ``interrupted``.
        message: one line on why it is unresolved or interrupted ('' otherwise).
        builds: GOOD, the builds between, BAD, in order (empty before they were listed).
        confirm: BAD against GOOD per cell (None when it was never measured).
        changes: one per range bisected.
        steps: every step, in order.
        skipped: (build, why) of every build skipped.
        sessions: sessions in the state; measured: of these, measured by this run.
        state_dir: the state folder.
        threshold, alpha: as given.
        step_times: the bisected cells' burst times by build: ``cell``, ``build``,
            ``position`` (in ``builds``) and ``seconds_per_step``, one row per burst.
    """

    good: str
    bad: str
    status: str
    message: str
    builds: tuple[str, ...]
    confirm: ABComparison | None
    changes: tuple[Change, ...]
    steps: tuple[Step, ...]
    skipped: tuple[tuple[str, str], ...]
    sessions: int
    measured: int
    state_dir: Path
    threshold: float
    alpha: float
    step_times: pd.DataFrame = field(repr=False)


def settings_of(config: BisectConfig) -> dict[str, Any]:
    """What decides a bisect's outcome, as its state saves it: the builds, the cell options
    (flag, else environment variable), threshold and alpha. ``--cell`` is not in it: a
    rerun may bisect another of the confirmed changes from the same state."""
    session = config.session
    return {"good": config.good, "bad": config.bad,
            "cell_options": {dest: option_text(BY_DEST[dest], session.values, session.environ)
                             for dest in sorted(session.values)},
            "threshold": session.threshold, "alpha": session.alpha}


def _slug(build: str) -> str:
    return _LABEL_CHARACTER.sub("_", build)


def default_state_dir(config: BisectConfig) -> Path:
    """``results/bisect/<good>..<bad>-<hash of the settings>``: the same command finds its
    state again; other settings get another folder."""
    digest = hashlib.sha256(json.dumps(settings_of(config), sort_keys=True).encode())
    return DEFAULT_STATE_ROOT / (f"{_slug(config.good)}..{_slug(config.bad)}-"
                                 f"{digest.hexdigest()[:_HASH_CHARS]}")


def side_label(build: str) -> str:
    """A build's side label: its version (the text after ``==``), in the characters a label
    may hold (:data:`linfit.ab.spec.LABEL_RULE`), at most its length."""
    version = build.partition("==")[2] or build
    label = _LABEL_CHARACTER.sub("-", version).lstrip("._+-")[:MAX_LABEL_CHARS]
    return label or "build"


def _labels(builds: Sequence[str]) -> list[str]:
    """Distinct labels of a session's sides: the builds' own, numbered where two agree."""
    labels = [side_label(build) for build in builds]
    if len(set(labels)) < len(labels):
        labels = [f"{index}-{label}"[:MAX_LABEL_CHARS] for index, label in enumerate(labels)]
    return labels


def _cell_values(values: Mapping[str, str | None], cell: Cell) -> dict[str, str | None]:
    """The cell options narrowed to one cell: its backend's variant, size, dtype, device
    (and steps per call for a loop cell)."""
    narrowed = {**values, "linfit_variants": f"{cell.backend}:{cell.variant}",
                "linfit_sizes": str(cell.n_examples), "linfit_dtypes": cell.dtype,
                "linfit_devices": cell.device}
    if cell.steps_per_call > 1:
        narrowed["linfit_steps_per_call"] = str(cell.steps_per_call)
    return narrowed


def _ratio(row: Mapping[str, Any]) -> Ratio:
    """new/base of an :data:`linfit.ab.analysis.AB_COLUMNS` row."""
    return Ratio(float(row["ratio"]), float(row["ratio_low"]), float(row["ratio_high"]),
                 float(row["mde"]), int(row["pairs"]))


class _Stop(Exception):
    """Ends a bisect as unresolved: a session failed on GOOD or BAD. The message is one
    line."""


class _Bisect:
    """One run of a bisect (see the module docstring)."""

    def __init__(self, config: BisectConfig, environments: Environments, state: BisectState,
                 progress: Callable[[str], None]) -> None:
        self.config = config
        self.environments = environments
        self.state = state
        self.progress = progress
        self.template = config.session
        self.sides: dict[str, Side] = {}
        self.steps: list[Step] = []
        self.changes: list[Change] = []
        self.confirm: ABComparison | None = None
        self.bisected: list[str] = []
        # Splits each bisected cell may still make (DEFAULT_MAX_CHANGES), by cell id.
        self.splits_left: dict[str, int] = {}
        self.measured = 0
        # Keys of the sessions this run measured: a worker failure in one of them stops the
        # bisect; one replayed from the state does not again (the rerun is the retry).
        self.fresh: set[str] = set()
        # Pairs files read in this run, by their path in the state folder.
        self._read: dict[str, pd.DataFrame] = {}
        self.status = FOUND
        self.message = ""

    @property
    def builds(self) -> list[str]:
        return self.state.builds or []

    # -- sessions -----------------------------------------------------------------------------
    def _side(self, build: str) -> Side:
        if build not in self.sides:
            self.progress(f"preparing {build}")
            self.sides[build] = self.environments.side(build)
        return self.sides[build]

    def _session(self, cell: Cell | None, builds: Sequence[str], attempt: int,
                 threshold: float, min_pairs: int) -> SessionRecord:
        """The saved session of these sides and attempt, else a new one, saved.

        Raises:
            Unavailable: for a step's MID that does not install or import, whose worker
                cannot start or lacks the backend, or fails before a pair was measured.
            LinfitError: the same for GOOD or BAD (an end cannot be skipped).
            _Stop: a session that measured nothing, for another reason.
            KeyboardInterrupt: after saving, when Ctrl-C or SIGTERM ended the session.
        """
        name = cell_id(cell) if cell is not None else ""
        key = SessionRecord.make_key(name, builds, attempt)
        saved = self.state.session(key)
        if saved is not None:
            return saved
        labels = _labels(builds)
        # A step's MID (side 0) may be skipped; GOOD and BAD may not. How the coordinator
        # begins its lines on a side: "side LABEL: ..." and "side LABEL left out: ...".
        mid = (f"side {labels[0]}:", f"side {labels[0]} left out") if cell is not None else ()
        sides = []
        for index, (build, label) in enumerate(zip(builds, labels, strict=True)):
            try:
                sides.append(replace(self._side(build), label=label))
            except Unavailable as error:
                if cell is not None and index == 0:
                    raise  # a step's MID: skipped
                # An end of the range cannot be skipped: bad input.
                raise LinfitError(str(error)) from None
        template = self.template
        # Each extension doubles the budget of the one before (DEFAULT_MAX_EXTENSIONS).
        session = replace(template, sides=tuple(sides), results_dir=self.state.pairs_dir,
                          values=(_cell_values(template.values, cell) if cell is not None
                                  else template.values),
                          threshold=threshold, min_pairs=min_pairs,
                          max_seconds=template.max_seconds * 2 ** attempt,
                          seed=template.seed + attempt,
                          # A step's session keeps its workers (its budget is one part's):
                          # each extension and the confirmation are fresh workers already.
                          restart_seconds=0)
        what = "confirming" if cell is None else f"step in {name}"
        extra = f", extension {attempt}" if attempt else ""
        self.progress(f"session: {' vs '.join(builds)} ({what}{extra})")
        try:
            result = run_session(session, self.progress)
        except LinfitError as error:
            # A MID whose worker cannot start or lacks the backend does not import.
            if mid and str(error).startswith(mid):
                raise Unavailable(str(error)) from None
            raise
        self.measured += 1
        if result.unavailable:
            # The cache lost a build between its making and the session (another process
            # evicted it, and it failed to install again): the session ran without it.
            failed = [line for line in result.unavailable if mid and line.startswith(mid)]
            if failed:
                raise Unavailable(failed[0])
            raise LinfitError("; ".join(result.unavailable))
        if result.path is None:
            if result.interrupted:
                raise KeyboardInterrupt
            failed = [line for line in result.failures if mid and line.startswith(mid)]
            if failed:
                raise Unavailable(failed[0])
            raise _Stop(f"the session of {', '.join(builds)} measured nothing: "
                        + ("; ".join(result.failures) or "no cell ran on every side"))
        record = SessionRecord(key=key, cell=name, sides=tuple(builds), attempt=attempt,
                               pairs=f"{PAIRS_FOLDER}/{result.path.name}",
                               interrupted=result.interrupted,
                               failures=tuple(result.failures))
        self.state.add_session(record)
        self.fresh.add(key)
        self._save_hlo(result)
        if result.interrupted:
            raise KeyboardInterrupt
        return record

    def _save_hlo(self, result: SessionResult) -> None:
        """Write the optimized HLO of the session's changed cells (MID and the end it
        differs from) and their diffs beside its pairs file; after the session is saved,
        and a file that cannot be written is a warning, never a lost session."""
        if not result.hlo or result.path is None:
            return
        try:
            _, problems = write_hlo_files(result.hlo, result.path)
        except OSError as error:
            problems = [f"the HLO files could not be written to {hlo_folder(result.path)}: "
                        f"{error.strerror or error}"]
        for problem in problems:
            self.progress(f"warning: {problem}")

    def _hlo_diff(self, cell: str, first: str, second: str) -> Path | None:
        """The HLO diff of two builds in ``cell`` from a step that measured both and found
        them different (a step's session holds that cell only): for the last good and
        first bad build, the last step's. None where no step wrote one."""
        for record in reversed(self.state.sessions):
            if record.cell != cell or not {first, second} <= set(record.sides):
                continue
            labels = dict(zip(record.sides, _labels(record.sides), strict=True))
            folder = hlo_folder(self.state.directory / record.pairs)
            for a, b in ((first, second), (second, first)):
                found = sorted(folder.glob(f"*.{labels[a]}-vs-{labels[b]}.diff.txt"))
                if found:
                    return found[0]
        return None

    def _stop_on_failures(self, record: SessionRecord) -> None:
        """Stop when a worker of GOOD or BAD failed in a session this run measured; a
        failed session replayed from the state counts with the pairs it has, and the step
        goes on (another session) as a retry.

        Raises:
            _Stop: naming the failures.
        """
        if record.failures and record.key in self.fresh:
            raise _Stop("; ".join(record.failures) + "; run the same command again to retry")

    def _pairs(self, record: SessionRecord) -> pd.DataFrame:
        """A session's pairs file, read once a run."""
        if record.pairs not in self._read:
            self._read[record.pairs] = read_pairs(self.state.directory / record.pairs)
        return self._read[record.pairs]

    def _frame(self, records: Sequence[SessionRecord], cell: Cell | None) -> pd.DataFrame:
        """The pairs of ``records``, pooled: each session's rounds follow the previous
        session's, so that every pair stays a pair. Narrowed to ``cell`` when given."""
        frames = []
        offset = 0
        for record in records:
            frame = self._pairs(record)
            if cell is not None:
                frame = frame[_is_cell(frame, cell)].copy()
            measured = frame["round"] >= 0
            frame.loc[measured, "round"] += offset
            if measured.any():
                offset = int(frame.loc[measured, "round"].max()) + 1
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _more_pairs(self, ratios: Sequence[Ratio], log_change: float) -> int:
        """The first pairs of an extension session: what the MDE formula asks for the
        change (pairs grow with the square of MDE / change), at least the template's."""
        wanted = self.template.min_pairs
        for ratio in ratios:
            if ratio.pairs and math.isfinite(ratio.log_mde) and log_change > 0:
                needed = math.ceil(ratio.pairs * (ratio.log_mde / log_change) ** 2)
                wanted = max(wanted, needed - ratio.pairs)
        return min(wanted, self.template.max_pairs)

    # -- confirm ------------------------------------------------------------------------------
    def _confirm(self) -> ABComparison:
        records: list[SessionRecord] = []
        for attempt in range(self.config.max_extensions + 1):
            records.append(self._session(None, [self.config.good, self.config.bad], attempt,
                                         self.template.threshold, self.template.min_pairs))
            self._stop_on_failures(records[-1])
            comparison = analyse(self._frame(records, None), self.template.threshold,
                                 self.template.alpha)
            if self.config.cell is not None:
                self._chosen(comparison)
            rows = self._selected(comparison)
            if not rows["verdict"].isin(_UNDECIDED_VERDICTS).any():
                break
            self.progress(f"{rows['verdict'].isin(_UNDECIDED_VERDICTS).sum()} cells "
                          "undecided: more pairs")
        return comparison

    def _chosen(self, comparison: ABComparison) -> None:
        ids = [cell_id(Cell.from_row(row)) for row in comparison.table.to_dict("records")]
        if self.config.cell not in ids:
            raise LinfitError(f"--cell {self.config.cell!r} is not a cell of the session; "
                              f"valid: {', '.join(ids) or 'none'}")

    def _selected(self, comparison: ABComparison) -> pd.DataFrame:
        table = comparison.table
        if self.config.cell is None:
            return table
        ids = [cell_id(Cell.from_row(row)) for row in table.to_dict("records")]
        return table[[name == self.config.cell for name in ids]]

    # -- steps --------------------------------------------------------------------------------
    def _skip(self, build: str, reason: str) -> None:
        self.progress(f"skipping {build}: {reason}")
        self.state.mark_unavailable(build, reason)

    def _step(self, cell: Cell, good: int, mid: int, bad: int, change: Ratio
              ) -> tuple[str, Ratio | None, Ratio | None]:
        """One step (with its extensions); returns its outcome and MID/GOOD, MID/BAD."""
        builds = [self.builds[mid], self.builds[good], self.builds[bad]]
        labels = _labels(builds)
        log_change = change.log_change
        band = step_threshold(log_change, self.template.threshold)
        records: list[SessionRecord] = []
        outcome, to_good, to_bad, note = UNDECIDED, None, None, ""
        min_pairs = self.template.min_pairs
        for attempt in range(self.config.max_extensions + 1):
            try:
                records.append(self._session(cell, builds, attempt, band, min_pairs))
            except Unavailable as error:
                outcome, note = SKIPPED, str(error)
                break
            frame = self._frame(records, cell)
            failures = records[-1].failures
            mid_failed = [f for f in failures if f.startswith(f"side {labels[0]}:")]
            checks = frame[(frame["status"] == "failed") & (frame["side_index"] == 0)]
            if mid_failed or not checks.empty:
                outcome = SKIPPED
                note = (mid_failed[0] if mid_failed
                        else f"failed its checks: {checks['message'].iloc[0]}")
                break
            self._stop_on_failures(records[-1])
            rows = analyse(frame, band, self.template.alpha).table
            if rows["verdict"].eq("failed").any():
                raise _Stop(f"{cell_id(cell)} failed its checks on an end of the range: "
                            + "; ".join(rows["message"]))
            by_label = {row["new_label"]: _ratio(row) for row in rows.to_dict("records")}
            if not {labels[1], labels[2]} <= set(by_label):
                raise _Stop(f"{cell_id(cell)} was not measured in the session of "
                            f"{', '.join(builds)}")
            to_good, to_bad = by_label[labels[1]].inverse(), by_label[labels[2]].inverse()
            outcome = step_outcome(to_good, to_bad, log_change, self.template.threshold)
            if outcome in (GOOD, BAD) or (outcome == AMBIGUOUS and attempt > 0):
                break
            min_pairs = self._more_pairs((to_good, to_bad), log_change)
        if outcome == SKIPPED:
            self._skip(self.builds[mid], note)
        step = Step(number=len(self.steps) + 1, cell=cell_id(cell), good=builds[1], mid=builds[0],
                    bad=builds[2], outcome=outcome, mid_vs_good=to_good, mid_vs_bad=to_bad,
                    sessions=len(records), band=band, note=note)
        self.steps.append(step)
        if to_good is not None and to_bad is not None:
            self.progress(f"step {step.number}: {builds[0]} is {outcome}: MID/GOOD "
                          f"{format_ratio(to_good.ratio, to_good.low, to_good.high)}, MID/BAD "
                          f"{format_ratio(to_bad.ratio, to_bad.low, to_bad.high)}")
        return outcome, to_good, to_bad

    def _bisect(self, cell: Cell, good: int, bad: int, change: Ratio) -> None:
        """Narrow one change in ``cell`` from the range (good, bad], by position."""
        name = cell_id(cell)
        while True:
            skipped = {index for index in range(good + 1, bad)
                       if self.builds[index] in self.state.unavailable}
            mid = midpoint(good, bad, skipped)
            if mid is None:
                self._found(cell, good, bad, change, FOUND)
                return
            self.progress(f"{name}: {bad - good - 1 - len(skipped)} builds left between "
                          f"{self.builds[good]} and {self.builds[bad]}, "
                          f"steps left: {steps_left(good, bad, skipped)}; testing "
                          f"{self.builds[mid]}")
            outcome, to_good, to_bad = self._step(cell, good, mid, bad, change)
            if outcome == GOOD:
                good = mid
            elif outcome == BAD:
                bad = mid
            elif outcome == AMBIGUOUS:
                assert to_good is not None and to_bad is not None
                if self.splits_left[name] == 0:
                    self._found(cell, good, bad, change, AMBIGUOUS,
                                f"{self.builds[mid]} matches neither end: two changes, one in "
                                f"each half; --max-changes reached")
                    return
                self.splits_left[name] -= 1
                self.progress(f"{self.builds[mid]} matches neither end: two changes, "
                              f"bisecting {self.builds[good]}..{self.builds[mid]} and "
                              f"{self.builds[mid]}..{self.builds[bad]}")
                self._bisect(cell, good, mid, to_good)
                self._bisect(cell, mid, bad, to_bad.inverse())
                return
            elif outcome == UNDECIDED:
                self._found(cell, good, bad, change, UNRESOLVED,
                            f"{self.builds[mid]} stayed undecided after "
                            f"{self.config.max_extensions + 1} sessions: raise --max-seconds")
                return

    def _commit(self, build: str) -> str:
        """The build's commit as its workers reported it (the pairs files'
        ``tensorflow_commit``); '' where none did."""
        for record in self.state.sessions:
            if build not in record.sides:
                continue
            frame = self._pairs(record)
            commits = frame.loc[frame["side_index"] == record.sides.index(build),
                                "tensorflow_commit"]
            known = [commit for commit in commits if commit]
            if known:
                return str(known[0])
        return ""

    def _found(self, cell: Cell, good: int, bad: int, change: Ratio, status: str,
               note: str = "") -> None:
        untested = tuple(self.builds[good + 1:bad])
        if status == FOUND and untested:
            note = "only skipped builds lie between: the first bad build is one of them or BAD"
        self.changes.append(Change(
            cell=cell_id(cell), ratio=change, status=status, last_good=self.builds[good],
            first_bad=self.builds[bad], last_good_commit=self._commit(self.builds[good]),
            first_bad_commit=self._commit(self.builds[bad]), untested=untested, note=note,
            hlo_diff=self._hlo_diff(cell_id(cell), self.builds[good], self.builds[bad])))

    # -- the whole --------------------------------------------------------------------------
    def run(self) -> None:
        if self.state.builds is None:
            self.progress(f"listing the builds between {self.config.good} and "
                          f"{self.config.bad}")
            between = self.environments.builds_between(self.config.good, self.config.bad)
            self.state.set_builds([self.config.good, *between, self.config.bad])
        self.progress(f"{len(self.builds) - 2} builds between {self.config.good} and "
                      f"{self.config.bad}")
        self.confirm = self._confirm()
        rows = self._selected(self.confirm).to_dict("records")
        changed = [(Cell.from_row(row), _ratio(row)) for row in rows
                   if row["verdict"] in _CHANGED_VERDICTS]
        if not changed:
            undecided = sum(row["verdict"] in _UNDECIDED_VERDICTS for row in rows)
            failed = sum(row["verdict"] == "failed" for row in rows)
            if undecided or failed:
                self.status = UNRESOLVED
                self.message = (f"no cell changed for certain, but {undecided} stayed "
                                f"undecided and {failed} failed")
            else:
                self.status = NO_CHANGE
            return
        by_cell = dict(changed)
        groups = group_changes(changed)
        self.progress(f"{len(changed)} cells changed, {len(groups)} distinct changes")
        for group in groups:
            cell = group[0]
            assert isinstance(cell, Cell)
            self.bisected.append(cell_id(cell))
            self.splits_left[cell_id(cell)] = self.config.max_changes - 1
            self._bisect(cell, 0, len(self.builds) - 1, by_cell[cell])
        if any(change.status != FOUND for change in self.changes):
            self.status = UNRESOLVED
            self.message = "a change was not narrowed to neighbouring builds"

    def step_times(self) -> pd.DataFrame:
        """Every burst of the bisected cells, by build (:attr:`BisectResult.step_times`)."""
        position = {build: index for index, build in enumerate(self.builds)}
        frames = []
        cells = set(self.bisected)
        for record in self.state.sessions:
            if record.cell and record.cell not in cells:
                continue
            frame = self._pairs(record)
            frame = frame[frame["status"] == "ok"]
            names = [cell_id(Cell.from_row(row)) for row in frame[list(KEY_COLUMNS)]
                     .to_dict("records")]
            frame = frame.assign(cell=names)
            frame = frame[frame["cell"].isin(cells)]
            builds = [record.sides[index] for index in frame["side_index"]]
            frames.append(pd.DataFrame({"cell": frame["cell"], "build": builds,
                                        "position": [position[b] for b in builds],
                                        "seconds_per_step": frame["seconds_per_step"]}))
        columns = ["cell", "build", "position", "seconds_per_step"]
        return (pd.concat(frames, ignore_index=True)[columns] if frames
                else pd.DataFrame(columns=columns))

    def result(self) -> BisectResult:
        return BisectResult(
            good=self.config.good, bad=self.config.bad, status=self.status,
            message=self.message, builds=tuple(self.builds), confirm=self.confirm,
            changes=tuple(self.changes), steps=tuple(self.steps),
            skipped=tuple(self.state.unavailable.items()), sessions=len(self.state.sessions),
            measured=self.measured, state_dir=self.state.directory,
            threshold=self.template.threshold, alpha=self.template.alpha,
            step_times=self.step_times())


def _is_cell(frame: pd.DataFrame, cell: Cell) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for name in KEY_COLUMNS:
        mask &= frame[name] == getattr(cell, name)
    return mask


def check_bisect(config: BisectConfig) -> None:
    """Refuse a bisect that cannot make sense, before anything is installed or measured.

    Raises:
        LinfitError: one line: GOOD and BAD the same, a negative --max-extensions, fewer
            than one change allowed, a session option out of range
            (:func:`linfit.ab.coordinator.check_config`), or a state folder that cannot
            take files.
    """
    if config.good == config.bad:
        raise LinfitError(f"--good and --bad are the same build ({config.good}); give two "
                          "builds that differ")
    if config.max_extensions < 0:
        raise LinfitError(f"--max-extensions {config.max_extensions} must be >= 0")
    if config.max_changes < 1:
        raise LinfitError(f"--max-changes {config.max_changes} must be >= 1")
    check_output_dir(config.state_dir, "bisect state folder (--state)")
    # The session options, checked once with stand-in sides.
    stand_in = (Side("good", sys.executable), Side("bad", sys.executable))
    check_config(replace(config.session, sides=stand_in,
                         results_dir=config.state_dir / PAIRS_FOLDER))


def run_bisect(config: BisectConfig, environments: Environments,
               progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
               ) -> BisectResult:
    """Bisect the builds between ``config.good`` and ``config.bad`` (module docstring).

    Args:
        config: the builds, the sessions' template and the state folder.
        environments: makes a side of a build and lists the builds between two.
        progress: takes one line of progress at a time (default: stderr).

    Returns:
        The result, also when it was interrupted (Ctrl-C, SIGTERM) or stopped unresolved:
        what was measured until then is in the state folder, and the same call resumes.

    Raises:
        LinfitError: for bad input (:func:`check_bisect`), a state folder with another
            bisect's settings or in use, a GOOD or BAD that does not install or import,
            or a --cell that is not a cell of the session.
    """
    check_bisect(config)
    with locked(config.state_dir):
        state = BisectState.open(config.state_dir, settings_of(config))
        bisect = _Bisect(config, environments, state, progress)
        # SIGTERM (CI cancellation, `timeout`) ends the bisect as Ctrl-C does: between
        # sessions here, within one in the coordinator (which keeps its pairs).
        with sigterm_as_interrupt():
            try:
                bisect.run()
            except KeyboardInterrupt:
                bisect.status = INTERRUPTED
                bisect.message = ("interrupted: run the same command again to resume; "
                                  "nothing saved is measured again")
            except _Stop as stop:
                bisect.status = UNRESOLVED
                bisect.message = str(stop)
        return bisect.result()
