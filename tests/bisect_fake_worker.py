"""Test-only: a fake ``linfit ab`` worker standing for one TensorFlow build of a bisect.

It speaks the worker protocol (``hello``, ``plan``, ``build``, ``burst``, ``quit``) and imports
no framework. tests/test_bisect*.py start it through a fake interpreter, a shell script
that runs this file whatever arguments it gets, so the coordinator's real worker command
starts it. The environment describes the build:

- ``FAKE_BISECT_BUILD``: the build's index in the bisected range (0 = GOOD);
- ``FAKE_BISECT_CHANGES``: the planted changes, ``INDEX:FACTOR[:VARIANT],...``: from build
  INDEX on, a call of cell VARIANT (of every cell without one) takes FACTOR times longer;
- ``FAKE_BISECT_SECONDS``: a call's time before any change (default 1 ms);
- ``FAKE_BISECT_CELLS``: how many of TensorFlow's ``function`` and ``xla`` cells at n=1e3
  (default 2), narrowed by the ``plan`` request's variants (``xla`` or ``tensorflow:xla``)
  and sizes. Real names, since a session checks variants against linfit's registries
  before any worker starts; nothing of TensorFlow runs;
- ``FAKE_BISECT_NOISE``: the spread of a call's time, a lognormal sigma (default 0: every
  call of a burst takes the same time);
- ``FAKE_BISECT_INTERRUPT_AFTER``: after that many bursts, SIGINT to the coordinator (Ctrl-C),
  or the signal ``FAKE_BISECT_SIGNAL`` names (``SIGTERM``: CI cancelling the job);
- ``FAKE_BISECT_CRASH_AFTER``: after that many bursts, exit with status 3;
- ``FAKE_BISECT_LOG``: a file that gets one ``hello BUILD PID`` line per worker started;
- ``FAKE_BISECT_HELLO``: ``exit``: die before answering hello, as a worker that cannot
  import linfit;
- ``FAKE_BISECT_HLO``: ``BEFORE,AFTER``, two files: the ``hlo`` request answers BEFORE's
  text as a cell's optimized HLO where no planted change is in effect on that cell, else
  AFTER's (without it: no HLO).

:class:`FakeBuilds` is the bisect's environments object over such builds: the tests hand
it to :func:`linfit.bisect.run_bisect`.

Its plan reply reports the build's ``tensorflow_git_version`` (as linfit's worker does once
planning imported TensorFlow), as a nightly's reads:
``v1.12.1-<148000 + INDEX>-g<INDEX as 5 hex digits>c0ffee``, unless ``FAKE_BISECT_GIT``
is ``none`` (a worker that does not report it). Bursts are not slept: a burst
reports its call times at once, so that a session of many bursts takes well under a second.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

ENV = os.environ
# A nightly's GIT_VERSION: the last tag, the commits since, and "g" + the short hash.
GIT_VERSION = "v1.12.1-{count}-g{index:05x}c0ffee"
FIRST_COUNT = 148000
# The fake cells' variants, in order.
CELL_VARIANTS = ("function", "xla")


class FakeBuilds:
    """The environments of a bisect over ``count`` fake builds ``tf-fake==0.dev00``, ...:
    each side is this file, run with the build's index and the planted changes.

    Args:
        folder: where the fake interpreter (a shell script) is written.
        count: builds in the range, GOOD (index 0) and BAD (``count - 1``) included.
        changes: ``FAKE_BISECT_CHANGES``.
        broken: indices of builds that "do not install" (side() raises Unavailable).
        settings: more worker settings, for every build (``FAKE_BISECT_NOISE``, ...).
        per_build: more worker settings for one build, by index.
        interrupt_at: side() raises KeyboardInterrupt on its call with this number (1, 2,
            ...), as if Ctrl-C came while a build was being prepared.
    """

    def __init__(self, folder: Path, count: int, changes: str = "",
                 broken: Collection[int] = (), settings: Mapping[str, str] | None = None,
                 per_build: Mapping[int, Mapping[str, str]] | None = None,
                 interrupt_at: int | None = None) -> None:
        self.builds = [f"tf-fake==0.dev{index:02d}" for index in range(count)]
        self.changes = changes
        self.broken = set(broken)
        self.settings = dict(settings or {})
        self.per_build = dict(per_build or {})
        self.interrupt_at = interrupt_at
        self.side_calls: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)
        self.python = folder / "fake-python"
        # The coordinator runs `PYTHON -m linfit.ab.worker`: this "interpreter" runs the
        # fake worker whatever it is asked.
        self.python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__)}"\n')
        self.python.chmod(0o755)

    def side(self, build: str) -> Any:
        from linfit.ab.spec import Side
        from linfit.bisect import Unavailable

        self.side_calls.append(build)
        if len(self.side_calls) == self.interrupt_at:
            raise KeyboardInterrupt
        index = self.builds.index(build)
        if index in self.broken:
            raise Unavailable(f"{build} does not install: no matching distribution (fake)")
        env = {"FAKE_BISECT_BUILD": str(index), "FAKE_BISECT_CHANGES": self.changes,
               **self.settings, **self.per_build.get(index, {})}
        return Side("fake", str(self.python), tuple(env.items()))

    def builds_between(self, good: str, bad: str) -> list[str]:
        return self.builds[self.builds.index(good) + 1:self.builds.index(bad)]


def _factor(build: int, variant: str) -> float:
    factor = 1.0
    for entry in filter(None, ENV.get("FAKE_BISECT_CHANGES", "").split(",")):
        index, change, *only = entry.split(":")
        if build >= int(index) and (not only or only[0] == variant):
            factor *= float(change)
    return factor


def _selected(request: dict, variant: str, n: int) -> bool:
    """Whether the plan request's variants and sizes select cell ``variant`` at ``n``."""
    variants = request["values"].get("linfit_variants")
    if variants and not {variant, f"tensorflow:{variant}"} & set(variants.split(",")):
        return False
    sizes = request["values"].get("linfit_sizes")
    return not sizes or n in {int(float(size)) for size in sizes.split(",")}


