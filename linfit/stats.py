"""Is one timing significantly slower than another? Pure functions on arrays of samples.

The test is a **circular block bootstrap of the ratio of medians** (new / base), and a
change is reported only when it is both *practically* large (the point ratio is beyond the
threshold) and *statistically* significant (the bootstrap confidence interval excludes 1).
Why this test rather than, say, Mann-Whitney U:

* It answers the question users ask, "how much slower, give or take", in the same unit
  as the threshold: a ratio with a confidence interval, which the table prints.
* Medians are what the result files report and are robust to the few rounds that another
  process on a shared machine slows down; the bootstrap makes no assumption about the
  shape of the timing distribution (which is skewed and often multimodal).
* Rounds of one run are not independent: machine-wide drift (another process starting,
  a clock changing frequency) slows several consecutive rounds together. An ordinary
  bootstrap, like Mann-Whitney U, treats every round as an independent draw and becomes
  overconfident. Resampling blocks of consecutive rounds keeps that short-range dependence
  (Künsch 1989; circular blocks as in Politis & Romano 1992), so the interval is honest.
  A Mann-Whitney U test on thousands of rounds also flags any tiny shift as significant.
* Drift *between* two runs cannot be told apart from a real change by any test on
  within-run samples; the threshold on the point ratio is the guard against it, which is
  why both conditions are required.

Everything here is deterministic: the resampling uses a fixed seed. No I/O, no pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "DEFAULT_ALPHA",
    "DEFAULT_THRESHOLD",
    "MAX_BOOTSTRAP_SAMPLES",
    "MIN_ALPHA",
    "MIN_SAMPLES",
    "VERDICTS",
    "RatioEstimate",
    "block_bootstrap_medians",
    "block_length",
    "ratio_of_medians",
    "verdict",
]

# A change must exceed 10% before it is reported: the default. Two back-to-back
# runs of the same code on a shared two-core machine differ by several per cent in median.
DEFAULT_THRESHOLD = 0.10

# Two-sided significance level of the confidence interval: the default (99% CI).
DEFAULT_ALPHA = 0.01

# Bootstrap resamples per side: at the default alpha this leaves 10 resamples in each tail
# of the 99% interval, enough for stable endpoints at two decimals (Efron & Tibshirani,
# "An Introduction to the Bootstrap", ch. 19, suggest 1000-2000 for percentile intervals).
BOOTSTRAP_RESAMPLES = 2000

# The smallest alpha the resamples can resolve: at least one resample in each tail.
MIN_ALPHA = 2 / BOOTSTRAP_RESAMPLES

# Fixed seed, so that the same files always give the same intervals and verdicts.
BOOTSTRAP_SEED = 20_240_611

# Fewer rounds than this and no significance is claimed (the bootstrap of 1-4 values is
# badly overconfident). 5 is pytest-benchmark's default min_rounds, so every cell it
# timed qualifies.
MIN_SAMPLES = 5

# Longer runs are thinned (every k-th round, in order) to at most this many rounds before
# resampling, which bounds the cost to ~2 million values per side. The interval is then a
# little wider than the full run's (conservative); at 1000 rounds its half-width is already
# about 1% for a 10% round-to-round spread, far inside the threshold. The point ratio
# always uses every round.
MAX_BOOTSTRAP_SAMPLES = 1000

# Verdicts, in the order tables and summaries list them.
VERDICTS = ("slower", "faster", "noise", "unchanged")


@dataclass(frozen=True)
class RatioEstimate:
    """The ratio new/base of two medians with its bootstrap interval.

    Attributes:
        ratio: median(new) / median(base); > 1 means new is slower.
        low, high: the (1 - alpha) percentile interval; NaN when a side has fewer than
            :data:`MIN_SAMPLES` rounds.
        p_value: two-sided bootstrap p-value of "ratio = 1": twice the smaller fraction of
            resampled ratios on either side of 1 (0 means below 1/resamples). It is
            < alpha exactly when the interval excludes 1. NaN like the interval.
    """

    ratio: float
    low: float
    high: float
    p_value: float

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 1 (False when there was too little data)."""
        return self.low > 1 or self.high < 1


def block_length(n_samples: int) -> int:
    """Block length of the block bootstrap: ceil(n ** (1/3)).

    n^(1/3) is the rate that is optimal for bootstrap estimates of variance and
    distribution functions (Hall, Horowitz & Jing 1995): 2 rounds for 5-8, 10 for 1000.
    """
    if n_samples < 1:
        raise ValueError(f"need at least one sample, got {n_samples}")
    return max(1, math.ceil(n_samples ** (1 / 3) - 1e-9))


