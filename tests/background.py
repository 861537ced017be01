"""Child processes that run beside the test session, on the core it leaves free.

The session keeps about one core busy (its own work, or waiting on one child at a time); a
2-core machine has one more. A test whose costly child needs nothing from the tests before
it carries ``@pytest.mark.background.with_args(start)``, where ``start()`` queues the child's
work with :func:`queue` (``with_args``: a mark given a lone function would take it for the
test it marks). conftest.py calls ``start()`` for every selected test when collection ends and
runs those tests last, so the work is done, or under way, when they take its result with
:func:`result`. The queue runs one job at a time, in the order queued.

A job runs in a thread of this process: it may start children (:func:`run`, or :func:`child`
to watch or signal one as it runs) and read and write files (:func:`folder`), never touch a
fixture, a framework or a signal handler.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# One job at a time: a second would compete with the session for its core. (Measured: two
# lanes ended the jobs 60 s sooner and the suite 30 s later, its own tests slowed.)
_QUEUE = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
# Jobs by key; the children running now; the session's folder for the jobs' files (made on
# first use, removed when the session ends).
_JOBS: dict[str, concurrent.futures.Future[Any]] = {}
_RUNNING: list[subprocess.Popen[str]] = []
_SESSION_FOLDER: list[Path] = []
# Held while a child starts or the session's end kills the children; set once it has.
_LOCK = threading.Lock()
_STOPPED = threading.Event()


def queue(key: str, job: Callable[[], Any]) -> None:
    """Queue ``job`` under ``key``, unless a job of that key is queued already."""
    if key not in _JOBS:
        _JOBS[key] = _QUEUE.submit(job)


def queued(key: str) -> bool:
    """Whether a job of ``key`` was queued."""
    return key in _JOBS


def result(key: str, start: Callable[[], None]) -> Any:
    """What the job of ``key`` returned (or raised), once ``start()`` has queued it: it did
    when collection ended, unless the session was started otherwise. No time limit here:
    every child a job starts has its own (:func:`run`), and so has the queue ahead of it.

    A job may take the result of a job queued before it, never of one queued after it
    (the queue runs one job at a time): that raises RuntimeError rather than waiting forever.
    """
    start()
    job = _JOBS[key]
    if threading.current_thread().name.startswith("background") and not job.done():
        raise RuntimeError(f"a job waits for {key!r}, which was queued after it")
    return job.result()


@contextlib.contextmanager
def child(argv: Sequence[str], **options: Any) -> Iterator[subprocess.Popen[str]]:
    """A running child (stdout and stderr piped, text) for a job that watches or signals it
    while it runs: killed on leaving if it still runs, and by :func:`stop` if the session
    ends first; none starts once it has. The job bounds its own waits on it."""
    with _LOCK:
        if _STOPPED.is_set():
            raise RuntimeError(f"the test session ended before {argv[0]} could start")
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, **options)
        _RUNNING.append(process)
    with process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            with _LOCK:
                _RUNNING.remove(process)


def run(argv: Sequence[str], *, timeout: float, **options: Any,
        ) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **options)``,
    but a child that :func:`stop` ends when the session ends first, and none once it has."""
    with child(argv, **options) as process:
        stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)


def folder(name: str) -> Path:
    """A new empty folder for a job's files, in one folder for the session (so that what
    runs share through ``folder.parent`` stays within the session), removed when it ends."""
    with _LOCK:
        if not _SESSION_FOLDER:
            _SESSION_FOLDER.append(Path(tempfile.mkdtemp(prefix="linfit-tests-background-")))
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_SESSION_FOLDER[0]))


def stop() -> None:
    """Drop the queued jobs, end the running child and remove the jobs' folders: for the
    end of the session, also one that stopped early."""
    for job in _JOBS.values():
        job.cancel()
    with _LOCK:
        _STOPPED.set()
        for process in _RUNNING:
            process.kill()
    _QUEUE.shutdown(wait=True)
    for path in _SESSION_FOLDER:
        shutil.rmtree(path, ignore_errors=True)
    _JOBS.clear()
    _SESSION_FOLDER.clear()
