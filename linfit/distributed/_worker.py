"""A worker process of a distributed cell: ``python -m linfit.distributed._worker``.

It serves one cell, in linfit's one worker protocol (:mod:`linfit._process`): JSON lines,
requests on stdin, replies on the original stdout (file descriptor 1 is pointed at stderr, so
that nothing a framework prints can corrupt a reply). A reply is ``{"ok": true, ...}`` or
``{"ok": false, "kind": "internal", "error": "<one line>"}``.

The process ends on ``quit``, at the end of stdin (its parent is gone), when its parent
process changes (the parent was killed), or after ``LINFIT_WORKER_LIFETIME`` seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from linfit._process import KIND_INTERNAL, reply_stream, serve
from linfit.distributed._protocol import LIFETIME_ENV, WATCHDOG_PERIOD_SECONDS, check_tf_config
from linfit.timing import time_calls

# The status of a worker that its watchdog ended (parent gone, lifetime over).
WATCHDOG_EXIT_STATUS = 3


def _watchdog(parent: int, lifetime_seconds: float) -> None:
    """Exit (without cleanup: a collective op may hang) when the parent is gone or the
    lifetime is over."""
    deadline = time.monotonic() + lifetime_seconds
    while True:
        time.sleep(WATCHDOG_PERIOD_SECONDS)
        if os.getppid() != parent or time.monotonic() > deadline:
            why = ("its parent is gone" if os.getppid() != parent
                   else f"its lifetime of {lifetime_seconds:g} s is over")
            print(f"linfit worker {os.getpid()}: {why}; exiting", file=sys.stderr, flush=True)
            os._exit(WATCHDOG_EXIT_STATUS)


def _build(request: dict[str, Any]) -> Any:
    from linfit.data import make_dataset

    data = make_dataset(request["n_examples"], request["dtype"], request["seed"])
    if request["backend"] == "jax":
        import jax

        if request["dtype"] == "float64":
            jax.config.update("jax_enable_x64", True)
        from linfit.backends.jax import ShardedStep

        return ShardedStep(request["device_kind"], request["replicas"], data,
                           request["learning_rate"])
    if request["strategy"] == "multi-worker":
        check_tf_config(os.environ.get("TF_CONFIG", ""), request["replicas"])
    from linfit.backends.tf_distributed import DistributedStep

    return DistributedStep(request["strategy"], request["compiled"], request["xla"],
                           request["device_kind"], request["replicas"], data,
                           request["learning_rate"])


class _Cell:
    """The requests a worker answers, on the one step it builds."""

    def __init__(self) -> None:
        self.step: Any = None
        self.samples: list[float] = []

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"build": self.build, "call": self.call, "take_samples": self.take_samples,
                "reset": self.reset, "set_learning_rate": self.set_learning_rate,
                "weights": lambda request: {"replicas": self.step.replica_weights()},
                "last_loss": lambda request: {"value": self.step.last_loss()},
                "traces": lambda request: {"value": self.step.traces},
                "result_device": lambda request: {"value": self.step.result_device()}}

    def build(self, request: dict[str, Any]) -> dict[str, Any]:
        self.step = _build(request)
        return {}

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        # Timed here, on the chief, and not by the parent: the parent's clock would count
        # the pipe and the other workers' replies. Garbage collection stays on, as it always
        # has in the chief (the parent's pytest-benchmark rounds switch it off there).
        [seconds] = time_calls(self.step.call, 1, disable_gc=False, clock=time.perf_counter)
        self.samples.append(seconds)
        return {}

    def reset(self, request: dict[str, Any]) -> dict[str, Any]:
        self.step.reset()
        return {}

    def set_learning_rate(self, request: dict[str, Any]) -> dict[str, Any]:
        self.step.set_learning_rate(request["value"])
        return {}

    def take_samples(self, request: dict[str, Any]) -> dict[str, Any]:
        samples, self.samples = self.samples, []
        return {"samples": samples}


def main() -> None:
    """Entry point: protocol on the original stdout, everything else to stderr."""
    replies = reply_stream()
    lifetime = float(os.environ[LIFETIME_ENV])
    threading.Thread(target=_watchdog, args=(os.getppid(), lifetime), daemon=True).start()
    # Any error in a request is an error reply, and the worker goes on.
    serve(sys.stdin, replies, _Cell().handlers(), {Exception: KIND_INTERNAL})


if __name__ == "__main__":
    main()
