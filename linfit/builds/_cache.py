"""The build cache: one virtual environment per TensorFlow build, made once, kept under a
size cap, least recently used first out.

Layout under the root (``~/.cache/linfit/builds``, or :data:`CACHE_ENV`)::

    tf-nightly-2.23.0.dev20261026/       a venv: the build, and what a worker needs
        linfit-build.json                its marker, written last: the venv is complete
    tensorflow-2.20.x/                   tensorflow==2.20.* ("*" is written "x")
    .locks/<name>.make, <name>.use       lock files (fcntl.flock), never removed

A venv holds the build and :data:`WORKER_REQUIREMENTS`, not linfit: a worker runs this
checkout's source, put first on its PYTHONPATH by the coordinator. It is made with
``python -m venv --without-pip`` and filled by this interpreter's pip (``pip --python``),
then checked by importing ``tensorflow`` in it; what that import reports
(``tf.__version__``, ``tf.version.GIT_VERSION``) goes into the marker, written last and
atomically. A folder without its marker is half-made (a maker was killed): it is never
used, and it is removed and made again by the next that wants it.

Two locks per build. ``make``: exclusive while a build is looked at and made, so that two
sessions wanting the same build make it once (the second waits, then uses it). ``use``:
shared from the moment a process asks for a build until it releases it
(:meth:`BuildCache.release`, :meth:`BuildCache.close`, or its end); eviction takes it
exclusively without waiting, so a build in use anywhere is never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from linfit._errors import LinfitError
from linfit._format import format_bytes
from linfit._paths import atomic_write_text
from linfit._process import WorkerFailed, run_child
from linfit.builds._build import (
    BUILD_PACKAGES,
    Build,
    BuildUnavailable,
    git_commit,
    pip_args_from_env,
    pip_error_line,
)

__all__ = [
    "CACHE_ENV",
    "CAP_ENV",
    "DEFAULT_CAP_BYTES",
    "INSTALL_TIMEOUT_SECONDS",
    "MARKER_NAME",
    "VENV_TIMEOUT_SECONDS",
    "VERIFY_TIMEOUT_SECONDS",
    "WORKER_REQUIREMENTS",
    "BuildCache",
    "CacheEntry",
    "default_root",
    "parse_size",
]

# Where the cache lives, and its size cap (bytes, or with a unit: 20G, 500M).
CACHE_ENV = "LINFIT_BUILD_CACHE"
CAP_ENV = "LINFIT_BUILD_CACHE_CAP"
# A TensorFlow build's venv is about 2.2 GB (tensorflow 2.20.0 with numpy and pandas:
# 2.23 GB on the 2-core VM): 20 GB keeps eight, enough for a bisect's endpoints and its
# last steps.
DEFAULT_CAP_BYTES = 20 * 10**9
# What a worker imports beyond the build (which brings keras, ml-dtypes and numpy's
# version it needs): numpy for the data and timing, pandas for the harness's records.
WORKER_REQUIREMENTS = ("numpy", "pandas")
# The marker of a complete venv.
MARKER_NAME = "linfit-build.json"
MARKER_VERSION = 1
# Time limits, seconds. A venv without pip: under a second. An install: a minute for
# ~700 MB of wheels here; half an hour leaves room for a slow link. The check imports
# TensorFlow once (5 to 10 s on the 2-core VM; the first import after an install also
# reads every file from disk).
VENV_TIMEOUT_SECONDS = 120.0
INSTALL_TIMEOUT_SECONDS = 1800.0
VERIFY_TIMEOUT_SECONDS = 300.0
_LOCKS = ".locks"
# Units parse_size reads (decimal, as disk sizes are sold and `du --si` prints them).
_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9,
          "GB": 10**9, "T": 10**12, "TB": 10**12}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*$")
# What the check runs in the new venv: the import, then its facts as one JSON line.
_VERIFY = ("import json, tensorflow as tf; print(json.dumps({'version': tf.__version__, "
           "'git_version': tf.version.GIT_VERSION}))")


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """The cache's folder: :data:`CACHE_ENV`, else ``$XDG_CACHE_HOME/linfit/builds``, else
    ``~/.cache/linfit/builds``."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    home = environ.get("HOME") or str(Path.home())
    base = environ.get("XDG_CACHE_HOME") or str(Path(home) / ".cache")
    return Path(base) / "linfit" / "builds"


