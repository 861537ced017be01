"""linfit.stats on synthetic samples whose answer is known."""

import math

import numpy as np
import pytest

from linfit.stats import (
    BOOTSTRAP_RESAMPLES,
    MAX_BOOTSTRAP_SAMPLES,
    MIN_SAMPLES,
    RatioEstimate,
    block_bootstrap_medians,
    block_length,
    ratio_of_medians,
    verdict,
)


def lognormal(seed: int, median: float, spread: float, rounds: int) -> np.ndarray:
    return median * np.exp(spread * np.random.default_rng(seed).standard_normal(rounds))


def ar1(seed: int, rounds: int, correlation: float) -> np.ndarray:
    """Autocorrelated noise around 1, like rounds that share machine-wide drift."""
    shocks = np.random.default_rng(seed).standard_normal(rounds)
    values = np.empty(rounds)
    values[0] = shocks[0]
    for index in range(1, rounds):
        values[index] = correlation * values[index - 1] + math.sqrt(1 - correlation**2) * shocks[
            index]
    return np.exp(0.05 * values)


@pytest.mark.parametrize(("n", "expected"), [(1, 1), (5, 2), (8, 2), (9, 3), (27, 3), (28, 4),
                                             (1000, 10), (1001, 11)])
def test_block_length_is_the_cube_root_rounded_up(n, expected):
    assert block_length(n) == expected


def test_block_bootstrap_medians_are_medians_of_the_samples_values():
    samples = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    medians = block_bootstrap_medians(samples, 500, np.random.default_rng(0))
    assert medians.shape == (500,)
    # An odd-sized resample's median is one of its values.
    assert set(medians) <= set(samples)
    assert len(set(medians)) > 1


@pytest.mark.parametrize("rounds", [5, 20, 500])
def test_equal_distributions_are_not_significant(rounds):
    for seed in range(5):
        base = lognormal(2 * seed, 1e-4, 0.05, rounds)
        new = lognormal(2 * seed + 1, 1e-4, 0.05, rounds)
        estimate = ratio_of_medians(base, new)
        assert estimate.low <= 1 <= estimate.high, (seed, estimate)
        assert estimate.p_value >= 0.01
        assert verdict(estimate) == "unchanged"


@pytest.mark.parametrize("rounds", [5, 20, 500])
def test_a_2x_shift_is_significant(rounds):
    base = lognormal(0, 1e-4, 0.05, rounds)
    new = lognormal(1, 2e-4, 0.05, rounds)
    estimate = ratio_of_medians(base, new)
    assert estimate.low > 1 and estimate.p_value < 0.01
    assert estimate.low <= estimate.ratio <= estimate.high
    assert estimate.ratio == pytest.approx(2, rel=0.1)
    assert verdict(estimate) == "slower"
    assert verdict(ratio_of_medians(new, base)) == "faster"


def test_a_25_percent_regression_with_many_rounds_is_caught_every_time():
    # The design's figure: a step made ~25% slower is a significant regression 5 times of 5,
    # even with the 20% round-to-round spread of a noisy shared machine.
    for seed in range(5):
        base = lognormal(10 * seed, 50e-6, 0.2, 1000)
        new = lognormal(10 * seed + 1, 62.5e-6, 0.2, 1000)
        assert verdict(ratio_of_medians(base, new)) == "slower", seed


def test_a_few_widely_spread_rounds_give_noise_not_a_false_alarm():
    base = lognormal(4, 3e-6, 0.4, MIN_SAMPLES)
    new = lognormal(5, 3.9e-6, 0.4, MIN_SAMPLES)
    estimate = ratio_of_medians(base, new)
    assert estimate.ratio > 1.1
    assert verdict(estimate) == "noise"


def test_within_the_threshold_is_unchanged_even_when_significant():
    base = lognormal(0, 1e-4, 0.02, 2000)
    new = lognormal(1, 1.05e-4, 0.02, 2000)
    estimate = ratio_of_medians(base, new)
    assert estimate.significant
    assert verdict(estimate) == "unchanged"


