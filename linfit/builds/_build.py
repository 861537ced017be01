"""What a TensorFlow build is, how it is written, which builds the package index has, and
which commit a build was made from.

A build is a package of TensorFlow's and a version, written as a pip requirement:
``tensorflow==2.20.*`` or ``tf-nightly==2.23.0.dev20261026``. ``packaging`` (what pip
itself uses to read versions) is imported only where a version is read, so that a worker
that imports :mod:`linfit.builds` through the harness needs nothing more.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linfit._errors import LinfitError
from linfit._process import WorkerFailed, run_child

if TYPE_CHECKING:
    from packaging.version import Version

__all__ = [
    "BUILD_PACKAGES",
    "INDEX_TIMEOUT_SECONDS",
    "NIGHTLY_PACKAGES",
    "PIP_ARGS_ENV",
    "Build",
    "BuildUnavailable",
    "available",
    "git_commit",
    "imported_git_version",
    "looks_like_build",
    "parse_build",
    "parse_index_versions",
    "pip_args_from_env",
    "pip_error_line",
]

# The packages a build may name: TensorFlow's releases and nightlies, with and without
# the GPU libraries. Nothing else: a side is a TensorFlow build.
BUILD_PACKAGES = ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu")
# Every version of these is a development release, which pip lists only with --pre.
NIGHTLY_PACKAGES = ("tf-nightly", "tf-nightly-cpu")
# Extra arguments for every pip command linfit runs for builds, split like a shell line:
# another index (--index-url URL), a local one (--no-index --find-links DIR).
PIP_ARGS_ENV = "LINFIT_BUILD_PIP_ARGS"
# `pip index versions` asks the index once: seconds, or a minute on a slow mirror.
INDEX_TIMEOUT_SECONDS = 120.0
# A build in a requirement: PACKAGE==VERSION, spaces allowed around ==.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)\s*$")
# `pip index versions` prints "Available versions: 2.21.0, 2.20.0, ...".
_AVAILABLE_PREFIX = "Available versions:"
# The short hash in a GIT_VERSION as `git describe` writes it: "...-g<hex>", where the tag
# may itself hold dashes ("v2.20.0-rc0-12-gabc1234").
_DESCRIBED = re.compile(r"-g([0-9a-f]{7,40})(?:-dirty)?$")
# A GIT_VERSION that is a bare commit (some builds are made outside a tag's history).
_BARE_HASH = re.compile(r"^([0-9a-f]{7,40})$")


class BuildUnavailable(LinfitError):
    """Raised when a build cannot be used: pip cannot install it (it does not exist for
    this Python and platform, the index cannot be reached, a dependency conflicts), or its
    ``tensorflow`` does not import.

    The message is one line naming the build and why: pip's own last error line, or the
    import's.
    """


def _normalise(package: str) -> str:
    """A package name as pip compares them (PEP 503): ``TF_Nightly`` is ``tf-nightly``."""
    return re.sub(r"[-_.]+", "-", package).lower()


@dataclass(frozen=True)
class Build:
    """A TensorFlow build: one of :data:`BUILD_PACKAGES` and a version (``2.20.*`` for the
    newest of a release series when the build is made).

    Attributes:
        package: the package name, normalised (``tf-nightly``).
        version: the version, or a prefix ending ``.*``.
    """

    package: str
    version: str

    @property
    def requirement(self) -> str:
        """The build as pip reads it: ``tf-nightly==2.23.0.dev20261026``."""
        return f"{self.package}=={self.version}"

    def __str__(self) -> str:
        return self.requirement


def looks_like_build(token: str) -> bool:
    """Whether a side's token is meant as a build: ``PACKAGE==VERSION`` with PACKAGE one of
    :data:`BUILD_PACKAGES` (in any spelling pip accepts), or any other requirement that
    names one of them (``tensorflow>=2.20``), which :func:`parse_build` then refuses."""
    name = re.split(r"[\s<>=!~]", token.strip(), maxsplit=1)[0]
    return _normalise(name) in BUILD_PACKAGES and len(name) < len(token.strip())


def parse_build(text: str) -> Build:
    """Read a build: ``tensorflow==2.20.*``, ``tf-nightly==2.23.0.dev20261026``.

    Raises:
        LinfitError: one line naming the text, for another package than
            :data:`BUILD_PACKAGES`, another operator than ``==``, or a version that is not
            one (PEP 440, optionally ending ``.*``).
    """
    from packaging.specifiers import InvalidSpecifier, Specifier

    example = "e.g. tensorflow==2.20.* or tf-nightly==2.23.0.dev20261026"
    match = _REQUIREMENT.match(text)
    if match is None:
        raise LinfitError(f"build {text!r} is not PACKAGE==VERSION ({example}); packages: "
                          f"{', '.join(BUILD_PACKAGES)}")
    package, version = _normalise(match.group(1)), match.group(2)
    if package not in BUILD_PACKAGES:
        raise LinfitError(f"build {text!r}: {match.group(1)!r} is not a TensorFlow package; "
                          f"give one of {', '.join(BUILD_PACKAGES)}")
    try:
        Specifier(f"=={version}")
    except InvalidSpecifier:
        raise LinfitError(f"build {text!r}: {version!r} is not a version ({example})") from None
    return Build(package, version)


def git_commit(git_version: str) -> str:
    """The short commit hash in a TensorFlow build's ``tf.version.GIT_VERSION``.

    ``v1.12.1-148158-gef696751006`` (a nightly: ``git describe`` from an old tag) gives
    ``ef696751006``; ``v2.20.0-rc0-12-g72fbba3d20f`` gives ``72fbba3d20f``; a bare hash is
    itself. A release built exactly at its tag (``v2.20.0``), ``unknown`` or '' have no
    commit in them: ''.
    """
    text = git_version.strip()
    match = _DESCRIBED.search(text) or _BARE_HASH.match(text)
    return match.group(1) if match else ""


def imported_git_version() -> str:
    """``tf.version.GIT_VERSION`` of the TensorFlow this process has imported; '' when it
    has imported none (this never imports it)."""
    tensorflow = sys.modules.get("tensorflow")
    version = getattr(getattr(tensorflow, "version", None), "GIT_VERSION", "")
    return version if isinstance(version, str) else ""


def pip_args_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The extra pip arguments of :data:`PIP_ARGS_ENV` (none when unset).

    Raises:
        LinfitError: for a value that is not a shell line (an unclosed quote).
    """
    text = (os.environ if environ is None else environ).get(PIP_ARGS_ENV, "")
    try:
        return tuple(shlex.split(text))
    except ValueError as error:
        raise LinfitError(f"{PIP_ARGS_ENV} {text!r}: {error}") from None


