"""linfit.retrain: the convergence figure's re-runs, the one place presentation's data trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linfit import retrain
from linfit._errors import LinfitError
from linfit.convergence import CONVERGENCE_STEPS
from linfit.fit import FitRecord, FitResult
from linfit.results import read_frame

DATA = Path(__file__).parent / "data" / "plots"


def _unrunnable(frame: pd.DataFrame) -> pd.DataFrame:
    """Three cells no machine can run: unknown backend, unknown variant, no such device."""
    rows = frame.iloc[:3].copy()
    rows["backend"] = ["nosuch", "tensorflow", "tensorflow"]
    rows["variant"] = ["xla", "turbo", "xla"]
    rows["device"] = ["CPU:0", "CPU:0", "GPU:99"]
    return rows


def test_convergence_runs_skip_what_cannot_run_here(tf_backend):
    frame = _unrunnable(read_frame(DATA / "single_variant.csv"))
    runs = retrain.convergence_runs(frame)
    assert runs.results == ()
    reasons = {(cell.backend, cell.variant, cell.device): cell.reason for cell in runs.skipped}
    assert reasons == {
        ("nosuch", "xla", "CPU:0"): "backend nosuch is not installed here",
        ("tensorflow", "turbo", "CPU:0"): "this linfit has no tensorflow variant turbo",
        ("tensorflow", "xla", "GPU:99"): "tensorflow has no device GPU:99 here",
    }
    assert str(runs.skipped[2]) == "tensorflow xla on GPU:99: tensorflow has no device GPU:99 here"


def test_convergence_runs_record_every_step_of_every_variant(tf_backend):
    frame = read_frame(DATA / "single_size.csv")
    runs = retrain.convergence_runs(frame, steps=20, max_n_examples=50)
    assert runs.skipped == ()
    assert (runs.n_examples, runs.dtype, runs.steps) == (50, "float32", 20)
    assert {r.variant for r in runs.results} == set(frame["variant"])
    assert runs.loop_variants == {("tensorflow", "function-loop"), ("tensorflow", "xla-loop")}
    for result in runs.results:
        # Loop variants too: one call per step, so every step is in the history.
        assert result.steps_per_call == 1
        assert [r.step for r in result.history] == list(range(20))
        assert result.n_examples == 50
    finals = np.array([(r.final_w, r.final_b) for r in runs.results])
    np.testing.assert_allclose(finals, np.broadcast_to(finals[0], finals.shape), rtol=1e-5)


def _fit_at_hand(variant: str, n_examples: int, steps: int, learning_rate: float,
                 steps_per_call: int = 1) -> FitResult:
    history = tuple(FitRecord(step, 5.0 - step, 0.5, 1.0) for step in range(steps))
    return FitResult(backend="tensorflow", variant=variant, device="CPU:0", device_name="cpu",
                     dtype="float32", n_examples=n_examples, learning_rate=learning_rate,
                     steps_per_call=steps_per_call, history=history, final_w=3.0, final_b=2.0,
                     w_ols=3.0, b_ols=2.0)


def test_convergence_runs_use_the_fits_at_hand_that_match_the_figure_data(monkeypatch):
    # The bench session hands over its cells' convergence runs: one at the figure's data is
    # used as it is; one at another n, learning rate, length or steps per call is not.
    frame = read_frame(DATA / "single_size.csv")
    rate = float(frame["learning_rate"].iloc[0])
    variants = sorted(set(frame["variant"]))
    matching = {v: _fit_at_hand(v, 50, 20, rate) for v in variants[1:]}
    first = variants[0]
    others = [_fit_at_hand(first, 49, 20, rate), _fit_at_hand(first, 50, 20, rate * 2),
              _fit_at_hand(first, 50, 10, rate), _fit_at_hand(first, 50, 20, rate, 2)]
    trained = []

    def fake_fit(backend, variant, device, data, steps, learning_rate):
        trained.append((variant, data.n_examples, steps, learning_rate))
        return _fit_at_hand(variant, data.n_examples, steps, learning_rate)

    monkeypatch.setattr(retrain, "fit", fake_fit)
    monkeypatch.setattr(retrain, "installed_backends", lambda: ["tensorflow"])
    runs = retrain.convergence_runs(frame, steps=20, max_n_examples=50,
                                    fits=[*others, *matching.values()])
    assert trained == [(first, 50, 20, rate)]
    by_variant = {result.variant: result for result in runs.results}
    assert set(by_variant) == set(variants)
    for variant, fit in matching.items():
        assert by_variant[variant] is fit


def test_convergence_defaults_to_the_smallest_n_and_the_tutorial_steps(tf_backend):
    frame = read_frame(DATA / "single_variant.csv")
    runs = retrain.convergence_runs(frame)
    assert runs.n_examples == 100 and runs.steps == CONVERGENCE_STEPS
    assert [r.variant for r in runs.results] == ["xla"]


def test_convergence_needs_a_cell_that_ran():
    frame = read_frame(DATA / "single_variant.csv").assign(status="failed")
    with pytest.raises(LinfitError, match=r"^no cell in the results ran"):
        retrain.convergence_runs(frame)
