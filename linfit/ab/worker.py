"""One side's long-lived worker: ``PYTHON -m linfit.ab.worker``, driven by the coordinator.

It speaks linfit's one worker protocol (:mod:`linfit._process`): JSON lines, requests on
stdin, replies on the original stdout, which is moved to a private descriptor at start so
that nothing a framework prints can corrupt a reply. A failed request is answered with
``"ok": false``, ``"error"`` (one line) and ``"kind"``: ``input`` (bad options: the user's
fault) or ``internal``.

Requests (``"op"``):

- ``hello``: versions and facts of this environment and machine; imports linfit's harness
  (not the frameworks). Loads the test plugins named in ``LINFIT_WORKER_PLUGINS`` first.
- ``plan``: resolves the cell options (as ``pytest bench/`` does) and returns the cells,
  and ``tensorflow_git_version``: ``tf.version.GIT_VERSION`` where planning imported
  TensorFlow ('' where it did not: hello imports no framework).
- ``build``: builds every cell once and runs the harness's checks on it (placement,
  warm-up, trace count, convergence), then times a few samples to calibrate the bursts;
  each cell's reply has the peak memory its build added (the harness's ``peak_rss_bytes``,
  ``device_peak_bytes``: this worker's earlier cells are the baseline, see
  :mod:`linfit.memory`).
- ``burst``: times ``samples`` samples of ``calls_per_sample`` consecutive calls of one
  cell, each call on its own clock (perf_counter_ns around the synchronised call), and
  the 1-minute load average when the burst started.
- ``hlo``: the optimized HLO of one built cell (:meth:`linfit.backends.Trainer.compiled_hlo`):
  its text, the steps one execution runs and the trip count of its loop; ``text`` null where
  XLA does not compile the cell. Asked after the bursts, for the cells that changed.
- ``quit``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from linfit import timing
from linfit._errors import LinfitError
from linfit._process import KIND_INPUT, KIND_INTERNAL, reply_stream, serve
from linfit.machine import load_average

__all__ = ["CALIBRATION_SAMPLES", "PLUGINS_ENV", "PROTOCOL_VERSION", "Worker", "main"]

# 2: the hlo request (issue 17).
PROTOCOL_VERSION = 2
# Comma-separated modules the worker imports before anything else: test-only plugins such
# as tests/ab_slower_step.py (importable through the side's PYTHONPATH).
PLUGINS_ENV = "LINFIT_WORKER_PLUGINS"
# Samples timed at build to calibrate the burst length (median of these).
CALIBRATION_SAMPLES = 3


class Worker:
    """The worker's state: the harness, the built cells' trainers, their check results."""

    def __init__(self) -> None:
        self.harness: Any = None
        self.cells: dict[str, Any] = {}
        self.trainers: dict[str, Any] = {}
        self._sessions = contextlib.ExitStack()
        self._session_backends: set[str] = set()

    def hello(self, request: dict[str, Any]) -> dict[str, Any]:
        # Imported here so that a side that cannot import linfit's harness (a missing
        # dependency) fails at hello, with the error on stderr.
        import linfit.harness  # noqa: F401
        from linfit.backends import BACKENDS, installed_backends
        from linfit.environment import env_flags, git_state, machine_facts

        commit, dirty = git_state()
        return {"protocol": PROTOCOL_VERSION, "pid": os.getpid(),
                "python": sys.executable, "python_version": platform.python_version(),
                "linfit_path": str(Path(__file__).resolve().parents[1]),
                "installed_backends": [name for name in installed_backends()
                                       if name in BACKENDS],
                "env_flags": env_flags(), "git_commit": commit, "git_dirty": dirty,
                "machine": machine_facts()}

    def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        from linfit.builds import imported_git_version
        from linfit.harness import Harness, build_matrix, cell_id, resolve_options

        options = resolve_options(request["values"], request["environ"], Path.cwd(), Path.cwd())
        # No HLO accounts at build (they would spend the session's budget): a cell's HLO is
        # read when the coordinator asks for it (hlo).
        self.harness = Harness(dataclasses.replace(options, hlo=False))
        matrix = build_matrix(options)
        self.cells = {cell_id(m.cell): m.cell for m in matrix}
        return {"tensorflow_git_version": imported_git_version(),
                "cells": [{"key": cell_id(m.cell), "backend": m.cell.backend,
                           "device": m.cell.device, "variant": m.cell.variant,
                           "n_examples": m.cell.n_examples, "dtype": m.cell.dtype,
                           "steps_per_call": m.cell.steps_per_call,
                           "replicas": m.cell.replicas, "convention": m.cell.convention,
                           "skip_reason": m.skip_reason} for m in matrix]}

    def build(self, request: dict[str, Any]) -> dict[str, Any]:
        from linfit.backends import Trainer, get_backend
        from linfit.harness import RawTiming

        calls_per_sample: dict[str, int] = request["calls_per_sample"]
        max_sample_ns = float(request["max_sample_seconds"]) * 1e9
        built = []
        for key in request["keys"]:
            cell = self.cells[key]
            calls = int(calls_per_sample[key])
            backend = get_backend(cell.backend)
            captured: list[Trainer] = []
            calibration: list[float] = []

            def time_calls(trainer: Trainer, calls: int = calls,
                           captured: list[Trainer] = captured,
                           calibration: list[float] = calibration) -> RawTiming:
                # The harness hands over the trainer (the Trainer protocol): keep it, so
                # the bursts time the very object whose placement, traces and convergence
                # the harness checked (and compiled once).
                captured.append(trainer)
                call = trainer.call
                # One call first: a cell of a second a call is calibrated with fewer calls
                # a sample (as its bursts will be), seconds of build rather than a minute.
                first_ns = timing.time_calls(call, 1)[0]
                calls = int(min(calls, max(1, max_sample_ns // max(first_ns, 1))))
                for _ in range(CALIBRATION_SAMPLES):
                    calibration.append(sum(timing.time_calls(call, calls)) / calls)
                return RawTiming(tuple(ns * 1e-9 for ns in calibration), calls)

            entry: dict[str, Any] = {"key": key}
            try:
                record = self.harness.run_cell(cell, time_calls)
            except Exception as error:  # a cell's failure is reported, the worker goes on
                entry.update(status="failed", message=f"{type(error).__name__}: "
                             + " ".join(str(error).split())[:1000])
                built.append(entry)
                continue
            entry.update(status=record.status, message=record.message,
                         first_call_seconds=record.first_call_seconds,
                         backend_version=record.facts.get("backend_version"),
                         device_name=record.facts.get("device_name"),
                         peak_rss_bytes=record.facts.get("peak_rss_bytes"),
                         device_peak_bytes=record.facts.get("device_peak_bytes"),
                         call_seconds=sorted(calibration)[len(calibration) // 2] * 1e-9)
            if entry["status"] == "ok":
                if captured:
                    self.trainers[key] = captured[0]
                    # Bursts run under the same global settings as the checks (hard
                    # device placement), kept for the worker's lifetime.
                    if backend.name not in self._session_backends:
                        self._sessions.enter_context(backend.session())
                        self._session_backends.add(backend.name)
                else:
                    entry.update(status="failed", message="the harness did not hand over "
                                 "the trainer; cannot time bursts")
            built.append(entry)
        return {"cells": built}

    def burst(self, request: dict[str, Any]) -> dict[str, Any]:
        trainer = self.trainers[request["key"]]
        calls = int(request["samples"]) * int(request["calls_per_sample"])
        load = load_average()  # before the clock: reading it is not part of the burst
        start_unix_ns = time.time_ns()
        # Each call on its own clock: the call synchronises the device itself (the Trainer
        # contract), so each reading follows finished work.
        call_ns = timing.time_calls(trainer.call, calls)
        return {"start_unix_ns": start_unix_ns, "call_ns": call_ns, "load_average": load}

    def hlo(self, request: dict[str, Any]) -> dict[str, Any]:
        trainer = self.trainers[request["key"]]
        try:
            program = trainer.compiled_hlo()
        except Exception as error:
            # Broad on purpose: the HLO is derived, and a framework that cannot print it
            # must not end the worker (serve() ends it on any error it does not map).
            return {"text": None, "error": f"{type(error).__name__}: "
                    + " ".join(str(error).split())[:1000]}
        if program is None:
            return {"text": None}
        return {"text": program.text, "steps_per_execution": program.steps_per_execution,
                "loop_trip_count": program.loop_trip_count, "source": program.source}

    def close(self) -> None:
        self._sessions.close()


def _load_plugins() -> None:
    for name in filter(None, (part.strip() for part in os.environ.get(PLUGINS_ENV, "")
                              .split(","))):
        importlib.import_module(name)


def main() -> int:
    """Run the worker on stdin and the original stdout; see the module docstring."""
    replies = reply_stream()
    _load_plugins()
    worker = Worker()
    try:
        serve(sys.stdin, replies,
              {"hello": worker.hello, "plan": worker.plan, "build": worker.build,
               "burst": worker.burst, "hlo": worker.hlo},
              # Bad options are the user's; an unknown cell key is the coordinator's bug. Any
              # other error ends the worker, its traceback on stderr for the coordinator.
              {LinfitError: KIND_INPUT, KeyError: KIND_INTERNAL})
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
