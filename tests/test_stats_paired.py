"""Paired A/B statistics in linfit/stats.py, on synthetic paired data (issue 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linfit.stats import (
    DEFAULT_ALPHA,
    minimum_detectable_effect,
    paired_decided,
    paired_log_ratios,
    paired_ratio,
    ratio_of_medians,
    signed_rank_interval_index,
    verdict,
    walsh_averages,
)

THRESHOLD = 0.05
PAIRS = 30


def _sessions(change: float, drift: float, pairs: int = PAIRS, seed: int = 1,
              noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Burst medians of A and B, pair by pair: a common multiplicative drift from 1 to
    ``drift`` over the session, independent 3% noise per burst, B = A * (1 + change)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(1, drift, pairs)
    base = 1e-3 * ramp * np.exp(rng.normal(0, noise, pairs))
    new = 1e-3 * (1 + change) * ramp * np.exp(rng.normal(0, noise, pairs))
    return base, new


def test_no_change_and_no_drift_is_unchanged():
    base, new = _sessions(0.0, 1.0)
    estimate = paired_ratio(paired_log_ratios(base, new))
    assert verdict(estimate, THRESHOLD) == "unchanged"
    assert estimate.low < 1 < estimate.high


@pytest.mark.parametrize("seed", range(5))
def test_a_common_drift_without_change_is_unchanged_where_the_unpaired_test_says_slower(seed):
    base, new = _sessions(0.0, 3.0, seed=seed)
    paired = paired_ratio(paired_log_ratios(base, new))
    assert verdict(paired, THRESHOLD) == "unchanged"
    # Unpaired, as `linfit compare` sees two runs: A ran in the first half of the drift,
    # B in the second (the runs were back to back).
    first, second = base[: PAIRS // 2], new[PAIRS // 2:]
    assert verdict(ratio_of_medians(first, second), THRESHOLD) == "slower"


@pytest.mark.parametrize("seed", range(5))
def test_a_ten_percent_change_under_the_same_drift_is_slower(seed):
    base, new = _sessions(0.10, 3.0, seed=seed)
    estimate = paired_ratio(paired_log_ratios(base, new))
    assert verdict(estimate, THRESHOLD) == "slower"
    assert estimate.low < 1.10 < estimate.high
    assert paired_decided(estimate, THRESHOLD)


def test_faster_is_the_mirror_of_slower():
    base, new = _sessions(0.10, 3.0)
    assert verdict(paired_ratio(paired_log_ratios(new, base)), THRESHOLD) == "faster"


def test_the_minimum_detectable_effect_shrinks_with_pairs():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.03, 400)
    effects = [minimum_detectable_effect(values[:n]) for n in (10, 40, 160, 400)]
    assert effects == sorted(effects, reverse=True)
    # (z_0.995 + z_0.8) * 0.03 / sqrt(400) = 0.0052 on the log scale.
    assert effects[-1] == pytest.approx(math.expm1(3.4174 * 0.03 / 20), rel=0.15)
    assert math.isnan(minimum_detectable_effect(values[:2]))


def test_the_interval_index_matches_the_signed_rank_tables():
    # Hollander & Wolfe, table A.4: n=10 rejects at T+ <= 3 (alpha 0.01) and <= 8 (0.05).
    assert signed_rank_interval_index(10, 0.01) == 4
    assert signed_rank_interval_index(10, 0.05) == 9
    # Too few pairs for any 99% interval: 2**-7 > 0.005.
    assert signed_rank_interval_index(7, 0.01) == 0
    # The normal approximation, used above the exact range, is within 0.05% of the Walsh
    # averages of the exact count there.
    from linfit.stats import EXACT_SIGNED_RANK_MAX_PAIRS, _signed_rank_cdf

    pairs = EXACT_SIGNED_RANK_MAX_PAIRS + 1
    exact = int(np.count_nonzero(_signed_rank_cdf(pairs) <= 0.005 + 1e-12))
    assert abs(signed_rank_interval_index(pairs, 0.01) - exact) <= 5e-4 * pairs * (pairs + 1) / 2


def test_too_few_pairs_give_no_interval_and_no_significance():
    estimate = paired_ratio(np.log([1.5, 1.4, 1.6, 1.5, 1.45]))
    assert math.isnan(estimate.low) and not estimate.significant
    assert verdict(estimate, THRESHOLD) == "noise"
    assert not paired_decided(estimate, THRESHOLD)


def test_hodges_lehmann_is_the_median_of_walsh_averages_and_resists_one_outlier():
    values = np.array([0.01, 0.02, 0.0, 0.01, 0.015, 0.005, 0.01, 0.02, 0.0, 2.0])
    assert len(walsh_averages(values)) == 55
    estimate = paired_ratio(values)
    assert math.log(estimate.ratio) == pytest.approx(np.median(walsh_averages(values)))
    assert estimate.ratio < 1.03  # the mean would say 1.23


def test_interval_excludes_one_exactly_when_the_test_rejects():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.005, 0.01, 0.02, 0.04):
        estimate = paired_ratio(rng.normal(shift, 0.03, 25), DEFAULT_ALPHA)
        # Exact p-value and exact interval from one null distribution: the duality is exact.
        if estimate.p_value < DEFAULT_ALPHA / 2:
            assert estimate.significant
        if estimate.p_value > 2 * DEFAULT_ALPHA:
            assert not estimate.significant
        assert estimate.significant == (estimate.p_value < DEFAULT_ALPHA)


def test_bad_input_raises():
    with pytest.raises(ValueError):
        paired_log_ratios(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        paired_log_ratios(np.ones(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError):
        paired_ratio(np.array([]))
