"""Every statistic in linfit/stats.py against a reference implementation (issue 19, item 2).

scipy where it has the statistic (the signed-rank p-value, Welch's t test, the median
absolute deviation, the normal quantiles), brute force where it has none (the Walsh averages
and the Hodges-Lehmann estimate, the signed-rank null distribution and interval index by
enumerating every sign pattern, the circular block bootstrap by an explicit loop), and
properties where neither fits (the bootstrap's seed determinism and coverage).

Each check runs over seeded random cases and returns how many it compared and the largest
absolute and relative disagreement, so that ``python tests/test_stats_reference.py`` can
print them; it also prints the old and new agreement of the paired interval and p-value
over simulated cells (the issue's 3,300).
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from linfit.stats import (
    DEFAULT_ALPHA,
    EXACT_SIGNED_RANK_MAX_PAIRS,
    block_bootstrap_medians,
    block_length,
    minimum_detectable_effect,
    paired_ratio,
    ratio_of_medians,
    ratio_of_run_medians,
    signed_rank_interval_index,
    signed_rank_null_cdf,
    walsh_averages,
)

# Levels the checks run at: the default, the usual 5%, and the extremes compare accepts.
ALPHAS = (0.001, 0.01, 0.05, 0.2, 0.5)

# Largest n whose 2**n sign patterns are enumerated (16 384 patterns).
ENUMERATED_MAX_PAIRS = 14

# Relative tolerance against scipy: both sides sum the same probabilities in another
# order, or evaluate the same closed form, so they agree to rounding.
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Agreement:
    """How one statistic compared with its reference: cases, largest disagreement."""

    cases: int
    max_absolute: float
    max_relative: float

    @staticmethod
    def of(pairs: list[tuple[float, float]]) -> Agreement:
        """From (linfit, reference) pairs; the relative error is against the reference."""
        ours = np.array([a for a, _ in pairs], dtype=float)
        reference = np.array([b for _, b in pairs], dtype=float)
        absolute = np.abs(ours - reference)
        relative = np.divide(absolute, np.abs(reference), out=np.zeros_like(absolute),
                             where=reference != 0)
        return Agreement(len(pairs), float(absolute.max(initial=0)),
                         float(relative.max(initial=0)))


def _log_ratios(rng: np.random.Generator, pairs: int, *, ties: bool = False) -> np.ndarray:
    """Paired log ratios of a cell: 3% noise around a shift that puts many cells near the
    edge of significance; with ``ties``, quantised to a coarse timer grid, which makes zeros
    and ties of equal and of opposite sign."""
    noise = 0.03
    shift = rng.uniform(-3, 3) * noise / math.sqrt(pairs)
    values = rng.normal(shift, noise, pairs)
    if ties:
        values = np.round(values / (noise / 3)) * (noise / 3)
    return values


def _enumerated_counts(pairs: int) -> np.ndarray:
    """How many of the 2**n sign patterns give each T+ = 0 .. n(n+1)/2: brute force."""
    ranks = np.arange(1, pairs + 1)
    patterns = np.array(list(itertools.product((0, 1), repeat=pairs)), dtype=np.int64)
    return np.bincount(patterns @ ranks, minlength=pairs * (pairs + 1) // 2 + 1)


# ---------------------------------------------------------------------------------------------
# The signed-rank null distribution and the interval index.
# ---------------------------------------------------------------------------------------------

def check_null_distribution_by_enumeration() -> Agreement:
    pairs_compared = []
    for pairs in range(1, ENUMERATED_MAX_PAIRS + 1):
        counts = _enumerated_counts(pairs)
        brute = np.cumsum(counts) / 2 ** pairs
        ours = signed_rank_null_cdf(pairs, np.arange(counts.size))
        pairs_compared += list(zip(ours, brute, strict=True))
    return Agreement.of(pairs_compared)


def test_the_null_distribution_is_the_enumerated_one():
    agreement = check_null_distribution_by_enumeration()
    assert agreement.cases == sum(n * (n + 1) // 2 + 1 for n in range(1, 15))
    # Up to 14 pairs every probability is a multiple of 2**-14: exact in binary.
    assert agreement.max_absolute == 0


def test_the_interval_index_is_the_enumerated_one():
    for pairs in range(1, ENUMERATED_MAX_PAIRS + 1):
        cumulative = np.cumsum(_enumerated_counts(pairs))
        for alpha in ALPHAS:
            # In exact rational arithmetic: how many t have P(T+ <= t) < alpha / 2.
            half = Fraction(alpha) / 2
            expected = sum(1 for count in cumulative if Fraction(int(count), 2 ** pairs) < half)
            assert signed_rank_interval_index(pairs, alpha) == expected, (pairs, alpha)


@pytest.mark.parametrize("pairs", [EXACT_SIGNED_RANK_MAX_PAIRS + 1, 523])
def test_above_the_exact_range_the_index_counts_the_corrected_normal_cdf(pairs):
    # Brute force over every t against scipy's normal cdf with the continuity correction.
    largest = pairs * (pairs + 1) // 2
    mean, sd = largest / 2, math.sqrt(pairs * (pairs + 1) * (2 * pairs + 1) / 24)
    cdf = scipy.stats.norm.cdf((np.arange(largest + 1) + 0.5 - mean) / sd)
    for alpha in ALPHAS:
        assert signed_rank_interval_index(pairs, alpha) == np.count_nonzero(cdf < alpha / 2)


# ---------------------------------------------------------------------------------------------
# Walsh averages and the Hodges-Lehmann estimate: scipy has neither; brute force.
# ---------------------------------------------------------------------------------------------

HODGES_LEHMANN_CASES = 300


def check_hodges_lehmann_by_brute_force() -> tuple[Agreement, Agreement]:
    rng = np.random.default_rng(19_201)
    walsh_pairs, centre_pairs = [], []
    for case in range(HODGES_LEHMANN_CASES):
        values = _log_ratios(rng, int(rng.integers(1, 41)), ties=case % 3 == 0)
        brute = sorted((a + b) / 2 for a, b in
                       itertools.combinations_with_replacement(values.tolist(), 2))
        ours = walsh_averages(values)
        assert ours.size == len(brute)
        walsh_pairs += list(zip(ours, brute, strict=True))
        centre_pairs.append((math.log(paired_ratio(values).ratio), statistics.median(brute)))
    return Agreement.of(walsh_pairs), Agreement.of(centre_pairs)


def test_walsh_averages_and_hodges_lehmann_match_brute_force():
    walsh, centre = check_hodges_lehmann_by_brute_force()
    assert centre.cases == HODGES_LEHMANN_CASES
    assert walsh.max_absolute == 0  # the same sums, sorted
    # The estimate goes through exp and back: one rounding of a number of size ~0.05.
    assert centre.max_absolute < 1e-15


# ---------------------------------------------------------------------------------------------
# The paired p-value against scipy.stats.wilcoxon, and its agreement with the interval.
# ---------------------------------------------------------------------------------------------

WILCOXON_CASES = 150


def check_paired_p_value_against_scipy_exact() -> Agreement:
    """Without ties or zeros the p-value is scipy's exact one (any n up to the exact range)."""
    rng = np.random.default_rng(19_202)
    compared = []
    for case in range(WILCOXON_CASES):
        # Mostly the usual 8-120 pairs, and every 50th case near the top of the exact range.
        pairs = int(rng.integers(300, EXACT_SIGNED_RANK_MAX_PAIRS + 1) if case % 50 == 0
                    else rng.integers(8, 121))
        values = _log_ratios(rng, pairs)
        ours = paired_ratio(values, 0.5).p_value
        compared.append((ours, scipy.stats.wilcoxon(values, method="exact").pvalue))
    return Agreement.of(compared)


