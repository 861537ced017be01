"""Worker processes and their JSON-lines protocol: one home for ``linfit ab`` and
``linfit.distributed``.

The protocol: one JSON object per line. The parent writes requests (``{"op": ..., ...}``) to
the child's stdin; the child answers each with one reply on its original stdout:
``{"ok": true, ...}``, or ``{"ok": false, "kind": ..., "error": "<one line>"}`` where
``kind`` is :data:`KIND_INPUT` (bad input: the user's fault) or :data:`KIND_INTERNAL`.
``{"op": "quit"}`` is answered ``{"ok": true}`` and ends the child.

Parent side, :class:`WorkerProcess`: the child runs in its own session (a Ctrl-C at the
terminal reaches the parent only, and killing the session's process group ends the child and
anything it started), its stderr goes to an anonymous temporary file whose tail is kept for
error messages, every request has a time-out, and replies are read from the raw pipe with
``select`` against a deadline, partial lines buffered, so a child that writes half a line and
stops cannot block the parent past the time-out. :meth:`WorkerProcess.close` (also on leaving
its ``with`` block, by return, error or Ctrl-C) kills the whole group: SIGTERM, then SIGKILL
after a grace. SIGTERM to the parent is its callers' to turn into KeyboardInterrupt
(:func:`linfit.harness.sigterm_as_interrupt`), which then closes the workers the same way.
Every failure raises :class:`WorkerFailed`.

Child side: :func:`reply_stream` keeps the protocol safe from prints, :func:`serve` answers
requests.

A command run to its end (pip, venv: :func:`run_child`) gets the same care: its own
session, a time limit, its stderr kept for the error, its group killed on return, error or
Ctrl-C.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Self, TextIO

__all__ = [
    "DEATH_CHECK_SECONDS",
    "KILL_GRACE_SECONDS",
    "KIND_INPUT",
    "KIND_INTERNAL",
    "QUIT_TIMEOUT_SECONDS",
    "STDERR_TAIL_CHARACTERS",
    "STDERR_TAIL_LINES",
    "ChildResult",
    "WorkerFailed",
    "WorkerProcess",
    "receive_all",
    "reply_stream",
    "run_child",
    "serve",
]

# The kinds of a failed reply: bad input (a bad cell option, a bad TF_CONFIG), or anything
# else that went wrong in the child.
KIND_INPUT = "input"
KIND_INTERNAL = "internal"
# Lines, and at most characters, of a failed worker's stderr in its error: enough for a
# Python traceback's last frames and the exception, short enough for one line in a results
# CSV's message column.
STDERR_TAIL_LINES = 15
STDERR_TAIL_CHARACTERS = 2000
# Bytes read back from the end of the stderr file for the tail (TensorFlow's logging can
# make that file large; the tail never needs more).
_STDERR_READ_BYTES = 1 << 16
# How often a wait for replies also checks that the children are alive: a child that died
# while a grandchild holds its stdout open sends no end of file; it is noticed within this.
DEATH_CHECK_SECONDS = 0.2
# A polite "quit" on close: an idle worker answers at once; one that does not is killed.
QUIT_TIMEOUT_SECONDS = 2.0
# After SIGTERM, how long the worker may take to exit before the group gets SIGKILL
# (Python and the frameworks exit on SIGTERM in well under a second).
KILL_GRACE_SECONDS = 2.0
# How long to wait for a worker whose input pipe broke to be seen exiting.
_EXIT_WAIT_SECONDS = 5.0
# Bytes read from a reply pipe at a time.
_READ_BYTES = 1 << 16


class WorkerFailed(Exception):
    """Raised when a worker process cannot start, exits or is killed, does not answer a
    request within its time-out, breaks the protocol (a line that is not a JSON reply), or
    (raised by the caller) answers with an error.

    Not a :class:`~linfit._errors.LinfitError`: a crash or a hang is not the user's bad
    input, so the command line exits 1 for it, not 2. A caller that knows better (a side's
    interpreter that cannot run linfit at all) turns it into a LinfitError itself.

    Attributes:
        label: which worker (``side B``, ``worker 0 (chief)``).
        what: what happened, e.g. ``exited with status 3 during burst``.
        stderr_tail: the last lines of the worker's stderr ("" when none or not relevant).
        returncode: the worker's exit status if it had ended (negative: killed by that
            signal), else None.

    ``str()`` is one line: ``label: what; its stderr: line | line | ...``.
    """

    def __init__(self, label: str, what: str, stderr_tail: str = "",
                 returncode: int | None = None) -> None:
        self.label = label
        self.what = what
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
        tail = f"; its stderr: {' | '.join(lines)}" if lines else ""
        super().__init__(f"{label}: {what}{tail}")


def _ended(returncode: int) -> str:
    """How a process ended, in words."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
        return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class WorkerProcess:
    """One running worker: JSON-lines requests with time-outs, its stderr kept, its process
    group killed on :meth:`close` (see the module docstring).

    Use it as a context manager, or call :meth:`close` in a ``finally``.
    """

    def __init__(self, label: str, argv: Sequence[str], environ: Mapping[str, str]) -> None:
        """Start ``argv`` with exactly the environment ``environ``.

        Raises:
            WorkerFailed: when the program cannot be started (not found, not executable).
        """
        self.label = label
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._buffer = b""
        # Requests sent whose replies were not read yet: a busy worker is not asked to quit.
        self._pending = 0
        self._closed = False
        try:
            self.process = subprocess.Popen(list(argv), stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=self._stderr,
                                            env=dict(environ), start_new_session=True)
        except OSError as error:
            self._stderr.close()
            raise WorkerFailed(label, f"could not start ({argv[0]}: "
                               f"{error.strerror or error})") from None

    @property
    def pid(self) -> int:
        """The worker's process id, also the id of its process group and session."""
        return self.process.pid

    def fileno(self) -> int:
        """The descriptor replies arrive on (so that ``select`` takes a worker)."""
        assert self.process.stdout is not None
        return self.process.stdout.fileno()

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last ``lines`` lines the worker wrote to stderr (at most
        :data:`STDERR_TAIL_CHARACTERS` characters)."""
        return _file_tail(self._stderr, lines)

    def failed(self, what: str) -> WorkerFailed:
        """A :class:`WorkerFailed` for this worker, with its stderr tail and, if it has
        ended, its exit status."""
        return WorkerFailed(self.label, what, self.stderr_tail(), self.process.poll())

    def _died(self, when: str) -> WorkerFailed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=_EXIT_WAIT_SECONDS)
        if self.process.returncode is None:
            return self.failed(f"closed its end of the protocol {when}")
        return self.failed(f"{_ended(self.process.returncode)} {when}")

    def send(self, request: Mapping[str, Any]) -> None:
        """Write one request (its reply is read by :meth:`receive` or :func:`receive_all`).

        Raises:
            WorkerFailed: when the worker is gone.
        """
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise self._died(f"before {request.get('op')}") from None
        self._pending += 1

    def _reply(self, op: str) -> dict[str, Any] | None:
        """The next complete reply already read, if there is one."""
        if b"\n" not in self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            raise self.failed(f"sent a line that is not JSON during {op}: "
                              f"{line[:200]!r}") from None
        if not isinstance(reply, dict) or "ok" not in reply:
            raise self.failed(f"sent something that is not a reply during {op}: "
                              f"{line[:200]!r}")
        self._pending = max(0, self._pending - 1)
        return reply

    def _read(self, op: str) -> None:
        """Read what the pipe holds now (the caller saw it ready): never blocks."""
        chunk = os.read(self.fileno(), _READ_BYTES)
        if not chunk:
            raise self._died(f"during {op}")
        self._buffer += chunk

    def _drain(self) -> None:
        """Read what a worker that has ended left in the pipe: one read takes a whole pipe's
        capacity (64 KiB on Linux), and a worker cannot end with more written to it."""
        if select.select([self], [], [], 0)[0]:
            self._buffer += os.read(self.fileno(), _READ_BYTES)

    def receive(self, op: str, timeout: float) -> dict[str, Any]:
        """Read one reply to ``op`` within ``timeout`` seconds.

        Returns:
            The reply, ``"ok"`` true or false (the caller decides what an error means).

        Raises:
            WorkerFailed: when the worker ends, stays silent past the time-out (a partial
                line included), or sends something that is not a reply.
        """
        return receive_all([self], op, timeout)[0]

    def request(self, request: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return its reply (see :meth:`receive`)."""
        self.send(request)
        return self.receive(str(request.get("op")), timeout)

    def close(self) -> None:
        """Ask an idle worker to quit, then kill its process group whatever state it is in
        (SIGTERM, SIGKILL after :data:`KILL_GRACE_SECONDS`), reap it and release its pipes
        and stderr file. Idempotent; also done when it is interrupted."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._pending == 0 and self.process.poll() is None:
                with contextlib.suppress(WorkerFailed, OSError, ValueError,
                                         subprocess.TimeoutExpired):
                    if self.request({"op": "quit"}, QUIT_TIMEOUT_SECONDS).get("ok"):
                        # It agreed: it may end by itself (and tidy up) before SIGTERM. One
                        # that answered quit with an error will not: it goes at once.
                        self.process.wait(timeout=KILL_GRACE_SECONDS)
        finally:
            self._kill_group()

    def _kill_group(self) -> None:
        try:
            _end_group(self.process)
        finally:
            for stream in (self.process.stdin, self.process.stdout, self._stderr):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _file_tail(stderr: IO[bytes], lines: int) -> str:
    """The last ``lines`` lines of a child's stderr file (at most
    :data:`STDERR_TAIL_CHARACTERS` characters)."""
    with contextlib.suppress(OSError, ValueError):
        # pread: the child writes through the same open file, so its offset is left
        # alone (a seek here would make the child overwrite what it wrote).
        fd = stderr.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - _STDERR_READ_BYTES)
        text = os.pread(fd, size - start, start).decode(errors="replace")
        return "\n".join(text.rstrip().splitlines()[-lines:])[-STDERR_TAIL_CHARACTERS:]
    return ""


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a child's process group, whatever state it is in (SIGTERM, SIGKILL after
    :data:`KILL_GRACE_SECONDS`), and reap the child."""
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_GRACE_SECONDS)
    finally:
        # Always: the child may have exited on SIGTERM while something it started
        # ignored it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class ChildResult:
    """How a command run by :func:`run_child` ended.

    Attributes:
        returncode: its exit status.
        stdout: what it wrote on stdout (decoded, errors replaced).
        stderr_tail: the last lines of its stderr (:data:`STDERR_TAIL_LINES`).
    """

    returncode: int
    stdout: str
    stderr_tail: str

    @property
    def last_error_line(self) -> str:
        """The last non-blank line of its stderr ('' when none): pip's own summary."""
        lines = [line.strip() for line in self.stderr_tail.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_child(label: str, argv: Sequence[str], environ: Mapping[str, str],
              timeout: float, cwd: str | os.PathLike[str] | None = None) -> ChildResult:
    """Run ``argv`` to its end, in its own session, its stdin empty, its stdout and stderr
    in anonymous temporary files (a child that writes a lot cannot block on a pipe).

    On return, on a time-out, and on an interrupt (Ctrl-C, or SIGTERM turned into one),
    the child's whole process group is killed and reaped, so nothing it started is left.

    Returns:
        Its exit status, stdout and stderr's tail; a non-zero status is the caller's to
        judge.

    Raises:
        WorkerFailed: labelled ``label``, when it cannot start or runs past ``timeout``
            seconds (it is then killed), with its stderr's tail.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=stderr, env=dict(environ), cwd=cwd,
                                       start_new_session=True)
        except OSError as error:
            raise WorkerFailed(label, f"could not start ({argv[0]}: "
                               f"{error.strerror or error})") from None
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Also after a normal end: what the child started in its group goes with it.
            _end_group(process)
        if timed_out:
            raise WorkerFailed(label, f"did not finish within {timeout:g} s (killed)",
                               _file_tail(stderr, STDERR_TAIL_LINES))
        stdout.seek(0)
        return ChildResult(process.returncode, stdout.read().decode(errors="replace"),
                           _file_tail(stderr, STDERR_TAIL_LINES))


def receive_all(workers: Sequence[WorkerProcess], op: str, timeout: float, *,
                fail_on_error: bool = False) -> list[dict[str, Any]]:
    """One reply to ``op`` from each of ``workers`` (each was sent a request), within one
    deadline of ``timeout`` seconds; a worker that ends is noticed at once, not at the
    deadline.

    Args:
        workers, op, timeout: as said.
        fail_on_error: whether an error reply raises at once (the others' replies are then
            not awaited: in a collective step, they may never come).

    Returns:
        The replies, in the order of ``workers``.

    Raises:
        WorkerFailed: for the first worker that ends, stays silent past the deadline,
            breaks the protocol or (``fail_on_error``) answers with an error. When one has
            ended, it is the one named: the others' failures (a collective aborted, a
            missing peer) are its consequence.
    """
    deadline = time.monotonic() + timeout
    replies: dict[int, dict[str, Any]] = {}
    try:
        while True:
            for index, worker in enumerate(workers):
                if index not in replies and (reply := worker._reply(op)) is not None:
                    if fail_on_error and not reply["ok"]:
                        raise WorkerFailed(worker.label, f"failed {op}: {reply.get('error')}")
                    replies[index] = reply
            waiting = [worker for index, worker in enumerate(workers) if index not in replies]
            if not waiting:
                return [replies[index] for index in range(len(workers))]
            for worker in waiting:
                if worker.process.poll() is not None:
                    worker._drain()
                    if b"\n" not in worker._buffer:
                        raise worker._died(f"during {op}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise waiting[0].failed(f"did not answer {op} within {timeout:g} s (hung?)")
            ready, _, _ = select.select(waiting, [], [], min(DEATH_CHECK_SECONDS, left))
            for worker in ready:
                worker._read(op)
    except WorkerFailed as error:
        dead = [worker for worker in workers if worker.process.poll() is not None]
        if dead and dead[0].label != error.label:
            raise dead[0]._died(f"during {op}") from error
        raise


# --- the child's side -----------------------------------------------------------------------


def reply_stream() -> TextIO:
    """In a worker: the stream its replies go to, the original stdout, moved to a private
    descriptor; file descriptor 1 and ``sys.stdout`` then point at stderr, so that nothing a
    framework's C++ logging or a plugin prints can corrupt a reply (the parent keeps it)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return replies


