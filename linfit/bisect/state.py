"""The saved state of a bisect: what was measured, so that a rerun measures nothing twice.

The state folder (``--state DIR``) holds ``bisect.json`` and, under ``pairs/``, the pairs
file of every session. ``bisect.json`` records the facts only, never a decision (decisions
are derived again from the pairs files on every run, by the same rules):

- ``settings``: what decides the outcome (the builds, cell options, threshold and alpha);
  a rerun with other settings is refused rather than mixed with these;
- ``builds``: GOOD, the builds between in order, BAD, as the package index listed them on
  the first run (a rerun does not ask again, so the positions cannot shift);
- ``unavailable``: builds that did not install or import, or whose worker failed, with why;
- ``sessions``: one record per session: its key (cell, sides, attempt), its pairs file,
  whether it was interrupted, and its failures (each side's ``GIT_VERSION`` and commit are
  in the pairs file).

The file is rewritten whole after every change, to a temporary file that is then renamed
(:func:`linfit._paths.atomic_write_text`): Ctrl-C, SIGTERM or a crash leaves the previous
state or the next one, never half of one. A lock file keeps two bisects off one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from linfit._errors import LinfitError
from linfit._paths import atomic_write_text, check_output_dir, open_input

__all__ = [
    "PAIRS_FOLDER",
    "STATE_FILE",
    "STATE_SCHEMA_VERSION",
    "BisectState",
    "SessionRecord",
    "locked",
]

STATE_SCHEMA_VERSION = 1
READABLE_STATE_SCHEMA_VERSIONS = (1,)
STATE_FILE = "bisect.json"
PAIRS_FOLDER = "pairs"
LOCK_FILE = ".lock"
# What bisect.json says it is, so that another JSON file is not taken for a state.
_KIND = "linfit-bisect-state"
# A state is a few kB a session; 64 MiB is far beyond any bisect and keeps a wrong file out.
MAX_STATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SessionRecord:
    """One session of a bisect, as saved.

    Attributes:
        key: what the session measured, unique in a state (:meth:`make_key`).
        cell: the cell id it was narrowed to; '' for the cells of the options.
        sides: the builds, in side order.
        attempt: 0 for a step's first session, 1, 2, ... for the sessions that extend it.
        pairs: its pairs file, relative to the state folder.
        interrupted: whether Ctrl-C or SIGTERM ended it early.
        failures: one line per worker that failed.
    """

    key: str
    cell: str
    sides: tuple[str, ...]
    attempt: int
    pairs: str
    interrupted: bool = False
    failures: tuple[str, ...] = ()

    @staticmethod
    def make_key(cell: str, sides: Sequence[str], attempt: int) -> str:
        """The key of a session of ``sides`` in ``cell`` ('' for every cell)."""
        return json.dumps([cell, list(sides), attempt])

    def to_json(self) -> dict[str, Any]:
        """The record as ``bisect.json`` holds it."""
        return {**asdict(self), "sides": list(self.sides), "failures": list(self.failures)}

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> SessionRecord:
        """A record of ``bisect.json``.

        Raises:
            ValueError, KeyError, TypeError: for a malformed entry (the reader names the file).
        """
        record = cls(key=_text(entry["key"]), cell=_text(entry["cell"]),
                     sides=tuple(map(_text, entry["sides"])), attempt=int(entry["attempt"]),
                     pairs=_text(entry["pairs"]), interrupted=bool(entry["interrupted"]),
                     failures=tuple(map(_text, entry["failures"])))
        if record.key != cls.make_key(record.cell, record.sides, record.attempt):
            raise ValueError(f"session key {record.key!r} does not match its cell and sides")
        if Path(record.pairs).is_absolute() or ".." in Path(record.pairs).parts:
            raise ValueError(f"pairs file {record.pairs!r} is outside the state folder")
        return record


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


@dataclass
class BisectState:
    """A bisect's state folder, loaded (see the module docstring). Every change is saved
    at once."""

    directory: Path
    settings: dict[str, Any]
    builds: list[str] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    sessions: list[SessionRecord] = field(default_factory=list)

    @property
    def file(self) -> Path:
        """``bisect.json``."""
        return self.directory / STATE_FILE

    @property
    def pairs_dir(self) -> Path:
        """Where the sessions write their pairs files."""
        return self.directory / PAIRS_FOLDER

    @classmethod
    def open(cls, directory: Path, settings: Mapping[str, Any]) -> BisectState:
        """The state in ``directory``, or a new one for ``settings`` when it has none.

        Raises:
            LinfitError: one line naming the file: the folder cannot take files, the file
                is not a bisect state or has a schema version this linfit does not read,
                a malformed entry, or settings other than ``settings`` (another bisect's
                state: give another --state).
        """
        check_output_dir(directory, "bisect state folder (--state)")
        state = cls(directory, dict(settings))
        if not state.file.exists():
            return state
        text = open_input(state.file, "a bisect state (bisect.json)", MAX_STATE_BYTES)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise LinfitError(f"{state.file}: not JSON ({error.msg}, line {error.lineno}); "
                              "give another --state") from None
        if not isinstance(data, dict) or data.get("kind") != _KIND:
            raise LinfitError(f"{state.file}: not a linfit bisect state; give another --state")
        version = data.get("schema_version")
        if version not in READABLE_STATE_SCHEMA_VERSIONS:
            readable = ", ".join(map(str, READABLE_STATE_SCHEMA_VERSIONS))
            raise LinfitError(f"{state.file}: schema_version {version!r} is not one this "
                              f"linfit reads ({readable})")
        if data.get("settings") != state.settings:
            saved = data.get("settings") if isinstance(data.get("settings"), dict) else {}
            differ = [name for name in sorted(set(saved) | set(state.settings))
                      if saved.get(name) != state.settings.get(name)]
            raise LinfitError(f"{state.file}: a bisect with other settings ({', '.join(differ)}) "
                              "is saved there; give the same options to resume it, or another "
                              "--state")
        try:
            builds = data["builds"]
            if builds is not None:
                state.builds = [_text(build) for build in builds]
            state.unavailable = {_text(build): _text(reason)
                                 for build, reason in dict(data["unavailable"]).items()}
            state.sessions = [SessionRecord.from_json(entry) for entry in data["sessions"]]
        except (KeyError, TypeError, ValueError) as error:
            raise LinfitError(f"{state.file}: malformed entry ({error}); give another "
                              "--state") from None
        return state

    def save(self) -> None:
        """Write ``bisect.json`` atomically (write, then rename)."""
        data = {"kind": _KIND, "schema_version": STATE_SCHEMA_VERSION,
                "settings": self.settings, "builds": self.builds,
                "unavailable": self.unavailable,
                "sessions": [record.to_json() for record in self.sessions]}
        atomic_write_text(self.file, json.dumps(data, indent=1) + "\n", overwrite=True)

    def session(self, key: str) -> SessionRecord | None:
        """The saved session of that key, None if it was never measured."""
        return next((record for record in self.sessions if record.key == key), None)

    def add_session(self, record: SessionRecord) -> None:
        """Save a finished (or interrupted) session."""
        if self.session(record.key) is not None:
            raise ValueError(f"session {record.key} is saved already")
        self.sessions.append(record)
        self.save()

    def mark_unavailable(self, build: str, reason: str) -> None:
        """Save that ``build`` cannot be measured, and why."""
        self.unavailable[build] = reason
        self.save()

    def set_builds(self, builds: Sequence[str]) -> None:
        """Save the bisected builds, GOOD first and BAD last."""
        self.builds = list(builds)
        self.save()


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the state folder's lock: a second bisect on the same folder is refused while
    this one runs (the lock goes with the process, also when it is killed).

    Raises:
        LinfitError: when another process holds it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LinfitError(f"{directory}: another linfit bisect is using this state "
                              "folder; wait for it, or give another --state") from None
        yield
    finally:
        os.close(fd)
