"""JAX loop forms of the k-step call, per step, on one device (issue 12, item 4).

On a GPU, linfit's ``jit-loop`` (a ``lax.fori_loop`` whose trip count is an array) costs
25-55 µs per iteration at small n: each iteration of an XLA while loop with a dynamic trip
count reads the condition back to the host. A static trip count lets XLA know the loop's
length, and unrolling lets it launch several steps' kernels per iteration (and, on a GPU,
capture them in one command buffer). Every form runs linfit's one JAX step definition
(``linfit.backends.jax.train_step``) k = 100 times in one jitted call:

* ``fori_loop``, trip count an array: linfit's ``jit-loop``;
* ``fori_loop``, trip count a Python int (static);
* ``fori_loop(..., unroll=u)``, static, for each u of ``--unroll``;
* one jitted step called k times from Python: the single-call reference.

Before timing, every form's W and b must equal ``jit-loop``'s (rtol 1e-5), or the script
stops. Timing: interleaved rounds (``_interleaved.py``), ``block_until_ready``
before the clock is read; median per step.

    python docs/jax_loops.py                         # the first GPU, else the CPU
    python docs/jax_loops.py --platform cpu --sizes 1e3,1e5 --unroll 3,11,33
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import jax
import numpy as np
from _interleaved import per_step_medians, require_same_weights
from jax import lax

from linfit.backends.jax import train_loop, train_step
from linfit.data import INITIAL_B, INITIAL_W, make_dataset

K = 100
LEARNING_RATE = 0.1
# The harness's float32 convergence tolerance (linfit.convergence).
RTOL = 1e-5


def static_loop(w: jax.Array, b: jax.Array, x: jax.Array, y: jax.Array, learning_rate: jax.Array,
                *, unroll: int = 1) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``train_loop`` with the trip count K - 1 a Python int, unrolled ``unroll`` times."""
    w, b, loss = train_step(w, b, x, y, learning_rate)

    def one_more(_: jax.Array, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        w_next, b_next, _ = train_step(*state, x, y, learning_rate)
        return w_next, b_next

    w, b = lax.fori_loop(0, K - 1, one_more, (w, b), unroll=unroll)
    return w, b, loss


def forms(device: jax.Device, n_examples: int,
          unrolls: list[int]) -> tuple[dict[str, Callable[[], object]], dict[str, float]]:
    """Each form's call on ``device`` and its first-call time (trace, compile, one call).

    Raises:
        SystemExit: when a form's W and b differ from ``jit-loop``'s.
    """
    data = make_dataset(n_examples)
    x, y = jax.device_put(data.x, device), jax.device_put(data.y, device)
    w0, b0, lr = (jax.device_put(np.float32(v), device)
                  for v in (INITIAL_W, INITIAL_B, LEARNING_RATE))
    steps = jax.device_put(np.int32(K), device)
    jitted = {"fori_loop, array trip count (jit-loop)": (jax.jit(train_loop), (steps,)),
              "fori_loop, static trip count": (jax.jit(static_loop), ())}
    for unroll in unrolls:
        jitted[f"fori_loop, static, unroll={unroll}"] = (
            jax.jit(partial(static_loop, unroll=unroll)), ())
    calls: dict[str, Callable[[], object]] = {}
    first: dict[str, float] = {}
    weights: dict[str, tuple[float, float]] = {}
    for name, (fn, extra) in jitted.items():
        start = time.perf_counter()
        w, b, _ = jax.block_until_ready(fn(w0, b0, x, y, lr, *extra))
        first[name] = time.perf_counter() - start
        weights[name] = float(w), float(b)
        calls[name] = lambda fn=fn, extra=extra: jax.block_until_ready(
            fn(w0, b0, x, y, lr, *extra))
    step = jax.jit(train_step)

    def k_single_calls() -> object:
        w, b = w0, b0
        for _ in range(K):
            w, b, _ = step(w, b, x, y, lr)
        return jax.block_until_ready(w)

    start = time.perf_counter()
    k_single_calls()
    first["jit, one call per step"] = time.perf_counter() - start
    calls["jit, one call per step"] = k_single_calls
    require_same_weights(n_examples, weights, next(iter(weights)), RTOL)
    return calls, first


def main() -> None:
    """Print per-step medians and first-call times of every form at each n."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=("gpu", "cpu"),
                        help="default: gpu where JAX sees one, else cpu")
    parser.add_argument("--sizes", default="1e3,1e5,1e6", help="comma-separated n")
    parser.add_argument("--unroll", default="3,11,33,99",
                        help="comma-separated unroll factors of the static loop")
    args = parser.parse_args()
    platform = args.platform or ("gpu" if any(d.platform == "gpu" for d in jax.devices())
                                 else "cpu")
    device = jax.devices(platform)[0]
    unrolls = [int(text) for text in args.unroll.split(",")]
    print(f"JAX {jax.__version__} on {device.device_kind} ({platform})", flush=True)
    for n_examples in (int(float(text)) for text in args.sizes.split(",")):
        calls, first = forms(device, n_examples, unrolls)
        for name, median in per_step_medians(calls, K).items():
            print(f"n={n_examples:<9d} {name:40s} {median:9.2f} us/step   "
                  f"first call {first[name]:.2f} s", flush=True)


if __name__ == "__main__":
    main()
