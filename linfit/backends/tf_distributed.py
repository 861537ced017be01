"""TensorFlow's ``tf.distribute`` variants of the one shared step (issue 13).

Each replica runs :func:`linfit.backends.tensorflow.train_step`, unchanged, on its equal
share of x and y: its loss is the mean over its share. W and b are mirrored variables with
``VariableAggregation.MEAN``, so each replica's ``assign_sub(lr * grad)`` is all-reduced
(the mean over the replicas of their gradients) before it is applied everywhere. With equal
shares the mean of the shares' mean gradients is the full batch's mean gradient: the update
is the single-device step's, up to the order of floating-point sums.

This module is imported only in a worker process of :mod:`linfit.distributed`: MirroredStrategy
over logical CPUs needs the CPU split before TensorFlow's runtime starts
(:func:`split_cpu`), and MultiWorkerMirroredStrategy needs ``TF_CONFIG`` set and the strategy
made before any other op.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from linfit._errors import LinfitError
from linfit._native_log import quiet_native_stderr
from linfit.environment import QUIET_TF_LOG_LEVEL, TF_LOG_LEVEL_ENV

os.environ.setdefault(TF_LOG_LEVEL_ENV, QUIET_TF_LOG_LEVEL)

with quiet_native_stderr():
    import tensorflow as tf

from linfit.backends.tensorflow import train_step
from linfit.data import INITIAL_B, INITIAL_W, Dataset

__all__ = ["DistributedStep", "split_cpu"]

def split_cpu(replicas: int) -> None:
    """Split the physical CPU into ``replicas`` logical devices CPU:0 ... CPU:r-1.

    Raises:
        LinfitError: when TensorFlow's runtime has started already (it then refuses).
    """
    [cpu] = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
    except RuntimeError as error:
        raise LinfitError(f"cannot split the CPU into {replicas} devices: {error}") from None


def _device_id(name: str) -> str:
    spec = tf.DeviceSpec.from_string(name)
    return f"{spec.device_type}:{spec.device_index}"


def make_strategy(strategy: str, device_kind: str, replicas: int) -> tf.distribute.Strategy:
    """The strategy of a distributed variant, over ``replicas`` devices of ``device_kind``.

    Raises:
        LinfitError: for more replicas than devices of that kind.
    """
    if strategy == "multi-worker":
        # Devices and peers come from TF_CONFIG: one worker per replica, its CPU or GPU:0.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if device_kind == "CPU":
        split_cpu(replicas)
    devices = tf.config.list_logical_devices(device_kind)
    if len(devices) < replicas:
        raise LinfitError(f"{replicas} replicas, but TensorFlow sees {len(devices)} "
                          f"{device_kind} device(s)")
    return tf.distribute.MirroredStrategy([d.name for d in devices[:replicas]])


class DistributedStep:
    """W, b and the data shards under a strategy, and one variant's call of the step.

    Args:
        strategy: ``mirrored`` or ``multi-worker``.
        compiled, xla: the variant: op by op, tf.function, or tf.function(jit_compile=True).
        device_kind: CPU or GPU.
        replicas: replicas in the whole job.
        data: the full data set; each replica takes its equal share.
        learning_rate: the step size.

    Raises:
        LinfitError: when n_examples is not a multiple of the replicas, or for more replicas
            than devices.
    """

    def __init__(self, strategy: str, compiled: bool, xla: bool, device_kind: str,
                 replicas: int, data: Dataset, learning_rate: float) -> None:
        n_examples = data.x.shape[0]
        if n_examples % replicas:
            raise LinfitError(f"n_examples={n_examples} does not split into {replicas} equal "
                              "shares; the sharded step is the full-batch step only then")
        self.strategy = make_strategy(strategy, device_kind, replicas)
        if self.strategy.num_replicas_in_sync != replicas:
            raise LinfitError(f"{strategy} has {self.strategy.num_replicas_in_sync} replicas "
                              f"in sync, not the {replicas} asked for")
        self._local_devices = tuple(self.strategy.extended.worker_devices)
        share = n_examples // replicas
        dtype = tf.as_dtype(data.x.dtype)

        def shard(values: object) -> Callable[[tf.distribute.InputContext], tf.Tensor]:
            def on_replica(context: tf.distribute.ValueContext) -> tf.Tensor:
                index = context.replica_id_in_sync_group
                local = self._local_devices[index % len(self._local_devices)]
                with tf.device(local):
                    # tf.identity runs on the replica's device, so the share lives there.
                    return tf.identity(values[index * share:(index + 1) * share])
            return on_replica

        self._x = self.strategy.experimental_distribute_values_from_function(shard(data.x))
        self._y = self.strategy.experimental_distribute_values_from_function(shard(data.y))
        with self.strategy.scope():
            # MEAN: each replica's assign_sub is all-reduced to the mean of the replicas'.
            self._w = tf.Variable(INITIAL_W, dtype=dtype,
                                  aggregation=tf.VariableAggregation.MEAN)
            self._b = tf.Variable(INITIAL_B, dtype=dtype,
                                  aggregation=tf.VariableAggregation.MEAN)
            self._lr = tf.Variable(learning_rate, dtype=dtype, trainable=False)
        self._sync = device_kind == "GPU"
        self._traced: tf.types.experimental.PolymorphicFunction | None = None
        self._loss: object = None
        if compiled:
            self._traced = tf.function(self._run, jit_compile=xla)
            self._call: Callable[[], object] = self._traced.get_concrete_function()
        else:
            self._call = self._run

    def _run(self) -> object:
        return self.strategy.run(lambda x, y: train_step(self._w, self._b, x, y, self._lr),
                                 args=(self._x, self._y))

    def call(self) -> None:
        """One step on every local replica, all-reduced; synchronised on a GPU."""
        self._loss = self._call()
        if self._sync:
            tf.test.experimental.sync_devices()

    def reset(self) -> None:
        """W=5, b=0 on every replica."""
        self._w.assign(INITIAL_W)
        self._b.assign(INITIAL_B)

    def set_learning_rate(self, learning_rate: float) -> None:
        """A new step size, without a retrace (it is a variable)."""
        self._lr.assign(learning_rate)

    def weights(self) -> tuple[float, float]:
        """(W, b) of the first local replica; :meth:`replica_weights` has every one."""
        return float(self._w.numpy()), float(self._b.numpy())

    def replica_weights(self) -> list[tuple[float, float]]:
        """(W, b) as each local replica holds them."""
        ws = self.strategy.experimental_local_results(self._w)
        bs = self.strategy.experimental_local_results(self._b)
        return [(float(w.numpy()), float(b.numpy())) for w, b in zip(ws, bs, strict=True)]

    def last_loss(self) -> float:
        """The global mean loss of the last call: the mean of the replicas' (equal shares)."""
        if self._loss is None:
            raise RuntimeError("last_loss() before the first call()")
        return float(self.strategy.reduce(tf.distribute.ReduceOp.MEAN, self._loss, axis=None))

    @property
    def traces(self) -> int:
        """Times the compiled step was traced (0 op by op)."""
        return self._traced.experimental_get_tracing_count() if self._traced else 0

    def result_device(self) -> str:
        """The device of the first local replica's loss, after checking that every local
        replica's share of x and its copy of W sit on that replica's own device (a loss that
        leaves a tf.function is the caller's output, so it says nothing about the replica).

        Raises:
            LinfitError: naming the replica and both devices where they differ.
        """
        if self._loss is None:
            raise RuntimeError("result_device() before the first call()")
        losses = self.strategy.experimental_local_results(self._loss)
        xs = self.strategy.experimental_local_results(self._x)
        ws = self.strategy.experimental_local_results(self._w)
        for index, (device, x, w) in enumerate(zip(self._local_devices, xs, ws, strict=True)):
            want = _device_id(device)
            for what, tensor in (("its share of x", x), ("its W", w)):
                if _device_id(tensor.device) != want:
                    raise LinfitError(f"local replica {index}: {what} is on "
                                      f"{_device_id(tensor.device)}, not on {want}")
        return _device_id(losses[0].device)
