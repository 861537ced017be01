"""A worker process's own offset (issue 22): the between-part check of
linfit.stats.process_heterogeneity against a plain reference, and what restarting the
workers buys against false verdicts, in simulated A/A sessions."""

from __future__ import annotations

import math
import re
import statistics

import numpy as np
import pytest

from linfit.stats import (
    MIN_PART_PAIRS,
    paired_ratio,
    paired_ratio_across_processes,
    paired_spread,
    process_heterogeneity,
    verdict,
    walsh_averages,
)

THRESHOLD = 0.05
# The look level of a default session (200 looks at alpha 0.01: linfit.stats.sequential_alpha).
LOOK_ALPHA = 0.00064


def _reference(values: np.ndarray, parts: np.ndarray
               ) -> tuple[float, float, float, float, list[float]]:
    """DerSimonian and Laird (1986), written out with loops: each part's Hodges-Lehmann
    estimate, its variance (pi/3) s^2 / n with s pooled about the parts' estimates."""
    groups = {}
    for value, part in zip(values.tolist(), parts.tolist(), strict=True):
        groups.setdefault(part, []).append(value)
    groups = {part: group for part, group in groups.items() if len(group) >= MIN_PART_PAIRS}
    estimates, sizes, residuals = [], [], []
    for group in groups.values():
        walsh = [(group[i] + group[j]) / 2 for i in range(len(group))
                 for j in range(i, len(group))]
        estimates.append(statistics.median(walsh))
        sizes.append(len(group))
        residuals += [value - estimates[-1] for value in group]
    spread = paired_spread(np.array(residuals))
    weights = [size / (math.pi / 3 * spread**2) for size in sizes]
    fixed = sum(w * e for w, e in zip(weights, estimates, strict=True)) / sum(weights)
    q = sum(w * (e - fixed) ** 2 for w, e in zip(weights, estimates, strict=True))
    scale = sum(weights) - sum(w * w for w in weights) / sum(weights)
    tau2 = max(0.0, (q - (len(groups) - 1)) / scale)
    random = [1 / (1 / w + tau2) for w in weights]
    centre = sum(w * e for w, e in zip(random, estimates, strict=True)) / sum(random)
    return q, tau2, centre, 1 / sum(random), estimates


@pytest.mark.parametrize("seed", range(40))
def test_the_between_part_check_matches_a_plain_reference(seed):
    rng = np.random.default_rng(seed)
    parts = rng.integers(2, 6)
    sizes = rng.integers(1, 40, parts)
    offsets = rng.normal(0, rng.choice([0.0, 0.01, 0.05]), parts)
    values = np.concatenate([o + rng.standard_t(3, n) * 0.05 for o, n in zip(offsets, sizes,
                                                                               strict=True)])
    labels = np.repeat(np.arange(parts), sizes)
    check = process_heterogeneity(values, labels)
    if (sizes >= MIN_PART_PAIRS).sum() < 2:
        assert check is None
        return
    assert check is not None
    q, tau2, centre, variance, estimates = _reference(values, labels)
    assert check.q == pytest.approx(q, rel=1e-9, abs=1e-12)
    assert check.tau2 == pytest.approx(tau2, rel=1e-9, abs=1e-15)
    assert check.centre == pytest.approx(centre, rel=1e-9, abs=1e-12)
    assert check.variance == pytest.approx(variance, rel=1e-9)
    assert check.estimates == pytest.approx(estimates, rel=1e-12, abs=1e-15)
    assert check.sizes == tuple(int(size) for size in sizes if size >= MIN_PART_PAIRS)


def test_one_part_or_parts_that_agree_leave_the_signed_rank_interval_as_it_was():
    rng = np.random.default_rng(3)
    values = rng.normal(0.1, 0.05, 60)
    assert paired_ratio_across_processes(values, np.zeros(60), 0.01) == paired_ratio(values,
                                                                                      0.01)
    # Two parts with the very same pairs: Q = 0, no between-part variance.
    twice = np.concatenate([values[:30], values[:30]])
    labels = np.repeat([0, 1], 30)
    assert process_heterogeneity(twice, labels).tau2 == 0
    assert paired_ratio_across_processes(twice, labels, 0.01) == paired_ratio(twice, 0.01)


def test_parts_that_disagree_widen_the_interval_around_the_same_estimate():
    """One pair of processes 6% slower than the other (an A/A offset): the signed-rank
    interval of the 120 pairs excludes 1; across the parts it does not, and its p-value
    says the same."""
    rng = np.random.default_rng(5)
    values = np.concatenate([0.06 + rng.normal(0, 0.03, 60), rng.normal(0, 0.03, 60)])
    labels = np.repeat([0, 1], 60)
    pooled = paired_ratio(values, 0.01)
    across = paired_ratio_across_processes(values, labels, 0.01)
    assert pooled.low > 1 and pooled.p_value < 0.01
    assert across.ratio == pooled.ratio
    assert across.low < 1 < across.high and across.p_value >= 0.01
    assert across.low <= pooled.low and across.high >= pooled.high
    assert across.mde > pooled.mde


