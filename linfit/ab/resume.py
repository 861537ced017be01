"""Continue an A/B session: ``linfit ab --resume PAIRS.csv`` (issue 22).

A session that ran out of time leaves cells undecided. Resuming it adds pairs to those cells
only, as if the session had gone on: the same sides (label, interpreter, settings), cell
options, seed, threshold, alpha and pairs bounds, all read from the pairs file (pairs schema
3 records them); each cell's rounds numbered on, its side order continuing the balanced
sequence (:func:`linfit.ab.coordinator.round_orders`); the new bursts numbered on and added
to the same file (:meth:`linfit.results.pairs.PairsWriter.resume`).

Only an unchanged environment may continue: every side's interpreter (the path its worker
reports and its version), the linfit commit, the host, its framework settings
(:data:`linfit.environment.ENV_FLAGS`), and each cell's framework version and device must be
what the file records. Anything else is refused in one line, before a pair is measured.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from linfit._errors import LinfitError
from linfit.ab.analysis import is_decided, look_alpha
from linfit.ab.coordinator import (
    SessionCell,
    SessionConfig,
    SideBuild,
    env_flags_text,
    parse_cell_options,
)
from linfit.ab.spec import Side
from linfit.harness import OPTIONS
from linfit.results import KEY_COLUMNS, Cell
from linfit.results.columns import csv_line
from linfit.results.pairs import (
    PAIRS_COLUMN_NAMES,
    PARTIAL_SUFFIX,
    PairsWriter,
    read_pairs_text,
)

__all__ = ["ResumeState", "ResumedCell", "SideFacts", "read_resume", "resumed_config"]


@dataclass(frozen=True)
class SideFacts:
    """What a side ran with, as its pairs file records it: the fingerprint a continuing
    side must match."""

    label: str
    python: str
    python_version: str
    git_commit: str
    env_flags: str


@dataclass(frozen=True)
class ResumedCell:
    """One cell of the file, as the session left it.

    Attributes:
        cell: its key.
        next_round: the round of its next pair: the most bursts any side has of it.
        complete: its complete pairs (a burst on every side in the same round).
        last_order: the side order of its last complete pair (empty without one).
        calls_per_sample: the calls per sample of its bursts (a cell's bursts all share one).
        rows: its ok bursts, as the session keeps them.
        builds: per side, (backend_version, device_name) it was measured with.
        decided: whether its intervals are decided (as the session judges between rounds).
    """

    cell: Cell
    next_round: int
    complete: int
    last_order: tuple[int, ...]
    calls_per_sample: int
    rows: tuple[Mapping[str, Any], ...]
    builds: Mapping[int, tuple[str, str]]
    decided: bool


@dataclass(frozen=True)
class ResumeState:
    """A pairs file read for ``--resume``: what the session was, and where it stopped.

    Attributes:
        path: the pairs file.
        text: its text, as read (what the writer continues).
        session_id, host: the session's, as recorded.
        part: the number of the part about to run (1 for the first resume).
        bursts: the bursts the file holds (new ones are numbered on).
        next_round: the round the resumed session starts at.
        sides: the sides, rebuilt (label, interpreter the session started, settings).
        facts: each side's fingerprint.
        values: the cell options by dest; cell_options their text as recorded.
        seed, threshold, alpha, min_pairs, max_pairs: the session's settings.
        cells: every cell measured on every side without a failure, in the file's order.
    """

    path: Path
    text: str
    session_id: str
    host: str
    part: int
    bursts: int
    next_round: int
    sides: tuple[Side, ...]
    facts: tuple[SideFacts, ...]
    values: Mapping[str, str]
    cell_options: str
    seed: int
    threshold: float
    alpha: float
    min_pairs: int
    max_pairs: int
    cells: tuple[ResumedCell, ...]

    @property
    def undecided(self) -> tuple[ResumedCell, ...]:
        """The cells a resumed session measures: not decided, below the max-pairs cap."""
        return tuple(cell for cell in self.cells
                     if not cell.decided and cell.next_round < self.max_pairs)

    def _refuse(self, what: str) -> LinfitError:
        return LinfitError(f"{self.path}: {what}; only an unchanged environment may continue "
                           "a session (start a new one for this)")

    def check_hellos(self, hellos: Sequence[Mapping[str, Any]]) -> None:
        """Refuse workers whose environment is not the one the file records.

        Args:
            hellos: each side's ``hello`` reply, in side order.

        Raises:
            LinfitError: one line naming the side, what changed, now and then.
        """
        for facts, hello in zip(self.facts, hellos, strict=True):
            now = {"host": hello["machine"]["host"], "interpreter": hello["python"],
                   "Python version": hello["python_version"],
                   "linfit commit": hello["git_commit"],
                   "framework settings": env_flags_text(hello.get("env_flags") or {})}
            then = {"host": self.host, "interpreter": facts.python,
                    "Python version": facts.python_version, "linfit commit": facts.git_commit,
                    "framework settings": facts.env_flags}
            for what, value in now.items():
                if value != then[what]:
                    raise self._refuse(f"side {facts.label}'s {what} is {value!r} here, "
                                       f"{then[what]!r} in the session")

    def select(self, planned: Sequence[SessionCell]) -> list[SessionCell]:
        """The undecided cells among those the options plan now, in the plan's order, each
        keeping its calls per sample.

        Raises:
            LinfitError: when an undecided cell of the file is not planned here now.
        """
        undecided = {cell.cell: cell for cell in self.undecided}
        chosen = [replace(cell, resumed_calls=undecided[cell.cell].calls_per_sample)
                  for cell in planned if cell.cell in undecided]
        missing = set(undecided) - {cell.cell for cell in chosen}
        if missing:
            first = sorted(missing, key=str)[0]
            raise self._refuse(f"the cell options no longer plan {len(missing)} of its "
                               f"undecided cells (e.g. {first})")
        return chosen

    def check_builds(self, cells: Sequence[SessionCell],
                     replies: Sequence[Mapping[str, SideBuild]]) -> None:
        """Refuse a cell built with another framework version or on another device than the
        file records (cells that failed their checks now are recorded as failed).

        Raises:
            LinfitError: one line naming the cell, the side and what changed.
        """
        resumed = {cell.cell: cell for cell in self.cells}
        for cell in cells:
            for side, reply in enumerate(replies):
                build = reply[cell.worker_key]
                then = resumed[cell.cell].builds.get(side)
                if not build.ok or then is None:
                    continue
                for what, value, before in (("framework version", build.backend_version,
                                             then[0]),
                                            ("device", build.device_name, then[1])):
                    if value != before:
                        raise self._refuse(f"side {self.facts[side].label}'s {what} for "
                                           f"{cell.worker_key} is {value!r} here, {before!r} "
                                           "in the session")

    def open_writer(self) -> tuple[PairsWriter, str]:
        """The writer that adds to the file, and the session id its rows carry.

        Raises:
            LinfitError: when ``<file>.partial`` exists (another resume of it is running,
                or one was killed).
        """
        partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        try:
            return PairsWriter.resume(self.path, self.text, self.bursts), self.session_id
        except FileExistsError:
            raise LinfitError(f"{partial} exists: a session is resuming {self.path} now, or "
                              "one was killed (its pairs are in that file: linfit ab --from "
                              f"{shlex.quote(str(partial))} shows them)") from None


def _side_env(text: str) -> tuple[tuple[str, str], ...]:
    """A side's settings from the file's ``env_settings`` (:attr:`Side.env_text`)."""
    pairs = [word.partition("=") for word in shlex.split(text)]
    return tuple((name, value) for name, _, value in pairs)


def _resumed_cell(rows: pd.DataFrame, sides: int, threshold: float, level: float,
                  min_pairs: int) -> ResumedCell:
    ok = rows[rows["status"] == "ok"]
    by_round = ok.groupby("round")["side_index"].nunique()
    complete_rounds = sorted(int(r) for r, count in by_round.items() if count == sides)
    last_order: tuple[int, ...] = ()
    if complete_rounds:
        last = ok[ok["round"] == complete_rounds[-1]].sort_values("order_position")
        last_order = tuple(int(side) for side in last["side_index"])
    records = tuple(ok.drop(columns=["seconds_per_step"]).to_dict("records"))
    builds = {int(side): (str(group["backend_version"].iloc[0]),
                          str(group["device_name"].iloc[0]))
              for side, group in ok.groupby("side_index")}
    complete = len(complete_rounds)
    decided = complete >= min_pairs and is_decided(ok, sides, threshold, level)
    return ResumedCell(Cell.from_row(ok.iloc[0]), int(ok["round"].max()) + 1 if len(ok) else 0,
                       complete, last_order, int(ok["calls_per_sample"].iloc[0]), records,
                       builds, decided)


def read_resume(path: str | os.PathLike[str]) -> ResumeState:
    """Read a pairs file to continue its session.

    Raises:
        ResultsFileError: a file the pairs reader refuses (:func:`read_pairs`).
        LinfitError: one line: a ``.partial`` file, a file that does not record what a
            session needs to continue (written before pairs schema 3, or by hand), or one
            whose columns are not in this linfit's order.
    """
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        raise LinfitError(f"{path} is the partial file of a session that was killed: give it "
                          f"its name without {PARTIAL_SUFFIX} (if that is free) and resume "
                          "that")
    frame, text = read_pairs_text(path)
    first = frame.iloc[0]
    if (int(first["schema_version"]) < 3 or int(first["max_pairs"]) < 1
            or int(first["seed"]) < 0 or pd.isna(first["alpha"]) or int(first["part"]) < 0):
        raise LinfitError(f"{path} does not record what its session needs to continue (its "
                          "seed, settings and cell options: pairs schema 3, written by linfit "
                          "ab); measure a new session")
    if not text.startswith(csv_line(PAIRS_COLUMN_NAMES)):
        raise LinfitError(f"{path}: its columns are not in the order linfit writes them (was "
                          "it saved by another program?); measure a new session")
    sides_frame = frame.sort_values("side_index").drop_duplicates("side_index")
    sides = tuple(Side(str(row["side_label"]), str(row["side_python"]),
                       _side_env(str(row["env_settings"])))
                  for row in sides_frame.to_dict("records"))
    facts = tuple(SideFacts(str(row["side_label"]), str(row["python"]),
                            str(row["python_version"]), str(row["git_commit"]),
                            str(row["env_flags"]))
                  for row in sides_frame.to_dict("records"))
    threshold, alpha = float(first["threshold"]), float(first["alpha"])
    min_pairs, max_pairs = int(first["min_pairs"]), int(first["max_pairs"])
    level = look_alpha(alpha, min_pairs, max_pairs)
    failed = {tuple(row) for row in frame.loc[frame["status"] == "failed",
                                               list(KEY_COLUMNS)].itertuples(index=False)}
    cells = tuple(_resumed_cell(rows, len(sides), threshold, level, min_pairs)
                  for key, rows in frame.groupby(list(KEY_COLUMNS), sort=False)
                  if key not in failed and (rows["status"] == "ok").any())
    cell_options = str(first["cell_options"])
    return ResumeState(
        path=path, text=text, session_id=str(first["session_id"]), host=str(first["host"]),
        part=int(frame["part"].max()) + 1, bursts=int((frame["status"] == "ok").sum()),
        next_round=max((cell.next_round for cell in cells), default=0), sides=sides,
        facts=facts, values=parse_cell_options(cell_options), cell_options=cell_options,
        seed=int(first["seed"]), threshold=threshold, alpha=alpha, min_pairs=min_pairs,
        max_pairs=max_pairs, cells=cells)


def resumed_config(state: ResumeState, max_seconds: float, **overrides: Any) -> SessionConfig:
    """The session that continues ``state``: its sides, cell options and settings, the pairs
    file's folder, this time budget. The cell options are the file's alone: the environment
    variables that would set them (``LINFIT_SIZES``, ...) are left out.

    Args:
        state: the file read by :func:`read_resume`.
        max_seconds: the continued session's time budget.
        overrides: other :class:`SessionConfig` fields (tests: a fake worker, time-outs).
    """
    option_envs = {option.env for option in OPTIONS}
    return SessionConfig(
        sides=state.sides, values=dict(state.values),
        environ={name: value for name, value in os.environ.items()
                 if name not in option_envs},
        results_dir=state.path.parent, threshold=state.threshold, alpha=state.alpha,
        min_pairs=state.min_pairs, max_pairs=state.max_pairs, max_seconds=max_seconds,
        seed=state.seed, resume=state, **overrides)