def test_blocks_widen_the_interval_when_rounds_drift_together():
    # The same values, in measured (autocorrelated) order and shuffled: resampling blocks
    # sees the drift and gives a wider, honest interval; shuffled values look independent.
    drifting_base, drifting_new = ar1(0, 400, 0.9), ar1(1, 400, 0.9)
    rng = np.random.default_rng(2)
    shuffled_base, shuffled_new = rng.permutation(drifting_base), rng.permutation(drifting_new)
    drifting = ratio_of_medians(drifting_base, drifting_new)
    shuffled = ratio_of_medians(shuffled_base, shuffled_new)
    assert drifting.ratio == shuffled.ratio
    assert drifting.high - drifting.low > 1.5 * (shuffled.high - shuffled.low)
    # Here the drift alone would have passed as a significant change.
    assert shuffled.significant and not drifting.significant


def test_too_few_rounds_claim_nothing():
    base = np.array([1.0, 1.0, 1.0, 1.0])
    new = 2 * base
    estimate = ratio_of_medians(base, new)
    assert estimate.ratio == 2
    assert math.isnan(estimate.low) and math.isnan(estimate.high)
    assert math.isnan(estimate.p_value)
    assert not estimate.significant
    assert verdict(estimate) == "noise"
    assert verdict(ratio_of_medians(base, 1.01 * base)) == "unchanged"


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.2])
def test_interval_excludes_one_exactly_when_p_is_below_alpha(alpha):
    for shift in (1.0, 1.02, 1.05, 1.1, 1.3):
        for seed in range(3):
            base = lognormal(seed, 1.0, 0.1, 12)
            new = lognormal(seed + 100, shift, 0.1, 12)
            estimate = ratio_of_medians(base, new, alpha)
            assert estimate.significant == (estimate.p_value < alpha), (shift, seed, estimate)


def test_a_smaller_alpha_gives_a_wider_interval():
    base, new = lognormal(0, 1.0, 0.1, 50), lognormal(1, 1.1, 0.1, 50)
    wide = ratio_of_medians(base, new, alpha=0.001)
    narrow = ratio_of_medians(base, new, alpha=0.2)
    assert wide.low < narrow.low <= narrow.high < wide.high


def test_results_are_deterministic():
    base, new = lognormal(0, 1.0, 0.1, 30), lognormal(1, 1.2, 0.1, 30)
    assert ratio_of_medians(base, new) == ratio_of_medians(base.copy(), new.copy())


def test_long_runs_are_thinned_but_the_ratio_uses_every_round():
    rounds = 5 * MAX_BOOTSTRAP_SAMPLES
    base, new = lognormal(0, 1.0, 0.1, rounds), lognormal(1, 1.3, 0.1, rounds)
    estimate = ratio_of_medians(base, new)
    assert estimate.ratio == np.median(new) / np.median(base)
    assert estimate.low < estimate.ratio < estimate.high
    assert verdict(estimate) == "slower"


@pytest.mark.parametrize(("ratio", "low", "high", "expected"), [
    (1.11, 1.01, 1.2, "slower"),
    (1.11, 0.99, 1.2, "noise"),
    (1.10, 1.05, 1.15, "unchanged"),  # at the threshold is not beyond it
    (0.90, 0.85, 0.95, "faster"),
    (0.92, 0.85, 0.95, "unchanged"),  # 1 / 1.1 = 0.909: a 10% threshold on a log scale
    (0.90, 0.85, 1.01, "noise"),
    (1.0, 0.9, 1.1, "unchanged"),
])
def test_verdict(ratio, low, high, expected):
    assert verdict(RatioEstimate(ratio, low, high, 0.5), threshold=0.10) == expected


def test_verdict_threshold_is_an_option():
    estimate = RatioEstimate(1.15, 1.1, 1.2, 0.0)
    assert verdict(estimate, threshold=0.10) == "slower"
    assert verdict(estimate, threshold=0.20) == "unchanged"


@pytest.mark.parametrize(("base", "new", "alpha"), [
    ([], [1.0] * 5, 0.01),
    ([1.0] * 5, [0.0] * 5, 0.01),
    ([1.0] * 5, [1.0] * 5, 0.6),
    ([1.0] * 5, [1.0] * 5, 1 / BOOTSTRAP_RESAMPLES),
])
def test_ratio_of_medians_rejects_bad_arguments(base, new, alpha):
    with pytest.raises(ValueError):
        ratio_of_medians(np.array(base), np.array(new), alpha)


