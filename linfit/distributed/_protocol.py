"""What a distributed cell's parent and its workers share: TF_CONFIG, ports, time limits.

Framework-free: the parent imports it before any worker starts, the worker before its
framework.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from linfit._errors import LinfitError

__all__ = ["LIFETIME_ENV", "LOCALHOST", "WATCHDOG_PERIOD_SECONDS", "check_port_free",
           "check_tf_config", "free_ports", "tf_config"]

# Environment variable with a worker's whole lifetime, in seconds; the worker exits after it.
LIFETIME_ENV = "LINFIT_WORKER_LIFETIME"
# How often a worker checks that its parent is alive: a killed parent's workers are gone
# within a second.
WATCHDOG_PERIOD_SECONDS = 0.5
# Multi-worker jobs on this machine only: the loopback interface.
LOCALHOST = "localhost"


def check_port_free(port: int, host: str = LOCALHOST) -> None:
    """Raise when ``port`` on ``host`` cannot be bound (another process holds it).

    Raises:
        LinfitError: naming the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds (gRPC's does): connections of a finished job that linger in
        # TIME_WAIT do not hold the port, a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise LinfitError(f"port {port} on {host} is in use ({error.strerror}); a "
                              "multi-worker cell needs one free port per worker") from None


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """``count`` distinct ports that are free now (the kernel's choice of ephemeral ports).

    They are released before they are returned, so another process could take one before a
    worker binds it: the worker then fails to start, with that in its stderr.
    """
    sockets = []
    try:
        for _ in range(count):
            # Held until all are chosen, so the kernel gives distinct ports.
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(probe)
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def tf_config(ports: list[int], index: int, host: str = LOCALHOST) -> str:
    """The TF_CONFIG of worker ``index`` of a job of one worker per port (worker 0 is the
    chief, as MultiWorkerMirroredStrategy has it without a "chief" job)."""
    return json.dumps({"cluster": {"worker": [f"{host}:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def check_tf_config(text: str, replicas: int) -> dict[str, Any]:
    """A TF_CONFIG for a job of ``replicas`` workers, checked before TensorFlow reads it
    (TensorFlow's own errors for a bad one come late and far from the cause).

    Returns:
        The parsed TF_CONFIG.

    Raises:
        LinfitError: one line saying what is wrong: not JSON, no ``cluster.worker`` list of
            ``host:port`` addresses, another number of workers than replicas, a ``task``
            that is not a worker of the cluster.
    """
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise LinfitError(f"TF_CONFIG is not JSON ({error.msg}): {text!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers:
        raise LinfitError("TF_CONFIG has no cluster.worker list of host:port addresses")
    for address in workers:
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise LinfitError(f"TF_CONFIG: worker address {address!r} is not host:port")
    if len(workers) != replicas:
        raise LinfitError(f"TF_CONFIG names {len(workers)} workers, but the cell has "
                          f"{replicas} replicas (one worker each)")
    task = config.get("task")
    if (not isinstance(task, dict) or task.get("type") != "worker"
            or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(workers)):
        raise LinfitError(f"TF_CONFIG: task {task!r} is not a worker of the cluster "
                          f"(type 'worker', index 0 to {len(workers) - 1})")
    return config