def test_the_paired_p_value_is_scipys_exact_one_without_ties():
    agreement = check_paired_p_value_against_scipy_exact()
    assert agreement.cases == WILCOXON_CASES
    assert agreement.max_relative < RELATIVE_TOLERANCE


def test_above_the_exact_range_the_p_value_is_scipys_corrected_normal_one():
    rng = np.random.default_rng(19_203)
    for pairs in (EXACT_SIGNED_RANK_MAX_PAIRS + 1, 450, 600):
        values = _log_ratios(rng, pairs)
        reference = scipy.stats.wilcoxon(values, method="asymptotic", correction=True).pvalue
        assert paired_ratio(values).p_value == pytest.approx(reference, rel=RELATIVE_TOLERANCE)


DUALITY_CASES = 600


def check_interval_and_p_value_agree(cases: int = DUALITY_CASES) -> tuple[int, int, int]:
    """(cases, cases whose p-value was within a factor 2 of alpha, disagreements): the
    interval excludes 1 exactly when p < alpha, with and without ties, at several alphas,
    and a few cells above the exact range."""
    rng = np.random.default_rng(19_204)
    near = disagreements = 0
    for case in range(cases):
        pairs = int(rng.integers(EXACT_SIGNED_RANK_MAX_PAIRS + 1, 460) if case % 200 == 0
                    else rng.integers(1, 60))
        alpha = ALPHAS[case % len(ALPHAS)]
        estimate = paired_ratio(_log_ratios(rng, pairs, ties=case % 2 == 1), alpha)
        if math.isnan(estimate.p_value):
            assert math.isnan(estimate.low) and math.isnan(estimate.high)
            assert signed_rank_interval_index(pairs, alpha) == 0
            continue
        near += alpha / 2 < estimate.p_value < 2 * alpha
        disagreements += estimate.significant != (estimate.p_value < alpha)
    return cases, near, disagreements


