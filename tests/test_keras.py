"""What only the Keras variants have: Keras' own trace of its step, counted, so that an input
that makes model.fit retrace fails the cell with the harness's reason. Convergence, traces,
placement and dtypes are the contract's (tests/test_backend_contract.py)."""

import pytest
from backend_helpers import LEARNING_RATE, N_EXAMPLES

from linfit.backends.variants import KERAS_VARIANTS
from linfit.data import make_dataset
from linfit.harness import trace_problems


@pytest.mark.parametrize("variant", ["keras-function", "keras-xla-spe"])
def test_a_retracing_input_fails_the_cell_and_says_why(tf_backend, variant):
    import tensorflow as tf

    with tf_backend.session():
        trainer = tf_backend.make_trainer(variant, "CPU:0", make_dataset(N_EXAMPLES),
                                          LEARNING_RATE, 2)
        trainer.call()
        trainer.call()
        assert trainer.traces == 1
        assert trainer.model.optimizer.iterations.numpy() == 4
        # A batch of another size, as a last partial batch would be: Keras traces again.
        half = make_dataset(N_EXAMPLES // 2)
        trainer.model.fit(tf.data.Dataset.from_tensors((half.x, half.y)), verbose=0,
                          shuffle=False)
    assert trainer.traces == 2
    assert trace_problems(KERAS_VARIANTS[variant], trainer.traces) == [
        f"{variant} retraced: 2 traces for one (device, n, dtype); something passed to the step "
        "changes its signature"]


def test_eager_keras_never_traces_and_steps_per_execution_is_k(tf_backend):
    with tf_backend.session():
        eager = tf_backend.make_trainer("keras-eager", "CPU:0", make_dataset(N_EXAMPLES),
                                        LEARNING_RATE, 4)
        spe = tf_backend.make_trainer("keras-function-spe", "CPU:0", make_dataset(N_EXAMPLES),
                                      LEARNING_RATE, 4)
        eager.call()
        spe.call()
    assert (eager.traces, eager.model.steps_per_execution, eager.model.run_eagerly) == (0, 1, True)
    assert (spe.model.steps_per_execution, spe.model.jit_compile) == (4, False)
