"""Test-only: makes TensorFlow's loop variants do 25% more real work under the same names, so
a run with it can be compared with a normal run (``linfit compare`` must call it slower).

Loaded into ``pytest bench/`` with ``-p slower_step`` (tests/ on PYTHONPATH). Never imported
by linfit. Each call of ``function-loop`` and ``xla-loop`` then runs 125 training steps where
it reports 100 (``steps_per_call`` is unchanged), so its time per step is 1.25 times the real
one wherever the per-call dispatch is small against 100 steps. More steps of the same step
need no tuning to the machine: an extra pass over x and y instead was swallowed by XLA's
fusion or hidden by the caches. The weights still converge (125 steps from the start are as
converged as 100). ``LINFIT_TEST_EXTRA_WORK`` sets the fraction (default 0.25).
"""

from __future__ import annotations

import os

import tensorflow as tf

from linfit.backends.tensorflow import _TensorFlowTrainer

EXTRA_WORK = float(os.environ.get("LINFIT_TEST_EXTRA_WORK", "0.25"))
_original_init = _TensorFlowTrainer.__init__


def _init_with_more_steps(self: _TensorFlowTrainer, *args: object, **kwargs: object) -> None:
    _original_init(self, *args, **kwargs)
    if self.variant.loop:
        with tf.device(self._scope):
            self._steps = tf.constant(round(self.steps_per_call * (1 + EXTRA_WORK)), tf.int32)


_TensorFlowTrainer.__init__ = _init_with_more_steps
