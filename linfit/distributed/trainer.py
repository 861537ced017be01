"""The parent's side of a distributed cell: its worker processes and a Trainer over them.

:func:`open_trainer` starts the workers of one cell (one process for ``mirrored`` and
``jax-sharding``, one per replica for ``multi-worker``, each with its own TF_CONFIG on free
local ports), and yields a :class:`RemoteTrainer`, which the harness measures and checks as
any trainer. Every call goes to every worker; the chief (worker 0) times its own calls,
and :meth:`RemoteTrainer.own_call_seconds` (the Trainer protocol) hands those times to the
harness in place of the parent's, which would count the pipe.

Each worker is a :class:`linfit._process.WorkerProcess`: its own process group, its stderr
kept for the error message, every request with a time limit, and on return, error, Ctrl-C or
SIGTERM (which the harness turns into KeyboardInterrupt) the whole group killed and waited
for. A worker also exits by itself when its parent dies (linfit.distributed._worker).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from linfit._process import WorkerFailed, WorkerProcess, receive_all
from linfit.backends.base import Device, Trainer
from linfit.data import Dataset
from linfit.distributed._protocol import (
    LIFETIME_ENV,
    check_port_free,
    check_tf_config,
    free_ports,
    tf_config,
)
from linfit.distributed.variants import DistributedVariant

__all__ = ["BUILD_TIMEOUT_SECONDS", "CALL_TIMEOUT_SECONDS", "RemoteTrainer", "WorkerFailed",
           "open_trainer"]

# Import of the framework, the strategy (a multi-worker one waits for its peers) and the data
# on the 2-core VM take 5-15 s; a limit well above that still ends a hung start in time.
BUILD_TIMEOUT_SECONDS = 180.0
# One request after the build: the first call traces and compiles (seconds); a call at 1e8
# on a CPU takes about a second. A worker silent for longer is hung.
CALL_TIMEOUT_SECONDS = 120.0
# A worker's whole life: a cell's timing, checks and convergence re-run take a minute or two.
WORKER_LIFETIME_SECONDS = 900.0
# Environment variables a worker must not inherit from the parent: a user's TF_CONFIG would
# turn a mirrored worker into a cluster member, and XLA_FLAGS is set per worker for JAX.
_STRIPPED_ENV = ("TF_CONFIG",)
# The command of a worker.
_WORKER_ARGV = (sys.executable, "-m", "linfit.distributed._worker")


class RemoteTrainer(Trainer):
    """A :class:`~linfit.backends.base.Trainer` whose step runs in worker processes.

    Made by :func:`open_trainer`, which also closes it.
    """

    def __init__(self, backend: str, variant: DistributedVariant, device: Device,
                 data: Dataset, workers: Sequence[WorkerProcess]) -> None:
        super().__init__(backend, variant, device, data, steps_per_call=1)
        self.workers = tuple(workers)

    def _all(self, request: dict[str, Any],
             timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> list[dict[str, Any]]:
        """Send ``request`` to every worker at once (a collective step needs them all), then
        collect the replies within one deadline.

        Raises:
            WorkerFailed: for a worker that dies (the first cause named), hangs or answers
                with an error.
        """
        for worker in self.workers:
            worker.send(request)
        return receive_all(self.workers, request["op"], timeout_seconds, fail_on_error=True)

    def build(self, request: dict[str, Any]) -> None:
        self._all({"op": "build", **request}, BUILD_TIMEOUT_SECONDS)

    def call(self) -> None:
        self._all({"op": "call"})

    def _chief_samples(self) -> list[float]:
        """The chief's call times since it was last asked, which it then forgets."""
        chief = self.workers[0]
        chief.send({"op": "take_samples"})
        return receive_all([chief], "take_samples", CALL_TIMEOUT_SECONDS,
                           fail_on_error=True)[0]["samples"]

    def start_timing(self) -> None:
        """Forget the chief's call times so far (warm-up calls)."""
        self._chief_samples()

    def own_call_seconds(self) -> tuple[float, ...]:
        """The chief's own time of each call since :meth:`start_timing`, in order: one
        sample per call, on the clock of the process that ran it."""
        return tuple(self._chief_samples())

    def reset(self) -> None:
        self._all({"op": "reset"})

    def set_learning_rate(self, learning_rate: float) -> None:
        self._all({"op": "set_learning_rate", "value": learning_rate})

    def weights(self) -> tuple[float, float]:
        """(W, b), after checking that every replica of every worker holds the same.

        Raises:
            WorkerFailed: naming the replicas that differ.
        """
        held = [(worker.label, index, tuple(pair)) for worker, reply
                in zip(self.workers, self._all({"op": "weights"}), strict=True)
                for index, pair in enumerate(reply["replicas"])]
        first = held[0][2]
        for label, index, pair in held[1:]:
            if pair != first:
                raise WorkerFailed(label, f"replica {index} has W, b = {pair}, but "
                                   f"{held[0][0]} replica 0 has {first} (replicas disagree)")
        return first

    def last_loss(self) -> float:
        return float(self._all({"op": "last_loss"})[0]["value"])

    @property
    def traces(self) -> int:
        return int(self._all({"op": "traces"})[0]["value"])

    def result_device(self) -> str:
        return str(self._all({"op": "result_device"})[0]["value"])


