"""The rules of a bisect, as small pure functions: no session, no file, no printing.

A step measures MID against the range's GOOD and BAD ends in one paired session
(:mod:`linfit.ab`) and turns the two ratios into an outcome:

- each ratio is ``same`` (its whole interval lies within the step's band around 1),
  ``differs`` (its whole interval lies beyond one edge of the band: it also excludes 1), or
  ``unsure`` (the interval straddles an edge, or there is none yet);
- MID is ``good`` when it is the same as GOOD and differs from BAD, ``bad`` the other way
  round, ``ambiguous`` when it differs from both (a second change in the range, or a
  gradual one), and ``undecided`` otherwise: more pairs are needed.

The band is the user's threshold, narrowed to half the change being bisected where that is
smaller (:func:`step_threshold`), so that "the same as GOOD" and "the same as BAD" can never
both hold. The minimum detectable effect guards every decision: a step whose MDE exceeds
the change is ``undecided``, however its intervals look (:func:`step_outcome`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass

__all__ = [
    "AMBIGUOUS",
    "BAD",
    "DIFFERS",
    "GOOD",
    "SAME",
    "UNDECIDED",
    "UNSURE",
    "Ratio",
    "group_changes",
    "midpoint",
    "relation",
    "step_outcome",
    "step_threshold",
    "steps_left",
]

SAME, DIFFERS, UNSURE = "same", "differs", "unsure"
GOOD, BAD, AMBIGUOUS, UNDECIDED = "good", "bad", "ambiguous", "undecided"


@dataclass(frozen=True)
class Ratio:
    """One side against another in one cell: new/base with its interval.

    Attributes:
        ratio: the paired estimate of new/base (> 1: new is slower).
        low, high: its (1 - alpha) interval; NaN when the pairs were too few for one.
        mde: the minimum detectable effect of those pairs, a fraction; NaN below 3 pairs.
        pairs: how many pairs.
    """

    ratio: float
    low: float
    high: float
    mde: float
    pairs: int

    def inverse(self) -> Ratio:
        """base/new: the same pairs read the other way round (the Hodges-Lehmann estimate
        and the signed-rank interval are symmetric on the log scale, so this is exact)."""
        return Ratio(1 / self.ratio, 1 / self.high, 1 / self.low, self.mde, self.pairs)

    @property
    def log_change(self) -> float:
        """The size of the change on the log scale: |log(ratio)| (NaN without pairs)."""
        return abs(math.log(self.ratio))

    @property
    def log_mde(self) -> float:
        """The minimum detectable effect on the log scale (NaN when unknown)."""
        return math.log1p(self.mde)


def relation(ratio: Ratio, threshold: float) -> str:
    """``same``, ``differs`` or ``unsure`` for a ratio against a band of ``threshold``
    around 1 (see the module docstring).

    Args:
        ratio: the comparison.
        threshold: the band's half-width, a fraction: [1 / (1 + t), 1 + t].
    """
    if math.isnan(ratio.low) or math.isnan(ratio.high):
        return UNSURE
    upper, lower = 1 + threshold, 1 / (1 + threshold)
    if lower < ratio.low and ratio.high < upper:
        return SAME
    if ratio.low > upper or ratio.high < lower:
        return DIFFERS
    return UNSURE


def step_threshold(log_change: float, threshold: float) -> float:
    """The band of a step bisecting a change of ``log_change`` (log scale): the user's
    ``threshold``, or half the change where that is smaller, so that MID cannot be within
    the band of both GOOD and BAD."""
    return min(threshold, math.expm1(log_change / 2))


def step_outcome(mid_vs_good: Ratio, mid_vs_bad: Ratio, log_change: float,
                 threshold: float) -> str:
    """What a step found: ``good``, ``bad``, ``ambiguous`` or ``undecided``.

    Args:
        mid_vs_good, mid_vs_bad: MID/GOOD and MID/BAD from the step's pairs.
        log_change: the size of the change being bisected, |log(BAD/GOOD)|
            (:attr:`Ratio.log_change` of the range's comparison).
        threshold: the user's threshold; the step's band is :func:`step_threshold`.

    Returns:
        ``undecided`` when either comparison's minimum detectable effect is unknown or
        exceeds the change (the MDE guard: more pairs first), else by the relations of
        MID to the ends (module docstring).
    """
    for ratio in (mid_vs_good, mid_vs_bad):
        if math.isnan(ratio.log_mde) or ratio.log_mde > log_change:
            return UNDECIDED
    band = step_threshold(log_change, threshold)
    to_good, to_bad = relation(mid_vs_good, band), relation(mid_vs_bad, band)
    if to_good == SAME and to_bad == DIFFERS:
        return GOOD
    if to_good == DIFFERS and to_bad == SAME:
        return BAD
    if to_good == DIFFERS and to_bad == DIFFERS:
        return AMBIGUOUS
    return UNDECIDED


def group_changes(changed: Sequence[tuple[Hashable, Ratio]]) -> list[list[Hashable]]:
    """Cells whose BAD/GOOD intervals overlap, in the same direction, as one change.

    Intervals are merged as overlapping intervals are: sorted by their low end, a cell joins
    the current group when its interval starts before the group's highest high end. A
    group's cells are listed most certain change first (the interval's end nearest 1
    farthest from 1): the first is the cell a bisect of that change measures.

    Args:
        changed: (cell, BAD/GOOD) of every cell that changed beyond the threshold, each
            with an interval.

    Returns:
        The groups, the largest change first.
    """
    groups: list[list[tuple[Hashable, Ratio]]] = []
    for slower in (True, False):
        reach = -math.inf  # the highest high end of the group being built
        for cell, ratio in sorted(((cell, ratio) for cell, ratio in changed
                                   if (ratio.ratio > 1) == slower), key=lambda item: item[1].low):
            if ratio.low > reach:
                groups.append([])
            groups[-1].append((cell, ratio))
            reach = max(reach, ratio.high)
    ordered = [sorted(group, key=lambda item: -_certain_change(item[1])) for group in groups]
    ordered.sort(key=lambda group: -_certain_change(group[0][1]))
    return [[cell for cell, _ in group] for group in ordered]


def _certain_change(ratio: Ratio) -> float:
    """The change a ratio shows for certain: |log| of its interval's end nearest 1."""
    return min(abs(math.log(ratio.low)), abs(math.log(ratio.high)))


def midpoint(good: int, bad: int, skipped: Collection[int]) -> int | None:
    """The build to test between positions ``good`` and ``bad``: the middle one, or where
    it was skipped, its nearest testable neighbour (the earlier one at a tie), as
    ``git bisect skip`` does. None when every build between was skipped (or none is left).
    """
    middle = (good + bad) / 2
    candidates = [index for index in range(good + 1, bad) if index not in skipped]
    if not candidates:
        return None
    return min(candidates, key=lambda index: (abs(index - middle), index))


def steps_left(good: int, bad: int, skipped: Collection[int]) -> int:
    """Steps still needed to find the first bad build between positions ``good`` and
    ``bad``: ceil(log2(remaining)), where remaining counts the builds that can still be the
    first bad one and can be tested (the testable builds between, plus BAD)."""
    remaining = sum(1 for index in range(good + 1, bad) if index not in skipped) + 1
    return math.ceil(math.log2(remaining))
