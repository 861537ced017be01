"""Test-only: every TensorFlow variant does 10% more real work under the same name, for
``linfit ab`` (issue 11): the A/B figures' "real 10% slowdown", and tests/test_ab_*.py.

Loaded into one side's worker only, by that side's settings::

    linfit ab --side "base:" --side "slow: LINFIT_WORKER_PLUGINS=ab_slower_step PYTHONPATH=tests"

Never imported by linfit. Every variant (eager, function, xla, and the loop variants,
whose call runs k steps) runs its whole call twice at every tenth call: 10% more of all the
work a call does, dispatch included. The worker's sample is 10 consecutive calls
(``CALLS_PER_SAMPLE`` in linfit/ab/coordinator.py), and any 10 consecutive calls hold
exactly one tenth call, so every sample does 11 calls' work where it reports 10. The other
ways fall short: extra data costs nothing where a step is all dispatch (n=1e3), and 10% more
loop steps (as tests/slower_step.py does with 25%) leave the per-call dispatch as it was,
a 3% change for xla-loop at n=1e3 on the 2-core VM.

The weights still converge (110 steps from the start are as converged as 100).
"""

from __future__ import annotations

from linfit.backends.tensorflow import _TensorFlowTrainer

EXTRA_WORK = 0.10
# One doubled call in this many: 1 / EXTRA_WORK.
EVERY_NTH_CALL = round(1 / EXTRA_WORK)
_original_call = _TensorFlowTrainer.call


def _call_with_every_tenth_twice(self: _TensorFlowTrainer) -> None:
    _original_call(self)
    calls = getattr(self, "_ab_calls", 0) + 1
    self._ab_calls = calls
    if calls % EVERY_NTH_CALL == 0:
        _original_call(self)


_TensorFlowTrainer.call = _call_with_every_tenth_twice
