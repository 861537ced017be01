"""Where did a history of runs step? Pure functions on one series of per-run step times.

**The method is asv's** (airspeed velocity, ``asv/step_detect.py``, the step detection
behind its Regressions page), implemented here from its published description:

* The series is modelled as piecewise constant plus noise, and fitted in the L1 norm: each
  level is the median of its runs, and the cost of a fit is the sum of the absolute
  deviations from it (Laplace noise rather than Gaussian, so that one disturbed run moves a
  level by little). This is the Potts functional of Friedrich et al., "Complexity Penalized
  M-Estimation: Fast Computation", J. Comput. Graph. Stat. 17 (2008) 201-224.
* The number of levels k is chosen by the Schwarz-type criterion asv derives from
  Yao, "Estimating the number of change-points via Schwarz criterion", Stat. Probab. Lett.
  6 (1988) 181-189: minimise ``beta * k + ln(sigma_0 + S_k)``, with ``S_k`` the best L1 cost
  with k levels, ``beta = 4 ln(m) / m`` for m runs and ``sigma_0`` a floor on the noise
  (a tenth of the smallest jump between levels, 0.1% of the smallest level with one or two
  levels; here never below the latter), which keeps a perfect fit from winning by ``ln 0``.
* A step is reported when it is larger than the noise of the levels on either side (their
  mean absolute deviation) and larger than :data:`STEP_THRESHOLD` of the level before, as
  asv's ``detect_regressions`` filters steps; both directions are reported here (asv
  reports only regressions), each with its ratio after / before.

Why this method rather than a change-point package (ruptures' PELT with a penalty, say):
it needs no new dependency, its penalty is derived rather than a constant to tune, it is
robust to single disturbed runs (L1), and it is what asv's users already read. Where this
code departs from asv:

* asv solves the penalised problem approximately (windows of 20 runs, merged) along a path
  of penalties, because exact dynamic programming was too slow in pure Python. Here the
  segment costs are computed once (running medians, O(m^2 log m)) and the best fit with
  exactly k levels is found by exact dynamic programming for k = 1 .. :data:`MAX_LEVELS`,
  so the criterion is minimised exactly over those k.
* Every run weighs the same. asv weights each point by its inverse confidence interval;
  linfit's run intervals cover the noise within a run, not the drift between runs, which
  on a shared machine is the larger (10-30% between back-to-back runs, see
  :mod:`linfit.stats`), so weighting by them would trust tightly measured but drifted runs.
* A level must hold for :data:`MIN_LEVEL_RUNS` runs: one disturbed run is an outlier, not a
  step (asv accepts short levels only conditionally). A step is therefore seen once a second
  run after it confirms it.
* asv's AR(1) noise term is left out.

Also here: :func:`median_interval`, the interval of one run's median that the history's
graphs draw, from :func:`linfit.stats.block_bootstrap_medians`.

No I/O, no pandas: arrays in, frozen records out.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from linfit.stats import block_bootstrap_medians

__all__ = [
    "INTERVAL_ALPHA",
    "INTERVAL_RESAMPLES",
    "INTERVAL_SEED",
    "MAX_LEVELS",
    "MIN_LEVEL_RUNS",
    "STEP_THRESHOLD",
    "Level",
    "Step",
    "detect_steps",
    "fit_levels",
    "median_interval",
    "segment_costs",
]

# The smallest step reported, as a fraction of the level before: linfit ab's threshold
# (linfit.ab.analysis.DEFAULT_AB_THRESHOLD), which sits above the A/A offsets it measured.
STEP_THRESHOLD = 0.05
# A level must hold for this many runs: one run alone is an outlier, not a step.
MIN_LEVEL_RUNS = 2
# The most levels a series is fitted with (so at most 11 steps): the exact dynamic
# programme costs O(MAX_LEVELS * m^2); a history with more steps than this in one cell and
# machine is not one a person reads for steps.
MAX_LEVELS = 12
# asv's noise floor sigma_0: a tenth of the smallest jump between levels, or with one or
# two levels 0.1% of the smallest level (asv/step_detect.py, "Overfitting").
NOISE_FLOOR_JUMP_FRACTION = 0.1
NOISE_FLOOR_LEVEL_FRACTION = 1e-3
# asv's default beta is 4 ln(m) / m: "similar to the Bayesian information criterion for a
# Gaussian model with unknown variance, assuming 4 degrees of freedom per breakpoint".
BETA_DEGREES_OF_FREEDOM = 4
# Keeps the logarithm finite for a series of zeros.
_TINY = 1e-300

# A run's interval as the graphs draw it: a 95% block-bootstrap percentile interval of the
# median. 400 resamples put 10 in each tail, enough for a drawn error bar, and keep a
# 1,000-run history quick to build (linfit compare uses 2,000 for its verdicts).
INTERVAL_ALPHA = 0.05
INTERVAL_RESAMPLES = 400
INTERVAL_SEED = 20_240_611


@dataclass(frozen=True)
class Level:
    """One constant piece of a fitted series: runs ``start`` to ``stop - 1``.

    Attributes:
        start, stop: positions in the series (stop exclusive).
        value: the median of those runs.
        noise: their mean absolute deviation from it.
    """

    start: int
    stop: int
    value: float
    noise: float


@dataclass(frozen=True)
class Step:
    """A reported step between two levels.

    Attributes:
        index: the position of the first run after the step (the last run before it is
            ``index - 1``).
        before, after: the levels on either side.
        ratio: after / before (> 1: slower after the step).
    """

    index: int
    before: float
    after: float
    ratio: float

    @property
    def direction(self) -> str:
        """``slower`` or ``faster``: what the step did to the step time."""
        return "slower" if self.ratio > 1 else "faster"


def median_interval(samples: Sequence[float], alpha: float = INTERVAL_ALPHA,
                    resamples: int = INTERVAL_RESAMPLES,
                    seed: int = INTERVAL_SEED) -> tuple[float, float, float]:
    """One run's median with a block-bootstrap percentile interval.

    The resampling is :func:`linfit.stats.block_bootstrap_medians` (blocks of consecutive
    rounds, so that drift within the run widens the interval honestly); the interval's
    endpoints are the alpha/2 and 1 - alpha/2 quantiles of the resampled medians.

    Args:
        samples: the run's per-step times, in measurement order (> 0).
        alpha: two-sided level of the interval, in (0, 0.5].
        resamples: bootstrap resamples.
        seed: seed of the resampling (deterministic output).

    Returns:
        (median, low, high); low and high equal the median for one sample.

    Raises:
        ValueError: for no samples or alpha out of range.
    """
    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        raise ValueError("need at least one sample")
    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    median = float(np.median(values))
    if values.size == 1:
        return median, median, median
    medians = block_bootstrap_medians(values, resamples, np.random.default_rng(seed))
    low, high = np.quantile(medians, [alpha / 2, 1 - alpha / 2])
    return median, float(low), float(high)


def _prefix_costs(values: Sequence[float]) -> list[float]:
    """sum |v - median| of every prefix of ``values``: two heaps, O(m log m).

    The lower half is a max-heap (negated), the upper half a min-heap, each with its sum;
    the median is the top of the lower half (odd count) or the mean of both tops.
    """
    lower: list[float] = []
    upper: list[float] = []
    lower_sum = upper_sum = 0.0
    costs = []
    for value in values:
        if lower and value > -lower[0]:
            heapq.heappush(upper, value)
            upper_sum += value
        else:
            heapq.heappush(lower, -value)
            lower_sum += value
        if len(lower) > len(upper) + 1:
            moved = -heapq.heappop(lower)
            lower_sum -= moved
            heapq.heappush(upper, moved)
            upper_sum += moved
        elif len(upper) > len(lower):
            moved = heapq.heappop(upper)
            upper_sum -= moved
            heapq.heappush(lower, -moved)
            lower_sum += moved
        median = -lower[0] if len(lower) > len(upper) else (-lower[0] + upper[0]) / 2
        cost = (upper_sum - median * len(upper)) + (median * len(lower) - lower_sum)
        costs.append(max(0.0, cost))
    return costs


def segment_costs(values: Sequence[float]) -> np.ndarray:
    """The L1 cost of every segment: ``costs[l, r]`` = sum over runs l..r (inclusive) of
    the absolute deviation from their median; ``inf`` below the diagonal."""
    values = [float(v) for v in values]
    size = len(values)
    costs = np.full((size, size), np.inf)
    for start in range(size):
        costs[start, start:] = _prefix_costs(values[start:])
    return costs


def _best_fits(costs: np.ndarray, max_levels: int,
               min_size: int) -> list[tuple[float, tuple[int, ...]]]:
    """For k = 1, 2, ...: the least total cost with exactly k levels of at least
    ``min_size`` runs each, and the level boundaries (the stop of each level)."""
    size = costs.shape[0]
    # best[r]: least cost of the first r runs in k levels; choice[k][r]: where the last starts.
    best = np.full(size + 1, np.inf)
    best[min_size:] = costs[0, min_size - 1:]
    choices: list[np.ndarray] = [np.zeros(size + 1, dtype=int)]
    fits = [(float(best[size]), (size,))]
    for levels in range(2, max_levels + 1):
        if levels * min_size > size:
            break
        current = np.full(size + 1, np.inf)
        choice = np.zeros(size + 1, dtype=int)
        for stop in range(levels * min_size, size + 1):
            starts = np.arange((levels - 1) * min_size, stop - min_size + 1)
            totals = best[starts] + costs[starts, stop - 1]
            where = int(np.argmin(totals))
            current[stop] = totals[where]
            choice[stop] = starts[where]
        choices.append(choice)
        best = current
        stops = [size]
        for back in range(levels - 1, 0, -1):
            stops.append(int(choices[back][stops[-1]]))
        fits.append((float(best[size]), tuple(reversed(stops))))
    return fits


def fit_levels(values: Sequence[float], max_levels: int = MAX_LEVELS,
               min_size: int = MIN_LEVEL_RUNS) -> tuple[Level, ...]:
    """The piecewise-constant L1 fit that minimises asv's criterion (see the module notes).

    Args:
        values: the series, in its order (> 0; NaN not allowed).
        max_levels: the most levels tried.
        min_size: the fewest runs a level may hold.

    Returns:
        The levels, in order; one level for a series shorter than 2 * min_size.

    Raises:
        ValueError: for an empty series or a value that is not finite.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("need at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError("values must be finite")
    size = array.size
    if size < 2 * min_size:
        return (_level(array, 0, size),)
    costs = segment_costs(array)
    beta = BETA_DEGREES_OF_FREEDOM * math.log(size) / size
    best_levels: tuple[Level, ...] = ()
    best_score = math.inf
    for total, stops in _best_fits(costs, max_levels, min_size):
        levels = tuple(_level(array, start, stop)
                       for start, stop in zip((0, *stops[:-1]), stops, strict=True))
        values_of = [level.value for level in levels]
        floor = NOISE_FLOOR_LEVEL_FRACTION * min(abs(v) for v in values_of)
        if len(levels) > 2:
            # Never below the level floor: two equal neighbours would make it 0, and
            # ln(0 + a perfect fit) would beat every honest fit.
            floor = max(floor, NOISE_FLOOR_JUMP_FRACTION * min(
                abs(b - a) for a, b in itertools.pairwise(values_of)))
        score = beta * len(levels) + math.log(max(floor, _TINY) + total)
        if score < best_score:
            best_levels, best_score = levels, score
    return best_levels


def _level(array: np.ndarray, start: int, stop: int) -> Level:
    piece = array[start:stop]
    value = float(np.median(piece))
    return Level(start, stop, value, float(np.mean(np.abs(piece - value))))


def detect_steps(values: Sequence[float], threshold: float = STEP_THRESHOLD,
                 max_levels: int = MAX_LEVELS,
                 min_size: int = MIN_LEVEL_RUNS) -> tuple[Step, ...]:
    """The steps of a series that matter: between consecutive levels of :func:`fit_levels`,
    those larger than the noise on either side and than ``threshold`` of the level before.

    Args:
        values: each run's median step time, in the series' order.
        threshold: the smallest step reported, a fraction (> 0).
        max_levels, min_size: as :func:`fit_levels`.

    Returns:
        The steps, in series order.

    Raises:
        ValueError: as :func:`fit_levels`, or for a threshold that is not > 0.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    levels = fit_levels(values, max_levels, min_size)
    steps = []
    for before, after in itertools.pairwise(levels):
        jump = abs(after.value - before.value)
        if jump > max(before.noise, after.noise, threshold * before.value):
            steps.append(Step(after.start, before.value, after.value,
                              after.value / before.value))
    return tuple(steps)
