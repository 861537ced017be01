"""The fit loop: train one variant on one device and keep the history, as the tutorial does."""

from __future__ import annotations

import math
from dataclasses import dataclass

from linfit._errors import DivergenceError, LinfitError
from linfit.backends import Backend, Trainer
from linfit.data import Dataset

__all__ = ["FitRecord", "FitResult", "fit", "train"]


@dataclass(frozen=True)
class FitRecord:
    """W, b and the loss at the start of one call ("epoch" in the tutorial)."""

    step: int
    w: float
    b: float
    loss: float


@dataclass(frozen=True)
class FitResult:
    """What a fit produced: the history, the final weights, and the OLS reference."""

    backend: str
    variant: str
    device: str
    device_name: str
    dtype: str
    n_examples: int
    learning_rate: float
    steps_per_call: int
    history: tuple[FitRecord, ...]
    final_w: float
    final_b: float
    w_ols: float
    b_ols: float


def train(trainer: Trainer, steps: int) -> tuple[FitRecord, ...]:
    """Run ``steps`` steps on ``trainer`` from wherever it is; one record per call.

    Each call's result is checked: it must be on the device asked for, and the loss and the
    weights must stay finite.

    Raises:
        LinfitError: when ``steps`` is not a positive multiple of the trainer's steps_per_call.
        DivergenceError: at the first call whose loss or weights are NaN or infinite.
        DeviceError: when a result lands on another device.
    """
    per_call = trainer.steps_per_call
    if steps < 1 or steps % per_call:
        raise LinfitError(f"steps must be a positive multiple of steps_per_call={per_call}, "
                          f"got {steps}")
    history = []
    w, b = trainer.weights()
    for step in range(0, steps, per_call):
        trainer.call()
        trainer.check_placement()
        loss = trainer.last_loss()
        history.append(FitRecord(step, w, b, loss))
        w, b = trainer.weights()
        if not all(map(math.isfinite, (loss, w, b))):
            raise DivergenceError(
                f"{trainer.backend} {trainer.variant.name} on {trainer.device.id} diverged at "
                f"step {step}: loss={loss}, W={w}, b={b}; try a smaller learning rate"
            )
    return tuple(history)


def fit(backend: Backend, variant: str, device: str, data: Dataset, steps: int,
        learning_rate: float, steps_per_call: int = 1) -> FitResult:
    """Train ``variant`` on ``device`` for ``steps`` steps from W=5, b=0.

    Args:
        backend: the backend to run on.
        variant: one of ``backend.variants``.
        device: a device id such as ``CPU:0``.
        data: the data set (its dtype is the training dtype).
        steps: total steps, a multiple of ``steps_per_call``.
        learning_rate: gradient-descent step size.
        steps_per_call: steps per call for loop variants (1 otherwise).

    Returns:
        The history (one record per call) and the final W and b beside the OLS solution.
    """
    with backend.session():
        trainer = backend.make_trainer(variant, device, data, learning_rate, steps_per_call)
        history = train(trainer, steps)
        final_w, final_b = trainer.weights()
    return FitResult(
        backend=backend.name, variant=variant, device=trainer.device.id,
        device_name=trainer.device.name, dtype=data.dtype, n_examples=data.n_examples,
        learning_rate=learning_rate, steps_per_call=steps_per_call, history=history,
        final_w=final_w, final_b=final_b, w_ols=data.w_ols, b_ols=data.b_ols,
    )