def _thinned(samples: np.ndarray) -> np.ndarray:
    step = math.ceil(samples.size / MAX_BOOTSTRAP_SAMPLES)
    return samples[::step]


def block_bootstrap_medians(samples: np.ndarray, resamples: int,
                            rng: np.random.Generator) -> np.ndarray:
    """Medians of circular block-bootstrap resamples of ``samples``.

    Each resample joins randomly started blocks of :func:`block_length` consecutive samples
    (wrapping around the end) until it is as long as ``samples``, and keeps the median.

    Args:
        samples: one run's per-round times, in the order they were measured.
        resamples: how many resamples to draw.
        rng: the random generator (seeded by the caller for reproducibility).

    Returns:
        An array of ``resamples`` medians.
    """
    samples = np.asarray(samples, dtype=float)
    n = samples.size
    length = block_length(n)
    blocks = -(-n // length)
    offsets = np.arange(length)
    # Blocks that run past the end wrap around to the start: append the first rounds.
    circular = np.concatenate([samples, samples[:length - 1]])
    medians = np.empty(resamples)
    # Resample in chunks of about a million values to bound memory for long runs.
    per_chunk = max(1, 1_000_000 // n)
    for first in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - first)
        starts = rng.integers(0, n, size=(count, blocks))
        index = (starts[:, :, None] + offsets).reshape(count, -1)[:, :n]
        medians[first:first + count] = np.median(circular[index], axis=1)
    return medians


def ratio_of_medians(base: np.ndarray, new: np.ndarray, alpha: float = DEFAULT_ALPHA,
                     resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> RatioEstimate:
    """median(new) / median(base), with a block-bootstrap percentile interval.

    The two runs are resampled independently (each with :func:`block_bootstrap_medians`,
    after thinning to :data:`MAX_BOOTSTRAP_SAMPLES`), and the interval is read off the
    resampled ratios. Its endpoints are order statistics of those ratios, taken so that
    the interval excludes 1 exactly when ``p_value < alpha``.

    Args:
        base, new: per-round times (seconds, > 0 in the median), in measurement order.
        alpha: two-sided significance level, between 2/resamples and 0.5.
        resamples: bootstrap resamples per side.
        seed: seed of the resampling.

    Returns:
        The ratio, its interval and p-value; the interval and p-value are NaN when either
        side has fewer than :data:`MIN_SAMPLES` rounds.

    Raises:
        ValueError: for an empty side, a median that is not > 0, or alpha out of range.
    """
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    if base.size == 0 or new.size == 0:
        raise ValueError("both sides need at least one sample")
    if not 2 / resamples <= alpha <= 0.5:
        raise ValueError(f"alpha must be between {2 / resamples:g} and 0.5, got {alpha}")
    base_median = float(np.median(base))
    new_median = float(np.median(new))
    if not (base_median > 0 and new_median > 0):
        raise ValueError(f"medians must be > 0, got {base_median} and {new_median}")
    ratio = new_median / base_median
    if min(base.size, new.size) < MIN_SAMPLES:
        return RatioEstimate(ratio, math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    base_medians = block_bootstrap_medians(_thinned(base), resamples, rng)
    new_medians = block_bootstrap_medians(_thinned(new), resamples, rng)
    ratios = np.sort(new_medians / base_medians)
    # In the tail: fewer than alpha/2 of the resamples may lie beyond each endpoint.
    tail = math.ceil(alpha / 2 * resamples)
    low = float(ratios[tail - 1])
    high = float(ratios[resamples - tail])
    at_or_below = int(np.count_nonzero(ratios <= 1))
    at_or_above = int(np.count_nonzero(ratios >= 1))
    p_value = min(1.0, 2 * min(at_or_below, at_or_above) / resamples)
    return RatioEstimate(ratio, low, high, p_value)


def verdict(estimate: RatioEstimate, threshold: float = DEFAULT_THRESHOLD) -> str:
    """Classify a ratio: ``slower``, ``faster``, ``noise`` or ``unchanged``.

    Args:
        estimate: the ratio new/base and its interval.
        threshold: the smallest change that matters, as a fraction (0.10 = 10%). Slower
            means ratio > 1 + threshold; faster means ratio < 1 / (1 + threshold), the same
            distance on a log scale (a 10% threshold: faster below 0.909).

    Returns:
        ``slower`` or ``faster`` when the ratio is beyond the threshold and the interval
        excludes 1; ``noise`` when it is beyond the threshold but not significant;
        ``unchanged`` when it is within the threshold.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    limit = 1 + threshold
    if estimate.ratio > limit:
        return "slower" if estimate.low > 1 else "noise"
    if estimate.ratio < 1 / limit:
        return "faster" if estimate.high < 1 else "noise"
    return "unchanged"
