"""linfit/_process.py: the one worker-process class and its JSON-lines protocol.

The contract tests run through both of the class's users, as each calls it: the A/B
coordinator (a side's worker, one request at a time) and the distributed trainer (a request
to every worker, the replies collected under one deadline). Their children are tiny
``python -c`` programs; every one is killed by the class under test, and every wait in these
tests has a bound, so a regression shows as a failure, not a hang.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from linfit._errors import LinfitError
from linfit._process import (
    KIND_INPUT,
    KIND_INTERNAL,
    WorkerFailed,
    WorkerProcess,
    receive_all,
    run_child,
    serve,
)
from linfit.ab.coordinator import _SideWorker, worker_environ
from linfit.ab.spec import Side
from linfit.backends.base import Device
from linfit.data import make_dataset
from linfit.distributed import DISTRIBUTED_VARIANTS, RemoteTrainer

TESTS = Path(__file__).parent
# A request's time-out in these tests, seconds.
TIMEOUT_SECONDS = 1.0
# How long a test waits for what should take well under a second before it calls it a hang.
HANG_SECONDS = 30.0


# --- the two users, as each starts a worker and asks it ---------------------------------------

def ab_worker(program: str) -> WorkerProcess:
    """As the coordinator starts a side's worker (label, environment from the side)."""
    side = Side("B", sys.executable, ())
    return _SideWorker(side, [sys.executable, "-c", program], worker_environ(side, os.environ))


def ab_ask(worker: WorkerProcess, timeout: float) -> dict[str, Any]:
    """As the coordinator asks it: one request, then its reply."""
    return worker.request({"op": "hello"}, timeout)


def distributed_worker(program: str) -> WorkerProcess:
    """As open_trainer starts a cell's chief."""
    return WorkerProcess("worker 0 (chief)", [sys.executable, "-c", program], dict(os.environ))


def distributed_ask(worker: WorkerProcess, timeout: float) -> dict[str, Any]:
    """As the trainer asks its workers: every worker the request, replies under one
    deadline, an error reply a failure."""
    data = make_dataset(8, "float32")
    trainer = RemoteTrainer("tensorflow", DISTRIBUTED_VARIANTS["tensorflow"]["mirrored-eager"],
                            Device("tensorflow", "CPU:0", "CPU", "cpu"), data, [worker])
    return trainer._all({"op": "call"}, timeout)[0]


USERS = {"ab": (ab_worker, ab_ask), "distributed": (distributed_worker, distributed_ask)}
User = tuple[Callable[[str], WorkerProcess], Callable[[WorkerProcess, float], dict[str, Any]]]


@pytest.fixture(params=sorted(USERS))
def user(request: pytest.FixtureRequest) -> User:
    return USERS[request.param]


def _within(seconds: float, function: Callable[[], Any]) -> Any:
    """``function()``'s result or exception; fails the test if it has not returned within
    ``seconds`` (a hang)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds:g} s: hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _gone(pid: int, wait_seconds: float = 10.0) -> bool:
    """Whether ``pid`` has ended (a zombie not yet reaped by init counts as ended)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --- children ----------------------------------------------------------------------------------

# Reads a request, writes half a reply, then sleeps: a reader that waits for the end of the
# line blocks for an hour.
HALF_A_LINE = """
import sys, time
sys.stdin.readline()
sys.stdout.write('{"ok": tr')
sys.stdout.flush()
time.sleep(3600)
"""

# Says why on stderr, then exits with status 3 at its first request.
DIES_WITH_A_REASON = """
import sys
print("starting up", file=sys.stderr)
sys.stdin.readline()
print("worker-trouble: the disk is on fire", file=sys.stderr, flush=True)
sys.exit(3)
"""

# Starts a grandchild that ignores SIGTERM, answers every request with its pid but "sleep"
# (which it never answers), and quits politely when asked (leaving the grandchild behind,
# unless its group is killed).
WITH_A_GRANDCHILD = """
import json, subprocess, sys, time
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
     "signal.SIG_IGN); print('ready', flush=True); time.sleep(3600)"],
    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
grandchild.stdout.readline()
for line in sys.stdin:
    op = json.loads(line)["op"]
    if op == "sleep":
        time.sleep(3600)
    print(json.dumps({"ok": True, "grandchild": grandchild.pid}), flush=True)
    if op == "quit":
        sys.exit(0)
"""

# Starts a grandchild that holds the reply pipe open, then dies before answering: no end of
# file comes, so only the check that the worker is alive sees it.
DIES_BUT_THE_PIPE_STAYS_OPEN = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
sys.stdin.readline()
sys.exit(4)
"""

# Answers every request with an error.
ANSWERS_AN_ERROR = """
import json, sys
for line in sys.stdin:
    print(json.dumps({"ok": False, "kind": "internal", "error": "ValueError: no"}), flush=True)