Handler = Callable[[dict[str, Any]], Mapping[str, Any]]


def _error_reply(error: Exception, kind: str) -> dict[str, Any]:
    text = str(error) if kind == KIND_INPUT else f"{type(error).__name__}: {error}"
    return {"ok": False, "kind": kind, "error": " ".join(text.split())}


def serve(requests: Iterable[str], replies: TextIO, handlers: Mapping[str, Handler],
          reported: Mapping[type[Exception], str]) -> None:
    """Answer requests until ``quit`` or the end of ``requests`` (the parent is gone).

    Args:
        requests: request lines (the worker's stdin).
        replies: the reply stream (:func:`reply_stream`).
        handlers: by ``op``, a function of the request returning the reply's fields.
        reported: exception types a handler may raise that become an error reply of the
            given kind (:data:`KIND_INPUT` or :data:`KIND_INTERNAL`), first match wins;
            any other exception ends the worker with its traceback on stderr.
    """
    caught = tuple(reported)
    for line in requests:
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            replies.write(json.dumps({"ok": True}) + "\n")
            replies.flush()
            return
        reply: Mapping[str, Any]
        if op not in handlers:
            reply = {"ok": False, "kind": KIND_INTERNAL, "error": f"unknown request {op!r}"}
        else:
            try:
                reply = {"ok": True, **handlers[op](request)}
            except caught as error:
                kind = next(kind for type_, kind in reported.items() if isinstance(error, type_))
                reply = _error_reply(error, kind)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
