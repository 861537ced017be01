"""The distributed variants: a registry, importable without any framework.

Each entry is a :class:`~linfit.backends.base.Variant` of its backend with the strategy that
splits the data across replicas and the single-device variant whose compilation it uses.
Every one runs the backend's one step definition (``linfit.backends.tensorflow.train_step``,
``linfit.backends.jax.train_step``) on each replica's share of the data; see
:mod:`linfit.backends.tf_distributed` and :func:`linfit.backends.jax.sharded_trainer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from linfit.backends.base import Variant, variant_registry

__all__ = ["DISTRIBUTED_CONVENTION", "DISTRIBUTED_VARIANTS", "STRATEGIES", "DistributedVariant",
           "convention_of", "distributed_variant", "strategy_of"]

# How a compiled TensorFlow distributed step is called: a ConcreteFunction of strategy.run with
# W, b, the shares and the learning rate all captured, the "closure" of
# linfit.backends.variants.TENSORFLOW_CONVENTIONS.
DISTRIBUTED_CONVENTION = "closure"

# strategy column value -> what it is.
STRATEGIES: Mapping[str, str] = {
    "none": "one device, no strategy",
    "mirrored": "tf.distribute.MirroredStrategy over the devices of one process",
    "multi-worker": "tf.distribute.MultiWorkerMirroredStrategy, one process per replica, "
                    "wired by TF_CONFIG",
    "jax-sharding": "the batch sharded over a jax.sharding.Mesh of the process's devices",
}


@dataclass(frozen=True)
class DistributedVariant(Variant):
    """A variant that splits the data across replicas.

    Attributes:
        strategy: a key of :data:`STRATEGIES`.
        processes_per_replica: True when each replica is its own process (multi-worker).
        single_device: the one-device variant of the same backend that compiles the step
            the same way: the line a scaling figure draws beside it.
    """

    strategy: str = "mirrored"
    processes_per_replica: bool = False
    single_device: str = ""


def _tf(name: str, strategy: str, compiled: bool, xla: bool, description: str) -> \
        DistributedVariant:
    return DistributedVariant(name, compiled=compiled, xla=xla, loop=False,
                              description=description, strategy=strategy,
                              processes_per_replica=strategy == "multi-worker",
                              single_device=name.rpartition("-")[2])


# backend -> its distributed variants, in the order the harness runs them.
DISTRIBUTED_VARIANTS: Mapping[str, Mapping[str, DistributedVariant]] = {
    "tensorflow": variant_registry(
        _tf("mirrored-eager", "mirrored", False, False,
            "MirroredStrategy: strategy.run of the step, op by op"),
        _tf("mirrored-function", "mirrored", True, False,
            "MirroredStrategy: strategy.run of the step in a tf.function"),
        _tf("mirrored-xla", "mirrored", True, True,
            "MirroredStrategy: strategy.run of the step in tf.function(jit_compile=True)"),
        _tf("multi-worker-eager", "multi-worker", False, False,
            "MultiWorkerMirroredStrategy, one worker process per replica, op by op"),
        _tf("multi-worker-function", "multi-worker", True, False,
            "MultiWorkerMirroredStrategy, one worker process per replica, tf.function"),
        _tf("multi-worker-xla", "multi-worker", True, True,
            "MultiWorkerMirroredStrategy, one worker process per replica, "
            "tf.function(jit_compile=True)"),
    ),
    "jax": variant_registry(
        DistributedVariant("sharded-jit", compiled=True, xla=True, loop=False,
                           description="jax.jit of the step on x and y sharded over a mesh "
                                       "of the replicas' devices, W and b replicated",
                           strategy="jax-sharding", single_device="jit"),
    ),
    "torch": {},
}


def distributed_variant(backend: str, name: str) -> DistributedVariant | None:
    """The distributed variant ``name`` of ``backend``; None when it is not one."""
    return DISTRIBUTED_VARIANTS.get(backend, {}).get(name)


def strategy_of(variant: Variant) -> str:
    """The ``strategy`` column of a cell of ``variant``: ``none`` for a one-device variant."""
    return variant.strategy if isinstance(variant, DistributedVariant) else "none"


def convention_of(backend: str, variant: DistributedVariant) -> str:
    """The ``convention`` of a distributed cell: :data:`DISTRIBUTED_CONVENTION` for
    TensorFlow's compiled ones, '' elsewhere."""
    return DISTRIBUTED_CONVENTION if backend == "tensorflow" and variant.compiled else ""
