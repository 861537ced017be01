"""The bisect's pure rules (linfit/bisect/decide.py): relations, step outcomes and the MDE
guard, grouping changed cells, the midpoint with skips, the steps left."""

from __future__ import annotations

import math

import pytest

from linfit.bisect.decide import (
    AMBIGUOUS,
    BAD,
    DIFFERS,
    GOOD,
    SAME,
    UNDECIDED,
    UNSURE,
    Ratio,
    group_changes,
    midpoint,
    relation,
    step_outcome,
    step_threshold,
    steps_left,
)

NAN = math.nan
CHANGE = math.log(1.3)  # the change being bisected in most cases: 30% slower


def _r(ratio: float, low: float, high: float, mde: float = 0.02, pairs: int = 20) -> Ratio:
    return Ratio(ratio, low, high, mde, pairs)


@pytest.mark.parametrize(("ratio", "expected"), [
    (_r(1.0, 0.98, 1.03), SAME),
    (_r(1.3, 1.25, 1.35), DIFFERS),
    (_r(0.77, 0.74, 0.80), DIFFERS),
    (_r(1.04, 1.01, 1.07), UNSURE),   # on the upper edge of a 5% band
    (_r(0.96, 0.93, 0.99), UNSURE),   # on the lower edge
    (_r(1.1, 0.9, 1.3), UNSURE),      # straddles both the edge and 1
    (_r(1.0, NAN, NAN), UNSURE),      # too few pairs for an interval
])
def test_relation_to_a_band(ratio, expected):
    assert relation(ratio, 0.05) == expected


def test_the_inverse_reads_the_pairs_the_other_way():
    inverse = _r(1.25, 1.2, 1.3, mde=0.03, pairs=12).inverse()
    assert (inverse.ratio, inverse.low, inverse.high) == pytest.approx((0.8, 1 / 1.3, 1 / 1.2))
    assert (inverse.mde, inverse.pairs) == (0.03, 12)
    assert inverse.log_change == pytest.approx(math.log(1.25))


@pytest.mark.parametrize(("to_good", "to_bad", "expected"), [
    (_r(1.0, 0.98, 1.02), _r(0.77, 0.75, 0.79), GOOD),
    (_r(1.3, 1.27, 1.33), _r(1.0, 0.98, 1.02), BAD),
    (_r(1.14, 1.11, 1.17), _r(0.88, 0.85, 0.9), AMBIGUOUS),   # half-way: a second change
    (_r(1.5, 1.45, 1.55), _r(1.15, 1.12, 1.18), AMBIGUOUS),   # beyond BAD: not monotone
    (_r(1.04, 1.01, 1.07), _r(0.8, 0.78, 0.82), UNDECIDED),   # on the band's edge
    (_r(1.0, NAN, NAN, mde=NAN, pairs=4), _r(0.77, NAN, NAN, mde=NAN, pairs=4), UNDECIDED),
])
def test_step_outcomes(to_good, to_bad, expected):
    assert step_outcome(to_good, to_bad, CHANGE, 0.05) == expected


def test_the_mde_guard_holds_a_step_whose_intervals_look_decided():
    to_good, to_bad = _r(1.0, 0.98, 1.02), _r(0.77, 0.75, 0.79)
    assert step_outcome(to_good, to_bad, CHANGE, 0.05) == GOOD
    # The same intervals, but pairs that could not detect a 30% change: more pairs first.
    too_blunt = Ratio(1.0, 0.98, 1.02, 0.35, 20)
    assert math.log1p(0.35) > CHANGE
    assert step_outcome(too_blunt, to_bad, CHANGE, 0.05) == UNDECIDED
    assert step_outcome(to_good, Ratio(0.77, 0.75, 0.79, 0.35, 20), CHANGE, 0.05) == UNDECIDED
    # At exactly the change, it may decide.
    exact = Ratio(1.0, 0.98, 1.02, math.expm1(CHANGE), 20)
    assert step_outcome(exact, to_bad, CHANGE, 0.05) == GOOD


def test_the_band_narrows_to_half_a_small_change():
    assert step_threshold(math.log(1.3), 0.05) == 0.05
    small = math.log(1.06)
    assert step_threshold(small, 0.05) == pytest.approx(math.expm1(small / 2))
    # A 6% change: MID equal to GOOD is on the 5% band's edge seen from BAD, and
    # clearly off BAD in a band of half the change (~3%).
    to_good = _r(1.0, 0.99, 1.01)
    to_bad = _r(1 / 1.06, 0.935, 0.953)
    assert relation(to_bad, 0.05) == UNSURE
    assert step_outcome(to_good, to_bad, small, 0.05) == GOOD
    # MID half-way would be "the same" as both ends in a 5% band; in the narrowed band it
    # is neither, never both.
    half_good, half_bad = _r(1.03, 1.025, 1.035), _r(1.03 / 1.06, 0.967, 0.977)
    assert relation(half_good, 0.05) == relation(half_bad, 0.05) == SAME
    assert step_outcome(half_good, half_bad, small, 0.05) == UNDECIDED


def test_overlapping_intervals_are_one_change_and_apart_are_two():
    changed = [
        ("a", _r(1.30, 1.25, 1.35)),
        ("b", _r(1.33, 1.31, 1.36)),   # overlaps a: the same change
        ("c", _r(1.80, 1.70, 1.90)),   # apart: another change
        ("d", _r(0.70, 0.65, 0.75)),   # faster: never grouped with a slower cell
        ("e", _r(1.37, 1.355, 1.38)),  # overlaps b, not a: chained into a's group
    ]
    groups = group_changes(changed)
    # Largest certain change (the interval's end nearest 1) first, and in a group the most
    # certain cell first: e (1.355) > d (1 / 0.75 = 1.333) > ...
    assert groups == [["c"], ["e", "b", "a"], ["d"]]


def test_a_faster_and_a_slower_cell_that_touch_1_stay_apart():
    groups = group_changes([("slow", _r(1.2, 1.06, 1.3)), ("fast", _r(0.9, 0.8, 0.94))])
    assert sorted(map(tuple, groups)) == [("fast",), ("slow",)]


def test_midpoint_picks_the_middle_then_its_nearest_testable_neighbour():
    assert midpoint(0, 16, set()) == 8
    assert midpoint(0, 15, set()) == 7          # a tie: the earlier one
    assert midpoint(0, 16, {8}) == 7
    assert midpoint(0, 16, {7, 8}) == 9
    assert midpoint(3, 5, set()) == 4
    assert midpoint(3, 5, {4}) is None          # only skipped builds between
    assert midpoint(3, 4, set()) is None        # neighbours: found


def test_steps_left_is_ceil_log2_of_the_remaining_candidates():
    assert steps_left(0, 16, set()) == 4        # 15 between + BAD = 16 candidates
    assert steps_left(0, 17, set()) == 5        # 17
    assert steps_left(0, 2, set()) == 1
    assert steps_left(0, 1, set()) == 0
    assert steps_left(0, 4, {1, 2}) == 1        # 1 testable + BAD
