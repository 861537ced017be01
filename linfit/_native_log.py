"""TensorFlow's start-up noise on stderr, and the filter that holds it back.

Why ``TF_CPP_MIN_LOG_LEVEL`` alone does not silence it (TensorFlow 2.21, found by tracing
``LD_DEBUG=files python -c "import tensorflow"``):

- The lines come from the *static initialisers* of two shared objects that
  ``import tensorflow`` loads: ``libtensorflow_framework.so.2`` (loaded with
  ``_pywrap_cpu_feature_guard``) and ``python/profiler/internal/_pywrap_profiler_plugin.so``.
  Each links its own private copy of Abseil logging, the oneDNN notice (``port.cc``) and the
  CUDA stub (``cudart_stub.cc``): that is why every line shows **twice**, in one process.
- They are written with Abseil's ``LOG``, not TensorFlow's own logger. Only TensorFlow's
  logger reads ``TF_CPP_MIN_LOG_LEVEL`` (that is why the ``cpu_feature_guard`` line does go
  away at level 1 and above); Abseil's minimum level is a command-line flag that nothing
  sets, and before ``absl::InitializeLog()`` Abseil writes every message to stderr with the
  "All log messages before absl::InitializeLog() ..." warning (abseil-cpp PR #1957).
- So the variable was set early enough (before anything loads TensorFlow; nothing in
  linfit, JAX, PyTorch or ml_dtypes loads it earlier): with ``TF_CPP_MIN_LOG_LEVEL=3`` in
  the environment of a bare ``python -c "import tensorflow"`` the six lines still show.
  No setting reaches a library's private Abseil before its initialisers run.

What linfit does: while TensorFlow loads (and while it first looks for devices, when a
machine without an NVIDIA driver logs "failed call to cuInit"), file descriptor 2 goes
through :func:`quiet_native_stderr`, which applies ``TF_CPP_MIN_LOG_LEVEL`` to Abseil's
lines too: a line of a severity below the level is dropped (I=0, W=1, E=2, F=3), and
Abseil's "before InitializeLog" warning with them. linfit sets the level to 2 when the
user has not (:func:`linfit.environment.quiet_framework_env`); a user who sets it keeps
their setting, and ``TF_CPP_MIN_LOG_LEVEL=0`` shows every line. A setting that is not one
of TensorFlow's levels (``abc``, ``9``, ``-1``) gets a one-line warning, once a process, and
the filter applies linfit's level 2 instead: TensorFlow would read ``abc`` as 0 and show
everything, ``9`` as "nothing, not even a fatal error", and neither is likely what was meant.
One record is two lines: TensorFlow's CPU-feature notice (``cpu_feature_guard.cc``, at
INFO) goes on in a line of its own, "To enable the following instructions: AVX2 ...,
rebuild TensorFlow ..."; that known line goes with the record when it directly follows a
dropped one (:class:`LineFilter`). Any other output passes through unchanged. oneDNN
itself is untouched (``TF_ENABLE_ONEDNN_OPTS``): switching it off would change the kernels
being measured.

The filter is a separate small process (this file run as a script), not a thread: it reads
while TensorFlow's loader holds the GIL, and it still passes on what was written before
a crash (a fatal message before ``abort()``), which a thread or a temporary file would lose.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "FALLBACK_LOG_LEVEL",
    "TF_LOG_LEVEL_ENV",
    "LineFilter",
    "filter_level",
    "keep_line",
    "min_log_level",
    "quiet_native_stderr",
]

TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
# TensorFlow's levels: 0 shows INFO and up, 1 WARNING and up, 2 ERROR and up, 3 FATAL only.
LOG_LEVELS = range(4)
# The level the filter applies for a setting that is not one of LOG_LEVELS: linfit's own
# quiet default (linfit.environment.QUIET_TF_LOG_LEVEL, which imports this module).
FALLBACK_LOG_LEVEL = 2
# Abseil's line: severity letter, MMDD, time, thread, file:line]. Before InitializeLog()
# the time reads 00:00:<seconds since the epoch>.
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ ([^ \]]+):\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called"
# The CPU-feature notice's source file, and the second line of its message (TensorFlow's
# tensorflow/core/platform/cpu_feature_guard.cc: "To enable the following instructions:
# <names>, in other operations, rebuild TensorFlow with the appropriate compiler flags.").
_CPU_FEATURE_GUARD = b"cpu_feature_guard.cc"
_CPU_FEATURE_CONTINUATION = re.compile(
    rb"^To enable the following instructions: [A-Za-z0-9_ ]+, in other operations, "
    rb"rebuild TensorFlow with the appropriate compiler flags\.\r?$")
_SEVERITY_RANK = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
# Logged at E by the CUDA platform where there is no NVIDIA driver at all: the same fact as
# cudart_stub's "Could not find cuda drivers" line, so it goes with it.
_CUINIT_FAILED = b"failed call to cuInit"
_NVIDIA_DRIVER = "/proc/driver/nvidia/version"
# How long to wait for the filter to pass on the last lines after TensorFlow has loaded.
_FILTER_EXIT_SECONDS = 10.0


def min_log_level(environ: Mapping[str, str] = os.environ) -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as TensorFlow reads it: an integer, 0 when unset or not one."""
    try:
        return int(environ.get(TF_LOG_LEVEL_ENV, "0").strip())
    except ValueError:
        return 0


