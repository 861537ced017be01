"""The parent's side of a distributed cell: its worker processes and a Trainer over them.

:func:`open_trainer` starts the workers of one cell (one process for ``mirrored`` and
``jax-sharding``, one per replica for ``multi-worker``, each with its own TF_CONFIG on free
local ports), and yields a :class:`RemoteTrainer`, which the harness measures and checks as
any trainer. Every call goes to every worker; the chief (worker 0) times its own calls,
and :meth:`RemoteTrainer.own_call_seconds` (the Trainer protocol) hands those times to the
harness in place of the parent's, which would count the pipe.

Hygiene: each worker is its own process group, its stderr goes to a file that is kept for
the error message, every request has a time limit, and on return, error, Ctrl-C or SIGTERM
(which the harness turns into KeyboardInterrupt) the whole group is killed and waited for.
A worker also exits by itself when its parent dies (linfit.distributed._worker).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from linfit._errors import LinfitError
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

__all__ = ["BUILD_TIMEOUT_SECONDS", "CALL_TIMEOUT_SECONDS", "RemoteTrainer", "WorkerError",
           "open_trainer"]

# Import of the framework, the strategy (a multi-worker one waits for its peers) and the data
# on the 2-core VM take 5-15 s; a limit well above that still ends a hung start in time.
BUILD_TIMEOUT_SECONDS = 180.0
# One request after the build: the first call traces and compiles (seconds); a call at 1e8
# on a CPU takes about a second. A worker silent for longer is hung.
CALL_TIMEOUT_SECONDS = 120.0
# How often the parent looks for a dead worker while it waits for replies.
DEATH_CHECK_SECONDS = 0.2
# A worker's whole life: a cell's timing, checks and convergence re-run take a minute or two.
WORKER_LIFETIME_SECONDS = 900.0
# The tail of a dead worker's stderr in the cell's message.
STDERR_TAIL_CHARACTERS = 2000
# Environment variables a worker must not inherit from the parent: a user's TF_CONFIG would
# turn a mirrored worker into a cluster member, and XLA_FLAGS is set per worker for JAX.
_STRIPPED_ENV = ("TF_CONFIG",)


class WorkerError(LinfitError):
    """Raised when a worker dies, hangs past its time limit, or answers with an error; the
    message names the worker and carries the tail of its stderr."""


class _Worker:
    """One worker process: its pipes, its stderr file, its process group."""

    def __init__(self, label: str, env: dict[str, str], stderr_dir: Path) -> None:
        self.label = label
        self.stderr_path = stderr_dir / f"{label}.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "linfit.distributed._worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, env=env,
            # Its own process group: killpg ends it and anything it started, and a Ctrl-C
            # in the terminal reaches the parent only, which then kills the group.
            start_new_session=True)

    def send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self.died("before it could be sent a request") from None

    def receive(self, timeout_seconds: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_seconds)
        if not ready:
            raise WorkerError(f"worker {self.label} did not answer within {timeout_seconds:g} s "
                              f"(hung; killed){self.stderr_tail()}")
        line = self.process.stdout.readline()
        if not line:
            raise self.died("while answering")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise WorkerError(f"worker {self.label}: {reply.get('error')}")
        return reply

    def died(self, when: str) -> WorkerError:
        code = self.process.wait()
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return WorkerError(f"worker {self.label} {how} {when}{self.stderr_tail()}")

    def stderr_tail(self) -> str:
        self._stderr.flush()
        text = self.stderr_path.read_text(errors="replace").strip()
        if not text:
            return ""
        tail = " | ".join(text[-STDERR_TAIL_CHARACTERS:].splitlines())
        return f"; its stderr: {tail}"

    def kill(self) -> None:
        """Kill the worker's process group and reap it; idempotent."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class RemoteTrainer(Trainer):
    """A :class:`~linfit.backends.base.Trainer` whose step runs in worker processes.

    Made by :func:`open_trainer`, which also closes it.
    """

    def __init__(self, backend: str, variant: DistributedVariant, device: Device,
                 data: Dataset, workers: Sequence[_Worker]) -> None:
        super().__init__(backend, variant, device, data, steps_per_call=1)
        self.workers = tuple(workers)

    def _all(self, request: dict[str, Any],
             timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> list[dict[str, Any]]:
        """Send ``request`` to every worker at once (a collective step needs them all), then
        collect the replies within one deadline."""
        try:
            for worker in self.workers:
                worker.send(request)
            deadline = time.monotonic() + timeout_seconds
            replies: dict[int, dict[str, Any]] = {}
            while len(replies) < len(self.workers):
                # A dead peer is seen at once, not after the survivors' collective times out.
                for worker in self.workers:
                    if worker.process.poll() is not None:
                        raise worker.died("during the request")
                waiting = {worker.process.stdout: index
                           for index, worker in enumerate(self.workers) if index not in replies}
                remaining = deadline - time.monotonic()
                ready, _, _ = select.select(list(waiting), [], [],
                                            max(0.0, min(DEATH_CHECK_SECONDS, remaining)))
                for stream in ready:
                    replies[waiting[stream]] = self.workers[waiting[stream]].receive(0.0)
                if not ready and remaining <= 0:
                    late = self.workers[min(waiting.values())]
                    raise WorkerError(f"worker {late.label} did not answer within "
                                      f"{timeout_seconds:g} s (hung; killed)"
                                      f"{late.stderr_tail()}")
            return [replies[index] for index in range(len(self.workers))]
        except WorkerError as error:
            # A worker that died is the cause; the others' errors (a collective aborted, a
            # peer that stopped sending heartbeats) are its consequence.
            dead = [worker for worker in self.workers if worker.process.poll() is not None]
            if dead and not str(error).startswith(f"worker {dead[0].label} "):
                raise dead[0].died("during the step") from error
            raise

    def build(self, request: dict[str, Any]) -> None:
        self._all({"op": "build", **request}, BUILD_TIMEOUT_SECONDS)

    def call(self) -> None:
        self._all({"op": "call"})

    def start_timing(self) -> None:
        """Forget the chief's call times so far (warm-up calls)."""
        self.workers[0].send({"op": "take_samples"})
        self.workers[0].receive(CALL_TIMEOUT_SECONDS)

    def own_call_seconds(self) -> tuple[float, ...]:
        """The chief's own time of each call since :meth:`start_timing`, in order: one
        sample per call, on the clock of the process that ran it."""
        self.workers[0].send({"op": "take_samples"})
        return tuple(self.workers[0].receive(CALL_TIMEOUT_SECONDS)["samples"])

    def reset(self) -> None:
        self._all({"op": "reset"})

    def set_learning_rate(self, learning_rate: float) -> None:
        self._all({"op": "set_learning_rate", "value": learning_rate})

    def weights(self) -> tuple[float, float]:
        """(W, b), after checking that every replica of every worker holds the same.

        Raises:
            WorkerError: naming the replicas that differ.
        """
        held = [(worker.label, index, tuple(pair)) for worker, reply
                in zip(self.workers, self._all({"op": "weights"}), strict=True)
                for index, pair in enumerate(reply["replicas"])]
        first = held[0][2]
        for label, index, pair in held[1:]:
            if pair != first:
                raise WorkerError(f"replicas disagree: worker {self.workers[0].label} replica 0 "
                                  f"has W, b = {first}, worker {label} replica {index} {pair}")
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
        WorkerError: when a worker fails to build the step, dies or hangs.
    """
    envs = list(environments) if environments is not None else _environments(
        variant, replicas, ports)
    with tempfile.TemporaryDirectory(prefix="linfit-workers-") as stderr_dir:
        workers: list[_Worker] = []
        try:
            for index, env in enumerate(envs):
                role = "chief" if index == 0 else "worker"
                workers.append(_Worker(f"{index} ({role})", env, Path(stderr_dir)))
            trainer = RemoteTrainer(backend, variant, device, data, workers)
            trainer.build({"backend": backend, "strategy": variant.strategy,
                           "compiled": variant.compiled, "xla": variant.xla,
                           "device_kind": device.kind, "replicas": replicas,
                           "n_examples": len(data.x), "dtype": data.dtype,
                           "seed": data.seed, "learning_rate": learning_rate})
            yield trainer
        finally:
            for worker in workers:
                worker.kill()
