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

Two more tests live here, each with its reasons beside it: the Wilcoxon signed-rank test
with its Hodges-Lehmann interval for paired A/B bursts (:func:`paired_ratio`), and Welch's t
interval over several runs per side (:func:`ratio_of_run_medians`). Each statistic is
checked against scipy, or by brute force where scipy has none, in
tests/test_stats_reference.py. In all three the interval excludes 1 when the p-value is
below alpha: exactly, by construction, for the bootstrap and the signed-rank test; up to
scipy's rounding of one t quantile for Welch's.

Everything here is deterministic: the resampling uses a fixed seed. No I/O, no pandas.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "DEFAULT_THRESHOLD",
    "EXACT_SIGNED_RANK_MAX_PAIRS",
    "MAX_BOOTSTRAP_SAMPLES",
    "MIN_ALPHA",
    "MIN_PART_PAIRS",
    "MIN_RUNS",
    "MIN_SAMPLES",
    "SEQUENTIAL_CONFIDENCE",
    "SEQUENTIAL_SEED",
    "SEQUENTIAL_SESSIONS",
    "VERDICTS",
    "PairedEstimate",
    "ProcessHeterogeneity",
    "RatioEstimate",
    "block_bootstrap_medians",
    "block_length",
    "minimum_detectable_effect",
    "paired_decided",
    "paired_log_ratios",
    "paired_ratio",
    "paired_ratio_across_processes",
    "paired_spread",
    "pairs_needed",
    "process_heterogeneity",
    "ratio_of_medians",
    "ratio_of_run_medians",
    "sequential_alpha",
    "signed_rank_interval_index",
    "signed_rank_null_cdf",
    "signed_rank_paths",
    "smallest_signed_rank_p_values",
    "verdict",
    "walsh_averages",
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


# ---------------------------------------------------------------------------------------------
# Paired A/B statistics (issue 11): one number per short burst, A and B measured alternately.
#
# Why a Wilcoxon signed-rank test with the Hodges-Lehmann estimate and its Walsh-average
# interval, on the log ratios of paired burst medians:
#
# * Pairing cancels drift. Both bursts of a pair run within ~0.1 s of each other, so a slow
#   drift of the machine (another tenant, a frequency change: 10-30% between runs on the
#   2-core VM, sometimes 3x) multiplies both by about the same factor, and the log ratio of
#   the pair removes it. The unit of analysis is the pair, never the pooled rounds.
# * The pair counts are small (10 to a few hundred). The signed-rank interval is exact at
#   any n under one assumption, that the paired log ratios are symmetric about their centre
#   (plausible: A and B take turns in a balanced order, so any order effect enters with both
#   signs), where a bootstrap percentile interval under-covers at 10-20 pairs.
# * It is robust: one pair hit by a neighbour's burst moves the Hodges-Lehmann estimate
#   (the median of the Walsh averages) by little, unlike a mean or a z statistic
#   (tango-bench), and it keeps ~95% of the t test's efficiency on normal data.
# * The interval is the test's dual (Hollander & Wolfe, "Nonparametric Statistical Methods",
#   3.2): it excludes a log ratio of 0 exactly when the two-sided signed-rank test rejects
#   at alpha, which is Chromium Pinpoint's pair of conditions (p < alpha and an interval
#   that excludes 0) in one.
# ---------------------------------------------------------------------------------------------

# Chromium Pinpoint's default power for its "how many more attempts" estimate, and the
# usual one: a minimum detectable effect is the change found 80% of the time.
DEFAULT_POWER = 0.8

# Above this many pairs the signed-rank null distribution is taken as normal (with a
# continuity correction); below, it is computed exactly. The normal approximation is within
# 0.05% of the Walsh averages of the exact count at 400 pairs (9 of 80 000). The interval and
# the p-value both read the one distribution :func:`signed_rank_null_cdf` returns, so they
# switch together and always agree.
EXACT_SIGNED_RANK_MAX_PAIRS = 400


