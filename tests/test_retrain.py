"""linfit.retrain: the convergence figure's re-runs, the one place presentation's data trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linfit import retrain
from linfit._errors import LinfitError
from linfit.convergence import CONVERGENCE_STEPS
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


def test_convergence_defaults_to_the_smallest_n_and_the_tutorial_steps(tf_backend):
    frame = read_frame(DATA / "single_variant.csv")
    runs = retrain.convergence_runs(frame)
    assert runs.n_examples == 100 and runs.steps == CONVERGENCE_STEPS
    assert [r.variant for r in runs.results] == ["xla"]


def test_convergence_needs_a_cell_that_ran():
    frame = read_frame(DATA / "single_variant.csv").assign(status="failed")
    with pytest.raises(LinfitError, match=r"^no cell in the results ran"):
        retrain.convergence_runs(frame)
