"""Test-only: a fake ``linfit ab`` worker that speaks the protocol and imports no framework.

tests/test_ab_coordinator.py starts it in place of ``python -m linfit.ab.worker``. Its cells
are ``fake-v<i>-CPU:0-n=1e+03-float32-k=1``; a call "takes" ``FAKE_AB_SECONDS`` (default
1 ms) times ``FAKE_AB_FACTOR`` (default 1), plus a drift of ``FAKE_AB_DRIFT`` per second
since the worker started. Each burst sleeps for its length and appends its real
``start end label pid`` (ns) to ``FAKE_AB_LOG``. Faults, counted in bursts of this worker:
``FAKE_AB_CRASH_AFTER`` (exit 3), ``FAKE_AB_HANG_AFTER`` (sleep forever),
``FAKE_AB_INTERRUPT_AFTER`` (SIGINT to the coordinator, as Ctrl-C), ``FAKE_AB_FAIL_CELL``
(that cell key fails its checks), ``FAKE_AB_CELLS`` (cells, default 3), ``FAKE_AB_HELLO``
(``exit``: die before answering hello; ``kill``: SIGKILL itself there), ``FAKE_AB_PLAN``
(``kill``: SIGKILL itself when asked to plan; ``input`` or ``internal``: answer plan with an
error of that kind), ``FAKE_AB_KERAS`` (``1``: one more cell, TensorFlow's ``keras-xla``,
which a session measures only when variants are named), ``FAKE_AB_GIT_VERSION`` (the
``tensorflow_git_version`` its plan reports; '' by default). The machine: ``FAKE_AB_MACHINE``
(JSON: facts the hello adds to its host), ``FAKE_AB_PEAK_RSS`` (each build's peak, bytes),
``FAKE_AB_LOAD`` (each burst's load average). ``FAKE_AB_HLO`` (a file: the
``hlo`` request answers its text as every cell's optimized HLO, one step per execution;
unset: no text, as for a cell XLA does not compile). ``FAKE_AB_NOISE`` (``v2:0.5,v0:0.1``):
a burst of that variant's cell takes its length times exp(N(0, sd)), one draw a burst, so
that the cell stays undecided; ``FAKE_AB_PYTHON_VERSION`` and ``FAKE_AB_BACKEND_VERSION``:
what hello and build report (``3.11.0``, ``0``), to change a side's environment.
``FAKE_AB_STARTS`` (a file): each worker adds a line to it as it starts; a worker that is not
the first of its side there (a restart) reports ``FAKE_AB_LATER_BACKEND_VERSION`` at build,
and an edited tree (``git_dirty``) at hello with ``FAKE_AB_LATER_DIRTY=1``, where those are
set. As the real worker, it answers ``hlo`` only for a cell it has built.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time

ENV = os.environ


def _noise(key: str) -> float:
    """The spread of this cell's bursts, by FAKE_AB_NOISE (``v2:0.5,...``; 0 elsewhere)."""
    for entry in filter(None, ENV.get("FAKE_AB_NOISE", "").split(",")):
        variant, _, sd = entry.partition(":")
        if key.startswith(f"fake-{variant}-"):
            return float(sd)
    return 0.0


