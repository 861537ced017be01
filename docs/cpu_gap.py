"""Reproduce docs/cpu-gap.md: variants against the read and dispatch floors, in one process.

    python docs/cpu_gap.py --n 1e7 --variants xla,xla-loop,function,function-loop
    python docs/cpu_gap.py --n 1e3 --variants tensorflow:xla-loop,jax:jit-loop --k 100
    python docs/cpu_gap.py --n 1e7 --hlo /tmp/hlo   # also dump and summarise the optimised HLO

Every variant and the read probes run interleaved, round after round, so that a change in the
machine's load hits them alike. XLA_FLAGS is read once per process: compare flags by running
the script once per setting, and compare ratios to the floor measured in the same process.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import numpy as np

from linfit.backends import get_backend
from linfit.data import make_dataset
from linfit.environment import env_flags
from linfit.floors import DEFAULT_PROBE_ELEMENTS

# An HLO instruction line: name, shape, opcode, operands.
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\S+) ([\w-]+)\((.*?)\)(?:,|$)")


def big_array_traffic(hlo: str, n: int) -> dict[str, int]:
    """Count, outside fused computations, the kernels that read or write an f32[n] array."""
    shapes: dict[str, str] = {}
    kernels = []
    for line in hlo.splitlines():
        match = INSTRUCTION.match(line)
        if match:
            name, shape, opcode, operands = match.groups()
            shapes[name] = shape.split("{")[0]
            if opcode == "fusion" and "calls=" in line:
                kernels.append((shape.split("{")[0], re.findall(r"%(\S+?)[,)]?(?:\s|$)",
                                                                 operands + " ")))
    big = f"f32[{n}]"
    return {
        "kernels": len(kernels),
        "kernels reading f32[n]": sum(any(shapes.get(o) == big for o in ops)
                                      for _, ops in kernels),
        "f32[n] operands read": sum(sum(shapes.get(o) == big for o in ops) for _, ops in kernels),
        "f32[n] written": sum(shape == big for shape, _ in kernels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e7)
    parser.add_argument("--variants", default="xla,xla-loop,function,function-loop",
                        help="comma-separated [backend:]variant (backend default tensorflow)")
    parser.add_argument("--k", type=int, default=20, help="steps_per_call of loop variants")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--probe-elements", type=int, default=DEFAULT_PROBE_ELEMENTS)
    parser.add_argument("--hlo", type=Path, help="write the optimised HLO of xla and xla-loop")
    args = parser.parse_args()
    n = int(args.n)
    data = make_dataset(n)
    tensorflow = get_backend("tensorflow")
    cpu = tensorflow.device("CPU:0")
    calls = {}
    for spec in args.variants.split(","):
        backend_name, _, variant = spec.rpartition(":")
        backend = get_backend(backend_name or "tensorflow")
        k = args.k if backend.variants[variant].loop else 1
        trainer = backend.make_trainer(variant, "CPU:0", data, 0.1, k)
        trainer.call()
        calls[f"{backend.name}:{variant}"] = (trainer.call, k)
    big = np.random.default_rng(0).random(args.probe_elements, dtype=np.float32)
    scale = data.nbytes / big.nbytes  # seconds of one read of x and y at that bandwidth
    calls["read floor: numpy sum"] = (big.sum, 1 / scale)
    calls["read floor: tensorflow sum"] = (tensorflow.read_probe(cpu, args.probe_elements),
                                           1 / scale)
    backends = sorted({name.split(":")[0] for name in calls if ":" in name and "floor" not in name})
    for name in backends:
        probe = get_backend(name).dispatch_probe(get_backend(name).device("CPU:0"))
        calls[f"dispatch floor: {name}"] = (probe, 1)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, (call, per) in calls.items():
            # Microsecond calls are timed in batches of 200; a 1 GiB read once.
            small = name.startswith("dispatch") or (n < 10**6 and "floor" not in name)
            repeat = 200 if small else 1
            start = time.perf_counter()
            for _ in range(repeat):
                call()
            times[name].append((time.perf_counter() - start) / repeat / per)
    medians = {name: statistics.median(t) for name, t in times.items()}
    read_floor = min(v for name, v in medians.items() if name.startswith("read floor"))
    print(f"n={n:g} float32, {data.nbytes / 1e6:g} MB of x and y; {args.rounds} rounds; "
          f"XLA_FLAGS={env_flags()['xla_flags']!r}")
    for name, median in medians.items():
        q1, q3 = np.percentile(times[name], [25, 75])
        line = f"  {name:28s} {median * 1e3:9.4f} ms  IQR {(q3 - q1) * 1e3:7.4f}"
        if "floor" not in name:
            # The row's floor, as floor_columns computes it: read once, or its share of a call.
            backend_name, k = name.split(":")[0], calls[name][1]
            floor = max(read_floor, medians[f"dispatch floor: {backend_name}"] / k)
            line += f" per step  floor {floor * 1e3:.4f} ms  {median / floor:6.2f}x the floor"
        print(line)
    if args.hlo:
        import tensorflow as tf

        from linfit.backends.tensorflow import train_loop, train_step

        args.hlo.mkdir(parents=True, exist_ok=True)
        x, y = tf.constant(data.x), tf.constant(data.y)
        w, b, lr = tf.Variable(5.0), tf.Variable(0.0), tf.constant(0.1)
        for name, fn, extra in (("xla", train_step, ()),
                                ("xla-loop", train_loop, (tf.constant(args.k),))):
            hlo = tf.function(fn, jit_compile=True).experimental_get_compiler_ir(
                w, b, x, y, lr, *extra)(stage="optimized_hlo")
            (args.hlo / f"{name}.txt").write_text(hlo)
            print(f"  HLO {name}: {big_array_traffic(hlo, n)} -> {args.hlo / name}.txt")


if __name__ == "__main__":
    main()