def filter_level(environ: Mapping[str, str] = os.environ) -> tuple[int, str | None]:
    """The level :func:`quiet_native_stderr` filters at, and a warning when the setting is
    not one of TensorFlow's levels.

    Returns:
        (level, None) for an unset variable (0) or one of 0 to 3 (spaces around allowed);
        (:data:`FALLBACK_LOG_LEVEL`, one line saying why) for anything else.
    """
    text = environ.get(TF_LOG_LEVEL_ENV)
    if text is None:
        return 0, None
    try:
        level = int(text.strip())
    except ValueError:
        level = -1
    if level in LOG_LEVELS:
        return level, None
    shown = text if len(text) <= 20 else text[:20] + "..."
    return FALLBACK_LOG_LEVEL, (
        f"linfit: warning: {TF_LOG_LEVEL_ENV}={shown!r} is not one of TensorFlow's levels "
        f"(0: every line, 1: no INFO, 2: no WARNING, 3: FATAL only); TensorFlow's start-up "
        f"lines are filtered at {FALLBACK_LOG_LEVEL}")


# Whether this process has warned about the setting (quiet_native_stderr runs more than
# once a process: at TensorFlow's import, and when it first looks for devices).
_warned = False


def keep_line(line: bytes, level: int, nvidia_driver: bool) -> bool:
    """Whether a line TensorFlow's native code wrote to stderr is shown at ``level``.

    Args:
        line: one line, with or without its newline.
        level: ``TF_CPP_MIN_LOG_LEVEL``.
        nvidia_driver: whether this machine has an NVIDIA driver (then a failed cuInit is
            a real error, and shown at levels up to 2).
    """
    if line.startswith(_ABSL_PREAMBLE):
        return level < 1
    match = _ABSL_LINE.match(line)
    if match is None:
        return True
    if _CUINIT_FAILED in line and not nvidia_driver:
        return level < 1
    return _SEVERITY_RANK[match.group(1)] >= level


class LineFilter:
    """:func:`keep_line` for a stream of lines, with the one context a line needs: the
    CPU-feature notice's second line ("To enable the following instructions: ...") is
    dropped when it directly follows a dropped ``cpu_feature_guard`` record. Every other
    line, after a dropped record or not, is judged by :func:`keep_line` alone.
    """

    def __init__(self, level: int, nvidia_driver: bool) -> None:
        """A filter at ``level`` (``TF_CPP_MIN_LOG_LEVEL``); ``nvidia_driver`` as for
        :func:`keep_line`."""
        self.level = level
        self.nvidia_driver = nvidia_driver
        self._after_dropped_guard = False

    def keep(self, line: bytes) -> bool:
        """Whether ``line`` (the next line of the stream, without its newline) is shown."""
        after_dropped_guard, self._after_dropped_guard = self._after_dropped_guard, False
        if after_dropped_guard and _CPU_FEATURE_CONTINUATION.match(line):
            return False
        if keep_line(line, self.level, self.nvidia_driver):
            return True
        match = _ABSL_LINE.match(line)
        self._after_dropped_guard = match is not None and match.group(2) == _CPU_FEATURE_GUARD
        return False


def _filtered(chunks: Iterable[bytes], level: int, nvidia_driver: bool) -> Iterator[bytes]:
    """What the filter passes on of ``chunks`` (the reads of one stream, in turn): the lines
    :class:`LineFilter` keeps, a line cut between reads passed on whole."""
    lines_filter = LineFilter(level, nvidia_driver)
    pending = b""
    for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if lines_filter.keep(line))
        if kept:
            yield kept
    if pending and lines_filter.keep(pending):
        yield pending


def _filter(source: int, target: int, level: int, nvidia_driver: bool) -> None:
    """Copy lines from ``source`` to ``target`` until end of file, dropping the noise."""
    for kept in _filtered(iter(lambda: os.read(source, 65536), b""), level, nvidia_driver):
        os.write(target, kept)


def _flush_python_stderr() -> None:
    # What Python buffered goes out on the descriptor it was written for.
    if sys.stderr is not None:
        sys.stderr.flush()


@contextlib.contextmanager
def quiet_native_stderr(environ: Mapping[str, str] = os.environ) -> Iterator[None]:
    """Inside, what native code writes to file descriptor 2 goes through :func:`keep_line`.

    The level is :func:`filter_level`'s: a setting that is not a level is warned about
    once a process, on one line. Nothing is filtered at level 0, or where the filter
    cannot be set up (no descriptor 2, no interpreter to run it): then stderr is left as
    it is.
    """
    global _warned
    level, warning = filter_level(environ)
    if warning and not _warned and sys.stderr is not None:
        _warned = True
        print(warning, file=sys.stderr, flush=True)
    if level <= 0 or os.name != "posix" or not sys.executable:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_end, write_end = os.pipe()
    try:
        # -I -S: no site, no user paths; this file needs the standard library only.
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", __file__, str(level),
             "1" if os.path.exists(_NVIDIA_DRIVER) else "0"],
            stdin=read_end, stdout=saved, stderr=saved, close_fds=True)
    except OSError:
        os.close(read_end)
        os.close(write_end)
        os.close(saved)
        yield
        return
    os.close(read_end)
    _flush_python_stderr()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        _flush_python_stderr()
        # Descriptor 2 was the pipe's last writer: restoring it ends the filter's input.
        os.dup2(saved, 2)
        os.close(saved)
        try:
            process.wait(timeout=_FILTER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            # Its input has ended, so it should be gone; a filter that is not is killed
            # rather than left behind.
            process.kill()
            process.wait()


if __name__ == "__main__":
    _filter(0, 1, int(sys.argv[1]), sys.argv[2] == "1")
