"""The TensorFlow backend: the tutorial's step as eager, tf.function and XLA variants."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator

from linfit._native_log import quiet_native_stderr
from linfit.environment import QUIET_TF_LOG_LEVEL, TF_LOG_LEVEL_ENV

# TensorFlow's C++ start-up chatter (the oneDNN notice, "Could not find cuda drivers", each
# twice) would bury the results; a user who wants it sets TF_CPP_MIN_LOG_LEVEL themselves.
# The variable alone is not enough: the chatter is logged through Abseil by the static
# initialisers of two libraries that each carry their own copy of it, and Abseil ignores
# the variable, so the import also goes through a filter that applies the same level to
# Abseil's lines (linfit/_native_log.py has the whole story). oneDNN stays on.
os.environ.setdefault(TF_LOG_LEVEL_ENV, QUIET_TF_LOG_LEVEL)

with quiet_native_stderr():
    import tensorflow as tf

from linfit.backends.base import Backend, Device, Trainer, Variant
from linfit.backends.variants import KERAS_VARIANTS, TENSORFLOW_VARIANTS, conventions_for
from linfit.data import INITIAL_B, INITIAL_W, Dataset
from linfit.environment import cpu_model, gpu_driver_version
from linfit.hlo import HloProgram

__all__ = ["BACKEND", "TensorFlowBackend", "loss_and_gradients", "train_loop", "train_step"]


def loss_and_gradients(w: tf.Tensor, b: tf.Tensor, x: tf.Tensor,
                       y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The tutorial's MSE loss of x*W + b and its gradients by W and b, from a GradientTape.

    W and b may be the model's ``tf.Variable``s or plain tensors (a loop that carries the
    weights as loop tensors, docs/loops.py): the tape watches them either way.
    """
    with tf.GradientTape() as tape:
        tape.watch([w, b])
        loss = tf.reduce_mean(tf.square(x * w + b - y))
    grad_w, grad_b = tape.gradient(loss, [w, b])
    return loss, grad_w, grad_b


def train_step(w: tf.Variable, b: tf.Variable, x: tf.Tensor, y: tf.Tensor,
               learning_rate: tf.Tensor) -> tf.Tensor:
    """One step of the tutorial: MSE loss of x*W + b, GradientTape, plain gradient descent.

    Returns the loss at W and b before the update.
    """
    loss, grad_w, grad_b = loss_and_gradients(w, b, x, y)
    w.assign_sub(learning_rate * grad_w)
    b.assign_sub(learning_rate * grad_b)
    return loss


