"""Facts about the machine, the software and the source tree, recorded with every result."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from linfit._errors import LinfitError
from linfit._native_log import TF_LOG_LEVEL_ENV
from linfit.machine import machine_state

__all__ = [
    "ENV_FLAGS",
    "GIT_COMMIT_ENV",
    "QUIET_TF_LOG_LEVEL",
    "TF_LOG_LEVEL_ENV",
    "cpu_model",
    "env_flag",
    "env_flags",
    "git_state",
    "gpu_driver_version",
    "keras_version",
    "machine_facts",
    "quiet_framework_env",
]

# Environment variables that change what TensorFlow, XLA or the thread pools do, and so
# the numbers: recorded in every result row (empty when unset).
GIT_COMMIT_ENV = "LINFIT_GIT_COMMIT"
ENV_FLAGS = ("TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS", "TF_XLA_FLAGS", "OMP_NUM_THREADS")


@functools.cache
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def gpu_driver_version() -> str:
    """The NVIDIA driver's version from /proc/driver/nvidia/version, '' where there is none."""
    try:
        first = Path("/proc/driver/nvidia/version").read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""
    return next((word for word in first.split() if word[:1].isdigit() and "." in word), "")


# Spellings of a boolean environment variable (case-insensitive); unset or '' is false.
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off", "")


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """A boolean environment variable, parsed the same way everywhere in linfit.

    1/true/yes/on are true; 0/false/no/off, '' and unset are false; case and surrounding
    blanks do not matter. So ``LINFIT_NO_PLOTS=0`` means plots.

    Args:
        name: the variable.
        environ: the environment to read (default: this process's).

    Raises:
        LinfitError: for any other value, naming the variable and what would be valid.
    """
    value = environ.get(name, "").strip().lower()
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise LinfitError(f"{name}={environ[name]!r} is not a boolean; use one of "
                      f"{', '.join(_TRUE_WORDS)} or {', '.join(w for w in _FALSE_WORDS if w)}")


# TensorFlow's C++ log level linfit runs with unless the user set one: 2 hides its INFO and
# WARNING lines (the oneDNN notice, "Could not find cuda drivers") and keeps errors.
QUIET_TF_LOG_LEVEL = "2"


def quiet_framework_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment to run linfit (or a framework) in, without TensorFlow's start-up noise.

    A copy of ``environ`` with ``TF_CPP_MIN_LOG_LEVEL`` set to :data:`QUIET_TF_LOG_LEVEL`
    unless it is set already: a user's setting is kept. TensorFlow reads the variable
    once, at its first native log call, so it must be in a process's environment before
    anything loads TensorFlow: this is what linfit's own start (``linfit.backends``) does,
    and what child processes (the bench harness's, ``linfit ab``'s workers) are given.
    ``TF_ENABLE_ONEDNN_OPTS`` is never touched: it changes the kernels being measured.

    Lines that TensorFlow's libraries log through Abseil ignore the variable; linfit's
    TensorFlow backend holds those back itself, by the same level (see
    :mod:`linfit._native_log` for why).
    """
    quiet = dict(environ)
    quiet.setdefault(TF_LOG_LEVEL_ENV, QUIET_TF_LOG_LEVEL)
    return quiet


def env_flags() -> dict[str, str]:
    """The :data:`ENV_FLAGS` as set now, lower-cased names, '' where unset."""
    return {name.lower(): os.environ.get(name, "") for name in ENV_FLAGS}


def git_state(path: Path | None = None) -> tuple[str, bool]:
    """(short commit, dirty) of the git tree holding ``path`` (default: this package).

    Outside a git checkout or without git: ($LINFIT_GIT_COMMIT or "unknown", False).
    """
    where = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            cwd=where, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        # A copy without git (a machine that got the tree by file copy) can be told the
        # commit it was copied from, clean, by whoever copied it.
        return os.environ.get(GIT_COMMIT_ENV) or "unknown", False
    return commit, bool(status)


def keras_version() -> str:
    """The installed Keras' version, from its package metadata (Keras is not imported);
    '' where it is not installed."""
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        return ""


def machine_facts() -> dict[str, Any]:
    """Host, OS, Python, NumPy, Keras and CPU model, and the machine's state
    (:func:`linfit.machine.machine_state`: cores, memory, CPU affinity, frequency and
    governor, VM and container), as result-file columns; None or '' where unreadable."""
    return {
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "keras_version": keras_version(),
        "cpu_model": cpu_model(),
        **machine_state(),
    }
