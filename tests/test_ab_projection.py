"""What an A/B session's undecided cells need (linfit/ab/projection.py, issue 22), on
synthetic pairs files whose per-pair spread and pace are known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from linfit.ab.analysis import look_alpha
from linfit.ab.projection import burst_wall_seconds, project
from linfit.results.pairs import PairsWriter, read_pairs
from linfit.stats import DEFAULT_ALPHA, minimum_detectable_effect

# A burst's calls take 0.1 s; the two bursts of a pair start 0.15 s apart, and pairs 0.3 s
# apart: a pair of a cell costs 0.3 s of the session.
BURST_NS = 100_000_000
PAIR_SECONDS = 0.3
# The part started this long before its first burst.
STARTUP_SECONDS = 12.0
THRESHOLD = 0.05
MIN_PAIRS, MAX_PAIRS = 10, 200


def spread_sample(sigma: float, pairs: int) -> np.ndarray:
    """Log ratios whose spread is ``sigma`` (normal quantiles, in an interleaved order)."""
    values = sigma * norm.ppf((np.arange(pairs) + 0.5) / pairs)
    return np.concatenate([values[::2], values[1::2][::-1]])


def synthetic_session(path: Path, cells: dict[str, tuple[float, int]],
                      **facts: object) -> Path:
    """A finished pairs file of one session, schema 3: per variant, (spread, pairs) of its
    log ratios B/A, cells measured one after the other at :data:`PAIR_SECONDS` a pair."""
    writer = PairsWriter(path)
    start_ns = 10**18
    base = {"session_id": path.stem, "backend": "tensorflow", "device": "CPU:0",
            "n_examples": 1000, "dtype": "float32", "steps_per_call": 1,
            "calls_per_sample": 1, "status": "ok", "part": 0,
            "part_start_unix_ns": start_ns - int(STARTUP_SECONDS * 1e9), "seed": 3,
            "threshold": THRESHOLD, "alpha": DEFAULT_ALPHA, "min_pairs": MIN_PAIRS,
            "max_pairs": MAX_PAIRS, "cell_options": "--backends tensorflow",
            "python": "/usr/bin/python3", "side_python": "/usr/bin/python3", "host": "h",
            **facts}
    pair = 0
    for variant, (sigma, pairs) in cells.items():
        for round_, log_ratio in enumerate(spread_sample(sigma, pairs)):
            for side in (0, 1):
                writer.append({**base, "variant": variant, "side_index": side,
                               "side_label": "AB"[side], "round": round_,
                               "order_position": side,
                               "start_unix_ns": start_ns + int((pair * PAIR_SECONDS + side
                                                                * PAIR_SECONDS / 2) * 1e9),
                               "call_ns": [round(BURST_NS * math.exp(log_ratio * side))]})
            pair += 1
    return writer.finish()


def test_a_cell_needs_the_pairs_at_which_its_mde_reaches_the_threshold(tmp_path):
    """20 pairs of spread 0.1: the detectable effect shrinks as 1/sqrt(pairs), so the cell
    needs ((z_{1-alpha'/2} + z_0.8) 0.1 / log 1.05)^2 pairs; a steady cell is decided and
    needs nothing; a cell of spread 0.3 needs more than the cap; 2 pairs tell nothing."""
    path = synthetic_session(tmp_path / "s-ab.csv", {"noisy": (0.1, 20), "steady": (0.002, 20),
                                                     "wild": (0.3, 20), "young": (0.1, 2)})
    projection = project(read_pairs(path), THRESHOLD, DEFAULT_ALPHA)
    by_variant = {cell.cell.variant: cell for cell in projection.cells}
    assert set(by_variant) == {"noisy", "wild", "young"}
    assert (projection.decided, projection.total) == (1, 4)
    level = look_alpha(DEFAULT_ALPHA, MIN_PAIRS, MAX_PAIRS)
    z = norm.ppf(1 - level / 2) + norm.ppf(0.8)
    noisy = by_variant["noisy"]
    assert noisy.pairs == 20 and noisy.within_cap and not noisy.on_boundary
    assert noisy.pairs_needed == pytest.approx((z * 0.1 / math.log1p(THRESHOLD)) ** 2, rel=0.1)
    # At that many pairs of the same spread, the detectable effect is the threshold.
    at_need = spread_sample(0.1, math.ceil(noisy.pairs_needed))
    assert minimum_detectable_effect(at_need, level) == pytest.approx(THRESHOLD, rel=0.1)
    assert noisy.seconds_per_pair == pytest.approx(PAIR_SECONDS, rel=0.02)
    wild = by_variant["wild"]
    assert not wild.within_cap and wild.pairs_needed > MAX_PAIRS
    assert not by_variant["young"].known
    # A resumed session runs until the noisy cell has its pairs, every undecided cell
    # getting one each round, after its start-up.
    rounds = math.ceil(noisy.pairs_needed) - 20
    assert projection.rounds == rounds
    assert projection.startup_seconds == pytest.approx(STARTUP_SECONDS)
    assert projection.seconds == pytest.approx(STARTUP_SECONDS + rounds * 3 * PAIR_SECONDS,
                                               rel=0.02)
    assert projection.max_seconds % 10 == 0
    assert projection.seconds < projection.max_seconds <= projection.seconds + 10 + 1


def test_a_cell_whose_estimate_sits_on_the_threshold_needs_more_than_its_noise_says(tmp_path):
    """Low noise, but every pair 5.5% slower: the interval is narrow already and still
    straddles 1.05; the pairs it needs come from its distance to that boundary."""
    path = tmp_path / "edge-ab.csv"
    synthetic_session(path, {"edge": (0.01, 40)})
    frame = read_pairs(path)
    ok = frame["side_index"] == 1
    frame.loc[ok, "seconds_per_step"] *= 1.055
    [cell] = project(frame, THRESHOLD, DEFAULT_ALPHA).cells
    assert cell.on_boundary and cell.pairs_needed > 40


def test_a_burst_costs_the_time_to_the_next_one_unless_the_session_paused(tmp_path):
    path = synthetic_session(tmp_path / "s-ab.csv", {"noisy": (0.1, 3)})
    frame = read_pairs(path)
    walls = burst_wall_seconds(frame)
    assert list(walls.round(3)[:-1]) == [0.15] * 5
    # The last burst has no next one: its own calls' time.
    assert walls.iloc[-1] == pytest.approx(frame["call_ns"].iloc[-1][0] * 1e-9)
    # A pause (a resumed part hours later) is not the burst's.
    frame.loc[frame.index[3:], "start_unix_ns"] += 3600 * 10**9
    assert burst_wall_seconds(frame).iloc[2] == pytest.approx(0.1)


def test_a_long_resume_counts_the_start_up_of_its_fresh_workers(tmp_path):
    """Six cells that need ~170 pairs each: a resumed session measures for over 150 s
    (DEFAULT_RESTART_SECONDS) and less than 300, so its workers are replaced once, and the
    projection counts that second start-up."""
    path = synthetic_session(tmp_path / "long-ab.csv",
                             {f"v{i}": (0.15, 20) for i in range(6)})
    projection = project(read_pairs(path), THRESHOLD, DEFAULT_ALPHA)
    assert 150 < projection.measure_seconds < 300
    assert projection.seconds == pytest.approx(2 * STARTUP_SECONDS
                                               + projection.measure_seconds)