def train_loop(w: tf.Variable, b: tf.Variable, x: tf.Tensor, y: tf.Tensor,
               learning_rate: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
    """``steps`` calls of :func:`train_step` in one graph, as a tensor loop (AutoGraph).

    Returns the loss of the first step, so a call reports the loss at the W and b it
    started from, as a single step does.
    """
    loss = train_step(w, b, x, y, learning_rate)
    for _ in tf.range(steps - 1):
        train_step(w, b, x, y, learning_rate)
    return loss


# The registry is data, kept where it can be read without tensorflow: linfit.backends.variants.
VARIANTS = TENSORFLOW_VARIANTS


@functools.cache
def _start_runtime_quietly() -> None:
    """Start TensorFlow's runtime (its first look for devices) through the start-up filter:
    where there is no NVIDIA driver it logs a failed cuInit, the no-driver notice again."""
    with quiet_native_stderr():
        tf.config.list_logical_devices()


def _device_id(name: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:0' -> 'GPU:0'."""
    spec = tf.DeviceSpec.from_string(name)
    return f"{spec.device_type}:{spec.device_index}"


class _TensorFlowTrainer(Trainer):
    def __init__(self, variant: Variant, device: Device, data: Dataset, learning_rate: float,
                 steps_per_call: int, convention: str) -> None:
        super().__init__("tensorflow", variant, device, data, steps_per_call)
        self.convention = convention
        self._scope = f"/device:{device.id}"
        dtype = tf.as_dtype(data.x.dtype)
        with tf.device(self._scope):
            # tf.identity runs on the device, so its output lives there (a bare tf.constant
            # may stay in host memory and be copied at every use).
            self._x = tf.identity(tf.constant(data.x))
            self._y = tf.identity(tf.constant(data.y))
            self._w = tf.Variable(INITIAL_W, dtype=dtype)
            self._b = tf.Variable(INITIAL_B, dtype=dtype)
            self._steps = tf.constant(steps_per_call, tf.int32)
            # The 'closure' convention captures the learning rate, so it must be a variable
            # for set_learning_rate to reach a step traced before it.
            self._lr_variable = tf.Variable(learning_rate, dtype=dtype)
        self._dtype = dtype
        self.set_learning_rate(learning_rate)
        self._sync = device.kind == "GPU"
        self._loss: tf.Tensor | None = None
        self._traced: tf.types.experimental.PolymorphicFunction | None = None
        # Built by the first call, so that its time counts the trace of every convention.
        self._run: Callable[[], tf.Tensor] | None = None
        # The arguments the traced function takes in this convention (compiled_hlo()).
        self._traced_args: tuple[tf.Tensor, ...] = ()

    def _build(self, variant: Variant) -> Callable[[], tf.Tensor]:
        """The call of the step in this trainer's variant and convention (module
        ``TENSORFLOW_CONVENTIONS``); traces the ConcreteFunction ones now."""
        body = train_loop if variant.loop else train_step
        # The loop variants take the trip count as one more argument, after the learning rate.
        loop_args = (self._steps,) if variant.loop else ()
        if not variant.compiled:
            return lambda: body(self._w, self._b, self._x, self._y, self._lr, *loop_args)
        if self.convention == "args":
            self._traced = tf.function(body, jit_compile=variant.xla)
            self._traced_args = (self._w, self._b, self._x, self._y, self._lr, *loop_args)
            return lambda: self._traced(self._w, self._b, self._x, self._y, self._lr,
                                        *loop_args)
        if self.convention == "closure":
            self._traced = tf.function(
                lambda: body(self._w, self._b, self._x, self._y, self._lr_variable, *loop_args),
                jit_compile=variant.xla)
            return self._traced.get_concrete_function()
        # captured and concrete: W and b are captured, the rest are arguments.
        self._traced = tf.function(functools.partial(body, self._w, self._b),
                                   jit_compile=variant.xla)
        self._traced_args = (self._x, self._y, self._lr, *loop_args)
        if self.convention == "captured":
            return lambda: self._traced(self._x, self._y, self._lr, *loop_args)
        concrete = self._traced.get_concrete_function(self._x, self._y, self._lr, *loop_args)
        return lambda: concrete(self._x, self._y, self._lr, *loop_args)

    def set_learning_rate(self, learning_rate: float) -> None:
        with tf.device(self._scope):
            self._lr = tf.identity(tf.constant(learning_rate, self._dtype))
        self._lr_variable.assign(learning_rate)

    def call(self) -> None:
        with tf.device(self._scope):
            if self._run is None:
                self._run = self._build(self.variant)
            loss = self._run()
        if self._sync:
            # GPU kernels run asynchronously: wait for them, so the clock counts them.
            tf.test.experimental.sync_devices()
        self._loss = loss

    def reset(self) -> None:
        self._w.assign(INITIAL_W)
        self._b.assign(INITIAL_B)

    def weights(self) -> tuple[float, float]:
        return float(self._w.numpy()), float(self._b.numpy())

    def last_loss(self) -> float:
        if self._loss is None:
            raise RuntimeError("last_loss() before the first call()")
        return float(self._loss.numpy())

    @property
    def traces(self) -> int:
        return self._traced.experimental_get_tracing_count() if self._traced else 0

    def compiled_hlo(self) -> HloProgram | None:
        """XLA's optimized HLO of the step's tf.function, by
        ``experimental_get_compiler_ir(*args)(stage="optimized_hlo")`` on the device. It
        runs XLA's HLO passes again (no code generation): 0.1-0.5 s a cell on the 2-core
        VM. A loop call runs ``train_loop``: one step, then ``steps - 1`` in a while loop
        whose trip count is an argument."""
        if not self.variant.xla:
            return None
        with tf.device(self._scope):
            if self._run is None:
                self._run = self._build(self.variant)
            assert self._traced is not None
            text = self._traced.experimental_get_compiler_ir(*self._traced_args)(
                stage="optimized_hlo")
        steps = self.steps_per_call if self.variant.loop else 1
        return HloProgram(text, steps, steps - 1 if self.variant.loop else None,
                          f"tf.function(jit_compile=True), {self.convention} convention")

    def result_device(self) -> str:
        if self._loss is None:
            raise RuntimeError("result_device() before the first call()")
        return _device_id(self._loss.device)


class TensorFlowBackend(Backend):
    name = "tensorflow"
    variants = VARIANTS

    @property
    def version(self) -> str:
        return tf.__version__

    def build_info(self) -> str:
        info = tf.sysconfig.get_build_info()
        parts = [f"{key}={info[key]}" for key in ("cuda_version", "cudnn_version") if key in info]
        return " ".join(parts)

    def devices(self) -> list[Device]:
        _start_runtime_quietly()
        physical_gpus = tf.config.list_physical_devices("GPU")
        devices = []
        for logical in tf.config.list_logical_devices():
            if logical.device_type not in ("CPU", "GPU"):
                continue
            device_id = _device_id(logical.name)
            if logical.device_type == "CPU":
                devices.append(Device(self.name, device_id, "CPU", cpu_model()))
                continue
            index = int(device_id.split(":")[1])
            # Several logical GPUs may share one physical GPU (virtual devices).
            physical = physical_gpus[min(index, len(physical_gpus) - 1)]
            facts = tf.config.experimental.get_device_details(physical)
            capability = facts.get("compute_capability")
            details = [self.build_info()]
            if capability:
                details.append(f"compute_capability={capability[0]}.{capability[1]}")
            if driver := gpu_driver_version():
                details.append(f"driver={driver}")
            devices.append(Device(self.name, device_id, "GPU",
                                  facts.get("device_name", "GPU"), " ".join(filter(None, details))))
        return sorted(devices, key=lambda d: (d.kind != "CPU", d.id))

    def thread_settings(self) -> dict[str, int]:
        return {
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        }

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Soft placement off: an op that cannot run on the device asked for is an error,
        never a silent fallback to the CPU."""
        _start_runtime_quietly()
        before = tf.config.get_soft_device_placement()
        tf.config.set_soft_device_placement(False)
        try:
            yield
        finally:
            tf.config.set_soft_device_placement(before)

    def _synchronised(self, device: Device, fn: Callable[[], tf.Tensor]) -> Callable[[], None]:
        scope = f"/device:{device.id}"
        sync = device.kind == "GPU"

        def call() -> None:
            with tf.device(scope):
                fn()
            if sync:
                tf.test.experimental.sync_devices()

        return call

    def read_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        with tf.device(f"/device:{device.id}"):
            data = tf.identity(tf.random.stateless_uniform([n_elements], seed=[1, 2]))
        total = tf.function(tf.reduce_sum, jit_compile=True)
        return self._synchronised(device, lambda: total(data))

    def copy_probe(self, device: Device, n_elements: int) -> Callable[[], None]:
        with tf.device(f"/device:{device.id}"):
            source = tf.identity(tf.random.stateless_uniform([n_elements], seed=[1, 2]))
            target = tf.Variable(tf.zeros([n_elements]))
        # read_value=False: XLA then compiles one copy into the variable's own (aliased)
        # buffer, one read and one write of the array. assign()'s default also returns the
        # new value, which is a second copy into a fresh buffer.
        @tf.function(jit_compile=True)
        def copy(values: tf.Tensor) -> None:
            target.assign(values, read_value=False)

        return self._synchronised(device, lambda: copy(source))

    def dispatch_probe(self, device: Device) -> Callable[[], None]:
        with tf.device(f"/device:{device.id}"):
            scalar = tf.identity(tf.constant(1.0))
            # The cheapest call a user can make, the form of the default 'closure'
            # convention: a ConcreteFunction (no argument binding, no trace-cache lookup)
            # with its input captured (no argument to flatten); docs/overhead.md measures
            # each part. The device scope stays: it is what places the call.
            plus_one = tf.function(lambda: scalar + 1.0,
                                   jit_compile=True).get_concrete_function()
        return self._synchronised(device, plus_one)

    def conventions(self, variant: Variant) -> tuple[str, ...]:
        return conventions_for(self.name, variant)

    def _make_trainer(self, variant: Variant, device: Device, data: Dataset,
                      learning_rate: float, steps_per_call: int, convention: str = "") -> Trainer:
        if variant.name in KERAS_VARIANTS:
            # Imported here: Keras takes seconds to import, and only these variants use it.
            from linfit.backends.keras import KerasTrainer

            return KerasTrainer(variant, device, data, learning_rate, steps_per_call)
        return _TensorFlowTrainer(variant, device, data, learning_rate, steps_per_call,
                                  convention or self.conventions(variant)[0])


BACKEND = TensorFlowBackend()
