"""linfit.convergence: the tolerances, the check, and the one reference policy, which the
harness and ``linfit check`` both use (tested here on both sides)."""

import dataclasses
from pathlib import Path

import pytest

import linfit.check
import linfit.convergence
from linfit.backends import BACKENDS
from linfit.check import check_results, reference_weights
from linfit.convergence import (
    REFERENCE_DEVICE,
    REFERENCE_VARIANT,
    convergence_problems,
    reference_cell,
    reference_for,
)
from linfit.results import Cell, read_results
from linfit.results.record import CellResult, Reference

DATA = Path(__file__).parent / "data" / "compare"
SMALL = DATA / "small-v2.csv"
JAX_JIT = Cell("jax", "CPU:0", "jit", 1000, "float32", 1)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize(("device", "variant", "steps_per_call"), [
    ("CPU:0", "eager", 1), ("GPU:0", "xla-loop", 100), ("GPU:1", "compile", 1)])
def test_the_reference_is_the_cells_own_backend_eager_on_cpu(backend, device, variant,
                                                              steps_per_call):
    cell = Cell(backend, device, variant, 100_000, "bfloat16", steps_per_call)
    reference = reference_for(cell)
    assert (reference.backend, reference.variant, reference.device) == (
        backend, REFERENCE_VARIANT, REFERENCE_DEVICE)
    assert str(reference) == f"{backend} eager CPU:0"
    assert reference_cell(cell) == Cell(backend, "CPU:0", "eager", 100_000, "bfloat16", 1)


def test_the_harness_and_check_call_the_same_policy_function():
    # One function, not two copies: the harness's session and check import this one.
    session = pytest.importorskip("linfit.harness._session")
    assert session.reference_for is linfit.convergence.reference_for
    assert linfit.check.reference_cell is linfit.convergence.reference_cell


def test_the_harness_checks_each_cell_against_the_policys_reference(monkeypatch):
    """The harness's numerics step trains the run reference_for names, and records it."""
    session = pytest.importorskip("linfit.harness._session")
    harness_class = getattr(session, "Harness", None)
    if harness_class is None or not hasattr(harness_class, "reference_weights"):
        pytest.skip("the harness has no reference_weights to observe")
    trained: list[tuple[str, str, str]] = []

    def fake_fit(backend, variant, device, data, steps, learning_rate):
        trained.append((backend.name, variant, device))
        return type("Result", (), {"final_w": 3.0, "final_b": 2.0})()

    monkeypatch.setattr(session, "fit", fake_fit)
    monkeypatch.setattr(session, "get_backend",
                        lambda name: type("Backend", (), {"name": name})())
    harness = harness_class.__new__(harness_class)
    harness._references = {}
    harness.options = type("Options", (), {"seed": 0, "learning_rate": 0.1})()
    reference = reference_for(JAX_JIT)
    assert harness.reference_weights(reference, 1000, "float32") == (3.0, 2.0)
    assert trained == [("jax", "eager", "CPU:0")]


def _replaced(records, cell: Cell, **changes) -> list[CellResult]:
    return [dataclasses.replace(r, **changes) if r.cell == cell else r for r in records]


def test_check_uses_the_cell_in_the_file_first():
    records = read_results(SMALL)
    eager = records.by_cell()[Cell("tensorflow", "CPU:0", "eager", 1000, "float32", 1)]
    loop = Cell("tensorflow", "CPU:0", "xla-loop", 1000, "float32", 100, convention="args")
    w, b, where = reference_weights(records.by_cell(), loop)
    assert (w, b) == (eager.final_w, eager.final_b) and "tensorflow CPU:0 eager" in where
    # Its reference cell off by 1e-4 in W: the loop cell fails numerics against it.
    moved = _replaced(records, eager.cell, final_w=eager.final_w * (1 + 1e-4))
    numerics = [f for f in check_results(moved) if f.rule == "numerics"]
    assert {f.cell for f in numerics if f.severity == "error"} == {loop}
    assert "reference: the tensorflow CPU:0 eager n=1000 float32 k=1 cell" in numerics[0].message


def test_check_falls_back_on_the_recorded_reference_of_the_same_policy():
    records = read_results(SMALL)
    jax = records.by_cell()[JAX_JIT]
    # No jax eager cell in the file: the W and b the row recorded for "jax eager CPU:0".
    assert reference_weights(records.by_cell(), JAX_JIT) == (
        jax.reference.w, jax.reference.b, "the recorded jax eager CPU:0")
    assert [f for f in check_results(records) if f.rule == "numerics"] == []
    off = _replaced(records, JAX_JIT, final_w=jax.reference.w * (1 + 1e-4))
    [finding] = [f for f in check_results(off) if f.rule == "numerics"]
    assert finding.cell == JAX_JIT and "the recorded jax eager CPU:0" in finding.message


def test_check_never_uses_another_backends_reference():
    """The old check fell back on TensorFlow's cell for a jax cell; the policy does not."""
    records = read_results(SMALL)
    jax = records.by_cell()[JAX_JIT]
    # A reference recorded under another policy (TensorFlow's eager) is not taken...
    other = _replaced(records, JAX_JIT, reference=Reference(
        "tensorflow", "eager", "CPU:0", jax.final_w * 2, jax.final_b))
    assert reference_weights({r.cell: r for r in other}, JAX_JIT) is None
    findings = [f for f in check_results(other) if f.rule == "numerics"]
    # ...so only least squares is checked, and that is said.
    assert [(f.severity, f.cell) for f in findings] == [("warning", None)]
    assert findings[0].message.startswith("no ok jax eager CPU:0 cell for n=1000 float32")


def test_convergence_problems_name_both_numbers():
    assert convergence_problems(3.0, 2.0, 3.0, 2.0, 3.0, 2.0, "float32") == []
    [problem] = convergence_problems(3.001, 2.0, 3.0, 2.0, 3.0, 2.0, "float32")
    assert problem == "W=3.001 differs from the reference 3 by more than rtol 1e-05"
