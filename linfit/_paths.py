"""Is a folder usable for output? The one check behind the results folder, the journal and
the floors cache, made before anything is measured.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from linfit._errors import LinfitError

__all__ = ["check_output_dir", "output_dir_problem"]


def output_dir_problem(directory: str | os.PathLike[str]) -> str:
    """Why files cannot be written into ``directory``; '' when they can.

    The folder must be a directory, or not exist yet under a directory where it can be
    created. Writability is tried, not guessed from permission bits (root, read-only mounts,
    /proc): a temporary file is created and removed in the folder, or, when the folder does
    not exist yet, in its nearest existing parent. Nothing is left behind.
    """
    directory = Path(directory)
    existing = directory
    # lexists: a dangling symlink exists as a name, and mkdir would fail on it.
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = ("a dangling symbolic link" if existing.is_symlink() and not existing.exists()
                else "not a directory")
        where = "" if existing == directory else f" (in the path of {directory})"
        return f"{existing} is {what}{where}"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".linfit-probe-"):
            pass
    except OSError as error:
        where = "" if existing == directory else f" (to create {directory})"
        return f"cannot write in {existing}{where}: {error.strerror or error}"
    return ""


def check_output_dir(directory: str | os.PathLike[str], label: str) -> None:
    """Raise when ``directory`` cannot take output files.

    Raises:
        LinfitError: ``"<label>: <why>"`` on one line (see :func:`output_dir_problem`).
    """
    problem = output_dir_problem(directory)
    if problem:
        raise LinfitError(f"{label}: {problem}")
