"""Peak memory per variant, each cell in a fresh process: TensorFlow's hand-written step,
Keras' ``model.fit`` variants and JAX, at n=1e6 and 1e7; and what Keras costs over the
hand-written step (issue 18).

    python bench/peak_memory.py                              # n = 1e6 and 1e7, every variant
    python bench/peak_memory.py --sizes 1e6                  # what the shared 2-core VM ran
    python bench/peak_memory.py --backends jax --devices GPU:0   # on a GPU

Each cell runs in a child process of its own (``--cell BACKEND VARIANT N DEVICE``): it imports
its framework and linfit's backend and lists the devices, makes the data (their
own peak, reported apart: drawn in float64, the same for every variant, and at n=1e7 higher
than any trainer's), then starts a :class:`linfit.memory.PeakWatch` (the kernel's high-water
mark of resident memory reset to what the process holds now), builds the trainer, makes the
first call (trace, compile) and :data:`CALLS` more, and reads the watch. So each figure is
what the cell added over a process that has the framework loaded and nothing else: no
earlier cell's caches, compiled programs or allocator pools are in the baseline, as they are
in ``pytest bench/``'s ``peak_rss_bytes`` column. What the framework's import itself costs is
in neither.

Every child has a time limit (:data:`CELL_TIMEOUT_SECONDS`), its stderr is kept for the
message of a cell that fails, and it is gone when its cell returns, also on Ctrl-C or SIGTERM.
Memory figures do not depend on the machine's load, but a shared machine may be short of
memory: the script prints, it writes no file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from linfit._errors import LinfitError
from linfit.backends.base import DEFAULT_STEPS_PER_CALL
from linfit.backends.variants import JAX_VARIANTS, KERAS_VARIANTS, TENSORFLOW_STEP_VARIANTS
from linfit.harness import parse_sizes, sigterm_as_interrupt

# The cells' variants, per backend: the hand-written TensorFlow step, Keras, JAX.
VARIANTS = {"tensorflow": (*TENSORFLOW_STEP_VARIANTS, *KERAS_VARIANTS),
            "jax": tuple(JAX_VARIANTS)}
# Each Keras variant against the hand-written variant that does the same per call: op by op
# (eager), one compiled step per call, or k steps in one compiled call (-spe: Keras'
# steps_per_execution; the hand-written loop variants).
KERAS_COUNTERPART = {"keras-eager": "eager", "keras-eager-spe": "eager",
                     "keras-function": "function", "keras-xla": "xla",
                     "keras-function-spe": "function-loop", "keras-xla-spe": "xla-loop"}
DEFAULT_SIZES = "1e6,1e7"
# Calls after the first: enough for an allocator to reach its steady state (the harness warms
# up with 3); the peak of a cell is in its first calls, not in the thousandth.
CALLS = 5
# A cell's child: importing TensorFlow (~10 s on the shared VM), the data at 1e7 and
# Keras' first fit; far more than any of these needs, and a hung child is still ended.
CELL_TIMEOUT_SECONDS = 600.0
# Lines of a failed child's stderr in its message.
STDERR_TAIL_LINES = 3


def measure_cell(backend: str, variant: str, n_examples: int, device: str) -> dict[str, Any]:
    """Run one cell in this process (the child's side) and return what it added.

    Returns:
        ``host_bytes`` and ``device_bytes`` (None where unknown) from the trainer's build to
        its last call, ``data_bytes``: the peak making the data added, and ``baseline_bytes``:
        the resident memory the process held before the cell (the framework loaded).
    """
    from linfit.backends import get_backend
    from linfit.data import DEFAULT_LEARNING_RATE, DEFAULT_SEED, make_dataset
    from linfit.memory import PeakWatch, device_meter, resident_bytes

    chosen = get_backend(backend)
    target = chosen.device(device)  # imports and starts the framework: the baseline
    steps_per_call = DEFAULT_STEPS_PER_CALL if chosen.variant(variant).loop else 1
    baseline = resident_bytes()
    # The data first, on their own watch: drawing them in float64 peaks at several times
    # their size, the same for every variant, and at n=1e7 above any trainer's own peak.
    data_watch = PeakWatch()
    data = make_dataset(n_examples, "float32", DEFAULT_SEED)
    data_peak = data_watch.read()
    watch = PeakWatch(device_meter(backend, target.id, target.kind))
    trainer = chosen.make_trainer(variant, target, data, DEFAULT_LEARNING_RATE, steps_per_call)
    for _ in range(1 + CALLS):
        trainer.call()
    peak = watch.read()
    return {"host_bytes": peak.host_bytes, "device_bytes": peak.device_bytes,
            "data_bytes": data_peak.host_bytes, "baseline_bytes": baseline}


def run_child(backend: str, variant: str, n_examples: int, device: str) -> dict[str, Any]:
    """One cell in a fresh process; ``error`` says why where it failed."""
    argv = [sys.executable, __file__, "--cell", backend, variant, str(n_examples), device]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=CELL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # subprocess.run killed the child before raising; so it does on Ctrl-C.
        return {"error": f"timed out after {CELL_TIMEOUT_SECONDS:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
        return {"error": f"exit status {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _size(n_examples: int) -> str:
    """``1e6`` for a power of ten, else the number."""
    exponent = len(str(n_examples)) - 1
    return f"1e{exponent}" if n_examples == 10 ** exponent and exponent > 1 else str(n_examples)


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f} MB"


def _ratio(keras: float | None, hand_written: float | None) -> str:
    if keras is None or hand_written is None or not hand_written > 0:
        return "-"
    return f"{keras / hand_written:.2f}x"


def render(results: dict[tuple[str, str, int], dict[str, Any]], sizes: Sequence[int],
           device: str) -> str:
    """The table of every cell, then the Keras/hand-written ratios per size."""
    lines = [f"peak memory each cell's trainer added on {device} (host resident memory; device "
             f"memory where measured), a fresh process per cell, {1 + CALLS} calls, after its "
             "data were made", ""]
    head = f"{'backend':<11}{'variant':<20}" + "".join(f"{'n=' + _size(n):>26}" for n in sizes)
    lines += [head, "-" * len(head)]
    for backend, variants in VARIANTS.items():
        for variant in variants:
            cells = [results.get((backend, variant, n)) for n in sizes]
            if all(cell is None for cell in cells):
                continue
            texts = []
            for cell in cells:
                if cell is None or "error" in cell:
                    texts.append("failed" if cell else "-")
                else:
                    device_text = (f" / {_mb(cell['device_bytes'])}"
                                   if cell["device_bytes"] is not None else "")
                    texts.append(_mb(cell["host_bytes"]) + device_text)
            lines.append(f"{backend:<11}{variant:<20}" + "".join(f"{t:>26}" for t in texts))
    drawn = {n: max((cell.get("data_bytes") or 0 for (_, _, size), cell in results.items()
                     if size == n), default=0) for n in sizes}
    lines += ["", "making the data (float64 draws, kept as float32; before the watch above): "
              + ", ".join(f"n={_size(n)} {_mb(drawn[n])}" for n in sizes)]
    lines += ["", "Keras / hand-written (host peak added):"]
    for keras, hand in KERAS_COUNTERPART.items():
        ratios = []
        for n in sizes:
            k = results.get(("tensorflow", keras, n)) or {}
            h = results.get(("tensorflow", hand, n)) or {}
            ratios.append(_ratio(k.get("host_bytes"), h.get("host_bytes")))
        lines.append(f"  {keras:<20} / {hand:<15}" + "".join(f"{r:>12}" for r in ratios))
    failed = [f"{b} {v} n={_size(n)}: {cell['error']}" for (b, v, n), cell in results.items()
              if "error" in cell]
    if failed:
        lines += ["", "failed:", *(f"  {line}" for line in failed)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="n_examples, comma-separated "
                        f"(default: {DEFAULT_SIZES})")
    parser.add_argument("--backends", default="tensorflow,jax",
                        help="tensorflow (its step and Keras), jax (default: both)")
    parser.add_argument("--devices", default="CPU:0", help="the device (default: CPU:0)")
    parser.add_argument("--cell", nargs=4, metavar=("BACKEND", "VARIANT", "N", "DEVICE"),
                        help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args(argv)
    if args.cell:
        backend, variant, n_examples, device = args.cell
        print(json.dumps(measure_cell(backend, variant, int(n_examples), device)))
        return 0
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in backends if name not in VARIANTS]
    try:
        sizes = parse_sizes(args.sizes)
        if unknown or not backends:
            raise LinfitError(f"--backends {args.backends!r}: valid are "
                              f"{', '.join(VARIANTS)}, comma-separated")
    except LinfitError as error:
        # parse_sizes names the harness's option; this script's is --sizes.
        message = str(error).replace("--linfit-sizes/LINFIT_SIZES", "--sizes")
        print(f"peak_memory.py: error: {message}", file=sys.stderr)
        return 2
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    with sigterm_as_interrupt():
        for n_examples in sizes:
            for backend in backends:
                for variant in VARIANTS[backend]:
                    cell = run_child(backend, variant, n_examples, args.devices)
                    results[backend, variant, n_examples] = cell
                    shown = cell.get("error") or _mb(cell.get("host_bytes"))
                    print(f"{backend} {variant} n={_size(n_examples)}: {shown}",
                          file=sys.stderr, flush=True)
    print(render(results, sizes, args.devices))
    return 1 if any("error" in cell for cell in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

