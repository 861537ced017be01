"""The JAX backend: the tutorial's step run op by op, under jax.jit, and in a jitted fori_loop.

jax.jit compiles with XLA, the compiler behind TensorFlow's ``jit_compile=True``, so the
``jit`` variants are the reference for what XLA makes of the step outside TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from linfit.backends.base import Backend, Device, Trainer, Variant
from linfit.backends.variants import JAX_VARIANTS
from linfit.data import INITIAL_B, INITIAL_W, Dataset
from linfit.environment import cpu_model, gpu_driver_version
from linfit.hlo import HloProgram

__all__ = ["BACKEND", "JaxBackend", "ShardedStep", "train_loop", "train_step"]

# The wheels that give jaxlib CUDA, newest first; their names carry the CUDA major version.
CUDA_PLUGINS = ("jax-cuda13-plugin", "jax-cuda12-plugin")

State = tuple[jax.Array, jax.Array, jax.Array]


def _mse(w: jax.Array, b: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(x * w + b - y))


def train_step(w: jax.Array, b: jax.Array, x: jax.Array, y: jax.Array,
               learning_rate: jax.Array) -> State:
    """One step of the tutorial: MSE loss of x*W + b, autodiff gradients, gradient descent.

    Functional, as JAX is: returns the new (W, b) and the loss at the W and b given.
    """
    loss, (grad_w, grad_b) = jax.value_and_grad(_mse, argnums=(0, 1))(w, b, x, y)
    return w - learning_rate * grad_w, b - learning_rate * grad_b, loss


def train_loop(w: jax.Array, b: jax.Array, x: jax.Array, y: jax.Array,
               learning_rate: jax.Array, steps: jax.Array) -> State:
    """``steps`` calls of :func:`train_step` as one ``lax.fori_loop`` (a loop, not unrolled:
    ``steps`` is an array, so the loop is an XLA while loop).

    Returns the new (W, b) and the loss of the first step, as a single step does.
    """
    w, b, loss = train_step(w, b, x, y, learning_rate)

    def one_more(_: jax.Array, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        w_next, b_next, _ = train_step(*state, x, y, learning_rate)
        return w_next, b_next

    w, b = lax.fori_loop(0, steps - 1, one_more, (w, b))
    return w, b, loss


# The registry is data, kept where it can be read without jax: linfit.backends.variants.
VARIANTS = JAX_VARIANTS


def _platform(device: Device) -> str:
    return "cpu" if device.kind == "CPU" else "gpu"


def _jax_device(device: Device) -> Any:
    """The jax.Device behind a linfit device id (``GPU:1`` -> the second GPU)."""
    return jax.devices(_platform(device))[int(device.id.split(":")[1])]


def _device_id(device: Any) -> str:
    """A jax.Device -> its linfit id: ``CPU:0``, ``GPU:i``."""
    kind = "CPU" if device.platform == "cpu" else "GPU"
    return f"{kind}:{jax.devices(device.platform).index(device)}"


def _float64_scope(dtype: str) -> contextlib.AbstractContextManager[None]:
    """Where JAX must run in 64-bit mode: float64 only needs it.

    x64 is a global switch, and an array or a jitted function made under it silently turns
    float32 when used without it. So a float64 trainer holds it itself, for every one of its
    own entries into JAX (thread-local, restored on exit), rather than trusting the caller to
    be inside Backend.session(): the setting is right for the trainer's whole life, and never
    leaks into another trainer.
    """
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


class _JaxState:
    """What the one-device trainer and :class:`ShardedStep` share: W, b and the last loss
    as JAX arrays placed by :meth:`_scalar`, the step's trace counter, and taking a step's
    new state once the device has finished it."""

    _w: jax.Array
    _b: jax.Array
    _lr: jax.Array
    _loss: jax.Array | None
    _traces: int

    def _scalar(self, value: float) -> jax.Array:
        raise NotImplementedError

    def _counted(self, body: Callable[..., State]) -> Callable[..., State]:
        """``body`` with a counter that only runs while JAX traces it: a compiled call
        runs no Python. A new function per holder, so each has its own jit cache."""

        def traced(*args: jax.Array) -> State:
            self._traces += 1
            return body(*args)

        return traced

    def _take(self, state: State) -> None:
        """Wait for a step's (W, b, loss) (dispatch is asynchronous on every device) and
        keep them."""
        jax.block_until_ready(state)
        self._w, self._b, self._loss = state

    def reset(self) -> None:
        """W=5, b=0."""
        self._w = self._scalar(INITIAL_W)
        self._b = self._scalar(INITIAL_B)

    def set_learning_rate(self, learning_rate: float) -> None:
        """A new step size (an array argument: no retrace)."""
        self._lr = self._scalar(learning_rate)

    def weights(self) -> tuple[float, float]:
        """(W, b)."""
        return float(self._w), float(self._b)

    def last_loss(self) -> float:
        """The loss of the last call."""
        if self._loss is None:
            raise RuntimeError("last_loss() before the first call()")
        return float(self._loss)

    @property
    def traces(self) -> int:
        """Times jax.jit traced the step."""
        return self._traces


class _JaxTrainer(_JaxState, Trainer):
    def __init__(self, variant: Variant, device: Device, data: Dataset, learning_rate: float,
                 steps_per_call: int) -> None:
        super().__init__("jax", variant, device, data, steps_per_call)
        self._jax_device = _jax_device(device)
        self._numpy_dtype = data.x.dtype
        self._traces = 0
        with _float64_scope(data.dtype):
            # Committed to the device: jit and every eager op then run where the data are.
            self._x = jax.device_put(data.x, self._jax_device)
            self._y = jax.device_put(data.y, self._jax_device)
            self._steps = jax.device_put(np.int32(steps_per_call), self._jax_device)
            self.reset()
            self.set_learning_rate(learning_rate)
        body = train_loop if variant.loop else train_step
        # The jitted step itself, for compiled_hlo(): the x64 decorator below hides it.
        self._jitted = jax.jit(self._counted(body)) if variant.compiled else None
        step: Callable[..., State] = self._jitted or body
        if data.dtype == "float64":
            # Decorated once here, so float32 calls pay nothing for it.
            step = jax.enable_x64(True)(step)
        self._step = step
        self._loss = None

    def _scalar(self, value: float) -> jax.Array:
        return jax.device_put(np.asarray(value, self._numpy_dtype), self._jax_device)

    def call(self) -> None:
        if self.variant.loop:
            state = self._step(self._w, self._b, self._x, self._y, self._lr, self._steps)
        else:
            state = self._step(self._w, self._b, self._x, self._y, self._lr)
        self._take(state)

    def compiled_hlo(self) -> HloProgram | None:
        """XLA's optimized HLO of the jitted step, by
        ``jax.jit(f).lower(*args).compile().as_text()``. After the first call JAX has the
        trace and the executable cached: neither is made again (about 1 ms). A loop call
        runs ``train_loop``: one step, then ``steps - 1`` in a ``fori_loop`` whose trip
        count is an argument."""
        if self._jitted is None:
            return None
        loop_args = (self._steps,) if self.variant.loop else ()
        with _float64_scope(self.data.dtype):
            text = self._jitted.lower(self._w, self._b, self._x, self._y, self._lr,
                                      *loop_args).compile().as_text()
        steps = self.steps_per_call if self.variant.loop else 1
        return HloProgram(text, steps, steps - 1 if self.variant.loop else None,
                          "jax.jit(...).lower(...).compile()")

    def reset(self) -> None:
        with _float64_scope(self.data.dtype):
            super().reset()

    def set_learning_rate(self, learning_rate: float) -> None:
        with _float64_scope(self.data.dtype):
            super().set_learning_rate(learning_rate)

    def result_device(self) -> str:
        if self._loss is None:
            raise RuntimeError("result_device() before the first call()")
        return _device_id(next(iter(self._loss.devices())))


def _synchronised(fn: Callable[[], Any]) -> Callable[[], None]:
    def call() -> None:
        jax.block_until_ready(fn())

    return call


class JaxBackend(Backend):
    name = "jax"
    variants = VARIANTS

    @property
    def version(self) -> str:
        return jax.__version__

    def build_info(self) -> str:
        for plugin in CUDA_PLUGINS:
            try:
                return f"cuda_plugin={plugin}-{importlib.metadata.version(plugin)}"
            except importlib.metadata.PackageNotFoundError:
                continue
        return ""

    def devices(self) -> list[Device]:
        devices = [Device(self.name, f"CPU:{index}", "CPU", cpu_model())
                   for index, _ in enumerate(jax.devices("cpu"))]
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            # No CUDA/ROCm jaxlib plugin, or no GPU for it: JAX has no "gpu" backend.
            gpus = []
        for index, gpu in enumerate(gpus):
            details = [self.build_info()]
            if capability := getattr(gpu, "compute_capability", ""):
                details.append(f"compute_capability={capability}")
            if driver := gpu_driver_version():
                details.append(f"driver={driver}")
            devices.append(Device(self.name, f"GPU:{index}", "GPU", gpu.device_kind,
                                  " ".join(filter(None, details))))
        return devices

    def read_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        # Drawn on the device from a key committed there: nothing crosses from the host.
        key = jax.device_put(jax.random.key(1), _jax_device(device))
        data = jax.random.uniform(key, (n_elements,), jnp.float32)
        total = jax.jit(jnp.sum)
        return _synchronised(lambda: total(data))

    def copy_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        key = jax.device_put(jax.random.key(2), _jax_device(device))
        source = jax.random.uniform(key, (n_elements,), jnp.float32)
        # The target is donated and written whole: XLA compiles it to one copy into the
        # target's own buffer, as TensorFlow's assign does. A plain jitted copy would also
        # allocate (and on the CPU fault in) a fresh output buffer every call.
        copy = jax.jit(lambda target, values: lax.dynamic_update_slice(target, values, (0,)),
                       donate_argnums=0)
        target = [jnp.zeros_like(source)]

        def call() -> jax.Array:
            # The old target is gone (donated): keep the new one for the next call.
            target[0] = copy(target[0], source)
            return target[0]

        return _synchronised(call)

    def dispatch_probe(self, device: Device) -> Callable[[], None]:
        scalar = jax.device_put(np.float32(1.0), _jax_device(device))
        plus_one = jax.jit(lambda value: value + 1.0)
        return _synchronised(lambda: plus_one(scalar))

    def _make_trainer(self, variant: Variant, device: Device, data: Dataset,
                      learning_rate: float, steps_per_call: int) -> Trainer:
        return _JaxTrainer(variant, device, data, learning_rate, steps_per_call)


BACKEND = JaxBackend()


class ShardedStep(_JaxState):
    """The peer of TensorFlow's distributed variants: :func:`train_step` under ``jax.jit``
    with x and y sharded over a one-axis mesh of ``replicas`` devices, W and b replicated.

    XLA's SPMD partitioner splits the step: each device reduces its share, and the mean loss
    and the gradients are all-reduced across the mesh. On a CPU the devices come from
    ``--xla_force_host_platform_device_count``, which must be in ``XLA_FLAGS`` before JAX
    starts: :mod:`linfit.distributed` sets it in the worker process only, and switches x64 on
    there for float64 (the worker serves this one step).

    Args:
        device_kind: CPU or GPU.
        replicas: devices of the mesh.
        data: the full data set (n_examples a multiple of ``replicas``).
        learning_rate: the step size.

    Raises:
        LinfitError: for more replicas than devices, or an n that does not split evenly.
    """

    def __init__(self, device_kind: str, replicas: int, data: Dataset,
                 learning_rate: float) -> None:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        from linfit._errors import LinfitError

        platform = "cpu" if device_kind == "CPU" else "gpu"
        devices = jax.devices(platform)
        if len(devices) < replicas:
            raise LinfitError(f"{replicas} replicas, but JAX sees {len(devices)} "
                              f"{device_kind} device(s)")
        if data.x.shape[0] % replicas:
            raise LinfitError(f"n_examples={data.x.shape[0]} does not split into {replicas} "
                              "equal shares")
        mesh = Mesh(np.asarray(devices[:replicas]), ("data",))
        self._sharded = NamedSharding(mesh, PartitionSpec("data"))
        self._replicated = NamedSharding(mesh, PartitionSpec())
        self._numpy_dtype = data.x.dtype
        self._x = jax.device_put(data.x, self._sharded)
        self._y = jax.device_put(data.y, self._sharded)
        self._traces = 0
        self.reset()
        self.set_learning_rate(learning_rate)
        self._step = jax.jit(self._counted(train_step), out_shardings=(self._replicated,) * 3)
        self._loss = None

    def _scalar(self, value: float) -> jax.Array:
        """W, b and the step size are replicated on every device of the mesh."""
        return jax.device_put(np.asarray(value, self._numpy_dtype), self._replicated)

    def call(self) -> None:
        """One step over the mesh, waited for."""
        state = self._step(self._w, self._b, self._x, self._y, self._lr)
        self._take(state)

    def replica_weights(self) -> list[tuple[float, float]]:
        """(W, b) as each device of the mesh holds them."""
        ws = [float(s.data) for s in self._w.addressable_shards]
        bs = [float(s.data) for s in self._b.addressable_shards]
        return list(zip(ws, bs, strict=True))

    def result_device(self) -> str:
        """The first mesh device, after checking that each holds its own share of x.

        Raises:
            LinfitError: when a share is not on its device.
        """
        from linfit._errors import LinfitError

        if self._loss is None:
            raise RuntimeError("result_device() before the first call()")
        mesh_devices = list(self._sharded.mesh.devices.flat)
        held = sorted((shard.index[0].start or 0, shard.device)
                      for shard in self._x.addressable_shards)
        if [device for _, device in held] != mesh_devices:
            raise LinfitError(f"the shares of x are on {[_device_id(d) for _, d in held]}, "
                              f"not one on each of {[_device_id(d) for d in mesh_devices]}")
        return _device_id(mesh_devices[0])