def pip_error_line(stderr_tail: str) -> str:
    """pip's own reason in its stderr: its last ``ERROR:`` line, else its last line."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no message"])[-1]


def parse_index_versions(text: str, package: str) -> list[str]:
    """The versions in what ``pip index versions PACKAGE`` printed, as printed.

    Raises:
        LinfitError: where the text has no ``Available versions:`` line.
    """
    for line in text.splitlines():
        if line.strip().startswith(_AVAILABLE_PREFIX):
            listed = line.strip().removeprefix(_AVAILABLE_PREFIX)
            return [version.strip() for version in listed.split(",") if version.strip()]
    raise LinfitError(f"pip index versions {package}: no '{_AVAILABLE_PREFIX}' line in its "
                      f"output: {' | '.join(text.split(chr(10))[:3])!r}")


def _bound(text: str, flag: str, package: str) -> Version:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text.split("==", 1)[-1].strip())
    except InvalidVersion:
        raise LinfitError(f"{flag} {text!r} is not a version of {package} (e.g. "
                          "2.23.0.dev20261026)") from None


def available(package: str = "tf-nightly", between: str | None = None,
              and_: str | None = None, *, pip_args: Sequence[str] | None = None,
              environ: Mapping[str, str] | None = None,
              timeout: float = INDEX_TIMEOUT_SECONDS) -> list[Build]:
    """The builds of ``package`` the package index has for this Python and platform,
    oldest first, as pip itself reports them (``python -m pip index versions``; nightlies
    with ``--pre``), ordered by their versions (PEP 440).

    Args:
        package: one of :data:`BUILD_PACKAGES`.
        between, and_: inclusive bounds (versions, or ``PACKAGE==VERSION``); None: open.
        pip_args: extra pip arguments (default: :data:`PIP_ARGS_ENV`).
        environ: pip's environment (default: this process's).
        timeout: seconds pip may take.

    Raises:
        LinfitError: for another package, a bound that is not a version, bounds in the
            wrong order, or pip failing (its last error line), running past ``timeout``,
            or printing no versions.
    """
    from packaging.version import Version

    name = _normalise(package)
    if name not in BUILD_PACKAGES:
        raise LinfitError(f"--package {package!r} is not a TensorFlow package; give one of "
                          f"{', '.join(BUILD_PACKAGES)}")
    low = _bound(between, "--between", name) if between is not None else None
    high = _bound(and_, "--and", name) if and_ is not None else None
    if low is not None and high is not None and low > high:
        raise LinfitError(f"--between {between} is after --and {and_}; give the older first")
    environ = dict(os.environ if environ is None else environ)
    extra = pip_args_from_env(environ) if pip_args is None else tuple(pip_args)
    argv = [sys.executable, "-m", "pip", "index", "versions", name, "--no-input",
            "--disable-pip-version-check", *(("--pre",) if name in NIGHTLY_PACKAGES else ()),
            *extra]
    try:
        result = run_child(f"pip index versions {name}", argv, environ, timeout)
    except WorkerFailed as error:
        raise LinfitError(str(error)) from None
    if result.returncode != 0:
        raise LinfitError(f"pip index versions {name} failed: "
                          f"{pip_error_line(result.stderr_tail)}")
    if _AVAILABLE_PREFIX not in result.stdout:
        # pip reports "no matching distribution" on stderr with status 0.
        raise LinfitError(f"pip index versions {name}: {pip_error_line(result.stderr_tail)}")
    versions = sorted({Version(v): v for v in parse_index_versions(result.stdout, name)
                       }.items())
    return [Build(name, text) for version, text in versions
            if (low is None or version >= low) and (high is None or version <= high)]