def test_the_interval_excludes_one_exactly_when_p_is_below_alpha():
    cases, near, disagreements = check_interval_and_p_value_agree()
    assert disagreements == 0
    # The check is only as good as the cells near the edge: there were many.
    assert near > cases // 10


# Log ratios Hypothesis draws from: exact zeros, values too small for exp() to leave 1, a
# coarse grid that ties, and anything in between.
_LOG_RATIO = st.one_of(st.sampled_from([0.0, 1e-17, -1e-17, 0.01, -0.01, 0.02]),
                       st.floats(-0.2, 0.2, allow_nan=False))


@settings(max_examples=120, deadline=None, derandomize=True)
@given(values=st.lists(_LOG_RATIO, min_size=1, max_size=30), alpha=st.sampled_from(ALPHAS))
def test_the_duality_holds_for_any_log_ratios(values, alpha):
    estimate = paired_ratio(np.array(values), alpha)
    if math.isnan(estimate.p_value):
        assert signed_rank_interval_index(len(values), alpha) == 0
    else:
        assert estimate.significant == (estimate.p_value < alpha)
        assert estimate.low <= estimate.ratio <= estimate.high


TIES_CASES = 100


def test_with_ties_and_zeros_the_p_value_is_the_least_favourable_tie_breaking():
    # A Walsh average of 0 counts on both sides. Shifting every value by a hair breaks all
    # such ties one way; scipy's exact p-value of the shifted data, the larger of the two
    # ways, is ours whenever ours is below 1, and no random tie-breaking exceeds it.
    rng = np.random.default_rng(19_205)
    with_zero_walsh = 0
    for _ in range(TIES_CASES):
        values = _log_ratios(rng, int(rng.integers(8, 41)), ties=True)
        walsh = walsh_averages(values)
        if not np.any(walsh == 0):
            continue
        with_zero_walsh += 1
        ours = paired_ratio(values, 0.5).p_value
        hair = np.min(np.abs(walsh[walsh != 0]), initial=1.0) / 8
        shifted = [scipy.stats.wilcoxon(values + sign * hair, method="exact").pvalue
                   for sign in (-1, 1)]
        if ours < 1:
            assert ours == pytest.approx(max(shifted), rel=RELATIVE_TOLERANCE)
        for _ in range(3):
            jitter = rng.uniform(-hair, hair, values.size)
            assert ours >= scipy.stats.wilcoxon(values + jitter, method="exact").pvalue * (
                1 - RELATIVE_TOLERANCE)
    assert with_zero_walsh > TIES_CASES // 2


INVERSION_CASES = 150


