"""What only the TensorFlow backend has: soft device placement, switched off for a session,
and a CPU split into logical devices. The contract every backend keeps is tested in
tests/test_backend_contract.py."""

import pytest
from backend_helpers import train_on_a_second_cpu

from linfit.backends import VARIANTS_BY_BACKEND

# TensorFlow splits a physical CPU into logical devices before its runtime starts.
SPLIT_CPU = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
"""


def test_soft_placement_is_off_inside_a_session_and_restored(tf_backend):
    import tensorflow as tf

    before = tf.config.get_soft_device_placement()
    with tf_backend.session():
        assert tf.config.get_soft_device_placement() is False
    assert tf.config.get_soft_device_placement() == before


# W of the hand-written step's trainer, or of the Keras model.
WEIGHTS_DEVICE = "(trainer.model.w.value if hasattr(trainer, 'model') else trainer._w).device[-5:]"


@pytest.mark.second_cpu("tensorflow", SPLIT_CPU, "trainer._x.device[-5:]", WEIGHTS_DEVICE)
def test_second_logical_cpu_is_a_real_device(request):
    """Multi-device paths without a GPU: split the CPU in two and train on CPU:1."""
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    placed = train_on_a_second_cpu(*request.node.get_closest_marker("second_cpu").args)
    # The result, the data and W: all on CPU:1, for every variant.
    assert [line.split()[1] for line in placed] == list(VARIANTS_BY_BACKEND["tensorflow"])
    assert len(placed) == 11
    assert all(line.endswith("CPU:1 CPU:1 CPU:1") for line in placed), placed


def test_loss_and_gradients_are_the_same_for_variables_and_tensors(tf_backend):
    """The one loss-and-gradient definition: the variable step and a loop that carries W and
    b as tensors (docs/loops.py) get the same numbers, and they are the MSE's gradients."""
    import numpy as np
    import tensorflow as tf

    from linfit.backends.tensorflow import loss_and_gradients

    x = tf.constant([1.0, 2.0, 3.0])
    y = tf.constant([5.0, 8.0, 10.0])
    from_variables = loss_and_gradients(tf.Variable(2.0), tf.Variable(1.0), x, y)
    from_tensors = loss_and_gradients(tf.constant(2.0), tf.constant(1.0), x, y)
    residual = 2.0 * np.array([1.0, 2.0, 3.0]) + 1.0 - np.array([5.0, 8.0, 10.0])
    expected = (np.mean(residual**2), np.mean(2 * residual * [1.0, 2.0, 3.0]),
                np.mean(2 * residual))
    np.testing.assert_allclose([float(t) for t in from_variables], expected, rtol=1e-6)
    np.testing.assert_allclose([float(t) for t in from_tensors], expected, rtol=1e-6)
