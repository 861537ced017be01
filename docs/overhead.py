"""Where the time of one compiled TensorFlow step goes at small n (docs/overhead.md).

Times, in one process and interleaved round by round (so machine noise hits all alike), the
calls that differ by one layer each, for the ``function`` and ``xla`` variants:

* ``python``: the trainer's own wrapper around the call, a device scope and a lambda;
* ``concrete-identity``: a ConcreteFunction, on the same arguments, that returns x: the
  runtime's cost of a call with no kernel of the step (for comparison);
* ``loop-step``: one step inside the loop variant (closure, k = 100 steps per call), the
  call's cost shared by 100: the step's kernels, as the compiled graph runs them;
* ``concrete``: the step as a ConcreteFunction (W, b captured; x, y, lr arguments);
* ``captured``: the same step through the tf.function (argument binding, trace-cache lookup);
* ``args``: the tf.function with W, b, x, y, lr all arguments, as linfit called it before;
* ``closure``: a ConcreteFunction with everything captured, no argument.

The decomposition of the ``captured`` call (medians): Python = ``python``; kernels =
``loop-step``; executor = ``concrete`` - ``python`` - kernels (the eager op that runs the
function, its graph executor or XLA launch, the outputs); binding and cache lookup =
``captured`` - ``concrete`` (``args`` - ``concrete`` with all five as arguments).

    python docs/overhead.py                  # n = 1e3, 15 rounds of 200 calls
    python docs/overhead.py --n 1e6 --rounds 5 --calls 20
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import time
from collections.abc import Callable

from linfit.backends import get_backend
from linfit.data import DEFAULT_LEARNING_RATE, make_dataset

# Steps per call of the loop whose per-step time stands for the kernels: the harness's k.
LOOP_STEPS = 100


def _per_call(call: Callable[[], object], calls: int) -> float:
    """Seconds per call over ``calls`` back-to-back calls, GC off."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        return (time.perf_counter() - start) / calls
    finally:
        gc.enable()


def candidates(n_examples: int, xla: bool) -> dict[str, Callable[[], object]]:
    """The calls to time, by name (module docstring), on CPU:0."""
    import tensorflow as tf

    from linfit.backends.tensorflow import train_step

    backend = get_backend("tensorflow")
    variant = "xla" if xla else "function"
    data = make_dataset(n_examples)
    trainers = {convention: backend.make_trainer(variant, "CPU:0", data, DEFAULT_LEARNING_RATE,
                                                 convention=convention)
                for convention in backend.conventions(backend.variant(variant))}
    probe = trainers["concrete"]
    with tf.device("/device:CPU:0"):
        identity = tf.function(lambda x, y, lr: x, jit_compile=xla).get_concrete_function(
            probe._x, probe._y, probe._lr)
        step = tf.function(functools.partial(train_step, probe._w, probe._b), jit_compile=xla)
        concrete = step.get_concrete_function(probe._x, probe._y, probe._lr)

    def scoped(fn: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            with tf.device("/device:CPU:0"):
                return fn()
        return call

    x, y, lr = probe._x, probe._y, probe._lr
    calls = {
        "python": scoped(lambda: None),
        "concrete-identity": scoped(lambda: identity(x, y, lr)),
        "concrete": scoped(lambda: concrete(x, y, lr)),
        "captured": scoped(lambda: step(x, y, lr)),
    }
    for convention in ("args", "closure"):
        calls[convention] = trainers[convention].call
    loop = backend.make_trainer(f"{variant}-loop", "CPU:0", data, DEFAULT_LEARNING_RATE,
                                LOOP_STEPS, convention="closure")
    calls["loop-step"] = loop.call
    for call in calls.values():
        call()
    return calls


def main() -> None:
    """Print the medians and the decomposition for function and xla."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e3, help="examples (default 1e3)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=200, help="calls per round and candidate")
    args = parser.parse_args()
    backend = get_backend("tensorflow")
    with backend.session():
        for xla in (False, True):
            calls = candidates(int(args.n), xla)
            times: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(args.rounds):
                for name, call in calls.items():
                    times[name].append(_per_call(call, args.calls))
            median = {name: statistics.median(values) * 1e6 for name, values in times.items()}
            median["loop-step"] /= LOOP_STEPS
            print(f"\n{'xla' if xla else 'function'}, n={args.n:g}: median us per call")
            for name, value in median.items():
                print(f"  {name:18s} {value:9.1f}")
            print("  decomposition of the 'captured' call:")
            print(f"    python                  {median['python']:9.1f}")
            kernels = median["loop-step"]
            print(f"    executor                "
                  f"{median['concrete'] - median['python'] - kernels:9.1f}")
            print(f"    kernels                 {kernels:9.1f}")
            print(f"    binding + cache lookup  {median['captured'] - median['concrete']:9.1f}"
                  f"   (args: {median['args'] - median['concrete']:.1f})")


if __name__ == "__main__":
    main()
