"""Test-only: a ``linfit ab`` worker (``LINFIT_WORKER_PLUGINS``) that is killed (SIGKILL) when
asked to plan its cells, as the out-of-memory killer or a user's ``kill -9`` would do: the
plan resolves the cell options first, and that is where it dies."""

import os
import signal

import linfit.harness


def _killed(*args: object, **kwargs: object) -> None:
    print("ab_killed_at_plan: SIGKILL now", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


linfit.harness.resolve_options = _killed  # type: ignore[assignment]
