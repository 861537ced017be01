"""How much more an A/B session needs: pairs and seconds for each undecided cell (issue 22).

On a noisy day a session's clock runs out before every cell is decided. Each undecided cell
says from its own pairs how many it would need: its minimum detectable effect shrinks as
1/sqrt(pairs) (:func:`linfit.stats.pairs_needed`), so at its own per-pair spread it reaches
the threshold after a number of pairs that can be computed; and its own bursts say how long
a pair of it takes on this machine. A resumed session (``linfit ab --resume``) measures the
undecided cells round by round, every one each round, so its time is the sum over cells of
their pairs until the last decidable cell has what it needs.

Computes only; :mod:`linfit.commands.ab` renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linfit.ab.analysis import (
    cell_pairs,
    estimate_cell,
    is_decided,
    look_alpha,
    session_pairs_bounds,
)
from linfit.ab.coordinator import DEFAULT_MAX_PAIRS, DEFAULT_RESTART_SECONDS
from linfit.results import KEY_COLUMNS, Cell
from linfit.stats import DEFAULT_POWER, paired_log_ratios, pairs_needed

__all__ = ["CellProjection", "SessionProjection", "burst_wall_seconds", "project"]

# A burst's wall time runs to the next burst's start when that comes within this many times
# its calls' own time, plus the slack below; a longer gap is a pause (the end of a session
# part, an interrupt), not the burst's.
GAP_FACTOR = 4
GAP_SLACK_SECONDS = 1.0
# The continuation command's budget is rounded up to this many seconds.
ROUND_UP_SECONDS = 10


@dataclass(frozen=True)
class CellProjection:
    """One undecided cell: where it stands and what it needs.

    Attributes:
        cell: its key.
        pairs: its complete pairs (the fewest of any side against the base).
        mde: its minimum detectable effect now (the largest of its sides'; inf with fewer
            than 3 pairs).
        pairs_needed: the pairs at which it would be decided (the most of its sides'),
            not rounded; inf where its estimate sits on a threshold boundary, NaN where it has
            too few pairs to tell (fewer than 3).
        seconds_per_pair: one pair of it (a burst on every side) on this machine, seconds.
        max_pairs: the session's cap on pairs per cell.
        on_boundary: whether its noise is already low enough (its minimum detectable
            effect is below the threshold), so that it is its estimate, near a threshold
            boundary, that keeps it undecided.
    """

    cell: Cell
    pairs: int
    mde: float
    pairs_needed: float
    seconds_per_pair: float
    max_pairs: int
    on_boundary: bool = False

    @property
    def known(self) -> bool:
        """Whether its pairs tell what it needs (3 pairs or more)."""
        return not math.isnan(self.pairs_needed)

    @property
    def within_cap(self) -> bool:
        """Whether it would be decided within the max-pairs cap."""
        return self.known and self.pairs_needed <= self.max_pairs

    @property
    def more_pairs(self) -> int:
        """The pairs a resumed session gives it: up to what it needs, at most up to the cap
        (up to the cap where its need is not known: it is measured while it is undecided)."""
        needed = min(self.pairs_needed, self.max_pairs) if self.known else self.max_pairs
        return max(0, math.ceil(needed) - self.pairs)

    @property
    def seconds(self) -> float:
        """The time of its :attr:`more_pairs`."""
        return self.more_pairs * self.seconds_per_pair


@dataclass(frozen=True)
class SessionProjection:
    """The undecided cells of a session, and the time that would decide those that can be.

    Attributes:
        cells: one per undecided cell that was measured on every side.
        decided: cells decided, of ``total`` measured without failure.
        total: those cells.
        startup_seconds: the last part's start-up (workers, plan, builds), NaN when the file
            does not record it.
    """

    cells: tuple[CellProjection, ...]
    decided: int
    total: int
    startup_seconds: float

    @property
    def decidable(self) -> tuple[CellProjection, ...]:
        """The cells that more pairs within the cap would decide."""
        return tuple(cell for cell in self.cells if cell.within_cap)

    @property
    def rounds(self) -> int:
        """Rounds a resumed session runs until its last decidable cell has its pairs."""
        return max((cell.more_pairs for cell in self.decidable), default=0)

    @property
    def measure_seconds(self) -> float:
        """Measuring time of those rounds: every undecided cell gets a pair each round until
        it has what it needs (or its cap), the cells that cannot be decided included."""
        rounds = self.rounds
        return float(sum(min(cell.more_pairs, rounds) * cell.seconds_per_pair
                         for cell in self.cells))

    @property
    def round_seconds(self) -> float:
        """One round of every undecided cell."""
        return float(sum(cell.seconds_per_pair for cell in self.cells if cell.more_pairs))

    @property
    def seconds(self) -> float:
        """Start-up and measuring, with the start-up of the fresh workers that the resumed
        session's restarts bring (one every :data:`DEFAULT_RESTART_SECONDS` of measuring);
        measuring alone where the start-up is not known."""
        startup = 0.0 if math.isnan(self.startup_seconds) else self.startup_seconds
        restarts = int(self.measure_seconds // DEFAULT_RESTART_SECONDS)
        return startup * (1 + restarts) + self.measure_seconds

    @property
    def max_seconds(self) -> int:
        """The budget to give ``--resume``: :attr:`seconds`, one round more (a session
        starts a round only where the last one's length still fits), rounded up."""
        total = self.seconds + self.round_seconds
        return int(math.ceil(total / ROUND_UP_SECONDS) * ROUND_UP_SECONDS)


def burst_wall_seconds(frame: pd.DataFrame) -> pd.Series:
    """Each ok burst's wall time, seconds, indexed like ``frame``: from its start to the next
    burst's (what it cost the session, the request and the round's bookkeeping included),
    or its calls' own time where no burst follows soon (:data:`GAP_FACTOR`)."""
    ok = frame[frame["status"] == "ok"].sort_values("sequence")
    own = ok["call_ns"].map(sum).to_numpy(dtype=float) * 1e-9
    starts = ok["start_unix_ns"].to_numpy(dtype=float) * 1e-9
    gaps = np.append(np.diff(starts), math.nan)
    follows = (gaps >= own) & (gaps <= GAP_FACTOR * own + GAP_SLACK_SECONDS)
    return pd.Series(np.where(follows, gaps, own), index=ok.index)


def _startup_seconds(frame: pd.DataFrame) -> float:
    """The last part's start-up: its first burst's start less its start; NaN unknown."""
    if "part" not in frame or int(frame["part"].max()) < 0:
        return math.nan
    part = frame[(frame["part"] == frame["part"].max()) & (frame["status"] == "ok")]
    if part.empty:
        return math.nan
    return float(part["start_unix_ns"].min() - part["part_start_unix_ns"].iloc[0]) * 1e-9


def _cell_projection(rows: pd.DataFrame, sides: int, threshold: float, level: float,
                     max_pairs: int, wall: pd.Series) -> CellProjection:
    pairs, mde, needed, boundary = [], [], [], False
    log_threshold = math.log1p(threshold)
    for side in range(1, sides):
        matched = cell_pairs(rows, side)
        pairs.append(len(matched))
        estimate = estimate_cell(matched, level)
        if estimate is None or len(matched) < 3:
            mde.append(math.inf)
            needed.append(math.nan)
            continue
        log_ratios = paired_log_ratios(matched["base_seconds"], matched["new_seconds"])
        mde.append(estimate.mde)
        # The pairs at which a change of the threshold's size would be found (80% power).
        noise = pairs_needed(log_ratios, log_threshold, level, DEFAULT_POWER)
        if noise > len(matched):
            needed.append(noise)
            continue
        # Noise low enough already: its estimate sits near a boundary. The pairs at which
        # an interval centred there would clear the nearest boundary.
        centre = math.log(estimate.ratio)
        distance = min(abs(centre - log_threshold), abs(centre + log_threshold))
        needed.append(max(len(matched) + 1.0, pairs_needed(log_ratios, distance, level, 0.5)))
        boundary = True
    ok_walls = wall.reindex(rows.index).dropna()
    per_side = rows.loc[ok_walls.index].assign(wall=ok_walls).groupby("side_index")["wall"]
    seconds_per_pair = float(per_side.mean().sum())
    # A side with too few pairs to tell (NaN) leaves the cell's need unknown.
    return CellProjection(Cell.from_row(rows.iloc[0]), min(pairs), max(mde),
                          max(needed) if not any(map(math.isnan, needed)) else math.nan,
                          seconds_per_pair, max_pairs, boundary)


def project(frame: pd.DataFrame, threshold: float, alpha: float) -> SessionProjection:
    """The undecided cells of a pairs frame and what would decide them.

    A cell is undecided as the session judges it between rounds: fewer than the session's
    min_pairs complete pairs, or an interval that straddles a threshold boundary
    (:func:`linfit.ab.analysis.is_decided` at :func:`linfit.ab.analysis.look_alpha`). Cells
    that failed on a side are left out.

    Args:
        frame: a pairs frame (:func:`linfit.results.pairs.read_pairs`).
        threshold: the smallest change that counts, a fraction.
        alpha: the session's level over all of a cell's looks.
    """
    bounds = session_pairs_bounds(frame)
    min_pairs, max_pairs = bounds if bounds else (1, DEFAULT_MAX_PAIRS)
    level = look_alpha(alpha, min_pairs, max_pairs) if bounds else alpha
    sides = int(frame["side_index"].max()) + 1
    wall = burst_wall_seconds(frame)
    cells, decided, total = [], 0, 0
    for _, rows in frame.groupby(list(KEY_COLUMNS), sort=False):
        ok = rows[rows["status"] == "ok"]
        if (rows["status"] == "failed").any() or ok.empty:
            continue
        total += 1
        complete = min(len(cell_pairs(ok, side)) for side in range(1, sides))
        if complete >= min_pairs and is_decided(ok, sides, threshold, level):
            decided += 1
            continue
        cells.append(_cell_projection(ok, sides, threshold, level, max_pairs, wall))
    return SessionProjection(tuple(cells), decided, total, _startup_seconds(frame))