@dataclass(frozen=True)
class PairedEstimate(RatioEstimate):
    """The ratio B/A of a cell from paired bursts, with its interval and detectable effect.

    Attributes:
        ratio: exp(Hodges-Lehmann estimate of the paired log ratios); > 1: B is slower.
        low, high: exp of the (1 - alpha) signed-rank interval; NaN when the pairs are too
            few for any interval at this alpha (fewer than 8 at alpha 0.01).
        p_value: two-sided Wilcoxon signed-rank p-value of "log ratio = 0", from the same
            null distribution as the interval, so that the interval excludes 1 exactly when
            ``p_value < alpha`` (see :func:`paired_ratio`); NaN like the interval.
        pairs: how many pairs.
        mde: the minimum detectable effect, a fraction (0.04 = 4%): see
            :func:`minimum_detectable_effect`. NaN below 3 pairs.
    """

    pairs: int = 0
    mde: float = math.nan


def paired_log_ratios(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """log(new / base) of each pair: the unit of analysis of a paired session.

    Args:
        base, new: one number per burst (its median time), pair by pair, > 0.

    Raises:
        ValueError: for arrays of different lengths or a value that is not > 0.
    """
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    if base.shape != new.shape or base.ndim != 1:
        raise ValueError(f"need two 1-d arrays of one length, got {base.shape} and {new.shape}")
    if not (np.all(base > 0) and np.all(new > 0)):
        raise ValueError("burst times must be > 0")
    return np.log(new) - np.log(base)


@functools.lru_cache(maxsize=32)
def _signed_rank_cdf(pairs: int) -> np.ndarray:
    """P(T+ <= t) for t = 0 .. n(n+1)/2 under the null, exactly (no ties): the counts of
    subsets of {1..n} with each sum, by the usual recursion, over 2**n.

    Cached (read-only): the interval and the p-value of a cell both read it, and adaptive
    sampling asks again for every pair it adds. 32 arrays of at most 80 000 values.
    """
    counts = np.zeros(pairs * (pairs + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, pairs + 1):
        # Adding rank r: a subset either leaves it out or adds r to its sum. Scaled by 1/2
        # each time, so the counts stay probabilities and never overflow.
        shifted = np.zeros_like(counts)
        shifted[rank:] = counts[:-rank]
        counts = (counts + shifted) / 2
    cumulative = np.cumsum(counts)
    cumulative.setflags(write=False)
    return cumulative


def signed_rank_null_cdf(pairs: int, statistics: np.ndarray) -> np.ndarray:
    """P(T+ <= t) under the null hypothesis, for each t in ``statistics``.

    T+ is the Wilcoxon signed-rank statistic of ``pairs`` values without ties. Up to
    :data:`EXACT_SIGNED_RANK_MAX_PAIRS` pairs the distribution is exact (the subset-sum
    recursion of :func:`_signed_rank_cdf`, the one ``scipy.stats.wilcoxon(method="exact")``
    uses); above, it is the normal approximation with mean n(n+1)/4, variance
    n(n+1)(2n+1)/24 and a continuity correction of 1/2 (scipy's ``method="asymptotic"``,
    ``correction=True``). The interval and the p-value of :func:`paired_ratio` both read
    this function, which is what makes them agree.

    Args:
        pairs: n, at least 1.
        statistics: integers t, 0 <= t <= n(n+1)/2.

    Returns:
        The probabilities, an array of the shape of ``statistics``.
    """
    if pairs < 1:
        raise ValueError(f"need at least one pair, got {pairs}")
    points = np.asarray(statistics, dtype=np.int64)
    if pairs <= EXACT_SIGNED_RANK_MAX_PAIRS:
        return _signed_rank_cdf(pairs)[points]
    from scipy.stats import norm

    mean = pairs * (pairs + 1) / 4
    sd = math.sqrt(pairs * (pairs + 1) * (2 * pairs + 1) / 24)
    return np.asarray(norm.cdf((points + 0.5 - mean) / sd), dtype=float)


def signed_rank_interval_index(pairs: int, alpha: float) -> int:
    """How many Walsh averages lie below the interval: the k of [W_(k), W_(M+1-k)].

    k counts the t = 0, 1, ... with P(T+ <= t) < alpha / 2 under the null
    (:func:`signed_rank_null_cdf`), so the interval covers the centre with probability
    >= 1 - alpha (exactly so, up to the discreteness; Hollander & Wolfe 3.2). The strict
    inequality makes the dual test reject when p < alpha, as the bootstrap's does; it
    differs from ``<=`` only when alpha / 2 is a multiple of 2**-n. 0 when no interval is
    possible (2**-n >= alpha / 2).
    """
    if pairs < 1:
        return 0
    half_alpha = alpha / 2
    if pairs <= EXACT_SIGNED_RANK_MAX_PAIRS:
        return int(np.count_nonzero(_signed_rank_cdf(pairs) < half_alpha))
    from scipy.stats import norm

    # The normal quantile gives k to within one; it is then settled on the very cdf values
    # the p-value uses, so that rounding in ppf and cdf cannot set the two apart.
    largest = pairs * (pairs + 1) // 2
    mean = pairs * (pairs + 1) / 4
    sd = math.sqrt(pairs * (pairs + 1) * (2 * pairs + 1) / 24)
    below = min(largest + 1, max(0, math.floor(mean + 0.5 + norm.ppf(half_alpha) * sd)))

    def cdf(t: int) -> float:
        return float(signed_rank_null_cdf(pairs, np.array([t]))[0])

    while below <= largest and cdf(below) < half_alpha:
        below += 1
    while below > 0 and not cdf(below - 1) < half_alpha:
        below -= 1
    return below


def walsh_averages(values: np.ndarray) -> np.ndarray:
    """Every (x_i + x_j) / 2 with i <= j, sorted: n(n+1)/2 values."""
    values = np.asarray(values, dtype=float)
    rows, cols = np.triu_indices(values.size)
    return np.sort((values[rows] + values[cols]) / 2)


def minimum_detectable_effect(log_ratios: np.ndarray, alpha: float = DEFAULT_ALPHA,
                              power: float = DEFAULT_POWER) -> float:
    """The smallest change this many pairs at this noise would find, as a fraction.

    (z_{1-alpha/2} + z_{power}) * s / sqrt(n) on the log scale, back to a ratio minus 1,
    where s is a robust spread of the paired log ratios (their median absolute deviation
    scaled to the standard deviation for normal data, 1 / z_0.75 = 1.4826, as
    ``scipy.stats.median_abs_deviation(scale="normal")``, so that one disturbed pair does
    not inflate it). This is the normal-theory sample-size formula (e.g. Chow, Shao & Wang,
    "Sample Size Calculations in Clinical Research", 3.1); the signed-rank test needs about
    5% more pairs for the same power on normal data (its efficiency 3/pi).

    Args:
        log_ratios: the paired log ratios.
        alpha: two-sided significance level.
        power: the probability of finding a change of that size.

    Returns:
        The effect as a fraction (0.04: a 4% change); NaN for fewer than 3 pairs.
    """
    from scipy.stats import norm

    values = np.asarray(log_ratios, dtype=float)
    if values.size < 3:
        return math.nan
    spread = paired_spread(values)
    effect = (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * spread / math.sqrt(values.size)
    return math.expm1(effect)


def paired_spread(log_ratios: np.ndarray) -> float:
    """The spread of one pair's log ratio: the median absolute deviation scaled to the
    standard deviation for normal data (``scipy.stats.median_abs_deviation(scale="normal")``),
    or the ordinary standard deviation where that is 0 (quantised or identical values).
    NaN for fewer than 3 pairs. The spread :func:`minimum_detectable_effect` and
    :func:`pairs_needed` both use."""
    from scipy.stats import median_abs_deviation

    values = np.asarray(log_ratios, dtype=float)
    if values.size < 3:
        return math.nan
    spread = float(median_abs_deviation(values, scale="normal"))
    if spread == 0:
        spread = float(values.std(ddof=1))
    return spread


def pairs_needed(log_ratios: np.ndarray, log_distance: float, alpha: float = DEFAULT_ALPHA,
                 power: float = DEFAULT_POWER) -> float:
    """How many pairs, at the spread of these, would bring the minimum detectable effect
    (on the log scale) down to ``log_distance``.

    The effect shrinks as 1/sqrt(pairs) (:func:`minimum_detectable_effect`), so the pairs
    are ((z_{1-alpha/2} + z_{power}) * s / log_distance)^2 with s :func:`paired_spread`.
    With ``log_distance`` = log(1 + threshold) it is the pairs at which a change of the
    threshold's size would be found with probability ``power``; with ``power`` 0.5 it is
    the pairs at which an interval centred ``log_distance`` from a boundary would stop
    straddling it.

    Args:
        log_ratios: the paired log ratios so far.
        log_distance: the effect or distance on the log scale, > 0.
        alpha: two-sided level of each look's interval.
        power: as in :func:`minimum_detectable_effect`.

    Returns:
        The pairs, not rounded; NaN for fewer than 3 pairs, inf for a distance of 0.
    """
    from scipy.stats import norm

    spread = paired_spread(log_ratios)
    if math.isnan(spread):
        return math.nan
    if not log_distance > 0:
        return math.inf
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return (z * spread / log_distance) ** 2


def paired_ratio(log_ratios: np.ndarray, alpha: float = DEFAULT_ALPHA) -> PairedEstimate:
    """B/A of a cell from its paired log ratios: Hodges-Lehmann estimate, signed-rank
    interval and p-value, minimum detectable effect (see the notes above for why).

    The interval is [W_(k), W_(M+1-k)] of the M sorted Walsh averages, k from
    :func:`signed_rank_interval_index`. The p-value is the two-sided signed-rank p-value
    2 P(T+ <= min(T+, T-)) read off the same null distribution (:func:`signed_rank_null_cdf`),
    with T+ and T- counted on the Walsh averages (T+ = #{W > 0}: Tukey's form of the
    signed-rank statistic). Hence the interval excludes 1 exactly when ``p_value < alpha``,
    at every n and also with ties, which ``scipy.stats.wilcoxon`` cannot promise: its
    default switches to an uncorrected normal approximation above 50 pairs, and it treats
    zeros and ties by rules of its own (dropping zeros, mid-ranks). Without ties and zeros
    the p-value is scipy's ``method="exact"`` one (tests/test_stats_reference.py).

    Ties: a Walsh average whose ratio is exactly 1 (a zero log ratio, two pairs of opposite
    sign and equal size, or a sum within rounding of 0) counts on both sides, in T+ and in
    T-. That is the conservative choice (the p-value is at least the exact one of every way
    of breaking the ties) and it is the one the interval makes: [W_(k), W_(M+1-k)] excludes
    0 only when fewer than k Walsh averages are <= 0, or fewer than k are >= 0.

    Args:
        log_ratios: log(B / A) of each pair (:func:`paired_log_ratios`).
        alpha: two-sided significance level, in (0, 0.5].

    Returns:
        The estimate; interval and p-value NaN when the pairs are too few for any interval
        at ``alpha``.

    Raises:
        ValueError: for no pairs, a NaN or infinite log ratio, or alpha out of range.
    """
    values = np.asarray(log_ratios, dtype=float)
    if values.size == 0:
        raise ValueError("need at least one pair")
    if not np.all(np.isfinite(values)):
        raise ValueError("log ratios must be finite")
    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    walsh = walsh_averages(values)
    centre = float(np.median(walsh))
    mde = minimum_detectable_effect(values, alpha)
    below = signed_rank_interval_index(values.size, alpha)
    if below < 1:
        return PairedEstimate(math.exp(centre), math.nan, math.nan, math.nan, values.size, mde)
    # The test counts on the very ratios the interval's ends are taken from, so that a Walsh
    # average too small to move exp() off 1 is a tie for both.
    ratios = np.sort(np.exp(walsh))
    low, high = float(ratios[below - 1]), float(ratios[ratios.size - below])
    at_most_one = int(np.count_nonzero(ratios <= 1))
    at_least_one = int(np.count_nonzero(ratios >= 1))
    tail = float(signed_rank_null_cdf(values.size, np.array([min(at_most_one, at_least_one)]))[0])
    p_value = min(1.0, 2 * tail)
    return PairedEstimate(math.exp(centre), low, high, p_value, values.size, mde)


# A worker process's own offset (issue 22): two processes of one environment can differ by a
# few per cent for their whole life (where their memory landed, their threads' placement).
# Pairs of one pair of processes all share that offset, so the signed-rank interval of a
# long session is sure of it. A session that restarts its workers (linfit.ab: each set of
# workers is a `part`) measures the offset's spread between parts, and the interval takes it
# in: the DerSimonian-Laird random-effects interval over the parts (DerSimonian & Laird,
# "Meta-analysis in clinical trials", Controlled Clinical Trials 7, 1986), each part's
# estimate its Hodges-Lehmann one. Where the parts agree within chance, the between-part
# variance is 0 and the signed-rank interval stands as it was.

# A part joins the between-part check with at least this many pairs (a spread needs 3).
MIN_PART_PAIRS = 3
# Var(Hodges-Lehmann) = (pi / 3) sigma^2 / n for normal pairs (its efficiency 3 / pi against
# the mean; Hodges & Lehmann 1963).
_HL_VARIANCE_FACTOR = math.pi / 3


@dataclass(frozen=True)
class ProcessHeterogeneity:
    """The parts of a cell (one per set of worker processes) against each other.

    Attributes:
        parts: parts with at least :data:`MIN_PART_PAIRS` pairs.
        q: Cochran's Q of their estimates (chi-squared with parts - 1 degrees of freedom
            when they share one ratio).
        tau2: the DerSimonian-Laird between-part variance of the log ratio, >= 0.
        centre: the random-effects estimate of the log ratio.
        variance: its variance (with tau2 in every part's weight).
        labels, sizes, estimates: those parts' labels, pairs and Hodges-Lehmann estimates
            of the log ratio, in label order.
    """

    parts: int
    q: float
    tau2: float
    centre: float
    variance: float
    labels: tuple[int, ...] = ()
    sizes: tuple[int, ...] = ()
    estimates: tuple[float, ...] = ()

    @property
    def p_value(self) -> float:
        """Cochran's test that the parts share one ratio: P(chi2 with parts - 1 degrees of
        freedom >= Q)."""
        from scipy.stats import chi2

        return float(chi2.sf(self.q, self.parts - 1))


def process_heterogeneity(log_ratios: np.ndarray, parts: np.ndarray
                          ) -> ProcessHeterogeneity | None:
    """The DerSimonian-Laird check of a cell's parts: each part's Hodges-Lehmann estimate,
    its variance (pi / 3) s^2 / n with s the :func:`paired_spread` of every pair about its
    own part's estimate (pooled: a part of a few pairs has no spread of its own worth the
    name), Cochran's Q and the between-part variance tau^2 = max(0, (Q - (k - 1)) / C).

    Returns:
        None with fewer than 2 parts of at least :data:`MIN_PART_PAIRS` pairs, or no spread.
    """
    values = np.asarray(log_ratios, dtype=float)
    labels = np.asarray(parts)
    kept = [label for label in np.unique(labels)
            if np.count_nonzero(labels == label) >= MIN_PART_PAIRS]
    if len(kept) < 2:
        return None
    groups = [values[labels == label] for label in kept]
    estimates = np.array([np.median(walsh_averages(group)) for group in groups])
    residuals = np.concatenate([group - estimate
                                for group, estimate in zip(groups, estimates, strict=True)])
    spread = paired_spread(residuals)
    if not spread > 0:
        return None
    variances = _HL_VARIANCE_FACTOR * spread**2 / np.array([group.size for group in groups])
    weights = 1 / variances
    fixed = float(np.sum(weights * estimates) / np.sum(weights))
    q = float(np.sum(weights * (estimates - fixed) ** 2))
    scale = float(np.sum(weights) - np.sum(weights**2) / np.sum(weights))
    tau2 = max(0.0, (q - (len(groups) - 1)) / scale)
    random_weights = 1 / (variances + tau2)
    centre = float(np.sum(random_weights * estimates) / np.sum(random_weights))
    return ProcessHeterogeneity(len(groups), q, tau2, centre, float(1 / np.sum(random_weights)),
                                tuple(int(label) for label in kept),
                                tuple(group.size for group in groups),
                                tuple(float(estimate) for estimate in estimates))


def paired_ratio_across_processes(log_ratios: np.ndarray, parts: np.ndarray,
                                  alpha: float = DEFAULT_ALPHA) -> PairedEstimate:
    """:func:`paired_ratio`, with the offsets of the worker processes taken in.

    Where the cell's parts (``parts``: each pair's set of worker processes) disagree beyond
    chance (tau^2 > 0 in :func:`process_heterogeneity`), the interval is the hull of the
    signed-rank one and the random-effects one (centre +- z_{1-alpha/2} sqrt(variance)),
    the p-value the larger of the two (so the interval still excludes 1 exactly when the
    p-value is below alpha: each does so for its own), and the minimum detectable effect
    the one of the random-effects variance. The ratio stays the Hodges-Lehmann estimate of
    every pair (inside both intervals). One part, or parts that agree: :func:`paired_ratio`.
    """
    from scipy.stats import norm

    estimate = paired_ratio(log_ratios, alpha)
    if math.isnan(estimate.low):
        return estimate
    check = process_heterogeneity(log_ratios, parts)
    if check is None or check.tau2 == 0:
        return estimate
    error = math.sqrt(check.variance)
    z = float(norm.ppf(1 - alpha / 2))
    low = min(estimate.low, math.exp(check.centre - z * error))
    high = max(estimate.high, math.exp(check.centre + z * error))
    p_value = max(estimate.p_value, float(2 * norm.sf(abs(check.centre) / error)))
    mde = math.expm1((z + float(norm.ppf(DEFAULT_POWER))) * error)
    return PairedEstimate(estimate.ratio, low, high, p_value, estimate.pairs,
                          max(mde, estimate.mde))


def paired_decided(estimate: RatioEstimate, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Whether more pairs would hardly change a cell's verdict: its interval straddles
    neither threshold boundary (1 + threshold, 1 / (1 + threshold)).

    Then it lies wholly within the band (``unchanged``), or wholly beyond one boundary
    (which excludes 1: ``slower`` or ``faster``). A cell without an interval is undecided.
    This is the stopping rule of adaptive sampling, as Chromium Pinpoint asks for more
    attempts while a comparison is "unknown".
    """
    if math.isnan(estimate.low) or math.isnan(estimate.high):
        return False
    upper, lower = 1 + threshold, 1 / (1 + threshold)
    return not (estimate.low <= upper <= estimate.high or estimate.low <= lower <= estimate.high)


# ---------------------------------------------------------------------------------------------
# Looking after every pair (issue 22): adaptive sampling reads a cell's interval after each
# round, and stops the cell once it is decided. A fixed-sample (1 - alpha) interval read after
# every pair excludes the true ratio at some look far more often than alpha: at alpha 0.01,
# looking after each of 200 pairs, one A/A cell in nine (tests/test_stats.py simulates it).
#
# The remedy is the repeated significance test with a constant nominal level (Armitage,
# McPherson & Rowe, "Repeated significance tests on accumulating data", JRSS A 132, 1969;
# Pocock, "Group sequential methods in the design and analysis of clinical trials",
# Biometrika 64, 1977; Jennison & Turnbull, "Group Sequential Methods with Applications to
# Clinical Trials", 2000, ch. 2): every look's interval is taken at the one level alpha' at
# which the chance that *any* look from the first pair to the last allowed excludes the true
# ratio is alpha. Under the signed-rank test's own assumption (pairs independent and
# symmetric about their centre, no ties), the whole path of the signed-rank statistic, pair
# after pair, has one law whatever the distribution of the pairs, so alpha' is found exactly
# by simulating that path (any symmetric continuous distribution gives it), up to the
# simulation's error, which is taken on the safe side. An always-valid confidence sequence
# (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic
# confidence sequences", Ann. Statist. 49, 2021) would allow looks without end; a session
# has a last look (its max-pairs cap), and the level for that known horizon is wider by
# less: z = 3.4 for 200 looks at alpha 0.01, where the normal-mixture boundary costs ~3.8.
# ---------------------------------------------------------------------------------------------

# Simulated A/A paths that set alpha': at alpha 0.01, 1000 of them cross at the level, and
# the level's simulation error is a few per cent of it.
SEQUENTIAL_SESSIONS = 100_000
# The cost is sessions x looks^2 / 2 comparisons: with many looks (a --max-pairs far above
# the default 200), fewer paths, down to this many (the safe-side margin then grows).
MIN_SEQUENTIAL_SESSIONS = 2_000
_SEQUENTIAL_WORK = SEQUENTIAL_SESSIONS * 200**2
# Paths simulated at once: 5000 x 200 pairs of int16 (2 MB) were the fastest on the 2-core VM.
_SEQUENTIAL_BLOCK = 5_000
# Fixed seed: the same looks and alpha always give the same level, intervals and verdicts.
SEQUENTIAL_SEED = 20_260_422
# How sure the simulated level is to be on the safe side: alpha' is the largest level at which
# the simulated paths cross so rarely that, were the true crossing rate above alpha, more
# crossings would have shown with at least this probability.
SEQUENTIAL_CONFIDENCE = 0.95


def signed_rank_paths(log_ratios: np.ndarray) -> np.ndarray:
    """The signed-rank statistic after every pair, of every row: T+ of the first n values,
    for n = 1 .. N.

    T+ is counted in Tukey's form, the Walsh averages above 0 (as :func:`paired_ratio`
    counts it, without ties); adding the n-th value adds the averages (x_i + x_n) / 2,
    i <= n, that are above 0. Vectorised over the rows; sessions x N^2 / 2 comparisons.

    Args:
        log_ratios: an (M, N) array, one row per session, its pairs in order.

    Returns:
        An (M, N) array of int64.
    """
    values = np.asarray(log_ratios)
    if values.ndim != 2:
        raise ValueError(f"need an (M, N) array, got shape {values.shape}")
    # Pairs as rows, sessions as columns: each look compares contiguous rows (3x faster).
    by_pair = np.ascontiguousarray(values.T)
    paths = np.empty(by_pair.shape, dtype=np.int64)
    totals = np.zeros(by_pair.shape[1], dtype=np.int64)
    for n in range(by_pair.shape[0]):
        totals += (by_pair[:n + 1] > -by_pair[n]).sum(axis=0, dtype=np.int32)
        paths[n] = totals
    return paths.T


def smallest_signed_rank_p_values(log_ratios: np.ndarray) -> np.ndarray:
    """The smallest two-sided signed-rank p-value over the looks after pair 1, 2, ..., N,
    of each row: the level below which a repeated test would have rejected at some look.

    Each look's p-value is :func:`paired_ratio`'s, 2 P(T+ <= min(T+, T-)) from
    :func:`signed_rank_null_cdf` (exact up to :data:`EXACT_SIGNED_RANK_MAX_PAIRS` pairs),
    so a row's value is below a level exactly when some look's interval at that level
    excludes 0 (for values without ties).

    Args:
        log_ratios: an (M, N) array, one row per session.

    Returns:
        M p-values.
    """
    paths = signed_rank_paths(log_ratios)
    smallest = np.ones(paths.shape[0])
    counts = np.ones(1)  # the subset-sum counts of _signed_rank_cdf, grown pair by pair
    for index in range(paths.shape[1]):
        pairs = index + 1
        walsh = pairs * (pairs + 1) // 2
        tail_statistic = np.minimum(paths[:, index], walsh - paths[:, index])
        if pairs <= EXACT_SIGNED_RANK_MAX_PAIRS:
            shifted = np.zeros(counts.size + pairs)
            shifted[pairs:] = counts
            counts = (np.concatenate([counts, np.zeros(pairs)]) + shifted) / 2
            tail = np.cumsum(counts)[tail_statistic]
        else:
            tail = signed_rank_null_cdf(pairs, tail_statistic)
        np.minimum(smallest, np.minimum(1.0, 2 * tail), out=smallest)
    return smallest


@functools.lru_cache(maxsize=16)
def sequential_alpha(alpha: float, looks: int) -> float:
    """The level at which to take each look's signed-rank interval when a cell's interval is
    read after every pair, from the first to the ``looks``-th, so that the chance that any of
    these looks excludes the true ratio is at most ``alpha`` (see the notes above).

    Found by simulating :data:`SEQUENTIAL_SESSIONS` A/A paths of ``looks`` pairs
    (:data:`SEQUENTIAL_SEED`; fewer paths for many looks, at least
    :data:`MIN_SEQUENTIAL_SESSIONS`): the level is the largest at which so few paths cross
    that a true crossing rate above ``alpha`` would have been seen with probability at least
    :data:`SEQUENTIAL_CONFIDENCE`. Never below Bonferroni's alpha / looks (valid whatever the
    simulation says), never above alpha. Cached: a session asks once per cell and round.

    Args:
        alpha: the level the whole sequence of looks keeps, in (0, 0.5].
        looks: the most pairs a cell may get; 1 for a single look.

    Returns:
        alpha' <= alpha (alpha itself for one look).
    """
    from scipy.stats import binom

    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    if looks < 1:
        raise ValueError(f"need at least one look, got {looks}")
    if looks == 1:
        return alpha
    sessions = int(min(SEQUENTIAL_SESSIONS, max(MIN_SEQUENTIAL_SESSIONS,
                                                  _SEQUENTIAL_WORK // looks**2)))
    rng = np.random.default_rng(SEQUENTIAL_SEED)
    # Any symmetric continuous distribution gives the path's law: its signs are fair coins
    # and the ranks of its sizes a random permutation. Drawn as such, in small integers
    # (no two sums are 0 by accident, and the comparisons are cheaper than of floats), a
    # block of paths at a time (a block's comparisons stay in the CPU's cache).
    small = np.int16 if looks < np.iinfo(np.int16).max else np.int32
    blocks = []
    for start in range(0, sessions, _SEQUENTIAL_BLOCK):
        rows = min(_SEQUENTIAL_BLOCK, sessions - start)
        sizes = rng.permuted(np.tile(np.arange(1, looks + 1, dtype=small), (rows, 1)), axis=1)
        signs = rng.integers(0, 2, (rows, looks), dtype=small) * 2 - 1
        blocks.append(smallest_signed_rank_p_values((sizes * signs).astype(small)))
    smallest = np.sort(np.concatenate(blocks))
    # The most crossings that still put a true rate above alpha at odds of 1 - confidence.
    allowed = int(binom.ppf(1 - SEQUENTIAL_CONFIDENCE, sessions, alpha))
    if binom.cdf(allowed, sessions, alpha) > 1 - SEQUENTIAL_CONFIDENCE:
        allowed -= 1
    level = alpha / looks
    if allowed >= 0:
        # Fewer than `allowed` + 1 paths have a smallest p-value below the allowed-th.
        level = max(level, float(smallest[allowed]))
    return min(level, alpha)


# ---------------------------------------------------------------------------------------------
# Several runs per side (issue 11, item 6): the unit is the per-run median.
# ---------------------------------------------------------------------------------------------

# Fewest runs per side for an interval over runs: a spread needs two.
MIN_RUNS = 2


def ratio_of_run_medians(base_run_medians: np.ndarray, new_run_medians: np.ndarray,
                         alpha: float = DEFAULT_ALPHA) -> RatioEstimate:
    """new / base from several runs per side: Welch's t interval on log per-run medians.

    The unit of analysis is one number per run, its median step time (Kalibera & Jones,
    "Rigorous benchmarking in reasonable time", 2013: runs, not the rounds pooled from
    them, are the independent repetitions; the drift between runs is then inside the
    interval). Why Welch's t on the logs:

    * the ratio of geometric means is exp of a difference of means of logs, and a
      slowdown and the matching speed-up are symmetric on that scale;
    * per-run medians of a cell are averages of many rounds and near log-normal, so a t
      interval is fitting, and with 2 to 10 runs per side it is honest where a bootstrap
      percentile interval of so few values under-covers badly;
    * Welch does not assume that both sides drift by the same amount (Welch 1947,
      Satterthwaite degrees of freedom).

    Args:
        base_run_medians, new_run_medians: each run's median time per step, > 0.
        alpha: two-sided significance level, in (0, 0.5].

    Returns:
        ratio = exp(mean log new - mean log base), its (1 - alpha) interval and the Welch
        p-value of "ratio = 1", both from ``scipy.stats.ttest_ind(equal_var=False)``
        (Satterthwaite degrees of freedom), so the interval excludes 1 when p < alpha;
        interval and p-value NaN when a side has fewer than :data:`MIN_RUNS` runs. When
        both sides have no spread at all, the interval is the ratio itself (p = 0 unless
        the ratio is 1).

    Raises:
        ValueError: for an empty side, a median that is not > 0, or alpha out of range.
    """
    from scipy.stats import ttest_ind

    base = np.asarray(base_run_medians, dtype=float)
    new = np.asarray(new_run_medians, dtype=float)
    if base.size == 0 or new.size == 0:
        raise ValueError("both sides need at least one run")
    if not (np.all(base > 0) and np.all(new > 0)):
        raise ValueError("run medians must be > 0")
    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    log_base, log_new = np.log(base), np.log(new)
    difference = float(log_new.mean() - log_base.mean())
    ratio = math.exp(difference)
    if min(base.size, new.size) < MIN_RUNS:
        return RatioEstimate(ratio, math.nan, math.nan, math.nan)
    if np.ptp(log_base) == 0 and np.ptp(log_new) == 0:
        # No spread on either side: the t statistic is undefined (scipy gives NaN), and the
        # runs agree exactly, so the interval is the ratio itself.
        return RatioEstimate(ratio, ratio, ratio, 1.0 if difference == 0 else 0.0)
    result = ttest_ind(log_new, log_base, equal_var=False)
    interval = result.confidence_interval(confidence_level=1 - alpha)
    return RatioEstimate(ratio, math.exp(float(interval.low)), math.exp(float(interval.high)),
                         float(result.pvalue))