"""


# --- the contract, for both users ---------------------------------------------------------------

def test_a_partial_line_times_out_within_the_time_out(user):
    start, ask = user
    with start(HALF_A_LINE) as worker:
        with pytest.raises(WorkerFailed) as failed:
            _within(HANG_SECONDS, lambda: ask(worker, TIMEOUT_SECONDS))
        assert f"did not answer {'hello' if start is ab_worker else 'call'} within 1 s" in str(
            failed.value)
        assert failed.value.label == worker.label and failed.value.returncode is None


def test_stderr_is_kept_and_its_tail_is_in_the_error(user):
    start, ask = user
    with start(DIES_WITH_A_REASON) as worker, pytest.raises(WorkerFailed) as failed:
        _within(HANG_SECONDS, lambda: ask(worker, HANG_SECONDS))
    error = failed.value
    assert error.returncode == 3 and "exited with status 3" in error.what
    assert "worker-trouble: the disk is on fire" in error.stderr_tail
    assert "starting up" in error.stderr_tail
    message = str(error)
    assert message.startswith(f"{worker.label}: ") and "\n" not in message
    assert "its stderr: starting up | worker-trouble: the disk is on fire" in message


def test_close_kills_the_whole_group(user):
    start, ask = user
    worker = start(WITH_A_GRANDCHILD)
    try:
        grandchild = _within(HANG_SECONDS, lambda: ask(worker, HANG_SECONDS))["grandchild"]
        assert not _gone(grandchild, wait_seconds=0)
    finally:
        _within(HANG_SECONDS, worker.close)
    # The worker quit when asked; the grandchild, which ignores SIGTERM, got SIGKILL.
    assert worker.process.returncode == 0
    assert _gone(grandchild)
    worker.close()  # idempotent


def test_a_worker_that_ends_is_seen_although_its_pipe_stays_open(user):
    start, ask = user
    with start(DIES_BUT_THE_PIPE_STAYS_OPEN) as worker, pytest.raises(WorkerFailed) as failed:
        # Long time-out: the death check, not the time-out, must end the wait.
        _within(HANG_SECONDS, lambda: ask(worker, 3600))
    assert failed.value.returncode == 4 and "exited with status 4 during" in str(failed.value)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("name", sorted(USERS))
def test_ctrl_c_or_sigterm_leaves_nothing_behind(name, signum):
    """The parent is interrupted while its worker is busy: the group is gone when it ends."""
    script = (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
              "from linfit.harness import sigterm_as_interrupt\n"
              "from test_process import USERS, WITH_A_GRANDCHILD\n"
              f"start, ask = USERS[{name!r}]\n"
              "with sigterm_as_interrupt(), start(WITH_A_GRANDCHILD) as worker:\n"
              "    print(ask(worker, 60)['grandchild'], flush=True)\n"
              "    worker.send({'op': 'sleep'})\n"
              "    worker.receive('sleep', 3600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    try:
        assert parent.stdout is not None
        grandchild = int(_within(HANG_SECONDS * 4, parent.stdout.readline))
        parent.send_signal(signum)
        _, stderr = parent.communicate(timeout=HANG_SECONDS)
    finally:
        parent.kill()
        parent.wait(timeout=HANG_SECONDS)
    assert "KeyboardInterrupt" in stderr
    assert _gone(grandchild)


# --- the parent's side, beyond the contract ---------------------------------------------------

def test_a_program_that_cannot_start_is_a_worker_failure():
    with pytest.raises(WorkerFailed, match=r"^side B: could not start \(/no/such/python: "):
        WorkerProcess("side B", ["/no/such/python"], dict(os.environ))


def test_replies_split_across_reads_and_joined_in_one_read_are_each_read_once():
    program = """
