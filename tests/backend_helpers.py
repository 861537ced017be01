"""Helpers the backend tests share (tests/ is on sys.path under pytest): the contract suite,
tests/test_backend_contract.py, and the backend-specific remainders, tests/test_backends_*.py.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable

import background
import numpy as np
import pytest

from linfit.backends import (
    BACKENDS,
    VARIANTS_BY_BACKEND,
    Backend,
    Device,
    Variant,
    get_backend,
    installed_backends,
)
from linfit.data import INITIAL_B, INITIAL_W, Dataset

# The backend tests' data size and learning rate: the tutorial's.
N_EXAMPLES = 1000
LEARNING_RATE = 0.1

# Steps per call for the loop variants in tests: small, so a test's 100 steps are 10 calls.
LOOP_STEPS_PER_CALL = 10

# The backend every other backend's CPU eager run must agree with (the harness's default).
REFERENCE_BACKEND = "tensorflow"


def steps_per_call(backend: Backend, variant: str) -> int:
    """LOOP_STEPS_PER_CALL for a loop variant, 1 otherwise."""
    return LOOP_STEPS_PER_CALL if backend.variants[variant].loop else 1


def expected_traces(variant: Variant) -> int:
    """What ``traces`` must read after any number of calls: 1 compiled, 0 eager."""
    return 1 if variant.compiled else 0


def framework_missing(backend_name: str) -> str:
    """The skip reason for a backend whose framework is not installed."""
    return f"{BACKENDS[backend_name][1]} is not installed"


def backend_or_skip(backend_name: str) -> Backend:
    """The backend; skips the calling test, with the reason, when its framework is absent."""
    pytest.importorskip(BACKENDS[backend_name][1], reason=framework_missing(backend_name))
    return get_backend(backend_name)


def backend_cases(select: Callable[[str], bool] = lambda name: True) -> list:
    """One pytest.param per backend ``select`` keeps; an absent framework's is a skip."""
    return [pytest.param(name, id=name, marks=() if name in installed_backends() else
                         pytest.mark.skip(reason=framework_missing(name)))
            for name in BACKENDS if select(name)]


def variant_cases(select: Callable[[str, Variant], bool] = lambda name, variant: True) -> list:
    """One pytest.param (backend name, variant name) per variant of every backend that
    ``select`` keeps, read from the registries (which import no framework); an absent
    framework gives one skipped case, with the reason."""
    cases = []
    for name in BACKENDS:
        if name not in installed_backends():
            cases.append(pytest.param(name, None, id=name,
                                      marks=pytest.mark.skip(reason=framework_missing(name))))
            continue
        cases += [pytest.param(name, variant.name, id=f"{name}-{variant.name}")
                  for variant in VARIANTS_BY_BACKEND[name].values() if select(name, variant)]
    return cases


def devices_for(backend: Backend, variant: str) -> list[Device]:
    """Every visible device the variant runs on; skips the calling test, with the reason,
    when there is none (a GPU-only variant on a machine without a GPU)."""
    kinds = backend.variants[variant].device_kinds
    devices = [d for d in backend.devices() if d.kind in kinds]
    if not devices:
        pytest.skip(f"no {' or '.join(kinds)} visible to {backend.name}")
    return devices


def gpu_ids(backend: Backend) -> list[str]:
    """The backend's GPU device ids; skips the calling test, with the reason, when none."""
    gpus = [d.id for d in backend.devices() if d.kind == "GPU"]
    if not gpus:
        pytest.skip(f"no GPU visible to {backend.name}")
    return gpus


def global_settings(backend_name: str) -> dict[str, object]:
    """The framework-wide switches a backend may touch while it runs, read now: a run must
    leave them as it found them."""
    if backend_name == "tensorflow":
        import tensorflow as tf

        return {"soft_device_placement": tf.config.get_soft_device_placement()}
    if backend_name == "jax":
        import jax

        return {"jax_enable_x64": jax.config.read("jax_enable_x64")}
    if backend_name == "torch":
        import torch

        return {"default_dtype": torch.get_default_dtype()}
    raise ValueError(f"no global settings known for backend {backend_name!r}")


def numpy_descent(data: Dataset, steps: int, learning_rate: float) -> tuple[float, float]:
    """The tutorial's gradient descent in float64 NumPy, gradients written out by hand."""
    x, y = data.x.astype(np.float64), data.y.astype(np.float64)
    w, b = INITIAL_W, INITIAL_B
    for _ in range(steps):
        error = x * w + b - y
        w, b = w - learning_rate * np.mean(2 * error * x), b - learning_rate * np.mean(2 * error)
    return w, b


SECOND_CPU_SCRIPT = """
from linfit.backends import get_backend
from linfit.data import make_dataset
from linfit.fit import fit

backend = get_backend({backend!r})
print("devices", [d.id for d in backend.devices()])
data = make_dataset(1000)
reference = fit(backend, "eager", "CPU:0", data, 100, 0.1)
for variant in backend.variants:
    k = 10 if backend.variants[variant].loop else 1
    with backend.session():
        trainer = backend.make_trainer(variant, "CPU:1", data, 0.1, k)
        trainer.call()
        print("placed", variant, trainer.check_placement(), {data_device}, {weights_device})
    result = fit(backend, variant, "CPU:1", data, 100, 0.1, k)
    assert abs(result.final_w / reference.final_w - 1) < 1e-5, variant
    assert abs(result.final_b / reference.final_b - 1) < 1e-5, variant
print("ok")
"""

def _run_script(script: str) -> tuple[int, str, str]:
    """Run ``script`` in a fresh interpreter: (exit status, stdout, stderr)."""
    done = background.run([sys.executable, "-c", script], timeout=240)
    return done.returncode, done.stdout, done.stderr


def _second_cpu_key(*args: str) -> str:
    return "second CPU: " + " ".join(args)


def start_on_a_second_cpu(backend_name: str, split_cpu: str, data_device: str,
                          weights_device: str) -> None:
    """Queue the run of :func:`train_on_a_second_cpu` beside the session (tests/background.py).

    conftest.py queues every selected test's run when collection ends and runs those tests
    last, so the interpreters (seconds each, mostly imports) work beside the in-process tests
    rather than after them.
    """
    if backend_name not in installed_backends():
        return
    script = textwrap.dedent(split_cpu) + SECOND_CPU_SCRIPT.format(
        backend=backend_name, data_device=data_device, weights_device=weights_device)
    background.queue(_second_cpu_key(backend_name, split_cpu, data_device, weights_device),
                     lambda: _run_script(script))


def train_on_a_second_cpu(backend_name: str, split_cpu: str, data_device: str,
                          weights_device: str) -> list[str]:
    """Split the CPU in two, in a fresh interpreter, and train every variant on CPU:1.

    Args:
        backend_name: the backend.
        split_cpu: the backend's own code that splits the CPU, run before linfit is imported.
        data_device, weights_device: expressions, in terms of ``trainer``, for the device id
            (``CPU:1``) of the trainer's data and of its W.

    Returns:
        The ``placed VARIANT RESULT DATA WEIGHTS`` lines, one per variant, after checking that
        the backend lists CPU:0 and CPU:1 and that every variant's W and b on CPU:1 match the
        CPU:0 eager run within rtol 1e-5.
    """
    args = (backend_name, split_cpu, data_device, weights_device)
    returncode, stdout, stderr = background.result(_second_cpu_key(*args),
                                                   lambda: start_on_a_second_cpu(*args))
    assert returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()
    assert "devices ['CPU:0', 'CPU:1']" in lines
    assert lines[-1] == "ok"
    return [line for line in lines if line.startswith("placed")]