def _environments(variant: DistributedVariant, replicas: int,
                  ports: Sequence[int] | None) -> list[dict[str, str]]:
    base = {name: value for name, value in os.environ.items() if name not in _STRIPPED_ENV}
    base[LIFETIME_ENV] = str(WORKER_LIFETIME_SECONDS)
    if variant.strategy == "jax-sharding":
        flags = base.get("XLA_FLAGS", "")
        # Only in this worker: the parent's JAX keeps its one CPU device.
        base["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={replicas}".strip()
        return [base]
    if not variant.processes_per_replica:
        return [base]
    if ports is None:
        ports = free_ports(replicas)
    for port in ports:
        check_port_free(port)
    configs = [tf_config(list(ports), index) for index in range(replicas)]
    for config in configs:
        check_tf_config(config, replicas)
    return [{**base, "TF_CONFIG": config} for config in configs]


@contextlib.contextmanager
def open_trainer(backend: str, variant: DistributedVariant, device: Device, data: Dataset,
                 learning_rate: float, replicas: int, *, ports: Sequence[int] | None = None,
                 environments: Sequence[dict[str, str]] | None = None,
                 ) -> Iterator[RemoteTrainer]:
    """Start a distributed cell's workers, build its step in them, and yield its trainer;
    every worker is killed on the way out, however it is left.

    Args:
        backend, variant, device, data, learning_rate: the cell (``device`` is the first
            replica's; the others are the next devices of its kind).
        replicas: replicas in the whole job.
        ports: the multi-worker ports to use (default: free ones).
        environments: each worker's environment, in place of the ones made here (tests
            give a bad TF_CONFIG this way).

    Raises:
        LinfitError: for a port in use or a bad TF_CONFIG (before any worker starts).
        WorkerFailed: when a worker fails to build the step, dies or hangs.
    """
    envs = list(environments) if environments is not None else _environments(
        variant, replicas, ports)
    with contextlib.ExitStack() as workers:
        trainer = RemoteTrainer(backend, variant, device, data, [
            workers.enter_context(WorkerProcess(
                f"worker {index} ({'chief' if index == 0 else 'worker'})", _WORKER_ARGV, env))
            for index, env in enumerate(envs)])
        trainer.build({"backend": backend, "strategy": variant.strategy,
                       "compiled": variant.compiled, "xla": variant.xla,
                       "device_kind": device.kind, "replicas": replicas,
                       "n_examples": len(data.x), "dtype": data.dtype,
                       "seed": data.seed, "learning_rate": learning_rate})
        yield trainer
