"""A worker process of a distributed cell: ``python -m linfit.distributed._worker``.

It serves one cell. Requests come as JSON lines on stdin, one reply per request as a JSON line
on the protocol stream (the original stdout; file descriptor 1 is pointed at stderr, so that
nothing a framework prints can corrupt a reply). A reply is ``{"ok": true, ...}`` or
``{"ok": false, "error": "<one line>"}``.

The process ends on ``quit``, at the end of stdin (its parent is gone), when its parent
process changes (the parent was killed), or after ``LINFIT_WORKER_LIFETIME`` seconds.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

from linfit.distributed._protocol import LIFETIME_ENV, WATCHDOG_PERIOD_SECONDS, check_tf_config

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


def serve(requests: TextIO, replies: TextIO) -> None:
    """Answer requests until ``quit`` or the end of ``requests``."""
    step: Any = None
    samples: list[float] = []
    for line in requests:
        request = json.loads(line)
        op = request["op"]
        reply: dict[str, Any] = {"ok": True}
        try:
            if op == "build":
                step = _build(request)
            elif op == "call":
                start = time.perf_counter()
                step.call()
                # Measured here, on the chief, and not by the parent: the parent's clock
                # would count the pipe and the other workers' replies.
                samples.append(time.perf_counter() - start)
            elif op == "take_samples":
                reply["samples"], samples = samples, []
            elif op == "reset":
                step.reset()
            elif op == "set_learning_rate":
                step.set_learning_rate(request["value"])
            elif op == "weights":
                reply["replicas"] = step.replica_weights()
            elif op == "last_loss":
                reply["value"] = step.last_loss()
            elif op == "traces":
                reply["value"] = step.traces
            elif op == "result_device":
                reply["value"] = step.result_device()
            elif op == "quit":
                replies.write(json.dumps(reply) + "\n")
                replies.flush()
                return
            else:
                reply = {"ok": False, "error": f"unknown request {op!r}"}
        except Exception as error:
            reply = {"ok": False, "error": " ".join(f"{type(error).__name__}: {error}".split())}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    """Entry point: protocol on the original stdout, everything else to stderr."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    lifetime = float(os.environ[LIFETIME_ENV])
    threading.Thread(target=_watchdog, args=(os.getppid(), lifetime), daemon=True).start()
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