@pytest.mark.parametrize("seed", range(30))
def test_the_widened_interval_excludes_one_exactly_when_its_p_value_is_below_alpha(seed):
    rng = np.random.default_rng(100 + seed)
    parts = rng.integers(2, 5)
    offsets = rng.normal(rng.normal(0, 0.03), 0.03, parts)
    values = np.concatenate([o + rng.normal(0, 0.04, 25) for o in offsets])
    estimate = paired_ratio_across_processes(values, np.repeat(np.arange(parts), 25), 0.01)
    assert (not estimate.low <= 1 <= estimate.high) == (estimate.p_value < 0.01)
    assert estimate.low <= estimate.ratio <= estimate.high
    assert estimate.ratio == pytest.approx(math.exp(np.median(walsh_averages(values))))


def _false_verdicts(parts: int, sessions: int, seed: int) -> int:
    """A/A sessions of 120 heavy-tailed pairs (t with 3 degrees of freedom, 5% spread),
    measured by ``parts`` pairs of worker processes in turn; one pair of processes in ten
    has an offset of 6% either way (the 2-core VM's A/A showed 1 cell in 45 so, at 5%).
    Counts the sessions whose verdict is slower or faster."""
    rng = np.random.default_rng(seed)
    wrong = 0
    for _ in range(sessions):
        offsets = np.where(rng.random(parts) < 0.1, rng.choice([-0.06, 0.06], parts), 0.0)
        values = np.concatenate([offset + 0.05 * rng.standard_t(3, 120 // parts)
                                 for offset in offsets])
        labels = np.repeat(np.arange(parts), 120 // parts)
        estimate = paired_ratio_across_processes(values, labels, LOOK_ALPHA)
        wrong += verdict(estimate, THRESHOLD) in ("slower", "faster")
    return wrong


def test_restarting_the_workers_keeps_a_process_offset_from_becoming_a_verdict():
    """One pair of processes for a whole session turns its offset into a verdict in about
    one A/A session in eleven here; the same pairs from four pairs of processes, with the
    interval across them, in none of 400 (a fixed seed: this is a measurement, repeatable)."""
    sessions = 400
    one_part = _false_verdicts(1, sessions, seed=7)
    four_parts = _false_verdicts(4, sessions, seed=7)
    assert one_part / sessions > 0.04
    assert four_parts / sessions <= 0.01


def test_a_session_whose_parts_disagree_is_undecided_and_says_each_part_s_ratio(tmp_path):
    """Two sets of workers that measured B/A 1.11 and 0.90: the estimate over both is near
    1, but no "unchanged" is said on it: the verdict is noise, and the message gives each
    part's ratio. The same pairs from one set of workers would read unchanged."""
    from test_ab_projection import synthetic_session

    from linfit.ab.analysis import analyse
    from linfit.results.pairs import read_pairs

    frame = read_pairs(synthetic_session(tmp_path / "parts-ab.csv", {"v": (0.01, 80)}))
    later = frame["round"] >= 40
    frame.loc[later, "part"] = 1
    new = frame["side_index"] == 1
    frame.loc[new & ~later, "seconds_per_step"] *= math.exp(0.1)
    frame.loc[new & later, "seconds_per_step"] *= math.exp(-0.1)
    [row] = analyse(frame).table.to_dict("records")
    assert row["verdict"] == "noise"
    parts = re.search(r"B/A by part (\S+) \(40 pairs\), (\S+) \(40 pairs\)$", row["message"])
    assert "disagree (Cochran's Q p < 1e-16)" in row["message"] and parts
    assert float(parts[1]) > 1.05 and float(parts[2]) < 1 / 1.05
    assert row["ratio_low"] < 1 / 1.05 and row["ratio_high"] > 1.05
    frame["part"] = 0
    [one] = analyse(frame).table.to_dict("records")
    assert one["verdict"] == "unchanged" and one["message"] == ""


def test_the_reanalysis_table_has_a_row_per_pairs_file_and_refuses_an_empty_folder(
        tmp_path, capsys):
    """bench/ab_reanalyse.py, which makes results/cpu-2core-ab-restarts/reanalysis.md."""
    import importlib.util
    from pathlib import Path

    from test_ab_projection import synthetic_session

    script = Path(__file__).parents[1] / "bench" / "ab_reanalyse.py"
    spec = importlib.util.spec_from_file_location("ab_reanalyse", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(tmp_path)]) == 2
    assert "no pairs file" in capsys.readouterr().err
    synthetic_session(tmp_path / "one-ab.csv", {"steady": (0.002, 20), "wild": (0.3, 20)})
    assert module.main([str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 3
    assert rows[2].startswith(f"| {tmp_path.name}/one-ab.csv | 1 | ")
    assert rows[2].endswith("| 40 | 0 | 0 | 0 | 2 | 0 | 0 |")