import sys, time
sys.stdin.readline(); sys.stdin.readline()
sys.stdout.write('{"ok": true, "n"'); sys.stdout.flush(); time.sleep(0.2)
sys.stdout.write(': 1}\\n{"ok": true, "n": 2}\\n'); sys.stdout.flush()
sys.stdin.readline()
"""
    with distributed_worker(program) as worker:
        worker.send({"op": "a"})
        worker.send({"op": "b"})
        assert worker.receive("a", HANG_SECONDS) == {"ok": True, "n": 1}
        assert worker.receive("b", HANG_SECONDS) == {"ok": True, "n": 2}


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "sent a line that is not JSON during hello"),
    ('["ok"]', "sent something that is not a reply during hello"),
])
def test_a_line_that_is_not_a_reply_breaks_the_protocol(line, message):
    program = f"import sys; sys.stdin.readline(); print({line!r}, flush=True); sys.stdin.read()"
    with distributed_worker(program) as worker, pytest.raises(WorkerFailed, match=message):
        worker.request({"op": "hello"}, HANG_SECONDS)


def test_an_error_reply_is_returned_or_raised_as_asked():
    with distributed_worker(ANSWERS_AN_ERROR) as worker:
        assert worker.request({"op": "x"}, HANG_SECONDS) == {
            "ok": False, "kind": "internal", "error": "ValueError: no"}
        worker.send({"op": "call"})
        with pytest.raises(WorkerFailed, match=r"^worker 0 \(chief\): failed call: ValueError"):
            receive_all([worker], "call", HANG_SECONDS, fail_on_error=True)


def test_of_two_workers_the_one_that_died_is_named():
    """A collective step: the survivor hangs waiting for its peer; the dead one is the
    cause."""
    with distributed_worker(HALF_A_LINE) as hung, WorkerProcess(
            "worker 1 (worker)", [sys.executable, "-c", DIES_WITH_A_REASON],
            dict(os.environ)) as dead:
        for worker in (hung, dead):
            worker.send({"op": "call"})
        with pytest.raises(WorkerFailed, match=r"^worker 1 \(worker\): exited with status 3"):
            _within(HANG_SECONDS, lambda: receive_all([hung, dead], "call", 3600))


def test_a_worker_failure_is_not_bad_input():
    # The command line exits 2 for LinfitError (bad input) and 1 for a failed worker.
    assert not issubclass(WorkerFailed, LinfitError)


# --- the child's side ---------------------------------------------------------------------------

def _served(lines: list[dict[str, Any]], handlers: dict[str, Any],
            reported: dict[type[Exception], str]) -> list[dict[str, Any]]:
    replies = io.StringIO()
    serve(io.StringIO("".join(json.dumps(line) + "\n" for line in lines)), replies, handlers,
          reported)
    return [json.loads(line) for line in replies.getvalue().splitlines()]


def test_serve_answers_each_request_until_quit():
    def bad_option(request: dict[str, Any]) -> dict[str, Any]:
        raise LinfitError("--sizes: 'lots' is not a data set size")

    def missing(request: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("fake-cell")

    handlers = {"echo": lambda request: {"value": request["value"]}, "plan": bad_option,
                "burst": missing}
    replies = _served([{"op": "echo", "value": 7}, {"op": "plan"}, {"op": "burst"},
                       {"op": "nope"}, {"op": "quit"}, {"op": "echo", "value": 8}],
                      handlers, {LinfitError: KIND_INPUT, KeyError: KIND_INTERNAL})
    assert replies == [
        {"ok": True, "value": 7},
        {"ok": False, "kind": "input", "error": "--sizes: 'lots' is not a data set size"},
        {"ok": False, "kind": "internal", "error": "KeyError: 'fake-cell'"},
        {"ok": False, "kind": "internal", "error": "unknown request 'nope'"},
        {"ok": True},
    ]


def test_serve_lets_an_unreported_error_end_the_worker():
    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        _served([{"op": "x"}], {"x": broken}, {LinfitError: KIND_INPUT})


# --- a command run to its end (run_child: pip and venv for linfit.builds) -------------------

# A command that leaves a grandchild behind, ignoring SIGTERM, and prints its pid.
_LEAVES_A_GRANDCHILD = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
    "print(child.pid, flush=True)\n"
    "print('pip-like trouble\\nERROR: the last line', file=sys.stderr)\n")


def test_run_child_returns_its_status_output_and_stderr_tail_and_leaves_nothing():
    result = _within(HANG_SECONDS, lambda: run_child(
        "pip", [sys.executable, "-c", _LEAVES_A_GRANDCHILD + "sys.exit(3)"], dict(os.environ),
        HANG_SECONDS))
    assert result.returncode == 3
    assert result.stderr_tail == "pip-like trouble\nERROR: the last line"
    assert result.last_error_line == "ERROR: the last line"
    assert _gone(int(result.stdout.split()[0]))


def test_run_child_past_its_limit_is_killed_with_its_group():
    pidfile_script = _LEAVES_A_GRANDCHILD + "import time; time.sleep(600)"
    started = time.monotonic()
    with pytest.raises(WorkerFailed) as failed:
        run_child("pip install", [sys.executable, "-c", pidfile_script], dict(os.environ), 1.0)
    assert time.monotonic() - started < HANG_SECONDS
    assert str(failed.value).startswith("pip install: did not finish within 1 s (killed); its "
                                        "stderr: pip-like trouble | ERROR: the last line")


def test_run_child_interrupted_leaves_nothing_behind():
    script = (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
              "from linfit._process import run_child\n"
              "from test_process import _LEAVES_A_GRANDCHILD\n"
              "import os\n"
              "run_child('pip', [sys.executable, '-c', _LEAVES_A_GRANDCHILD + "
              "'import time; time.sleep(600)'], dict(os.environ), 600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    try:
        # The grandchild's pid is in run_child's stdout file: find it by its parent.
        deadline = time.monotonic() + HANG_SECONDS * 4
        children: list[int] = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.1)
            children = _descendants(parent.pid)
        assert children, "run_child started nothing"
        time.sleep(0.5)
        children = _descendants(parent.pid)
        parent.send_signal(signal.SIGINT)
        _, stderr = parent.communicate(timeout=HANG_SECONDS)
    finally:
        parent.kill()
        parent.wait(timeout=HANG_SECONDS)
    assert "KeyboardInterrupt" in stderr
    assert all(_gone(pid) for pid in children)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found: list[int] = []
    parents = {pid}
    for _ in range(3):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in found:
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in parents:
                    found.append(int(entry.name))
        parents |= set(found)
    return found


def test_run_child_that_cannot_start_is_a_worker_failure():
    with pytest.raises(WorkerFailed, match=r"^pip: could not start \(/no/such/python: "):
        run_child("pip", ["/no/such/python"], dict(os.environ), 5)
