"""linfit.scaling (the all-reduce's share, the crossover n) and the scaling figure, on a
hand-made results frame: no worker runs here."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from linfit import summary
from linfit._errors import LinfitError
from linfit.plots import draw_run_figures, plot_scaling
from linfit.scaling import crossovers, scaling_table

# (variant, replicas, n) -> median s/step: two replicas lose at 1e3, win from 1e5 on; the
# one-device function is beaten from 1e6 on.
MEDIANS = {
    ("function", 1, 1000): 100e-6, ("function", 1, 100_000): 400e-6,
    ("function", 1, 1_000_000): 4e-3,
    ("mirrored-function", 1, 1000): 150e-6, ("mirrored-function", 1, 100_000): 500e-6,
    ("mirrored-function", 1, 1_000_000): 5e-3,
    ("mirrored-function", 2, 1000): 200e-6, ("mirrored-function", 2, 100_000): 450e-6,
    ("mirrored-function", 2, 1_000_000): 3e-3,
}


def _frame() -> pd.DataFrame:
    rows = []
    for (variant, replicas, n), median in MEDIANS.items():
        rows.append({"backend": "tensorflow", "device": "CPU:0", "variant": variant,
                     "n_examples": n, "dtype": "float32", "steps_per_call": 1,
                     "replicas": replicas, "convention": "closure", "device_name": "cpu",
                     "loop": False, "status": "ok", "median_seconds": median,
                     "first_call_seconds": 0.1, "floor_seconds": n * 8 / 1e10,
                     "samples_seconds": (median * 0.9, median, median * 1.1)})
    return pd.DataFrame(rows)


def test_the_overhead_is_the_time_beyond_a_perfect_split():
    table = scaling_table(_frame())
    assert list(table["n_examples"]) == [1000, 100_000, 1_000_000]
    first = table.iloc[0]
    assert first["strategy"] == "mirrored" and first["single_device_variant"] == "function"
    assert first["overhead_seconds"] == pytest.approx(200e-6 - 150e-6 / 2)
    assert first["overhead_share"] == pytest.approx((200e-6 - 75e-6) / 200e-6)
    assert first["speedup"] == pytest.approx(150 / 200)
    assert table.iloc[2]["single_device_seconds"] == 4e-3


def test_the_crossover_is_where_two_replicas_win_from_then_on():
    [row] = crossovers(scaling_table(_frame())).to_dict("records")
    assert row["replicas"] == 2
    assert row["beats_one_from_n"] == 100_000
    assert row["beats_single_device_from_n"] == 1_000_000
    never = _frame()
    never.loc[never["replicas"] == 2, "median_seconds"] = 1.0
    [row] = crossovers(scaling_table(never)).to_dict("records")
    assert math.isnan(row["beats_one_from_n"])


def test_the_scaling_figure_and_the_run_figures(tmp_path):
    assert plot_scaling(summary.step_times(_frame()), tmp_path / "s.png").stat().st_size > 0
    names = [figure.name for figure in draw_run_figures(_frame(), tmp_path, "run")]
    assert names == ["step-time", "first-call", "scaling"]
    only_two = _frame()[lambda f: f["replicas"] == 2]
    assert [figure.name for figure in draw_run_figures(only_two, tmp_path, "two")] == [
        "scaling"]
    with pytest.raises(LinfitError, match="no distributed cell"):
        plot_scaling(summary.step_times(_frame()[lambda f: f["variant"] == "function"]),
                     tmp_path / "none.png")
