"""The sides of an A/B session: a label, a Python interpreter or a TensorFlow build, and
environment settings.

A side is written ``"LABEL: [PYTHON | BUILD] [NAME=VALUE ...]"`` and split like a shell line
(:func:`shlex.split`). A token ``PACKAGE==VERSION`` whose PACKAGE is one of TensorFlow's
(:data:`linfit.builds.BUILD_PACKAGES`) is a build: its interpreter is the build cache's venv
of it, made when the session starts (:func:`linfit.builds.BuildCache.python`). Any other
token ``NAME=VALUE`` whose NAME is an identifier sets an environment variable, and any other
token is the interpreter (a path, a name on PATH, or ``tox:ENV`` for
``.tox/ENV/bin/python``). The label and the interpreter may be left out: the label defaults
to ``A``, ``B``, ..., the interpreter to the one running linfit.

    "tf220: tox:tf220"
    "2.20: tensorflow==2.20.*"
    "n1026: tf-nightly==2.23.0.dev20261026 TF_ENABLE_ONEDNN_OPTS=0"
    "no-tree-rewrite: XLA_FLAGS=--xla_disable_hlo_passes=tree_reduction_rewriter"
    ".venv-old/bin/python TF_ENABLE_ONEDNN_OPTS=0"
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from linfit._errors import LinfitError
from linfit.builds import Build, looks_like_build, parse_build

__all__ = [
    "DEFAULT_LABELS",
    "LABEL_RULE",
    "MAX_LABEL_CHARS",
    "TOX_PREFIX",
    "Side",
    "aa_sides",
    "check_label",
    "check_sides",
    "parse_side",
    "parse_sides",
]

# Labels of sides given without one, in order.
DEFAULT_LABELS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# `tox:ENV` names the interpreter of a tox environment of the current folder.
TOX_PREFIX = "tox:"
# Longest label: wide enough for "tf-2.21-no-tree-rewrite-onednn-off", narrow enough that
# a table's "B/A [99% CI]" header stays readable.
MAX_LABEL_CHARS = 40
LABEL_RULE = (f"1 to {MAX_LABEL_CHARS} ASCII letters, digits and . _ + -, starting with a "
              "letter or digit")
_LABEL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._+-]{{0,{MAX_LABEL_CHARS - 1}}}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Side:
    """One environment to measure: its label, interpreter and extra environment variables.

    Attributes:
        label: the name tables and files use.
        python: the interpreter's path, absolute; '' for a build not made yet (the
            session fills it in from the build cache as it starts).
        env: variables set for its worker, on top of the coordinator's environment, in the
            order given.
        spec: the text the side was parsed from ('' when built directly).
        build: the TensorFlow build it runs, where the spec named one.
    """

    label: str
    python: str
    env: tuple[tuple[str, str], ...] = ()
    spec: str = field(default="", compare=False)
    build: Build | None = None

    @property
    def env_text(self) -> str:
        """The settings as one shell-quoted line: ``XLA_FLAGS=... OMP_NUM_THREADS=1``."""
        return " ".join(f"{name}={shlex.quote(value)}" for name, value in self.env)

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with this side's settings applied."""
        return {**base, **dict(self.env)}


def check_label(label: str) -> str:
    """Return ``label`` if it follows :data:`LABEL_RULE`.

    Raises:
        LinfitError: naming the label (cut short when long) and the rule.
    """
    if not _LABEL.fullmatch(label):
        shown = label if len(label) <= MAX_LABEL_CHARS else f"{label[:MAX_LABEL_CHARS]}..."
        size = f" ({len(label)} characters)" if len(label) > MAX_LABEL_CHARS else ""
        raise LinfitError(f"side label {shown!r}{size} is not a label: give {LABEL_RULE}")
    return label


def _meant_as_label(head: str) -> bool:
    """Whether text before a spec's first colon is meant as a label: not ``tox`` (of
    ``tox:ENV``), no path and no setting."""
    return head != TOX_PREFIX[:-1] and os.sep not in head and "=" not in head


def _interpreter(token: str, spec: str, cwd: Path) -> str:
    if token.startswith(TOX_PREFIX):
        name = token.removeprefix(TOX_PREFIX)
        if not name:
            raise LinfitError(f"side {_shown(spec)}: {_shown(token)} names no tox environment; "
                              "give tox:ENV, e.g. tox:tf220")
        path = cwd / ".tox" / name / "bin" / "python"
        if not path.exists():
            raise LinfitError(f"side {_shown(spec)}: tox environment {name!r} has no interpreter "
                              f"at {path}; create it with: tox -e {name} --notest")
        return str(path)
    if os.sep not in token:
        found = shutil.which(token)
        if found is None:
            raise LinfitError(f"side {_shown(spec)}: no interpreter {_shown(token)} on PATH")
        return found
    path = cwd / Path(token).expanduser()
    if not path.is_file():
        raise LinfitError(f"side {_shown(spec)}: interpreter {_shown(token)} does not exist")
    if not os.access(path, os.X_OK):
        raise LinfitError(f"side {_shown(spec)}: interpreter {_shown(token)} is not executable")
    # Absolute, but not resolved: a venv's python is a symlink whose target would not
    # find the venv's packages.
    return str(path.absolute())


