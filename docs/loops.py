"""Loop forms of the XLA-compiled k-step call (docs/loops.md), per step, on CPU:0.

Every form runs linfit's one step definition (``train_step``) k = 100 times in one
ConcreteFunction with everything captured (the harness's default convention), compiled by
XLA; they differ only in the loop around it:

* tensor trip count: ``tf.range(steps - 1)`` of a captured tensor (linfit's ``train_loop``);
* static trip count: ``tf.range(99)``, a Python int, so XLA sees a constant trip count;
* unrolled x3: three steps per iteration of a static ``tf.range(33)``;
* fully unrolled: a Python ``range(99)``, 100 steps in straight-line code.

    python docs/loops.py            # n = 1e3, 1e5, 1e6
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import tensorflow as tf

from linfit.backends.tensorflow import train_step
from linfit.data import make_dataset

# Steps per call: the harness's default k.
K = 100
# Rounds per form; each round times enough calls to last about 20 ms.
ROUNDS = 15
ROUND_SECONDS = 0.02


def per_step(call: Callable[[], object]) -> float:
    """Median microseconds per step over ROUNDS rounds, GC off."""
    for _ in range(3):
        call()
    start = time.perf_counter()
    call()
    calls = max(1, int(ROUND_SECONDS / (time.perf_counter() - start)))
    samples = []
    gc.disable()
    try:
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for _ in range(calls):
                call()
            samples.append((time.perf_counter() - start) / calls)
    finally:
        gc.enable()
    return statistics.median(samples) / K * 1e6


def forms(n_examples: int) -> dict[str, Callable[[], tf.Tensor]]:
    """The loop forms by name, as Python functions of no argument (everything captured)."""
    data = make_dataset(n_examples)
    with tf.device("/device:CPU:0"):
        x, y = tf.identity(tf.constant(data.x)), tf.identity(tf.constant(data.y))
        w, b, lr = tf.Variable(5.0), tf.Variable(0.0), tf.Variable(0.1)
        steps = tf.constant(K)

    def tensor_trip() -> tf.Tensor:
        loss = train_step(w, b, x, y, lr)
        for _ in tf.range(steps - 1):
            train_step(w, b, x, y, lr)
        return loss

    def static_trip() -> tf.Tensor:
        loss = train_step(w, b, x, y, lr)
        for _ in tf.range(K - 1):
            train_step(w, b, x, y, lr)
        return loss

    def unrolled_3() -> tf.Tensor:
        loss = train_step(w, b, x, y, lr)
        for _ in tf.range((K - 1) // 3):
            for _ in range(3):
                train_step(w, b, x, y, lr)
        return loss

    def unrolled() -> tf.Tensor:
        loss = train_step(w, b, x, y, lr)
        for _ in range(K - 1):
            train_step(w, b, x, y, lr)
        return loss

    return {"tensor trip count": tensor_trip, "static trip count": static_trip,
            "unrolled x3": unrolled_3, "fully unrolled": unrolled}


def main() -> None:
    """Print per-step medians and compile times of every form at each n."""
    for n_examples in (1_000, 100_000, 1_000_000):
        for name, body in forms(n_examples).items():
            start = time.perf_counter()
            with tf.device("/device:CPU:0"):
                call = tf.function(body, jit_compile=True).get_concrete_function()
                call()
            compiled = time.perf_counter() - start
            print(f"n={n_examples:<9d} {name:18s} {per_step(call):9.2f} us/step   "
                  f"first call {compiled:.2f} s", flush=True)


if __name__ == "__main__":
    main()
