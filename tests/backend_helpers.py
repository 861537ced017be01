"""Helpers the per-backend test modules share (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import numpy as np
import pytest

from linfit.backends import Backend
from linfit.data import INITIAL_B, INITIAL_W, Dataset

# Steps per call for the loop variants in tests: small, so a test's 100 steps are 10 calls.
LOOP_STEPS_PER_CALL = 10


def steps_per_call(backend: Backend, variant: str) -> int:
    """LOOP_STEPS_PER_CALL for a loop variant, 1 otherwise."""
    return LOOP_STEPS_PER_CALL if backend.variants[variant].loop else 1


def gpu_ids(backend: Backend) -> list[str]:
    """The backend's GPU device ids; skips the calling test, with the reason, when none."""
    gpus = [d.id for d in backend.devices() if d.kind == "GPU"]
    if not gpus:
        pytest.skip(f"no GPU visible to {backend.name}")
    return gpus


def numpy_descent(data: Dataset, steps: int, learning_rate: float) -> tuple[float, float]:
    """The tutorial's gradient descent in float64 NumPy, gradients written out by hand."""
    x, y = data.x.astype(np.float64), data.y.astype(np.float64)
    w, b = INITIAL_W, INITIAL_B
    for _ in range(steps):
        error = x * w + b - y
        w, b = w - learning_rate * np.mean(2 * error * x), b - learning_rate * np.mean(2 * error)
    return w, b
