"""The tutorial's model as a Keras 3 model, trained by ``model.fit``: the TensorFlow
backend's ``keras-*`` variants (registry: ``linfit.backends.variants.KERAS_VARIANTS``).

The model holds two weights, W=5 and b=0, predicts ``x * W + b``, and is compiled with the
mean squared error and plain SGD: the arithmetic of the hand-written step. One call is one
``model.fit`` of ``steps_per_call`` full-batch steps: the data set yields the whole of x and
y as one batch (batch size n, nothing shuffled), repeated, so every step is the same
gradient step as the hand-written one. Imported only when a Keras variant is built (Keras
takes seconds to import).
"""

from __future__ import annotations

import os

# Keras 3 runs on the backend KERAS_BACKEND names; these variants are TensorFlow's.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import tensorflow as tf

from linfit._errors import LinfitError
from linfit.backends.base import Device, Trainer, Variant
from linfit.data import INITIAL_B, INITIAL_W, Dataset
from linfit.hlo import HloProgram

__all__ = ["KerasTrainer", "TutorialModel"]

# Where Keras 3 (TensorFlow backend, keras/src/backend/tensorflow/trainer.py _make_function)
# keeps its XLA-compiled step: a free variable of the train function, wrapped by
# functools.wraps (its __wrapped__ is the tf.function). Keras has no public handle on it.
_KERAS_STEP_FUNCTION = "one_step_on_data"

# variant name -> (run_eagerly, jit_compile, steps_per_execution is steps_per_call).
_SETTINGS = {
    "keras-eager": (True, False, False),
    "keras-eager-spe": (True, False, True),
    "keras-function": (False, False, False),
    "keras-function-spe": (False, False, True),
    "keras-xla": (False, True, False),
    "keras-xla-spe": (False, True, True),
}


class TutorialModel(keras.Model):
    """``f(x) = x * W + b`` with W=5, b=0, as the tutorial's ``MyModel`` in Keras 3.

    ``traces`` counts the traces of the training step: Keras runs ``train_step`` in Python at
    every step when eager, and only while tracing when compiled.
    """

    def __init__(self, dtype: str) -> None:
        super().__init__(dtype=dtype)
        self.w = self.add_weight(shape=(), initializer=keras.initializers.Constant(INITIAL_W),
                                 name="w")
        self.b = self.add_weight(shape=(), initializer=keras.initializers.Constant(INITIAL_B),
                                 name="b")
        self.traces = 0

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """The prediction ``x * W + b``."""
        return x * self.w + self.b

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Keras' own step (loss, gradient, SGD update), counting its traces."""
        if not tf.executing_eagerly():
            self.traces += 1
        return super().train_step(data)


class KerasTrainer(Trainer):
    """A Keras variant on one device: each call is ``model.fit`` of ``steps_per_call`` steps."""

    def __init__(self, variant: Variant, device: Device, data: Dataset, learning_rate: float,
                 steps_per_call: int) -> None:
        super().__init__("tensorflow", variant, device, data, steps_per_call)
        if keras.backend.backend() != "tensorflow":
            raise LinfitError(f"the Keras variants run on Keras' TensorFlow backend, but "
                              f"KERAS_BACKEND is {keras.backend.backend()!r}")
        run_eagerly, jit_compile, per_execution = _SETTINGS[variant.name]
        self._scope = f"/device:{device.id}"
        with tf.device(self._scope):
            self._x = tf.identity(tf.constant(data.x))
            self._y = tf.identity(tf.constant(data.y))
            self.model = TutorialModel(data.dtype)
            # A float learning rate would be a float32 variable whatever the model's dtype
            # (Keras' floatx): in float64 that is 0.1 rounded to float32, a step 1.5e-8 longer
            # than the hand-written one's. Keras also takes a callable; this one returns a
            # variable in the data's dtype, so the arithmetic is the hand-written step's.
            self._learning_rate = keras.Variable(learning_rate, dtype=data.dtype,
                                                 trainable=False)
            self.model.compile(optimizer=keras.optimizers.SGD(
                                   learning_rate=lambda: self._learning_rate),
                               # Keras computes a loss in floatx (float32) unless told.
                               loss=keras.losses.MeanSquaredError(dtype=data.dtype),
                               run_eagerly=run_eagerly,
                               jit_compile=jit_compile,
                               steps_per_execution=steps_per_call if per_execution else 1)
        # The whole data set as one batch, again and again: batch size n, no shuffle.
        self._batches = tf.data.Dataset.from_tensors((self._x, self._y)).repeat()
        self._sync = device.kind == "GPU"
        self._start: tuple[tf.Tensor, tf.Tensor] | None = None

    def call(self) -> None:
        with tf.device(self._scope):
            # W and b as the call starts, for last_loss(): two reads, no copy of the data.
            self._start = (tf.identity(self.model.w.value), tf.identity(self.model.b.value))
            self.model.fit(self._batches, epochs=1, steps_per_epoch=self.steps_per_call,
                           verbose=0, shuffle=False)
        if self._sync:
            tf.test.experimental.sync_devices()

    def reset(self) -> None:
        self.model.w.assign(INITIAL_W)
        self.model.b.assign(INITIAL_B)

    def set_learning_rate(self, learning_rate: float) -> None:
        self._learning_rate.assign(learning_rate)

    def weights(self) -> tuple[float, float]:
        return float(self.model.w.numpy()), float(self.model.b.numpy())

    def last_loss(self) -> float:
        if self._start is None:
            raise RuntimeError("last_loss() before the first call()")
        w, b = self._start
        with tf.device(self._scope):
            return float(tf.reduce_mean(tf.square(self._x * w + b - self._y)).numpy())

    @property
    def traces(self) -> int:
        return self.model.traces

    def compiled_hlo(self) -> HloProgram | None:
        """XLA's optimized HLO of Keras' compiled training step, by
        ``experimental_get_compiler_ir((x, y))(stage="optimized_hlo")`` on the tf.function
        Keras compiles with ``jit_compile=True``: one step on one batch. Keras runs it once
        per step; with steps_per_execution its loop over the steps is a ``tf.while_loop``
        in a tf.function that XLA does not compile, so no loop is in the HLO.

        Keras has no public handle on that tf.function: it is found among the free
        variables of ``model.train_function`` (:data:`_KERAS_STEP_FUNCTION`).

        Raises:
            LinfitError: where this Keras keeps its step elsewhere.
        """
        if not self.model.jit_compile:
            return None
        train_function = self.model.train_function
        if train_function is None:
            raise LinfitError("Keras' train function is not made yet: call() first")
        free = dict(zip(train_function.__code__.co_freevars,
                        (cell.cell_contents for cell in train_function.__closure__ or ()),
                        strict=True))
        step = getattr(free.get(_KERAS_STEP_FUNCTION), "__wrapped__", None)
        if step is None or not hasattr(step, "experimental_get_compiler_ir"):
            raise LinfitError(f"Keras {keras.__version__} keeps no tf.function named "
                              f"{_KERAS_STEP_FUNCTION} in its train function: its HLO "
                              "cannot be read")
        with tf.device(self._scope):
            text = step.experimental_get_compiler_ir((self._x, self._y))(stage="optimized_hlo")
        return HloProgram(text, 1, None, "Keras one_step_on_data, tf.function(jit_compile=True)")

    def result_device(self) -> str:
        if self._start is None:
            raise RuntimeError("result_device() before the first call()")
        spec = tf.DeviceSpec.from_string(self.model.w.value.device)
        return f"{spec.device_type}:{spec.device_index}"
