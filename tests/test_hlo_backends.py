"""The HLO account of real compiled cells at tiny n (issue 17): TensorFlow xla and
xla-loop, Keras jit_compile, JAX jit and jit-loop; and the harness's HLO columns.

What the tests assert is what the HLO must show whatever XLA's version: at least the read
floor moved per step, a while loop of k - 1 trips in the loop variants only, bytes that
grow with n, a loop step that moves less than a single step (the loop body computes no
loss), and a trace count that reading the HLO leaves alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from linfit.backends import get_backend
from linfit.data import make_dataset, xy_bytes
from linfit.harness import Harness, HarnessOptions, RawTiming
from linfit.hlo import LOOP_COUNT_SIGN, HloAccount, account
from linfit.results import Cell

N = 64
K = 10
WHILE = f"while{LOOP_COUNT_SIGN}"


def _account(backend: str, variant: str, n: int = N, k: int = K) -> tuple[HloAccount, int]:
    """The account of a fresh trainer after one call, and its trace count after reading."""
    framework = get_backend(backend)
    loop = framework.variant(variant).loop
    with framework.session():
        trainer = framework.make_trainer(variant, "CPU:0", make_dataset(n), 0.1,
                                         k if loop else 1)
        trainer.call()
        traces = trainer.traces
        program = trainer.compiled_hlo()
        assert program is not None
        assert trainer.traces == traces == 1
    return account(program, xy_bytes(n, "float32")), k if loop else 1


@pytest.mark.parametrize(("backend", "single", "loop"), [("tensorflow", "xla", "xla-loop"),
                                                      ("jax", "jit", "jit-loop")])
def test_a_real_step_and_its_loop(backend, single, loop):
    pytest.importorskip(backend)
    step, step_k = _account(backend, single)
    looped, loop_k = _account(backend, loop)
    assert (step_k, loop_k) == (1, K)
    assert step.loops_text == "none" and step.steps_per_execution == 1
    assert looped.loops_text == f"{WHILE}1(trip {K - 1})"
    assert looped.loops[0].trip_source == "cell" and looped.steps_per_execution == K
    for result in (step, looped):
        assert result.bytes_ratio > 1 and result.kernels_per_step >= 1
        assert result.bytes_written_per_step > 0
    # The loop body updates W and b without the loss the single step also returns.
    assert looped.bytes_per_step < step.bytes_per_step
    twice, _ = _account(backend, loop, n=2 * N)
    assert 1.8 * looped.bytes_per_step < twice.bytes_per_step < 2 * looped.bytes_per_step


def test_keras_jit_compile_gives_the_hlo_of_one_step(tf_backend):
    pytest.importorskip("keras")
    for variant in ("keras-xla", "keras-xla-spe"):
        result, _ = _account("tensorflow", variant)
        # Keras' loop over steps_per_execution is not in XLA: one step per execution.
        assert result.steps_per_execution == 1 and result.loops_text == "none"
        assert result.bytes_ratio > 1


def test_variants_xla_does_not_compile_have_no_hlo(tf_backend):
    for variant in ("eager", "function", "function-loop", "keras-function"):
        trainer = tf_backend.make_trainer(variant, "CPU:0", make_dataset(N), 0.1,
                                          K if tf_backend.variant(variant).loop else 1)
        trainer.call()
        assert trainer.compiled_hlo() is None, variant


def _options(tmp_path) -> HarnessOptions:
    return HarnessOptions(backends=("jax",), variants=None, devices=None, sizes=(N,),
                          profile="quick", dtypes=("float32",), steps_per_call=K,
                          results_dir=tmp_path, floors="off")


def _one_round(trainer) -> RawTiming:
    trainer.call()
    return RawTiming((1e-3,), iterations=1)


def test_the_harness_fills_the_hlo_columns_of_compiled_cells_only(tmp_path):
    pytest.importorskip("jax")
    harness = Harness(_options(tmp_path), started=datetime(2026, 1, 1, tzinfo=UTC))
    loop = harness.run_cell(Cell("jax", "CPU:0", "jit-loop", N, "float32", K), _one_round)
    eager = harness.run_cell(Cell("jax", "CPU:0", "eager", N, "float32", 1), _one_round)
    assert loop.ok and eager.ok
    assert loop.hlo_loops == f"{WHILE}1(trip {K - 1})" and loop.hlo_kernels_per_step > 0
    assert loop.hlo_bytes_ratio == loop.hlo_bytes_per_step / (8 * N) > 1
    assert (eager.hlo_kernels_per_step, eager.hlo_loops, eager.hlo_bytes_per_step) == (
        None, "", None)
    assert harness.hlo_note.startswith("HLO accounts of 1 compiled cells in ")
    row = loop.to_row()
    assert row["hlo_loops"] == loop.hlo_loops and row["hlo_bytes_ratio"] > 1


def test_an_hlo_that_cannot_be_read_costs_the_cell_nothing(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    from linfit.backends import jax as jax_backend

    def broken(self):
        raise RuntimeError("no HLO today")

    monkeypatch.setattr(jax_backend._JaxTrainer, "compiled_hlo", broken)
    harness = Harness(_options(tmp_path), started=datetime(2026, 1, 1, tzinfo=UTC))
    result = harness.run_cell(Cell("jax", "CPU:0", "jit", N, "float32", 1), _one_round)
    assert result.ok and result.hlo_bytes_per_step is None and result.hlo_loops == ""
    assert "1 unknown (warning: first: jax CPU:0 jit n=64 float32 k=1: RuntimeError: no HLO " \
           "today)" in harness.hlo_note
    off = Harness(replace(_options(tmp_path), hlo=False))
    assert off.run_cell(Cell("jax", "CPU:0", "jit", N, "float32", 1),
                        _one_round).hlo_loops == ""
    assert off.hlo_note == ""


def test_the_hlo_option_turns_the_accounts_off():
    from pathlib import Path

    from linfit._errors import LinfitError
    from linfit.harness import resolve_options

    def resolve(values, environ=None):
        return resolve_options(values, environ or {}, Path("/p"), Path("/p"))

    assert resolve({}).hlo is True
    assert resolve({"linfit_hlo": "off"}).hlo is False
    assert resolve({}, {"LINFIT_HLO": "off"}).hlo is False
    with pytest.raises(LinfitError, match="--linfit-hlo/LINFIT_HLO: unknown 'maybe'; valid: "
                                          "on, off"):
        resolve({"linfit_hlo": "maybe"})