def test_the_interval_is_the_set_of_shifts_scipys_exact_test_keeps():
    # The ends of [W_(k), W_(M+1-k)]: just inside, scipy's exact test of x - shift keeps the
    # shift at alpha (p >= alpha); just outside, it rejects it (p < alpha). Midpoints between
    # neighbouring Walsh averages, so that x - shift has no zero and no tie.
    rng = np.random.default_rng(19_206)
    checked = 0
    for case in range(INVERSION_CASES):
        alpha = (0.01, 0.05, 0.2)[case % 3]
        values = _log_ratios(rng, int(rng.integers(8, 31)))
        walsh = walsh_averages(values)
        below = signed_rank_interval_index(values.size, alpha)
        if below < 1 or np.any(np.diff(walsh) == 0):
            continue
        checked += 1
        padded = np.concatenate([[walsh[0] - 1], walsh, [walsh[-1] + 1]])
        # padded[i] is W_(i); W_(k) is the lower end, W_(M+1-k) the upper.
        upper = walsh.size + 1 - below
        inside = ((padded[below] + padded[below + 1]) / 2, (padded[upper - 1] + padded[upper]) / 2)
        outside = ((padded[below - 1] + padded[below]) / 2,
                   (padded[upper] + padded[upper + 1]) / 2)
        for shift in inside:
            assert scipy.stats.wilcoxon(values - shift, method="exact").pvalue >= alpha
        for shift in outside:
            assert scipy.stats.wilcoxon(values - shift, method="exact").pvalue < alpha
    assert checked > INVERSION_CASES * 0.9


# ---------------------------------------------------------------------------------------------
# The minimum detectable effect: scipy's MAD and normal quantiles, the formula by hand.
# ---------------------------------------------------------------------------------------------

MDE_CASES = 200


def check_minimum_detectable_effect() -> Agreement:
    rng = np.random.default_rng(19_207)
    compared = []
    for case in range(MDE_CASES):
        values = _log_ratios(rng, int(rng.integers(3, 200)), ties=case % 4 == 0)
        alpha, power = ALPHAS[case % len(ALPHAS)], (0.5, 0.8, 0.9)[case % 3]
        deviation = statistics.median(abs(v - statistics.median(values)) for v in values)
        spread = deviation / scipy.stats.norm.ppf(0.75) if deviation else statistics.stdev(values)
        z = scipy.stats.norm.ppf(1 - alpha / 2) + scipy.stats.norm.ppf(power)
        reference = math.expm1(z * spread / math.sqrt(values.size))
        compared.append((minimum_detectable_effect(values, alpha, power), reference))
    return Agreement.of(compared)


def test_minimum_detectable_effect_matches_the_formula():
    agreement = check_minimum_detectable_effect()
    assert agreement.cases == MDE_CASES
    assert agreement.max_relative < RELATIVE_TOLERANCE


# ---------------------------------------------------------------------------------------------
# Welch's interval over runs against the textbook formula (Welch-Satterthwaite, scipy's t).
# ---------------------------------------------------------------------------------------------

WELCH_CASES = 300


def _welch_by_hand(log_base: np.ndarray, log_new: np.ndarray,
                   alpha: float) -> tuple[float, float, float]:
    """(low, high, p) of the difference of means of logs, from the formulas."""
    base_term = statistics.variance(log_base) / log_base.size
    new_term = statistics.variance(log_new) / log_new.size
    error = math.sqrt(base_term + new_term)
    freedom = (base_term + new_term) ** 2 / (base_term ** 2 / (log_base.size - 1)
                                             + new_term ** 2 / (log_new.size - 1))
    difference = statistics.fmean(log_new) - statistics.fmean(log_base)
    half = scipy.stats.t.ppf(1 - alpha / 2, freedom) * error
    return (difference - half, difference + half,
            2 * scipy.stats.t.sf(abs(difference) / error, freedom))


def check_welch_against_the_formula() -> tuple[Agreement, int]:
    """(agreement of log ends and p-values, cases where the interval and p < alpha differ)."""
    rng = np.random.default_rng(19_208)
    compared, disagreements = [], 0
    for case in range(WELCH_CASES):
        sizes = rng.integers(2, 11, size=2)
        alpha = ALPHAS[case % len(ALPHAS)]
        spreads = rng.uniform(0.005, 0.1, size=2)
        base = np.exp(rng.normal(0, spreads[0], sizes[0]))
        new = np.exp(rng.normal(rng.uniform(-0.1, 0.1), spreads[1], sizes[1]))
        estimate = ratio_of_run_medians(base, new, alpha)
        low, high, p_value = _welch_by_hand(np.log(base), np.log(new), alpha)
        compared += [(math.log(estimate.low), low), (math.log(estimate.high), high),
                     (estimate.p_value, p_value)]
        if abs(estimate.p_value - alpha) > RELATIVE_TOLERANCE * alpha:
            disagreements += estimate.significant != (estimate.p_value < alpha)
    return Agreement.of(compared), disagreements


