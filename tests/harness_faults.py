"""Test-only faults for tests/test_harness.py, loaded into a ``pytest bench/`` subprocess with
``-p harness_faults`` (tests/ on PYTHONPATH). Never imported by linfit.

It swaps the TensorFlow backend for one with two broken variants beside the real five:

- ``retrace``: the step in a tf.function called with a Python bool that alternates between
  calls, so it is traced twice, as a step passed a changing Python value is;
- ``slow-lr``: the step in a tf.function run at a tenth of the learning rate, so 100 steps
  leave W about 0.26 short of the solution and the convergence check must fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import tensorflow as tf

import linfit.backends.tensorflow as tensorflow_module
from linfit.backends import Device, Trainer, Variant
from linfit.backends.tensorflow import VARIANTS, TensorFlowBackend, _TensorFlowTrainer, train_step
from linfit.data import Dataset


class _RetracingTrainer(_TensorFlowTrainer):
    def __init__(self, variant: Variant, device: Device, data: Dataset, learning_rate: float,
                 steps_per_call: int, convention: str) -> None:
        super().__init__(variant, device, data, learning_rate, steps_per_call, convention)

        def step(w, b, x, y, learning_rate, odd_call):  # odd_call: only makes it retrace
            return train_step(w, b, x, y, learning_rate)

        self._traced = tf.function(step)
        self._calls = 0

    def call(self) -> None:
        self._calls += 1
        with tf.device(self._scope):
            self._loss = self._traced(self._w, self._b, self._x, self._y, self._lr,
                                      self._calls % 2 == 1)


class _SlowTrainer(_TensorFlowTrainer):
    def set_learning_rate(self, learning_rate: float) -> None:
        super().set_learning_rate(learning_rate / 10)


_FAULTY = {
    "retrace": (_RetracingTrainer, "test only: traced twice"),
    "slow-lr": (_SlowTrainer, "test only: a tenth of the learning rate"),
}


class _FaultyBackend(TensorFlowBackend):
    variants: ClassVar[Mapping[str, Variant]] = {
        **VARIANTS,
        **{name: Variant(name, compiled=True, xla=False, loop=False, description=description)
           for name, (_, description) in _FAULTY.items()},
    }

    def _make_trainer(self, variant: Variant, device: Device, data: Dataset,
                      learning_rate: float, steps_per_call: int, convention: str = "") -> Trainer:
        if variant.name not in _FAULTY:
            return super()._make_trainer(variant, device, data, learning_rate, steps_per_call,
                                         convention)
        return _FAULTY[variant.name][0](variant, device, data, learning_rate, steps_per_call,
                                        convention or self.conventions(variant)[0])


# get_backend("tensorflow") returns the module's BACKEND; it has not been called yet when
# pytest loads -p plugins.
tensorflow_module.BACKEND = _FaultyBackend()
