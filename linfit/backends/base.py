"""The interface every backend implements: devices, variants, data placement, sync, traces.

A backend (TensorFlow, JAX, PyTorch) owns one step definition, the tutorial's
gradient-descent step, and builds every variant from it. The harness, the fit loop and the
command line only talk to this interface.
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

from linfit._errors import DeviceError, LinfitError
from linfit.data import DTYPES, Dataset
from linfit.hlo import HloProgram

__all__ = ["DEFAULT_STEPS_PER_CALL", "Backend", "Device", "Trainer", "Variant",
           "normalise_device_id", "variant_registry"]

# K steps inside one compiled call for the loop variants: the idea of Keras'
# steps_per_execution; 100 makes the per-call dispatch cost 1% of a step or less.
DEFAULT_STEPS_PER_CALL = 100


@dataclass(frozen=True)
class Device:
    """One device a backend can run on.

    Attributes:
        backend: the backend's name.
        id: the name users type and result files carry: ``CPU:0``, ``GPU:1``.
        kind: ``CPU`` or ``GPU``.
        name: readable model name: the CPU model or the GPU name.
        details: driver, CUDA or compute-capability facts where known, else ''.
    """

    backend: str
    id: str
    kind: str
    name: str
    details: str = ""


@dataclass(frozen=True)
class Variant:
    """One way of running the step: a registry entry of a backend.

    Attributes:
        name: the name on the command line and in result files.
        compiled: whether the step runs as a traced/compiled graph (so traces are counted).
        xla: whether XLA compiles it.
        loop: whether one call runs ``steps_per_call`` steps in a device-side loop.
        description: one line for ``--help`` and the README.
        device_kinds: the device kinds it runs on.
    """

    name: str
    compiled: bool
    xla: bool
    loop: bool
    description: str
    device_kinds: tuple[str, ...] = ("CPU", "GPU")


def normalise_device_id(text: str) -> str:
    """A device id as users may type it, in the form devices carry: ``cpu:0`` and
    ``/device:CPU:0`` become ``CPU:0``; a kind alone (``gpu``) becomes ``GPU``.

    The one place these spellings are defined: :meth:`Backend.device`, the harness's
    ``--linfit-devices`` and the commands all go through it.
    """
    return text.strip().upper().removeprefix("/DEVICE:")


def variant_registry(*variants: Variant) -> dict[str, Variant]:
    """A backend's variants by name, in the order given: the order the harness runs them and
    tables list them."""
    return {variant.name: variant for variant in variants}


class Trainer(abc.ABC):
    """The model's state on one device, and one variant's way of advancing it.

    ``call()`` is the timed callable: it runs ``steps_per_call`` steps and returns once the
    device has finished them (it synchronises where the device is asynchronous). It copies
    nothing large to the host.

    This is the protocol every timer is handed (the harness's pytest-benchmark timer, the
    ab worker's bursts): the timer calls :meth:`call`, and a trainer whose calls are
    better timed on its own clock says so through :meth:`start_timing` and
    :meth:`own_call_seconds`. Nothing outside this class asks which kind of trainer it is.
    """

    def __init__(self, backend: str, variant: Variant, device: Device, data: Dataset,
                 steps_per_call: int) -> None:
        self.backend = backend
        self.variant = variant
        self.device = device
        self.data = data
        self.steps_per_call = steps_per_call

    @abc.abstractmethod
    def call(self) -> None:
        """Run one call: ``steps_per_call`` steps, synchronised."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Put W and b back to the tutorial's start (5, 0). Does not retrace."""

    @abc.abstractmethod
    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the learning rate. Passed to the step as a tensor: never retraces."""

    @abc.abstractmethod
    def weights(self) -> tuple[float, float]:
        """(W, b) now, copied to the host as Python floats."""

    @abc.abstractmethod
    def last_loss(self) -> float:
        """The loss at the start of the last call (before its first update), on the host."""

    @property
    @abc.abstractmethod
    def traces(self) -> int:
        """How many times the step was traced or compiled so far (0 for eager variants)."""

    @abc.abstractmethod
    def result_device(self) -> str:
        """The device id (``CPU:0``) that holds the last call's result."""

    def start_timing(self) -> None:
        """Called once just before the timed calls. A trainer that times its own calls
        forgets the calls so far (the warm-up); the default does nothing."""
        return None

    def own_call_seconds(self) -> tuple[float, ...] | None:
        """Each call's time since :meth:`start_timing` on the trainer's own clock, in order,
        or None where the timer's clock is the right one (the default).

        A trainer whose step runs elsewhere (linfit.distributed's worker processes) returns
        the times taken there: the caller's clock would count the pipe and the other
        workers' replies.
        """
        return None

    def compiled_hlo(self) -> HloProgram | None:
        """The optimized HLO of the program XLA compiled for this trainer's call, with the
        training steps one execution of it runs; None where XLA does not compile the step
        (the default: eager, tf.function without XLA, PyTorch).

        Called after the first call (the program then exists); it compiles nothing the
        call runs and leaves the trace count as it was.
        """
        return None

    def check_placement(self) -> str:
        """Check that the last result is on the device asked for; return its id.

        Raises:
            DeviceError: naming both devices when they differ.
        """
        where = self.result_device()
        if where != self.device.id:
            raise DeviceError(
                f"{self.backend} {self.variant.name}: asked for {self.device.id} but the "
                f"result is on {where}"
            )
        return where


class Backend(abc.ABC):
    """A framework that can run the step: its devices, variants and trainers."""

    name: ClassVar[str]
    variants: ClassVar[Mapping[str, Variant]]

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """The framework's version string."""

    @abc.abstractmethod
    def devices(self) -> list[Device]:
        """Every CPU and GPU device the framework sees, CPU:0 first."""

    @abc.abstractmethod
    def _make_trainer(self, variant: Variant, device: Device, data: Dataset,
                      learning_rate: float, steps_per_call: int) -> Trainer:
        """Build a trainer; the arguments are already validated."""

    @abc.abstractmethod
    def read_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        """For the floors: place a float32 array of ``n_elements`` on ``device`` (untimed) and
        return a callable that reads all of it once (a compiled sum), synchronised."""

    @abc.abstractmethod
    def copy_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        """For the floors: return a callable that copies a float32 array of ``n_elements``
        already on ``device`` into a distinct buffer on it, synchronised."""

    @abc.abstractmethod
    def dispatch_probe(self, device: Device) -> Callable[[], None]:
        """For the floors: return the cheapest compiled call the backend can make on
        ``device`` (a scalar in, a scalar out), synchronised."""

    def conventions(self, variant: Variant) -> tuple[str, ...]:
        """How ``variant``'s compiled call can be made, its default first; ``('',)`` where
        there is one way only (every backend but TensorFlow)."""
        return ("",)

    def supports_dtype(self, device: Device, dtype: str) -> bool:
        """Whether the step runs in ``dtype`` on ``device``."""
        return dtype in DTYPES

    def thread_settings(self) -> dict[str, int]:
        """intra- and inter-op thread counts as the framework reports them (0: its default)."""
        return {"intra_op_threads": 0, "inter_op_threads": 0}

    def build_info(self) -> str:
        """CUDA/cuDNN versions the framework was built with, where it says; else ''."""
        return ""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Global settings in force while linfit runs (hard device placement), restored after."""
        yield

    def device(self, device_id: str) -> Device:
        """The device called ``device_id`` (``CPU:0``; ``cpu:0`` and ``/device:CPU:0`` too).

        Raises:
            DeviceError: listing the devices that exist.
        """
        wanted = normalise_device_id(device_id)
        for device in self.devices():
            if device.id == wanted:
                return device
        known = ", ".join(d.id for d in self.devices())
        raise DeviceError(f"{self.name} has no device {device_id!r}; devices: {known}")

    def variant(self, name: str) -> Variant:
        """The variant called ``name``.

        Raises:
            LinfitError: listing the valid variants.
        """
        try:
            return self.variants[name]
        except KeyError:
            raise LinfitError(
                f"unknown {self.name} variant {name!r}; valid: {', '.join(self.variants)}"
            ) from None

    def make_trainer(self, variant: str, device: str | Device, data: Dataset,
                     learning_rate: float, steps_per_call: int = 1,
                     convention: str = "") -> Trainer:
        """Place ``data`` and fresh W=5, b=0 on ``device`` and build ``variant``'s step.

        Args:
            variant: a name from :attr:`variants`.
            device: a :class:`Device` or its id.
            data: the data set; its dtype is the training dtype.
            learning_rate: gradient-descent step size, > 0.
            steps_per_call: steps per call; 1 for variants that are not loops.
            convention: how a compiled TensorFlow variant is called
                (``linfit.backends.variants.conventions_for``); '' for the default.

        Raises:
            LinfitError: for an unknown variant, a bad learning rate, steps_per_call or
                convention, or a dtype the device does not support; DeviceError for an
                unknown device.
        """
        spec = self.variant(variant)
        where = device if isinstance(device, Device) else self.device(device)
        if not (math.isfinite(learning_rate) and learning_rate > 0):
            raise LinfitError(f"learning rate must be a finite number > 0, got {learning_rate}")
        if steps_per_call < 1 or (not spec.loop and steps_per_call != 1):
            valid = "an integer >= 1" if spec.loop else "1 (it is not a loop variant)"
            raise LinfitError(
                f"steps_per_call for {self.name} {spec.name} must be {valid}, got {steps_per_call}"
            )
        if where.kind not in spec.device_kinds:
            raise LinfitError(
                f"{self.name} {spec.name} runs on {', '.join(spec.device_kinds)} devices only, "
                f"not on {where.id}"
            )
        if not self.supports_dtype(where, data.dtype):
            raise LinfitError(f"{self.name} on {where.id} does not support dtype {data.dtype}")
        if not convention:
            return self._make_trainer(spec, where, data, learning_rate, steps_per_call)
        valid = [name for name in self.conventions(spec) if name]
        if convention not in valid:
            raise LinfitError(f"{self.name} {spec.name} has no calling convention "
                              f"{convention!r}; valid: {', '.join(valid) or 'none'}")
        return self._make_trainer(spec, where, data, learning_rate, steps_per_call,
                                  convention=convention)
