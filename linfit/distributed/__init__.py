"""Data-parallel variants of the one shared step (issue 13): MirroredStrategy,
MultiWorkerMirroredStrategy and JAX sharding, each run in worker processes of its own.

The registry (:data:`DISTRIBUTED_VARIANTS`) is framework-free; :func:`open_trainer` starts a
cell's workers and yields a trainer the harness measures like any other.
"""

from linfit.distributed._protocol import check_port_free, check_tf_config, free_ports, tf_config
from linfit.distributed.trainer import RemoteTrainer, WorkerFailed, open_trainer
from linfit.distributed.variants import (
    DISTRIBUTED_VARIANTS,
    STRATEGIES,
    DistributedVariant,
    convention_of,
    distributed_variant,
    strategy_of,
)

__all__ = [
    "DISTRIBUTED_VARIANTS",
    "STRATEGIES",
    "DistributedVariant",
    "RemoteTrainer",
    "WorkerFailed",
    "check_port_free",
    "check_tf_config",
    "convention_of",
    "distributed_variant",
    "free_ports",
    "open_trainer",
    "strategy_of",
    "tf_config",
]