def test_welch_interval_over_runs_matches_the_formula():
    agreement, disagreements = check_welch_against_the_formula()
    assert agreement.cases == 3 * WELCH_CASES
    # Ends of size ~0.1 on the log scale; p-values near 0 make the relative error large
    # where the absolute one is nothing, so both are bounded.
    assert agreement.max_absolute < 1e-9
    assert disagreements == 0


def test_welch_without_spread_is_the_ratio_itself():
    estimate = ratio_of_run_medians(np.array([2.0, 2.0]), np.array([3.0, 3.0, 3.0]))
    assert estimate.low == estimate.high == pytest.approx(1.5)
    assert estimate.p_value == 0


# ---------------------------------------------------------------------------------------------
# The block bootstrap: no reference implementation exists; an explicit loop and properties.
# ---------------------------------------------------------------------------------------------

def test_block_length_is_the_smallest_cube_not_below_n():
    for n in range(1, 5001):
        assert block_length(n) == next(length for length in itertools.count(1)
                                       if length ** 3 >= n), n


def _bootstrap_medians_by_loop(samples: np.ndarray, resamples: int,
                               rng: np.random.Generator) -> list[float]:
    """The circular block bootstrap written out: the same random block starts, then block by
    block, wrapping with a modulo, cut to n, median by the statistics module."""
    n = samples.size
    length = block_length(n)
    starts = rng.integers(0, n, size=(resamples, -(-n // length)))
    medians = []
    for row in starts:
        resample = [samples[(start + offset) % n] for start in row for offset in range(length)]
        medians.append(statistics.median(resample[:n]))
    return medians


BOOTSTRAP_CASES = 20


def check_bootstrap_by_loop() -> Agreement:
    rng = np.random.default_rng(19_209)
    compared = []
    for case in range(BOOTSTRAP_CASES):
        rounds = int(rng.integers(5, 60, size=2)[0]), int(rng.integers(5, 60))
        base = np.exp(rng.normal(0, 0.1, rounds[0]))
        new = np.exp(rng.normal(0.05, 0.1, rounds[1]))
        # At least one resample in each tail: alpha >= 2 / resamples.
        alpha, resamples, seed = ALPHAS[1 + case % 4], 400, int(rng.integers(1 << 31))
        estimate = ratio_of_medians(base, new, alpha, resamples, seed)
        draw = np.random.default_rng(seed)
        base_medians = _bootstrap_medians_by_loop(base, resamples, draw)
        ratios = np.array(_bootstrap_medians_by_loop(new, resamples, draw)) / base_medians
        # Percentile ends: the inverted-cdf alpha/2 quantile and its mirror image.
        low = np.quantile(ratios, alpha / 2, method="inverted_cdf")
        high = -np.quantile(-ratios, alpha / 2, method="inverted_cdf")
        tail = min(np.count_nonzero(ratios <= 1), np.count_nonzero(ratios >= 1))
        compared += [(estimate.ratio, statistics.median(new) / statistics.median(base)),
                     (estimate.low, low), (estimate.high, high),
                     (estimate.p_value, min(1.0, 2 * tail / resamples))]
        assert estimate.significant == (estimate.p_value < alpha)
    return Agreement.of(compared)


def test_block_bootstrap_matches_an_explicit_loop():
    agreement = check_bootstrap_by_loop()
    assert agreement.cases == 4 * BOOTSTRAP_CASES
    assert agreement.max_relative < 1e-12


def test_block_bootstrap_medians_match_the_loop_with_the_same_generator():
    samples = np.exp(np.random.default_rng(7).normal(0, 0.1, 37))
    ours = block_bootstrap_medians(samples, 300, np.random.default_rng(11))
    assert ours.tolist() == _bootstrap_medians_by_loop(samples, 300, np.random.default_rng(11))


def test_block_bootstrap_is_deterministic_in_its_seed():
    rng = np.random.default_rng(19_210)
    base, new = np.exp(rng.normal(0, 0.1, 40)), np.exp(rng.normal(0.03, 0.1, 40))
    first = ratio_of_medians(base, new, seed=5)
    assert ratio_of_medians(base.copy(), new.copy(), seed=5) == first
    other = ratio_of_medians(base, new, seed=6)
    assert other.ratio == first.ratio and (other.low, other.high) != (first.low, first.high)


COVERAGE_CELLS = 150
COVERAGE_ALPHA = 0.1


def test_block_bootstrap_interval_covers_the_true_ratio_at_about_the_nominal_rate():
    # Independent log-normal rounds whose true median ratio is known. The percentile
    # interval of a median is nearly exact at 60 rounds; 150 cells give a binomial sd of
    # 2.4 points around 90%, and the bounds sit about 4 sd away.
    rng = np.random.default_rng(19_211)
    true_ratio = 1.05
    covered = 0
    for _ in range(COVERAGE_CELLS):
        base = np.exp(rng.normal(0, 0.1, 60))
        new = true_ratio * np.exp(rng.normal(0, 0.1, 60))
        estimate = ratio_of_medians(base, new, COVERAGE_ALPHA, resamples=500,
                                    seed=int(rng.integers(1 << 31)))
        covered += estimate.low <= true_ratio <= estimate.high
    assert 0.80 <= covered / COVERAGE_CELLS <= 0.98


def test_paired_interval_covers_the_true_ratio_at_least_at_the_nominal_rate():
    # Symmetric noise, the interval's one assumption: exact coverage >= 1 - alpha.
    rng = np.random.default_rng(19_212)
    alpha, cells, covered = 0.1, 400, 0
    for _ in range(cells):
        centre = 0.04
        estimate = paired_ratio(rng.normal(centre, 0.03, int(rng.integers(8, 40))), alpha)
        covered += estimate.low <= math.exp(centre) <= estimate.high
    # Binomial sd at 90% over 400 cells: 1.5 points; the bound sits 3 sd below.
    assert covered / cells >= 1 - alpha - 0.045


# ---------------------------------------------------------------------------------------------
# Old against new: how often the interval and the p-value disagreed, over simulated cells.
# ---------------------------------------------------------------------------------------------

def _old_p_value(values: np.ndarray) -> float:
    """The p-value before issue 19: scipy's default wilcoxon (normal, uncorrected, above
    50 pairs or with ties; zeros dropped)."""
    if np.all(values == 0):
        return 1.0
    return float(scipy.stats.wilcoxon(values, zero_method="wilcox").pvalue)


def simulate_old_and_new(cells: int, *, ties: bool, seed: int = 19_213) -> tuple[int, int, int]:
    """(cells with an interval, old disagreements, new disagreements) at the default alpha,
    8 to 200 pairs a cell (the ab coordinator's default maximum)."""
    rng = np.random.default_rng(seed)
    counted = old = new = 0
    for _ in range(cells):
        values = _log_ratios(rng, int(rng.integers(8, 201)), ties=ties)
        estimate = paired_ratio(values, DEFAULT_ALPHA)
        if math.isnan(estimate.p_value):
            continue
        counted += 1
        old += estimate.significant != (_old_p_value(values) < DEFAULT_ALPHA)
        new += estimate.significant != (estimate.p_value < DEFAULT_ALPHA)
    return counted, old, new


def test_simulated_cells_agree_now():
    counted, _, new = simulate_old_and_new(40, ties=True)
    assert counted == 40 and new == 0


if __name__ == "__main__":
    for name, agreement in [
        ("null distribution vs enumeration", check_null_distribution_by_enumeration()),
        *zip(("Walsh averages vs brute force", "Hodges-Lehmann vs brute force"),
             check_hodges_lehmann_by_brute_force(), strict=True),
        ("paired p-value vs scipy exact", check_paired_p_value_against_scipy_exact()),
        ("minimum detectable effect vs formula", check_minimum_detectable_effect()),
        ("Welch ends and p vs formula", check_welch_against_the_formula()[0]),
        ("block bootstrap vs explicit loop", check_bootstrap_by_loop()),
    ]:
        print(f"{name:40} {agreement.cases:6} cases  max abs {agreement.max_absolute:.3g}  "
              f"max rel {agreement.max_relative:.3g}")
    print("interval vs p < alpha (cases, near alpha, disagreements):",
          check_interval_and_p_value_agree())
    for ties in (False, True):
        print(f"3300 cells, ties={ties} (cells, old disagreements, new):",
              simulate_old_and_new(3300, ties=ties))