def test_verdict_rejects_a_threshold_that_is_not_positive():
    with pytest.raises(ValueError):
        verdict(RatioEstimate(1.0, 0.9, 1.1, 1.0), threshold=0)


# --- optional stopping: the interval read after every pair (issue 22) ----------------------

# Synthetic A/A sessions of the default 200 pairs: heavy-tailed (Student t, 3 degrees of
# freedom), symmetric pairs, another law than the normal-like paths sequential_alpha
# simulates. 10 000 sessions: a rate of 1% is known to +-0.1%.
AA_SESSIONS = 10_000
AA_PAIRS = 200


@pytest.fixture(scope="module")
def aa_smallest_p_values() -> np.ndarray:
    from linfit.stats import smallest_signed_rank_p_values

    rng = np.random.default_rng(22)
    return smallest_signed_rank_p_values(rng.standard_t(3, (AA_SESSIONS, AA_PAIRS)))


def _margin(alpha: float) -> float:
    """Three binomial standard errors of a rate alpha over the sessions."""
    return 3 * math.sqrt(alpha * (1 - alpha) / AA_SESSIONS)


def test_a_fixed_sample_interval_read_after_every_pair_gives_false_verdicts(
        aa_smallest_p_values):
    """The trouble: looking at a 99% signed-rank interval after each pair, an A/A cell
    excludes 1 at some look about one time in nine, not one in a hundred."""
    rate = float(np.mean(aa_smallest_p_values < 0.01))
    assert rate > 5 * 0.01


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_the_sequential_level_keeps_false_verdicts_at_alpha_under_optional_stopping(
        aa_smallest_p_values, alpha):
    """Every look from the 1st to the 200th pair at sequential_alpha's level: the share of
    A/A sessions whose interval excludes 1 at any look (whatever rule stops them, so a bound
    on their false verdicts) stays within alpha, up to the simulation's margin."""
    from linfit.stats import sequential_alpha

    level = sequential_alpha(alpha, AA_PAIRS)
    assert alpha / AA_PAIRS < level < alpha
    rate = float(np.mean(aa_smallest_p_values < level))
    assert rate <= alpha + _margin(alpha)
    # Not needlessly wide either: the level is the one at about alpha, not far below.
    assert rate >= alpha / 2


def test_the_simulated_p_values_are_the_intervals_own(aa_smallest_p_values):
    """A session's smallest p-value below a level is exactly some look's interval at that
    level excluding 1 (paired_ratio, the interval the session reads)."""
    from linfit.stats import paired_ratio, smallest_signed_rank_p_values

    rng = np.random.default_rng(5)
    paths = rng.standard_t(3, (40, 30))
    smallest = smallest_signed_rank_p_values(paths)
    for path, lowest in zip(paths, smallest, strict=True):
        level = 0.02
        excluded = any(paired_ratio(path[:n], level).significant for n in range(1, 31))
        assert excluded == (lowest < level)


def test_one_look_is_alpha_itself_and_the_level_is_cached():
    from linfit.stats import sequential_alpha

    assert sequential_alpha(0.01, 1) == 0.01
    assert sequential_alpha(0.01, 30) == sequential_alpha(0.01, 30) < 0.01
    with pytest.raises(ValueError):
        sequential_alpha(0.01, 0)


def test_pairs_needed_brings_the_detectable_effect_to_the_distance_asked():
    """The MDE shrinks as 1/sqrt(pairs): at the pairs it gives, a sample of the same spread
    detects exactly the effect asked."""
    from scipy.stats import norm

    from linfit.stats import minimum_detectable_effect, paired_spread, pairs_needed

    sample = 0.08 * norm.ppf((np.arange(25) + 0.5) / 25)
    needed = pairs_needed(sample, math.log1p(0.05), 0.001)
    spread = paired_spread(sample)
    larger = spread * norm.ppf((np.arange(400) + 0.5) / 400) / paired_spread(
        norm.ppf((np.arange(400) + 0.5) / 400))
    at_400 = minimum_detectable_effect(larger, 0.001)
    # At 400 pairs the effect found is log(1.05) * sqrt(needed / 400).
    assert math.log1p(at_400) == pytest.approx(math.log1p(0.05) * math.sqrt(needed / 400))
    assert math.isnan(pairs_needed(sample[:2], 0.05))
    assert pairs_needed(sample, 0.0) == math.inf
