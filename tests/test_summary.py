"""linfit.summary: speed-ups, break-even steps and IQR bands, computed without training."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pandas as pd
import pytest

from linfit import summary
from linfit.results import read_frame

DATA = Path(__file__).parent / "data" / "plots"


@pytest.fixture(scope="module")
def multi() -> pd.DataFrame:
    return read_frame(DATA / "multi.csv")


def _cells(*cells: tuple[str, int, float, float]) -> pd.DataFrame:
    """A minimal results frame: (variant, steps_per_call, median, first call) per row."""
    return pd.DataFrame([
        {"backend": "tensorflow", "device": "CPU:0", "variant": variant, "n_examples": 100,
         "dtype": "float32", "steps_per_call": k, "replicas": 1, "convention": "",
         "device_name": "cpu", "loop": k > 1,
         "median_seconds": median, "first_call_seconds": first, "status": "ok"}
        for variant, k, median, first in cells
    ])


def test_quartiles_come_from_the_samples():
    assert summary.quartiles_seconds((5.0, 1.0, 4.0, 2.0, 3.0)) == (2.0, 4.0)


def test_step_times_keep_ok_cells_and_empty_floors(multi):
    times = summary.step_times(multi)
    assert len(times) == (multi["status"] == "ok").sum()
    assert (times["q1_seconds"] <= times["median_seconds"]).all()
    assert (times["median_seconds"] <= times["q3_seconds"]).all()
    cpu = times[times["device"] == "CPU:0"]
    gpu = times[times["device"] == "GPU:0"]
    assert cpu["floor_seconds"].isna().all() and gpu["floor_seconds"].notna().all()


def test_speedup_is_eager_median_over_variant_median(multi):
    speeds = summary.speedups(multi)
    assert "eager" not in set(speeds["variant"])
    row = speeds[(speeds["backend"] == "tensorflow") & (speeds["device"] == "GPU:0")
                 & (speeds["variant"] == "xla") & (speeds["n_examples"] == 10_000)].iloc[0]
    ok = multi[multi["status"] == "ok"].set_index(["backend", "device", "variant",
                                                   "n_examples"])
    eager = ok.loc[("tensorflow", "GPU:0", "eager", 10_000), "median_seconds"]
    xla = ok.loc[("tensorflow", "GPU:0", "xla", 10_000), "median_seconds"]
    assert row["speedup"] == pytest.approx(eager / xla)


def test_speedups_compare_within_a_backend_only(multi):
    speeds = summary.speedups(multi)
    jit = speeds[(speeds["variant"] == "jit") & (speeds["device"] == "CPU:0")
                 & (speeds["n_examples"] == 100)].iloc[0]
    ok = multi[multi["status"] == "ok"]
    jax_eager = ok[(ok["backend"] == "jax") & (ok["variant"] == "eager")
                   & (ok["device"] == "CPU:0") & (ok["n_examples"] == 100)]
    assert jit["eager_median_seconds"] == jax_eager["median_seconds"].iloc[0]


def test_failed_cells_have_no_speedup(multi):
    speeds = summary.speedups(multi)
    failed = speeds[(speeds["variant"] == "jit") & (speeds["device"] == "GPU:0")
                    & (speeds["n_examples"] == 1_000_000)]
    assert failed.empty


def test_no_eager_cell_means_no_speedups():
    frame = _cells(("xla", 1, 1e-5, 0.5))
    assert summary.speedups(frame).empty
    assert summary.break_even(frame).empty


def test_break_even_is_compile_cost_over_saving_rounded_up():
    # eager: overhead 10 ms - 1 ms = 9 ms; xla: overhead 0.5 s - 0.1 ms; saving 0.9 ms/step.
    even = summary.break_even(_cells(("eager", 1, 1e-3, 0.010), ("xla", 1, 1e-4, 0.5)))
    row = even.iloc[0]
    assert row["compile_seconds"] == pytest.approx((0.5 - 1e-4) - (0.010 - 1e-3))
    assert row["saving_per_step_seconds"] == pytest.approx(0.9e-3)
    assert row["break_even_steps"] == math.ceil((0.4909) / 0.9e-3) == 546


def test_loop_variants_break_even_in_whole_calls():
    # extra = (0.3 - 100 * 1e-6) - 0 = 0.2999 s over a 0.999 ms saving: 300.2 steps -> 4 calls.
    even = summary.break_even(_cells(("eager", 1, 1e-3, 1e-3), ("xla-loop", 100, 1e-6, 0.3)))
    assert even["break_even_steps"].iloc[0] == 400


def test_a_variant_cheaper_at_the_start_breaks_even_after_one_call():
    even = summary.break_even(_cells(("eager", 1, 1e-3, 0.5), ("function", 1, 1e-4, 0.01)))
    assert even["compile_seconds"].iloc[0] < 0
    assert even["break_even_steps"].iloc[0] == 1


def test_a_variant_not_faster_than_eager_never_breaks_even():
    even = summary.break_even(_cells(("eager", 1, 1e-4, 0.01), ("xla", 1, 2e-4, 0.5),
                                     ("function", 1, 1e-4, 0.2)))
    by_variant = dict(zip(even["variant"], even["break_even_steps"], strict=True))
    assert by_variant == {"function": math.inf, "xla": math.inf}


def test_summary_trains_nothing():
    # Pure analysis on results: it imports nothing that trains, places data or draws.
    tree = ast.parse(Path(summary.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert imported.isdisjoint({"linfit.fit", "linfit.backends", "linfit.retrain",
                                "linfit.data", "linfit.plots", "matplotlib"}), imported
