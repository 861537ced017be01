"""The test-only plugin that makes loop variants do 25% more work (tests/slower_step.py)."""

import functools
import sys
import textwrap
from pathlib import Path

import background
import pytest

SCRIPT = textwrap.dedent("""
    import slower_step  # patches the TensorFlow trainer for this process only
    from linfit.backends import get_backend
    from linfit.data import make_dataset

    backend = get_backend("tensorflow")
    data = make_dataset(1000)
    loop = backend.make_trainer("xla-loop", "CPU:0", data, 0.1, steps_per_call=4)
    single = backend.make_trainer("xla", "CPU:0", data, 0.1)
    loop.call()
    for _ in range(5):  # 4 steps * 1.25
        single.call()
    print(loop.steps_per_call, *loop.weights(), *single.weights())
""")


def start_script() -> None:
    """Run SCRIPT beside the session (tests/background.py)."""
    background.queue("slower_step script", functools.partial(
        background.run, [sys.executable, "-c", SCRIPT], timeout=120, cwd=Path(__file__).parent))


@pytest.mark.background.with_args(start_script)
def test_a_loop_call_runs_a_quarter_more_steps_than_it_reports(tf_backend):
    done = background.result("slower_step script", start_script)
    assert done.returncode == 0, done.stderr[-2000:]
    steps_per_call, loop_w, loop_b, single_w, single_b = done.stdout.split()
    assert steps_per_call == "4"
    assert float(loop_w) == pytest.approx(float(single_w), rel=1e-6)
    assert float(loop_b) == pytest.approx(float(single_b), rel=1e-6)