def main() -> int:
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    build = int(ENV.get("FAKE_BISECT_BUILD", "0"))
    seconds = float(ENV.get("FAKE_BISECT_SECONDS", "0.001"))
    noise = float(ENV.get("FAKE_BISECT_NOISE", "0"))
    # No numpy: a bisect starts hundreds of these, and its import was most of each start.
    rng = random.Random(os.getpid())
    variants = {}
    bursts = 0
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        reply: dict = {"ok": True}
        if op == "quit":
            replies.write(json.dumps(reply) + "\n")
            return 0
        if op == "hello":
            if ENV.get("FAKE_BISECT_HELLO") == "exit":
                print("fake worker: cannot import linfit", file=sys.stderr)
                return 1
            if ENV.get("FAKE_BISECT_LOG"):
                with open(ENV["FAKE_BISECT_LOG"], "a") as log:
                    log.write(f"hello {build} {os.getpid()}\n")
            reply.update(python=sys.executable, python_version="3.11.0",
                         installed_backends=["tensorflow"], git_commit="fake", git_dirty=False,
                         machine={"host": "fakehost"})
        elif op == "plan":
            cells = []
            for variant in CELL_VARIANTS[:int(ENV.get("FAKE_BISECT_CELLS", "2"))]:
                key = f"tensorflow-{variant}-CPU:0-n=1000-float32-k=1"
                if _selected(request, variant, 1000):
                    variants[key] = variant
                    cells.append({"key": key, "backend": "tensorflow", "device": "CPU:0",
                                  "variant": variant, "n_examples": 1000, "dtype": "float32",
                                  "steps_per_call": 1, "skip_reason": ""})
            reply["cells"] = cells
            if ENV.get("FAKE_BISECT_GIT") != "none":
                reply["tensorflow_git_version"] = GIT_VERSION.format(
                    count=FIRST_COUNT + build, index=build)
        elif op == "build":
            reply["cells"] = [{"key": key, "status": "ok", "message": "",
                               "backend_version": f"0.dev{build}", "device_name": "fake CPU",
                               "call_seconds": seconds * _factor(build, variants[key])}
                              for key in request["keys"]]
        elif op == "hlo":
            reply["text"] = None
            if ENV.get("FAKE_BISECT_HLO"):
                before, after = ENV["FAKE_BISECT_HLO"].split(",")
                changed = _factor(build, variants[request["key"]]) != 1.0
                with open(after if changed else before) as text:
                    reply.update(text=text.read(), steps_per_execution=1,
                                 loop_trip_count=None, source="fake")
        elif op == "burst":
            bursts += 1
            if bursts > int(ENV.get("FAKE_BISECT_CRASH_AFTER", "1000000")):
                print("fake worker: crashing", file=sys.stderr, flush=True)
                os._exit(3)
            if bursts > int(ENV.get("FAKE_BISECT_INTERRUPT_AFTER", "1000000")):
                os.kill(os.getppid(), signal.Signals[ENV.get("FAKE_BISECT_SIGNAL", "SIGINT")])
                time.sleep(5)  # the coordinator kills this worker as it stops
            calls = request["samples"] * request["calls_per_sample"]
            per_call = seconds * _factor(build, variants[request["key"]])
            times = [per_call * (rng.lognormvariate(0.0, noise) if noise else 1.0)
                     for _ in range(calls)]
            reply.update(start_unix_ns=time.time_ns(),
                         call_ns=[max(1, int(t * 1e9)) for t in times])
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
