"""Step detection (linfit.steps) on synthetic series: no step, one, two, a step smaller than
the noise, an outlier; the segment costs against brute force; the run interval."""

from __future__ import annotations

import numpy as np
import pytest

from linfit.steps import (
    MIN_LEVEL_RUNS,
    STEP_THRESHOLD,
    detect_steps,
    fit_levels,
    median_interval,
    segment_costs,
)

# Per-run noise of the synthetic series: 3%, about a quiet machine's run-to-run spread.
NOISE = 0.03
SEEDS = range(10)


def series(levels: list[float], runs_each: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([level * np.exp(noise * rng.standard_normal(runs_each))
                           for level in levels])


@pytest.mark.parametrize("seed", SEEDS)
def test_a_flat_series_has_no_step(seed: int) -> None:
    assert detect_steps(series([1e-4], 60, NOISE, seed)) == ()


@pytest.mark.parametrize("seed", SEEDS)
def test_one_step_is_found_where_it_is(seed: int) -> None:
    steps = detect_steps(series([1e-4, 1.3e-4], 20, NOISE, seed))
    assert [step.index for step in steps] == [20]
    assert steps[0].ratio == pytest.approx(1.3, rel=0.05)
    assert steps[0].direction == "slower"


@pytest.mark.parametrize("seed", SEEDS)
def test_two_steps_are_found_in_order(seed: int) -> None:
    steps = detect_steps(series([1.0, 1.4, 0.8], 15, NOISE, seed))
    assert [step.index for step in steps] == [15, 30]
    assert [step.direction for step in steps] == ["slower", "faster"]
    assert steps[1].ratio == pytest.approx(0.8 / 1.4, rel=0.05)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_step_smaller_than_the_noise_is_not_reported(seed: int) -> None:
    # An 8% step (above the 5% threshold) under 25% noise per run.
    assert detect_steps(series([1.0, 1.08], 20, 0.25, seed)) == ()


def test_a_step_below_the_threshold_is_not_reported() -> None:
    # Noise-free, so the fit has two levels; a 3% step is under STEP_THRESHOLD.
    values = [1.0] * 10 + [1.03] * 10
    assert len(fit_levels(values)) == 2
    assert STEP_THRESHOLD > 0.03
    assert detect_steps(values) == ()


@pytest.mark.parametrize("seed", SEEDS)
def test_one_outlier_is_not_a_step(seed: int) -> None:
    values = series([1.0], 40, NOISE, seed)
    values[17] = 3.0
    assert detect_steps(values) == ()


def test_a_step_at_the_last_run_waits_for_a_second_run() -> None:
    values = list(series([1.0], 20, NOISE, 0))
    assert detect_steps([*values, 2.0]) == ()
    assert [step.index for step in detect_steps([*values, 2.0, 2.0])] == [20]
    assert MIN_LEVEL_RUNS == 2


def test_segment_costs_match_brute_force() -> None:
    values = np.random.default_rng(3).random(25)
    costs = segment_costs(values)
    for start in range(25):
        for stop in range(start, 25):
            piece = values[start:stop + 1]
            assert costs[start, stop] == pytest.approx(np.abs(piece - np.median(piece)).sum())
        assert np.all(np.isinf(costs[start, :start]))


def test_short_and_bad_series() -> None:
    assert detect_steps([1.0]) == ()
    assert len(fit_levels([1.0, 2.0, 3.0])) == 1
    with pytest.raises(ValueError, match="at least one"):
        detect_steps([])
    with pytest.raises(ValueError, match="finite"):
        detect_steps([1.0, float("nan")])
    with pytest.raises(ValueError, match="threshold"):
        detect_steps([1.0, 1.0], threshold=0)


def test_median_interval_holds_the_median_and_narrows_with_samples() -> None:
    rng = np.random.default_rng(5)
    few = 1e-3 * np.exp(0.1 * rng.standard_normal(10))
    many = 1e-3 * np.exp(0.1 * rng.standard_normal(1000))
    for samples in (few, many):
        median, low, high = median_interval(samples)
        assert median == pytest.approx(float(np.median(samples)))
        assert low <= median <= high
    assert np.diff(median_interval(many)[1:]) < np.diff(median_interval(few)[1:])
    assert median_interval([2.0]) == (2.0, 2.0, 2.0)
    assert median_interval(few) == median_interval(few)  # seeded: deterministic
    with pytest.raises(ValueError):
        median_interval([])