def _shown(text: str) -> str:
    """A spec as error messages quote it: cut short when long."""
    limit = 2 * MAX_LABEL_CHARS
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def parse_side(text: str, default_label: str, cwd: Path | None = None) -> Side:
    """Parse one side spec (see the module docstring).

    Args:
        text: the spec.
        default_label: the label when the spec has none.
        cwd: where relative interpreter paths and ``.tox`` start (default: the current
            folder).

    Raises:
        LinfitError: naming the spec, for an empty spec, a malformed label, quoting or
            setting, more than one interpreter, or an interpreter that does not exist.
    """
    cwd = cwd or Path.cwd()
    if not text.strip():
        raise LinfitError(f"side {text!r} is empty; give 'LABEL: [PYTHON | BUILD] "
                          "[NAME=VALUE ...]', e.g. 'base:' for this interpreter as it is")
    head, colon, rest = text.partition(":")
    # "LABEL:" is a label; "tox:ENV" is an interpreter.
    if colon and _meant_as_label(head.strip()):
        try:
            label = check_label(head.strip())
        except LinfitError as error:
            raise LinfitError(f"side {_shown(text)}: {error}") from None
    else:
        label, rest = default_label, text
    try:
        tokens = shlex.split(rest)
    except ValueError as error:
        raise LinfitError(f"side {_shown(text)}: {error}") from None
    python = ""
    build: Build | None = None
    env: dict[str, str] = {}
    for token in tokens:
        name, equals, value = token.partition("=")
        if looks_like_build(token):
            if python or build:
                raise LinfitError(f"side {_shown(text)}: two interpreters or builds, "
                                  f"{_shown(python or str(build))} and {_shown(token)}; give one")
            try:
                build = parse_build(token)
            except LinfitError as error:
                raise LinfitError(f"side {_shown(text)}: {error}") from None
        elif equals and _ENV_NAME.match(name):
            env[name] = value
        elif equals and os.sep not in name and not name.startswith(TOX_PREFIX):
            raise LinfitError(f"side {_shown(text)}: {_shown(token)} is not a NAME=VALUE setting: "
                              f"{name!r} is not a variable name")
        elif python or build:
            raise LinfitError(f"side {_shown(text)}: two interpreters or builds, "
                              f"{_shown(python or str(build))} and {_shown(token)}; give one, "
                              "and settings as NAME=VALUE")
        else:
            python = token
    if build is not None:
        return Side(label, "", tuple(env.items()), text, build)
    return Side(label, _interpreter(python, text, cwd) if python else sys.executable,
                tuple(env.items()), text)


def parse_sides(texts: Sequence[str], cwd: Path | None = None) -> list[Side]:
    """Parse the ``--side`` specs in order; labels default to A, B, ...

    Raises:
        LinfitError: for a bad spec, fewer than two sides, or a label used twice.
    """
    sides = [parse_side(text, DEFAULT_LABELS[i % len(DEFAULT_LABELS)], cwd)
             for i, text in enumerate(texts)]
    check_sides(sides)
    return sides


def check_sides(sides: Sequence[Side]) -> None:
    """Refuse fewer than two sides, a label that breaks :data:`LABEL_RULE`, or a label used
    twice.

    Raises:
        LinfitError: saying which.
    """
    if len(sides) < 2:
        raise LinfitError(f"an A/B session needs two sides or more, got {len(sides)}; give "
                          "--side twice, or --aa")
    labels = [check_label(side.label) for side in sides]
    twice = next((label for label in labels if labels.count(label) > 1), None)
    if twice:
        raise LinfitError(f"side label {twice!r} is used twice; give each side its own label")


def aa_sides(settings: Sequence[str] = ()) -> list[Side]:
    """The A/A session: the current interpreter twice, labelled A and A2, with the same
    settings (``NAME=VALUE`` strings)."""
    side = parse_side(" ".join(shlex.quote(s) for s in settings), "A") if settings else Side(
        "A", sys.executable)
    return [side, Side("A2", side.python, side.env, side.spec)]