def main() -> int:
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    print("fake worker: noise on fd 1 goes to stderr")
    if ENV.get("FAKE_AB_HELLO") == "exit":
        print("fake worker: cannot import linfit", file=sys.stderr)
        return 1
    started = time.monotonic()
    bursts = 0
    label = ENV.get("FAKE_AB_LABEL", "?")
    backend_version = ENV.get("FAKE_AB_BACKEND_VERSION", "0")
    dirty = False
    if ENV.get("FAKE_AB_STARTS"):
        with open(ENV["FAKE_AB_STARTS"], "a+") as starts:
            starts.seek(0)
            if label in starts.read().split():
                backend_version = ENV.get("FAKE_AB_LATER_BACKEND_VERSION", backend_version)
                dirty = ENV.get("FAKE_AB_LATER_DIRTY") == "1"
            starts.write(f"{label}\n")
    built: set[str] = set()
    keys = [f"fake-v{i}-CPU:0-n=1e+03-float32-k=1" for i in range(int(ENV.get("FAKE_AB_CELLS",
                                                                                  "3")))]
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        reply: dict = {"ok": True}
        if op == "quit":
            replies.write(json.dumps(reply) + "\n")
            return 0
        if ENV.get(f"FAKE_AB_{op.upper()}") == "kill":
            print(f"fake worker: killed during {op}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if op == "hello":
            reply.update(python=sys.executable,
                         python_version=ENV.get("FAKE_AB_PYTHON_VERSION", "3.11.0"),
                         installed_backends=["fake"], git_commit="fake", git_dirty=dirty,
                         machine={"host": "fakehost",
                                  **json.loads(ENV.get("FAKE_AB_MACHINE", "{}"))})
        elif op == "plan" and ENV.get("FAKE_AB_PLAN") in ("input", "internal"):
            reply = {"ok": False, "kind": ENV["FAKE_AB_PLAN"], "error": "fake plan error"}
        elif op == "plan":
            reply["tensorflow_git_version"] = ENV.get("FAKE_AB_GIT_VERSION", "")
            reply["cells"] = [{"key": key, "backend": "fake", "device": "CPU:0",
                               "variant": f"v{i}", "n_examples": 1000, "dtype": "float32",
                               "steps_per_call": 1, "skip_reason": ""}
                              for i, key in enumerate(keys)]
            if ENV.get("FAKE_AB_KERAS") == "1":
                keys.append("tensorflow-keras-xla-CPU:0-n=1e+03-float32-k=1")
                reply["cells"].append({"key": keys[-1], "backend": "tensorflow",
                                       "device": "CPU:0", "variant": "keras-xla",
                                       "n_examples": 1000, "dtype": "float32",
                                       "steps_per_call": 1, "skip_reason": ""})
        elif op == "build":
            built.update(request["keys"])
            reply["cells"] = [
                {"key": key, "status": "failed" if key == ENV.get("FAKE_AB_FAIL_CELL") else "ok",
                 "message": "fake convergence failure" if key == ENV.get("FAKE_AB_FAIL_CELL")
                 else "", "backend_version": backend_version,
                 "device_name": "fake CPU",
                 "call_seconds": float(ENV.get("FAKE_AB_SECONDS", "0.001")),
                 "peak_rss_bytes": int(ENV["FAKE_AB_PEAK_RSS"]) if "FAKE_AB_PEAK_RSS" in ENV
                 else None}
                for key in request["keys"]]
        elif op == "hlo" and request["key"] not in built:
            reply = {"ok": False, "kind": "internal", "error": f"KeyError: {request['key']!r}"}
        elif op == "hlo":
            if ENV.get("FAKE_AB_HLO"):
                with open(ENV["FAKE_AB_HLO"]) as text:
                    reply.update(text=text.read(), steps_per_execution=1,
                                 loop_trip_count=None, source="fake")
            else:
                reply.update(text=None)
        elif op == "burst":
            bursts += 1
            if bursts > int(ENV.get("FAKE_AB_CRASH_AFTER", "1000000")):
                print("fake worker: crashing", file=sys.stderr)
                os._exit(3)
            if bursts > int(ENV.get("FAKE_AB_HANG_AFTER", "1000000")):
                print("fake worker: hanging", file=sys.stderr, flush=True)
                time.sleep(3600)
            if bursts > int(ENV.get("FAKE_AB_INTERRUPT_AFTER", "1000000")):
                os.kill(os.getppid(), signal.SIGINT)
                time.sleep(5)
            calls = request["samples"] * request["calls_per_sample"]
            per_call = (float(ENV.get("FAKE_AB_SECONDS", "0.001"))
                        * float(ENV.get("FAKE_AB_FACTOR", "1"))
                        * (1 + float(ENV.get("FAKE_AB_DRIFT", "0")) * (time.monotonic()
                                                                       - started))
                        * math.exp(random.gauss(0, _noise(request["key"]))))
            start = time.time_ns()
            time.sleep(calls * per_call)
            end = time.time_ns()
            if ENV.get("FAKE_AB_LOG"):
                with open(ENV["FAKE_AB_LOG"], "a") as log:
                    log.write(f"{start} {end} {label} {os.getpid()}\n")
            reply.update(start_unix_ns=start, call_ns=[int(per_call * 1e9)] * calls)
            if "FAKE_AB_LOAD" in ENV:
                reply["load_average"] = float(ENV["FAKE_AB_LOAD"])
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
