"""The test-only plugin that gives one A/B side 10% more work (tests/ab_slower_step.py)."""

import functools
import sys
import textwrap
from pathlib import Path

import background
import pytest

SCRIPT = textwrap.dedent("""
    import ab_slower_step  # patches the TensorFlow trainer for this process only
    from linfit.backends import get_backend
    from linfit.data import make_dataset

    backend = get_backend("tensorflow")
    data = make_dataset(1000)
    single = backend.make_trainer("xla", "CPU:0", data, 0.1)
    loop = backend.make_trainer("xla-loop", "CPU:0", data, 0.1, steps_per_call=2)
    reference = backend.make_trainer("function-loop", "CPU:0", data, 0.1, steps_per_call=11)
    for _ in range(10):  # the tenth runs twice: 11 steps
        single.call()
    for _ in range(10):  # 2 steps a call, the tenth call twice: 22 steps
        loop.call()
    eleven = backend.make_trainer("function-loop", "CPU:0", data, 0.1, steps_per_call=11)
    eleven.call()  # 11 steps
    for _ in range(2):  # 11 steps a call, no tenth call: 22 steps
        reference.call()
    print(*single.weights(), *eleven.weights(), *loop.weights(), *reference.weights())
""")


def start_script() -> None:
    """Run SCRIPT beside the session (tests/background.py)."""
    background.queue("ab_slower_step script", functools.partial(
        background.run, [sys.executable, "-c", SCRIPT], timeout=120, cwd=Path(__file__).parent))


@pytest.mark.background.with_args(start_script)
def test_every_tenth_call_runs_twice_in_every_variant(tf_backend):
    done = background.result("ab_slower_step script", start_script)
    assert done.returncode == 0, done.stderr[-2000:]
    single_w, single_b, eleven_w, eleven_b, loop_w, loop_b, reference_w, reference_b = map(
        float, done.stdout.split())
    # Ten calls of one step did 11 steps; ten calls of two steps did 22.
    assert (single_w, single_b) == pytest.approx((eleven_w, eleven_b), rel=1e-6)
    assert (loop_w, loop_b) == pytest.approx((reference_w, reference_b), rel=1e-6)
    assert single_w != pytest.approx(loop_w, rel=1e-6)