def parse_size(text: str, where: str) -> int:
    """Bytes of a size written ``20G``, ``500MB``, ``2.5G`` or ``1000000`` (decimal units).

    Raises:
        LinfitError: naming ``where`` and what is valid.
    """
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise LinfitError(f"{where} {text!r} is not a size; give bytes or a number with K, M, "
                          "G or T, e.g. 20G")
    return int(float(match.group(1)) * _UNITS[unit])


def _folder_name(build: Build) -> str:
    """A build's folder: ``tf-nightly-2.23.0.dev20261026``; ``*`` is written ``x`` (never
    in a version, so the name reads back)."""
    return f"{build.package}-{build.version.replace('*', 'x')}"


def _build_of(name: str) -> Build | None:
    """The build a folder name stands for (:func:`_folder_name`), None for another name."""
    for package in sorted(BUILD_PACKAGES, key=len, reverse=True):
        version = name.removeprefix(f"{package}-")
        if version != name and version[:1].isdigit():
            return Build(package, re.sub(r"\.x$", ".*", version))
    return None


def _folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path``, links not followed (a venv's python is one)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


@dataclass(frozen=True)
class CacheEntry:
    """One venv of the cache.

    Attributes:
        build: the build it holds.
        path: its folder.
        size_bytes: the bytes of its files.
        last_used: when a session last asked for it (UTC).
        git_version: its ``tf.version.GIT_VERSION`` ('' in a half-made one).
        tensorflow_version: its ``tf.__version__`` ('' in a half-made one).
        complete: whether its marker is there (False: half-made, never used).
    """

    build: Build
    path: Path
    size_bytes: int
    last_used: datetime
    git_version: str = ""
    tensorflow_version: str = ""
    complete: bool = True

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.path / "bin" / "python"

    @property
    def commit(self) -> str:
        """The short commit in :attr:`git_version` ('' when none)."""
        return git_commit(self.git_version)


class BuildCache:
    """The cache of TensorFlow builds (see the module docstring).

    Use it as a context manager, or call :meth:`close`, to release the builds it handed out.
    """

    def __init__(self, root: Path | None = None, cap_bytes: int | None = None, *,
                 pip_args: Sequence[str] | None = None,
                 requirements: Sequence[str] = WORKER_REQUIREMENTS,
                 environ: Mapping[str, str] | None = None) -> None:
        """
        Args:
            root: the cache's folder (default: :func:`default_root`).
            cap_bytes: the size the cache is brought under after a build is made (default:
                :data:`CAP_ENV`, else :data:`DEFAULT_CAP_BYTES`).
            pip_args: extra arguments of every ``pip install`` (default:
                :data:`linfit.builds.PIP_ARGS_ENV`): another or a local index.
            requirements: installed beside the build (default: what a worker imports).
            environ: the environment of pip and the checks (default: this process's).

        Raises:
            LinfitError: for a cap or pip arguments in the environment that do not read.
        """
        self.environ = dict(os.environ if environ is None else environ)
        self.root = Path(root) if root is not None else default_root(self.environ)
        if cap_bytes is None:
            text = self.environ.get(CAP_ENV)
            cap_bytes = parse_size(text, CAP_ENV) if text else DEFAULT_CAP_BYTES
        self.cap_bytes = cap_bytes
        self.pip_args = (pip_args_from_env(self.environ) if pip_args is None
                         else tuple(pip_args))
        self.requirements = tuple(requirements)
        # Use locks this object holds (shared), by folder name: open descriptors.
        self._using: dict[str, int] = {}

    # -- locks ---------------------------------------------------------------------------
    def _lock_file(self, name: str, kind: str) -> int:
        folder = self.root / _LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / f"{name}.{kind}", os.O_RDWR | os.O_CREAT, 0o644)

    @contextlib.contextmanager
    def _making(self, build: Build, progress: Callable[[str], None]) -> Iterator[None]:
        """Hold ``build``'s make lock, waiting (with a line) while another process has it."""
        fd = self._lock_file(_folder_name(build), "make")
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress(f"waiting for another linfit that is making build {build}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _try_exclusive(self, name: str) -> list[int] | None:
        """Both locks of a folder, exclusively, without waiting; None when a process uses
        or makes it (this one included)."""
        held: list[int] = []
        for kind in ("use", "make"):
            fd = self._lock_file(name, kind)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                for other in held:
                    os.close(other)
                return None
            held.append(fd)
        return held

    # -- the public side -----------------------------------------------------------------
    def python(self, build: Build, progress: Callable[[str], None] | None = None) -> Path:
        """The interpreter of ``build``'s venv, made first if the cache lacks it.

        The build stays in use (never evicted, by any process) until :meth:`release` or
        :meth:`close`. After making one, the cache is brought under its cap, least
        recently used first.

        Args:
            build: the build.
            progress: takes one line at a time ("making build ... (about a minute)").

        Raises:
            BuildUnavailable: one line, when pip cannot install it (its last error line),
                its ``tensorflow`` does not import, or a step runs past its time limit.
        """
        say = progress or (lambda line: None)
        name = _folder_name(build)
        if name not in self._using:
            fd = self._lock_file(name, "use")
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._using[name] = fd
        folder = self.root / name
        made = False
        try:
            with self._making(build, say):
                if self._entry(folder) is None:
                    say(f"making build {build} (about a minute) in {folder}")
                    self._make(build, folder)
                    made = True
        except BaseException:
            self.release(build)
            raise
        # The marker's time is the entry's last use.
        os.utime(folder / MARKER_NAME)
        if made:
            entry = self._entry(folder)
            assert entry is not None
            say(f"made build {build}: tensorflow {entry.tensorflow_version}, "
                f"{entry.git_version} ({format_bytes(entry.size_bytes)})")
            for removed in self._evict(self.cap_bytes):
                say(f"removed build {removed.build} from the cache "
                    f"({format_bytes(removed.size_bytes)}, least recently used) to keep it "
                    f"under {format_bytes(self.cap_bytes)}")
        return folder / "bin" / "python"

    def path(self, build: Build) -> Path:
        """The folder of ``build``'s venv (whether it exists or not)."""
        return self.root / _folder_name(build)

    def release(self, build: Build) -> None:
        """Stop using ``build``: another process may evict it now. Idempotent."""
        fd = self._using.pop(_folder_name(build), None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Release every build this cache handed out. Idempotent."""
        for fd in self._using.values():
            os.close(fd)
        self._using.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def entries(self) -> list[CacheEntry]:
        """The complete venvs, least recently used first."""
        return [entry for entry in self._all() if entry.complete]

    def prune(self, keep: int | None = None, max_bytes: int | None = None,
              builds: Sequence[Build] = ()) -> list[CacheEntry]:
        """Remove venvs: ``builds``, then all but the ``keep`` most recently used, then the
        least recently used until the cache holds at most ``max_bytes``; half-made folders
        always. Never one in use or being made, by this process or another.

        Returns:
            The removed entries, in the order removed.

        Raises:
            LinfitError: for ``keep`` or ``max_bytes`` below 0.
        """
        if keep is not None and keep < 0:
            raise LinfitError(f"--keep {keep} must be 0 or more")
        if max_bytes is not None and max_bytes < 0:
            raise LinfitError(f"--max-gb {max_bytes / 1e9:g} must be 0 or more")
        removed = self._evict(None)
        named = {_folder_name(build) for build in builds}
        complete = self.entries()
        chosen = [e for e in complete if e.path.name in named]
        if keep is not None:
            chosen += complete[:max(0, len(complete) - keep)]
        removed += [entry for entry in dict.fromkeys(chosen) if self._remove(entry)]
        if max_bytes is not None:
            removed += self._evict(max_bytes)
        return removed

    # -- inside --------------------------------------------------------------------------
    def _entry(self, folder: Path) -> CacheEntry | None:
        """The complete entry in ``folder``; None without a readable marker (half-made)."""
        build = _build_of(folder.name)
        marker = folder / MARKER_NAME
        try:
            facts = json.loads(marker.read_text(encoding="utf-8"))
            used = marker.stat().st_mtime
        except (OSError, ValueError):
            return None
        if build is None or not isinstance(facts, dict) or not (folder / "bin").is_dir():
            return None
        return CacheEntry(build, folder, int(facts.get("size_bytes", 0)),
                          datetime.fromtimestamp(used, UTC), str(facts.get("git_version", "")),
                          str(facts.get("tensorflow_version", "")))

    def _all(self) -> list[CacheEntry]:
        """Every venv folder, half-made ones too, least recently used first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            build = _build_of(folder.name)
            if build is None or not folder.is_dir() or folder.is_symlink():
                continue
            entry = self._entry(folder)
            if entry is None:
                entry = CacheEntry(build, folder, _folder_bytes(folder),
                                   datetime.fromtimestamp(folder.stat().st_mtime, UTC),
                                   complete=False)
            found.append(entry)
        return sorted(found, key=lambda entry: (entry.last_used, entry.path.name))

    def _remove(self, entry: CacheEntry) -> bool:
        """Remove an entry unless a process uses or makes it; whether it was removed."""
        held = self._try_exclusive(entry.path.name)
        if held is None:
            return False
        try:
            # The marker first: a removal cut short leaves a half-made folder, never a
            # complete-looking one that lacks files.
            with contextlib.suppress(FileNotFoundError):
                (entry.path / MARKER_NAME).unlink()
            shutil.rmtree(entry.path, ignore_errors=True)
            return not entry.path.exists()
        finally:
            for fd in held:
                os.close(fd)

    def _evict(self, cap_bytes: int | None) -> list[CacheEntry]:
        """Remove half-made folders no process is making, then (with ``cap_bytes``) the
        least recently used venvs not in use until the cache holds at most ``cap_bytes``."""
        entries = self._all()
        removed = [e for e in entries if not e.complete and self._remove(e)]
        if cap_bytes is None:
            return removed
        left = [e for e in entries if e.complete]
        total = sum(e.size_bytes for e in left)
        for entry in left:
            if total <= cap_bytes:
                break
            if self._remove(entry):
                removed.append(entry)
                total -= entry.size_bytes
        return removed

    def _run(self, build: Build, what: str, argv: Sequence[str], timeout: float,
             environ: Mapping[str, str] | None = None) -> str:
        """Run one step of making ``build``; its stdout.

        Raises:
            BuildUnavailable: where it fails (its last error line) or runs too long.
        """
        try:
            result = run_child(f"{what} of build {build}", argv, environ or self.environ,
                               timeout)
        except WorkerFailed as error:
            why = f"; {pip_error_line(error.stderr_tail)}" if error.stderr_tail.strip() else ""
            raise BuildUnavailable(f"build {build}: {what} {error.what}{why}") from None
        if result.returncode != 0:
            raise BuildUnavailable(f"build {build}: {what} failed: "
                                   f"{pip_error_line(result.stderr_tail)}")
        return result.stdout

    def _make(self, build: Build, folder: Path) -> None:
        """Make ``build``'s venv in ``folder`` (under its make lock), marker last.

        Raises:
            BuildUnavailable: as :meth:`python` says; the half-made folder is removed.
        """
        # Whatever is there has no marker: a maker was killed. Start again.
        shutil.rmtree(folder, ignore_errors=True)
        try:
            self._run(build, "creating the venv",
                      [sys.executable, "-m", "venv", "--without-pip", str(folder)],
                      VENV_TIMEOUT_SECONDS)
            python = folder / "bin" / "python"
            self._run(build, "pip install",
                      [sys.executable, "-m", "pip", "--python", str(python), "install",
                       "--no-input", "--disable-pip-version-check", *self.pip_args,
                       build.requirement, *self.requirements], INSTALL_TIMEOUT_SECONDS)
            # -I: the venv's own packages only, whatever PYTHONPATH says; TensorFlow's C++
            # logging quiet, so that its stderr's tail is the error.
            output = self._run(build, "importing tensorflow", [str(python), "-I", "-c", _VERIFY],
                               VERIFY_TIMEOUT_SECONDS,
                               {**self.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            facts = _verified(build, output)
            facts["size_bytes"] = _folder_bytes(folder)
            atomic_write_text(folder / MARKER_NAME, json.dumps(facts, indent=1) + "\n")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def _verified(build: Build, output: str) -> dict[str, object]:
    """The marker's facts from the check's output, or why the build is not what was asked.

    Raises:
        BuildUnavailable: where the check printed no facts, or a version outside the build.
    """
    from packaging.specifiers import Specifier
    from packaging.version import InvalidVersion, Version

    lines = output.strip().splitlines()
    try:
        facts = json.loads(lines[-1]) if lines else None
        version, git_version = str(facts["version"]), str(facts["git_version"])  # type: ignore[index]
    except (ValueError, TypeError, KeyError):
        raise BuildUnavailable(f"build {build}: importing tensorflow printed no version: "
                               f"{output.strip()[-200:]!r}") from None
    with contextlib.suppress(InvalidVersion):
        if not Specifier(f"=={build.version}").contains(Version(version), prereleases=True):
            raise BuildUnavailable(f"build {build}: the venv's tensorflow reports version "
                                   f"{version}, not {build.version}")
    return {"marker_version": MARKER_VERSION, "package": build.package,
            "version": build.version, "requirement": build.requirement,
            "tensorflow_version": version, "git_version": git_version,
            "made_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "made_with": sys.executable}
