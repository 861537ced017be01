"""The calling conventions of TensorFlow's compiled variants (issue 12): every one converges
to the CPU eager run and traces once; the harness option selects them, one cell each."""

from pathlib import Path

import pytest
from backend_helpers import LEARNING_RATE, LOOP_STEPS_PER_CALL, N_EXAMPLES

from linfit._errors import LinfitError
from linfit.backends.variants import (
    DEFAULT_TENSORFLOW_CONVENTION,
    TENSORFLOW_CONVENTIONS,
    TENSORFLOW_VARIANTS,
)
from linfit.convergence import CONVERGENCE_STEPS
from linfit.data import make_dataset
from linfit.fit import train
from linfit.harness import build_matrix, resolve_options

COMPILED = [name for name, variant in TENSORFLOW_VARIANTS.items()
            if variant.compiled and not name.startswith("keras")]


def _options(conventions: str | None, variants: str = "xla,eager"):
    values = {"linfit_backends": "tensorflow", "linfit_sizes": "100",
              "linfit_devices": "CPU:0", "linfit_variants": variants,
              "linfit_conventions": conventions}
    return resolve_options(values, {}, Path("/project"), Path("/elsewhere"))


@pytest.mark.parametrize("convention", list(TENSORFLOW_CONVENTIONS))
@pytest.mark.parametrize("variant", COMPILED)
def test_every_convention_converges_to_eager_and_traces_once(tf_backend, cpu_eager, variant,
                                                             convention):
    reference = cpu_eager("tensorflow")
    k = LOOP_STEPS_PER_CALL if TENSORFLOW_VARIANTS[variant].loop else 1
    with tf_backend.session():
        trainer = tf_backend.make_trainer(variant, "CPU:0", make_dataset(N_EXAMPLES),
                                          LEARNING_RATE, k, convention=convention)
        train(trainer, CONVERGENCE_STEPS)
        assert trainer.weights() == pytest.approx((reference.final_w, reference.final_b), rel=1e-5)
        # A new learning rate reaches every convention's step, the captured ones included,
        # without a retrace.
        before = trainer.weights()
        trainer.set_learning_rate(0.0)
        trainer.call()
    assert trainer.weights() == before
    assert trainer.convention == convention
    assert trainer.traces == 1
    assert trainer.check_placement() == "CPU:0"


def test_default_convention_and_unknown_ones(tf_backend):
    data = make_dataset(N_EXAMPLES)
    assert tf_backend.make_trainer("xla", "CPU:0", data, LEARNING_RATE).convention == (
        DEFAULT_TENSORFLOW_CONVENTION)
    with pytest.raises(LinfitError, match="no calling convention 'bound'; valid: closure"):
        tf_backend.make_trainer("xla", "CPU:0", data, LEARNING_RATE, convention="bound")
    with pytest.raises(LinfitError, match="eager has no calling convention 'args'; valid: none"):
        tf_backend.make_trainer("eager", "CPU:0", data, LEARNING_RATE, convention="args")


@pytest.mark.parametrize(
    ("conventions", "expected"),
    [
        (None, [("eager", ""), ("xla", DEFAULT_TENSORFLOW_CONVENTION)]),
        ("captured,args", [("eager", ""), ("xla", "captured"), ("xla", "args")]),
        ("all", [("eager", ""), *(("xla", name) for name in TENSORFLOW_CONVENTIONS)]),
    ],
)
def test_the_option_gives_one_cell_per_convention(tf_backend, conventions, expected):
    matrix = build_matrix(_options(conventions), free_memory_bytes=lambda: None)
    assert [(entry.cell.variant, entry.cell.convention) for entry in matrix] == expected


def test_an_unknown_convention_names_the_option():
    with pytest.raises(LinfitError, match="--linfit-conventions/LINFIT_CONVENTIONS: unknown "
                                          "'kw'; valid: args, captured, concrete, closure, all"):
        _options("kw")
