"""Facts about the machine, the software and the source tree, recorded with every result."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

import numpy as np

__all__ = [
    "ENV_FLAGS",
    "GIT_COMMIT_ENV",
    "cpu_model",
    "env_flags",
    "git_state",
    "gpu_driver_version",
    "machine_facts",
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


def machine_facts() -> dict[str, str]:
    """Host, OS, Python, NumPy and CPU model, as result-file columns."""
    return {
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "cpu_model": cpu_model(),
    }
