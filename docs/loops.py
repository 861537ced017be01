"""Loop forms of the XLA-compiled k-step call (docs/loops.md), per step, on CPU:0.

Every form runs linfit's one step definition (``loss_and_gradients``, through ``train_step``
where the weights are variables) k = 100 times in one ConcreteFunction with everything
captured (the harness's default convention), compiled by XLA; they differ only in the loop
around it:

* tensor trip count: ``tf.range(steps - 1)`` of a captured tensor (linfit's ``train_loop``);
* static trip count: ``tf.range(99)``, a Python int, so XLA sees a constant trip count;
* unrolled x3: three steps per iteration of a static ``tf.range(33)``;
* fully unrolled: a Python ``range(99)``, 100 steps in straight-line code;
* weights carried: W and b carried as loop tensors and assigned to the variables once, at
  the end (the same arithmetic as ``train_step``, on tensors).

JAX's ``jit-loop`` (linfit's ``fori_loop``) runs in the same rounds, so that the ratio to it
is measured side by side. Before timing, every form's W and b after one call must equal
``train_loop``'s (rtol 1e-5, the float32 tolerance of the harness), or the script stops.
The process's ``XLA_FLAGS`` apply to every form and to JAX, and are printed.

    python docs/loops.py                  # n = 1e3, 1e5, 1e6
    python docs/loops.py --sizes 1e5      # one size
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import tensorflow as tf
from _interleaved import per_step_medians, require_same_weights

from linfit.backends import jax as jax_backend
from linfit.backends.tensorflow import loss_and_gradients, train_step
from linfit.data import INITIAL_B, INITIAL_W, make_dataset

# Steps per call: the harness's default k.
K = 100
LEARNING_RATE = 0.1
# The harness's float32 convergence tolerance (linfit.convergence).
RTOL = 1e-5


def tensorflow_forms(x: tf.Tensor, y: tf.Tensor, w: tf.Variable, b: tf.Variable,
                     lr: tf.Variable) -> dict[str, Callable[[], tf.Tensor]]:
    """The loop forms by name, as Python functions of no argument (everything captured)."""
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

    def carried() -> tf.Tensor:
        rate = tf.convert_to_tensor(lr)
        loss, grad_w, grad_b = loss_and_gradients(w, b, x, y)
        w_next, b_next = w - rate * grad_w, b - rate * grad_b
        for _ in tf.range(steps - 1):
            _, grad_w, grad_b = loss_and_gradients(w_next, b_next, x, y)
            w_next, b_next = w_next - rate * grad_w, b_next - rate * grad_b
        w.assign(w_next)
        b.assign(b_next)
        return loss

    return {"tensor trip count": tensor_trip, "static trip count": static_trip,
            "unrolled x3": unrolled_3, "fully unrolled": unrolled, "weights carried": carried}


def calls_for(n_examples: int) -> tuple[dict[str, Callable[[], object]], dict[str, float]]:
    """Each form's call (TensorFlow's compiled, and JAX's jit-loop) and its first-call time.

    Raises:
        SystemExit: when a form's W and b after one call differ from ``train_loop``'s.
    """
    data = make_dataset(n_examples)
    with tf.device("/device:CPU:0"):
        x, y = tf.identity(tf.constant(data.x)), tf.identity(tf.constant(data.y))
        w, b = tf.Variable(INITIAL_W), tf.Variable(INITIAL_B)
        lr = tf.Variable(LEARNING_RATE)
    calls: dict[str, Callable[[], object]] = {}
    first_call: dict[str, float] = {}
    weights: dict[str, tuple[float, float]] = {}
    for name, body in tensorflow_forms(x, y, w, b, lr).items():
        w.assign(INITIAL_W)
        b.assign(INITIAL_B)
        start = time.perf_counter()
        with tf.device("/device:CPU:0"):
            call = tf.function(body, jit_compile=True).get_concrete_function()
            call()
        first_call[name] = time.perf_counter() - start
        weights[name] = float(w.numpy()), float(b.numpy())
        calls[name] = call
    jitted = jax.jit(jax_backend.train_loop)
    args = (jnp.float32(INITIAL_W), jnp.float32(INITIAL_B), jnp.asarray(data.x),
            jnp.asarray(data.y), jnp.float32(LEARNING_RATE), jnp.int32(K))
    start = time.perf_counter()
    w_jax, b_jax, _ = jitted(*args)
    first_call["jax jit-loop"] = time.perf_counter() - start
    weights["jax jit-loop"] = float(w_jax), float(b_jax)
    calls["jax jit-loop"] = lambda: jitted(*args)[2].block_until_ready()
    require_same_weights(n_examples, weights, "tensor trip count", RTOL)
    return calls, first_call


def main() -> None:
    """Print per-step medians, the ratio to JAX's jit-loop and first-call times at each n."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e3,1e5,1e6", help="comma-separated n")
    sizes = [int(float(text)) for text in parser.parse_args().sizes.split(",")]
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}  TensorFlow {tf.__version__}, "
          f"JAX {jax.__version__}, load {os.getloadavg()[0]:.1f}", flush=True)
    for n_examples in sizes:
        calls, first_call = calls_for(n_examples)
        medians = per_step_medians(calls, K)
        for name, median in medians.items():
            print(f"n={n_examples:<9d} {name:18s} {median:9.2f} us/step  "
                  f"{median / medians['jax jit-loop']:5.2f}x JAX   "
                  f"first call {first_call[name]:.2f} s", flush=True)


if __name__ == "__main__":
    main()
