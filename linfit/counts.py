"""Counting instead of timing: Valgrind's instruction counts (and simulated cache misses) of
chosen calls, for issue 21.

Three parts, each usable alone:

- the parser: a Callgrind or Cachegrind output file -> :class:`CountFile` (its events and
  totals, the Valgrind version and cache model it names). Pure: text in, record out.
- the regions: :func:`counted_region` zeroes Callgrind's counters, runs a Python callable and
  dumps them under a label, through Callgrind's client requests made from Python (the
  instruction sequence valgrind.h would compile, in an executable page: no compiler needed;
  x86-64). Every thread's work in the meantime is counted. :func:`toggled_region`, for other
  CPUs, runs the callable inside libc's ``qsort_r`` for ``--toggle-collect=qsort_r``; it
  counts the calling thread only. :func:`region_counts` reads the dumps back by label.
- the runner: the Valgrind command line, and :func:`run_counted`, which runs it with a time
  limit, keeps its stderr in a file, and leaves no process behind on return, error, Ctrl-C or
  SIGTERM (the caller maps SIGTERM to KeyboardInterrupt). Where ``valgrind`` is not on PATH,
  :func:`valgrind_missing_reason` says so and callers skip.

Counts are instructions, never times, and of one configuration (threads, allocator, Valgrind's
scheduler: bench/count_gate.py records it). docs/counts.md has what was tried and measured.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import mmap
import os
import platform
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from linfit._errors import LinfitError

__all__ = ["CACHE_MODEL_ARGS", "REGION_FUNCTION", "CountFile", "CountRun", "CountedProcess",
           "CountsError", "callgrind_command", "counted_region", "parse_count_text",
           "read_count_file", "region_counts", "region_dump_paths", "run_counted",
           "running_on_valgrind", "start_instrumentation", "sum_counts", "toggled_region",
           "valgrind_missing_reason"]

# The libc function whose calls delimit a toggled region (toggled_region). Exported by every
# glibc since 2.8, so it needs no debug symbols; Python calls it rarely (its posix module sorts
# its constant tables with it at start-up, ctypes on first use).
REGION_FUNCTION = "qsort_r"

# A fixed cache model, so that simulated misses do not depend on the machine the count runs on
# (Valgrind otherwise reads the host's caches, which a VM may report oddly: this one says a
# 256 MiB direct-mapped LL). The sizes of a common x86 core: 32 KiB 8-way L1s, an 8 MiB
# 16-way last level, 64-byte lines.
CACHE_MODEL_ARGS = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")

# A count file larger than this is not one of ours (a region's dump is tens of KiB to a few
# MiB; a whole-process Cachegrind file of TensorFlow about 60 MiB).
MAX_COUNT_FILE_BYTES = 256 * 2**20

# The last characters of a failed Valgrind run's stderr that go into its error message.
STDERR_TAIL_CHARACTERS = 2000

_TOOL_PATTERN = re.compile(r"^creator:\s*(callgrind|cachegrind)-(\S+)", re.MULTILINE)
_DUMP_NAME = re.compile(r"\.(\d+)(?:-(\d+))?$")


class CountsError(LinfitError):
    """Raised when a count file is missing, too large, or not Callgrind's or Cachegrind's
    format (no ``events:`` line, totals that do not match the events), and when a counted run
    fails or runs past its time limit. The message names the file or the command."""


@dataclass(frozen=True)
class CountFile:
    """The totals of one Callgrind or Cachegrind output file (one dump, one thread).

    Attributes:
        source: where the text came from (the file's path), for messages.
        tool: ``callgrind`` or ``cachegrind``.
        valgrind_version: from Callgrind's ``creator:`` line; '' for Cachegrind 3.19, whose
            files do not carry it (the runner records ``valgrind --version`` instead).
        command: the counted command line, from ``cmd:``.
        events: event names in file order: ``Ir``, and with cache simulation ``Dr``, ``Dw``,
            ``I1mr``, ``D1mr``, ``D1mw``, ``ILmr``, ``DLmr``, ``DLmw``.
        totals: one integer per event (``totals:``, else ``summary:``).
        cache_model: the ``desc:`` lines naming I1, D1 and LL, joined by '; '; '' where the
            file does not simulate caches.
        part: Callgrind's dump number (``part:``); None for Cachegrind.
        thread: Callgrind's thread number with ``--separate-threads=yes``; None otherwise.
        trigger: what made Callgrind dump (``--dump-after=qsort_r``, ``Program termination``).
    """

    source: str
    tool: str
    valgrind_version: str
    command: str
    events: tuple[str, ...]
    totals: tuple[int, ...]
    cache_model: str = ""
    part: int | None = None
    thread: int | None = None
    trigger: str = ""

    def count(self, event: str) -> int:
        """The total of ``event``.

        Raises:
            CountsError: naming the file and the events it has.
        """
        try:
            return self.totals[self.events.index(event)]
        except ValueError:
            raise CountsError(f"{self.source}: no event {event!r}; it has "
                              f"{', '.join(self.events)}") from None

    @property
    def instructions(self) -> int:
        """Instructions executed (``Ir``)."""
        return self.count("Ir")

    def as_dict(self) -> dict[str, int]:
        """Event name -> total."""
        return dict(zip(self.events, self.totals, strict=True))


def _integers(line: str, source: str, key: str) -> tuple[int, ...]:
    try:
        return tuple(int(word) for word in line.split())
    except ValueError:
        raise CountsError(f"{source}: {key}: line is not integers: {line[:80]!r}") from None


def parse_count_text(text: str, source: str = "<text>") -> CountFile:
    """Read a Callgrind or Cachegrind output file's header and totals.

    Only the header lines (``creator:``, ``cmd:``, ``part:``, ``thread:``, ``desc:``,
    ``events:``) and the ``totals:`` (else ``summary:``) line are read: the cost lines between
    them are not needed for the totals, and fixtures may omit them.

    Args:
        text: the file's content.
        source: its name, for messages.

    Returns:
        The file's record.

    Raises:
        CountsError: where there is no ``events:`` line, no totals, or totals whose length is
            not the number of events.
    """
    events: tuple[str, ...] = ()
    fields: dict[str, str] = {}
    cache_lines: list[str] = []
    totals: tuple[int, ...] | None = None
    summary: tuple[int, ...] | None = None
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if not colon or " " in key or not key:
            continue
        value = value.strip()
        if key == "events":
            events = tuple(value.split())
        elif key == "totals":
            totals = _integers(value, source, key)
        elif key == "summary":
            summary = _integers(value, source, key)
        elif key == "desc":
            name, _, rest = value.partition(":")
            if name.strip() in ("I1 cache", "D1 cache", "LL cache") and rest.strip():
                cache_lines.append(f"{name.strip()}: {' '.join(rest.split())}")
            elif name.strip() == "Trigger":
                fields["trigger"] = rest.strip()
        elif key in ("cmd", "part", "thread") and key not in fields:
            fields[key] = value
    if not events:
        raise CountsError(f"{source}: not a Callgrind or Cachegrind file (no 'events:' line)")
    # totals: the sum of the file's cost lines, which CALLGRIND_ZERO_STATS zeroes. Callgrind's
    # summary runs on from the previous dump instead: in a region dumped after a zeroing it
    # also holds what ran between that dump and the zeroing (a TensorFlow cell's warm-up
    # calls: 46 M against 12 M, docs/counts.md). Cachegrind writes a summary only.
    found = totals if totals is not None else summary
    if found is None:
        raise CountsError(f"{source}: no 'totals:' or 'summary:' line (a truncated file?)")
    # Callgrind may leave trailing zero events off a cost line; the totals line is full length,
    # but pad rather than refuse where a shorter one is valid.
    if len(found) > len(events):
        raise CountsError(f"{source}: {len(found)} totals for {len(events)} events "
                          f"({' '.join(events)})")
    found = found + (0,) * (len(events) - len(found))
    creator = _TOOL_PATTERN.search(text)
    tool = creator.group(1) if creator else "cachegrind"
    return CountFile(
        source=source, tool=tool, valgrind_version=creator.group(2) if creator else "",
        command=fields.get("cmd", ""), events=events, totals=found,
        cache_model="; ".join(cache_lines),
        part=int(fields["part"]) if fields.get("part", "").isdigit() else None,
        thread=int(fields["thread"]) if fields.get("thread", "").isdigit() else None,
        trigger=fields.get("trigger", ""))


def read_count_file(path: str | os.PathLike[str]) -> CountFile:
    """Parse the count file at ``path`` (a regular file of at most ``MAX_COUNT_FILE_BYTES``).

    Raises:
        CountsError: naming the file, where it is missing, not a regular file, too large or
            not a count file.
    """
    where = Path(path)
    try:
        facts = where.stat()
    except OSError as error:
        raise CountsError(f"{where}: cannot read the count file ({error.strerror})") from None
    if not where.is_file():
        raise CountsError(f"{where}: not a regular file")
    if facts.st_size > MAX_COUNT_FILE_BYTES:
        raise CountsError(f"{where}: {facts.st_size} bytes, more than a count file's "
                          f"{MAX_COUNT_FILE_BYTES}")
    return parse_count_text(where.read_text(errors="replace"), str(where))


def sum_counts(files: Iterable[CountFile]) -> dict[str, int]:
    """Event -> total over ``files`` (the per-thread files of one dump).

    Raises:
        CountsError: where the files do not have the same events.
    """
    total: dict[str, int] = {}
    events: tuple[str, ...] | None = None
    for record in files:
        if events is not None and record.events != events:
            raise CountsError(f"{record.source}: events {' '.join(record.events)} differ from "
                              f"the other files' {' '.join(events)}")
        events = record.events
        for event, value in record.as_dict().items():
            total[event] = total.get(event, 0) + value
    return total


def region_dump_paths(out_file: str | os.PathLike[str]) -> dict[int, list[Path]]:
    """Callgrind's dump files for ``--callgrind-out-file=out_file``, by dump number.

    ``out_file.3`` is dump 3; with ``--separate-threads=yes`` there is one file per thread,
    ``out_file.3-01``, ``out_file.3-02``. The final dump at exit (``out_file``,
    ``out_file-01``) has no number and is left out.
    """
    base = Path(out_file)
    dumps: dict[int, list[Path]] = {}
    for path in base.parent.glob(base.name + ".*"):
        match = _DUMP_NAME.search(path.name[len(base.name):])
        if match and path.name[len(base.name):] == match.group(0):
            dumps.setdefault(int(match.group(1)), []).append(path)
    return {part: sorted(paths) for part, paths in sorted(dumps.items())}


# Valgrind's client requests, which a program normally makes through valgrind.h's macros
# (a compiler needed). They are a fixed instruction sequence (valgrind.h, amd64): rotate %rdi
# by 3, 13, 61 and 51 bits (128 in all: a no-op) then ``xchg %rbx,%rbx``; Valgrind recognises
# the sequence and answers the request whose 6 words %rax points at, in %rdx. On a CPU the
# sequence does nothing and %rdx keeps the default (0). The stub below is that sequence as a
# function ``unsigned long request(unsigned long args[6])``:
#   mov %rdi,%rax; xor %edx,%edx; rol $3,%rdi; rol $13,%rdi; rol $61,%rdi; rol $51,%rdi;
#   xchg %rbx,%rbx; mov %rdx,%rax; ret
_REQUEST_STUB_AMD64 = bytes.fromhex("4889f8" "31d2" "48c1c703" "48c1c70d" "48c1c73d"
                                    "48c1c733" "4887db" "4889d0" "c3")
# valgrind.h: VG_USERREQ__RUNNING_ON_VALGRIND; callgrind.h: VG_USERREQ_TOOL_BASE('C','T') and
# the requests after it, in the header's order.
_RUNNING_ON_VALGRIND = 0x1001
_CALLGRIND_BASE = (ord("C") << 24) | (ord("T") << 16)
_ZERO_STATS = _CALLGRIND_BASE + 1
_DUMP_STATS_AT = _CALLGRIND_BASE + 3
_START_INSTRUMENTATION = _CALLGRIND_BASE + 4
# What Callgrind writes in a dump's ``desc: Trigger:`` line for DUMP_STATS_AT(label).
_REQUEST_TRIGGER = "Client Request: "


@functools.cache
def _request_function() -> Callable[[ctypes.Array[ctypes.c_ulong]], int]:
    if platform.machine() not in ("x86_64", "AMD64"):
        raise CountsError(f"counting regions needs an x86-64 CPU; this one is "
                          f"{platform.machine()}")
    # Kept for the process's lifetime (functools.cache): the function lives in this page.
    page = mmap.mmap(-1, mmap.PAGESIZE,
                     prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_REQUEST_STUB_AMD64)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    function = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)(address)
    function.page = page  # type: ignore[attr-defined]
    return function


def _request(code: int, argument: int = 0) -> int:
    words = (ctypes.c_ulong * 6)(code, argument, 0, 0, 0, 0)
    return int(_request_function()(words))


def running_on_valgrind() -> bool:
    """Whether this process runs under Valgrind (RUNNING_ON_VALGRIND)."""
    return _request(_RUNNING_ON_VALGRIND) > 0


def start_instrumentation() -> None:
    """CALLGRIND_START_INSTRUMENTATION: for a program started with ``--instr-atstart=no``
    (:func:`callgrind_command`), instrument from here on. Callgrind then discards its
    translations, so call it once, before the warm-up calls, not per region. A no-op outside
    Valgrind."""
    _request(_START_INSTRUMENTATION)


def counted_region(body: Callable[[], None], label: str) -> None:
    """Count ``body``: zero Callgrind's counters, run it, dump them with ``label``.

    The dump holds what every thread executed meanwhile (zeroing and dumping are
    process-wide); its ``desc: Trigger:`` line is ``Client Request: <label>``, which
    :func:`region_counts` finds it by. A no-op beside ``body`` outside Valgrind.
    """
    if not label.isidentifier():
        raise CountsError(f"region label {label!r}: use letters, digits and '_'")
    _request(_ZERO_STATS)
    body()
    text = ctypes.create_string_buffer(label.encode())
    _request(_DUMP_STATS_AT, ctypes.addressof(text))


def region_counts(out_file: str | os.PathLike[str]) -> dict[str, list[CountFile]]:
    """The dumps :func:`counted_region` wrote for ``--callgrind-out-file=out_file``, by label
    (one file per thread with ``--separate-threads=yes``).

    Raises:
        CountsError: where a label appears in two dumps.
    """
    regions: dict[str, list[CountFile]] = {}
    for part, paths in region_dump_paths(out_file).items():
        files = [read_count_file(path) for path in paths]
        trigger = files[0].trigger
        if not trigger.startswith(_REQUEST_TRIGGER):
            continue
        label = trigger.removeprefix(_REQUEST_TRIGGER)
        if label in regions:
            raise CountsError(f"{paths[0]}: region {label!r} dumped twice (dump {part})")
        regions[label] = files
    return regions


# qsort's comparator: (const void *, const void *) -> int.
_COMPARATOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def toggled_region(body: Callable[[], None],
                   out_file: str | os.PathLike[str] | None = None) -> tuple[int, ...]:
    """Run ``body`` once inside libc's ``qsort_r``: the region Callgrind counts when started
    with ``--toggle-collect=qsort_r`` (``route="toggle"``). The route for CPUs other than
    x86-64, where :func:`counted_region` cannot make client requests; it counts the calling
    thread only (collection state is per thread).

    The call goes to ``qsort`` with a 2-element array whose comparator, a ctypes callback,
    runs ``body``; glibc's ``qsort`` calls ``qsort_r``. (ctypes' libffi enters the function it
    calls by a jump, which Callgrind does not see as a call, so calling ``qsort_r`` directly
    would never toggle.) An exception raised by ``body`` is raised again here.

    Args:
        body: the calls to count.
        out_file: Callgrind's ``--callgrind-out-file``, where the caller runs under it.

    Returns:
        The numbers of the dumps Callgrind wrote during the region (``--dump-after=qsort_r``
        writes one before the region returns). Python itself calls ``qsort_r`` (its posix
        module at start-up, ctypes on first use), so the caller keeps these numbers rather
        than guessing which dumps are its regions. Empty without ``out_file``.
    """
    libc = ctypes.CDLL(None)
    raised: list[BaseException] = []
    before = set(region_dump_paths(out_file)) if out_file is not None else set()

    def compare(_first: int | None, _second: int | None) -> int:
        try:
            body()
        except BaseException as error:  # carried out of the C frames and raised below
            raised.append(error)
        return 0

    comparator = _COMPARATOR(compare)
    pair = (ctypes.c_int * 2)(1, 2)
    # Two elements: glibc's merge sort compares them exactly once.
    libc.qsort(pair, ctypes.c_size_t(2), ctypes.c_size_t(ctypes.sizeof(ctypes.c_int)),
               comparator)
    if raised:
        raise raised[0]
    if out_file is None:
        return ()
    return tuple(sorted(set(region_dump_paths(out_file)) - before))


def valgrind_missing_reason() -> str | None:
    """Why counting cannot run here ('valgrind is not on PATH'), or None where it can."""
    if shutil.which("valgrind") is None:
        return "valgrind is not on PATH (counting needs Valgrind's callgrind tool)"
    return None


def callgrind_command(argv: Sequence[str], out_file: str | os.PathLike[str], *,
                      route: str = "request", cache_sim: bool = False,
                      separate_threads: bool = False) -> list[str]:
    """The Valgrind command line that counts the regions of ``argv``.

    Args:
        argv: the program and its arguments.
        out_file: Callgrind's output file; each dump is ``out_file.<number>``.
        route: ``request``: instrument nothing until the program calls
            :func:`start_instrumentation` (start-up runs several times faster), then count
            each :func:`counted_region`, every thread. ``toggle``: collect only inside
            :func:`toggled_region`, on the thread that entered it, dumping after it.
        cache_sim: simulate the caches (``CACHE_MODEL_ARGS``) to count D1 and LL misses.
        separate_threads: one file per thread and dump.

    Raises:
        CountsError: for another route.
    """
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"]
    if route == "request":
        command.append("--instr-atstart=no")
    elif route == "toggle":
        command += ["--collect-atstart=no", f"--toggle-collect={REGION_FUNCTION}",
                    f"--dump-after={REGION_FUNCTION}"]
    else:
        raise CountsError(f"counting route {route!r}: valid: request, toggle")
    if cache_sim:
        command += ["--cache-sim=yes", *CACHE_MODEL_ARGS]
    if separate_threads:
        command.append("--separate-threads=yes")
    return [*command, *argv]


@dataclass(frozen=True)
class CountRun:
    """One finished Valgrind run.

    Attributes:
        command: the command line.
        returncode: the child's exit status.
        wall_seconds: its wall time, start-up included.
        stderr_path: the file that holds its stderr (Valgrind's summary and the child's own).
    """

    command: tuple[str, ...]
    returncode: int
    wall_seconds: float
    stderr_path: Path


def _stderr_tail(path: Path) -> str:
    text = path.read_text(errors="replace").strip() if path.exists() else ""
    return " | ".join(text[-STDERR_TAIL_CHARACTERS:].splitlines())


class CountedProcess:
    """A Valgrind run in progress, in its own process group, its stderr in a file.

    Use it as a context manager: on leaving the block (return, error, KeyboardInterrupt) the
    process group is killed and reaped if it is still running. :func:`run_counted` is the
    one-at-a-time form; several at once are polled with :meth:`poll`.
    """

    def __init__(self, command: Sequence[str], *, stderr_path: Path,
                 env: Mapping[str, str] | None = None, stdout_path: Path | None = None) -> None:
        """Start ``command``.

        Raises:
            CountsError: where ``valgrind`` is not on PATH.
        """
        if reason := valgrind_missing_reason():
            raise CountsError(reason)
        self.command = tuple(command)
        self.stderr_path = stderr_path
        self._files = contextlib.ExitStack()
        stderr = self._files.enter_context(open(stderr_path, "wb"))  # noqa: SIM115
        stdout = (self._files.enter_context(open(stdout_path, "wb"))  # noqa: SIM115
                  if stdout_path else subprocess.DEVNULL)
        self._started = time.perf_counter()
        # Its own process group: killpg ends Valgrind and anything the program started, and a
        # Ctrl-C in the terminal reaches the parent only, which then kills the group.
        try:
            self._process = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                env=None if env is None else dict(env), start_new_session=True)
        except BaseException:
            self._files.close()
            raise

    def __enter__(self) -> CountedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def poll(self) -> CountRun | None:
        """The finished run, or None while it runs.

        Raises:
            CountsError: where it exited non-zero (with the tail of its stderr).
        """
        returncode = self._process.poll()
        if returncode is None:
            return None
        self._files.close()
        if returncode != 0:
            raise CountsError(f"counted run exited with status {returncode}: "
                              f"{' '.join(self.command)}; stderr: "
                              f"{_stderr_tail(self.stderr_path)}")
        return CountRun(self.command, returncode, time.perf_counter() - self._started,
                        self.stderr_path)

    def wait(self, timeout_seconds: float) -> CountRun:
        """Wait for the run to end.

        Raises:
            CountsError: where it runs past ``timeout_seconds`` (it is then killed) or exits
                non-zero.
        """
        try:
            self._process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CountsError(f"counted run exceeded its {timeout_seconds:g} s limit "
                              f"(killed): {' '.join(self.command)}; stderr: "
                              f"{_stderr_tail(self.stderr_path)}") from None
        run = self.poll()
        assert run is not None
        return run

    def elapsed_seconds(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self._started

    def kill(self) -> None:
        """Kill the process group if it still runs, reap it, close its files; idempotent."""
        # Ctrl-C and SIGTERM wait until the group is gone: `timeout` and a terminal may send a
        # second one while the first is being handled, which would otherwise interrupt this.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            if self._process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._files.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def run_counted(command: Sequence[str], *, timeout_seconds: float, stderr_path: Path,
                env: Mapping[str, str] | None = None, stdout_path: Path | None = None,
                ) -> CountRun:
    """Run ``command`` (a :func:`callgrind_command`) to completion within ``timeout_seconds``
    (:class:`CountedProcess`: nothing is left running on return, error or Ctrl-C).

    Raises:
        CountsError: where ``valgrind`` is not on PATH, where the run exceeds its time limit
            or exits non-zero (with the tail of its stderr).
    """
    with CountedProcess(command, stderr_path=stderr_path, env=env,
                        stdout_path=stdout_path) as process:
        return process.wait(timeout_seconds)
