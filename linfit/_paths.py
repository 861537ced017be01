"""The one home of linfit's file handling: output checks, atomic writes, and the one door
every file a user hands in goes through.

- :func:`output_dir_problem` / :func:`check_output_dir`: is a folder usable for output? The
  check behind the results folder, the journal and the floors cache, made before anything
  is measured.
- :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`link_unique`: a reader
  never sees half a file, and a file is never overwritten unless asked.
- :func:`open_input`: results CSVs, pairs files, journals and floors caches are read
  through it. It refuses what is not a regular file (a FIFO, a device, a folder) without
  blocking on it, bounds what it reads, and reads a UTF-8 byte-order mark the same way
  everywhere.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from linfit._errors import LinfitError

__all__ = [
    "MAX_INPUT_BYTES",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_dir",
    "link_unique",
    "open_input",
    "output_dir_problem",
]

# The most bytes linfit reads from one input file. A results CSV is about 2 kB a cell plus
# ~20 bytes a round, and a pairs file ~10 kB a burst of 1,000 calls: a session of 10,000
# bursts is ~100 MB. 512 MiB leaves room for that and keeps a wrong file (a disk image, a
# log) from taking the machine's memory.
MAX_INPUT_BYTES = 512 * 1024 * 1024
# What a spreadsheet (Excel: "CSV UTF-8") puts before the text; read as no text at all.
_UTF8_BOM = "\ufeff"
# The file types open_input names when it refuses one.
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


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


# --- atomic writes ---------------------------------------------------------------------


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *,
                       overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then
    linked (or, with ``overwrite``, renamed) into place. A reader never sees half a file.

    The one home of atomic writes: results, reports, floors, figures.

    Args:
        path: the file to create; its folder is created when missing.
        data: the whole content.
        overwrite: replace an existing file (os.replace) instead of refusing.

    Returns:
        The path written.

    Raises:
        FileExistsError: when ``path`` exists and ``overwrite`` is false (also when it
            appeared while writing: link() fails, there is no check-then-write race).
        OSError: when the folder cannot be created or written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); results and reports are for everyone.
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *,
                      overwrite: bool = False) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8 (newlines as given).

    Raises:
        FileExistsError: when ``path`` exists and ``overwrite`` is false.
        OSError: when the folder cannot be created or written.
    """
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def link_unique(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Give the finished file ``source`` the name ``target``, or ``<stem>-2<suffix>``,
    ``-3``, ... when that is taken, and remove the name ``source``. Never over a file.

    Returns:
        The name it got.

    Raises:
        OSError: when the link cannot be made for another reason than a taken name.
    """
    source, target = Path(source), Path(target)
    suffix = 1
    while True:
        name = (target if suffix == 1 else
                target.with_name(f"{target.stem}-{suffix}{target.suffix}"))
        try:
            # link() fails if the name exists: no check-then-write race.
            os.link(source, name)
        except FileExistsError:
            suffix += 1
            continue
        source.unlink()
        return name


# --- the one door for input files ------------------------------------------------------


def _kind(mode: int) -> str:
    return next((kind for test, kind in _KINDS if test(mode)), "not a plain file")


def open_input(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_INPUT_BYTES,
               error: type[LinfitError] = LinfitError, *, head: bool = False) -> str:
    """The text of a file a user handed in: the one door every reader goes through.

    The file is looked at (stat) before it is opened, and opened without blocking
    (O_NONBLOCK: a FIFO swapped in meanwhile does not wait for a writer), then checked
    again on the open descriptor. At most ``max_bytes`` are read. A UTF-8 byte-order mark
    (as Excel writes one) is dropped.

    Args:
        path: the file.
        what: what the file should be, for the messages ("a results CSV").
        max_bytes: the most bytes read; a longer file is refused.
        error: the reader's error type, raised with one line naming the file.
        head: read only the first ``max_bytes`` of a longer file (to look at its header),
            and replace a character cut at that end.

    Returns:
        The file's text (UTF-8), without a byte-order mark.

    Raises:
        LinfitError: (of type ``error``) "<path>: no such file", "<path>: not a regular
            file (a FIFO)", too large, unreadable, or not UTF-8 text.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{path}: no such file") from None
    except OSError as problem:
        raise error(f"{path}: cannot be read ({problem.strerror or problem})") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: not a regular file ({_kind(mode)}); give {what}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as problem:
        raise error(f"{path}: cannot be read ({problem.strerror or problem})") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):  # replaced between stat and open
            raise error(f"{path}: not a regular file ({_kind(status.st_mode)}); give {what}")
        if status.st_size > max_bytes and not head:
            raise error(f"{path}: {status.st_size} bytes, more than the {max_bytes} linfit "
                        f"reads from {what}")
        chunks = []
        left = max_bytes + (not head)  # one more: a file that grew past the bound is seen
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as problem:
        raise error(f"{path}: cannot be read ({problem.strerror or problem})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if head:
        return data.decode("utf-8", errors="replace").removeprefix(_UTF8_BOM)
    if len(data) > max_bytes:
        raise error(f"{path}: more than the {max_bytes} bytes linfit reads from {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text; give {what}") from None
    return text.removeprefix(_UTF8_BOM)
