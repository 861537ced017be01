"""Test-only: a local package index of tiny fake TensorFlow builds, for linfit's build cache.

:func:`make_index` writes wheels into a folder that pip reads with ``--no-index
--find-links DIR``: ``tf-nightly`` 9.0.dev1 to 9.0.devN, whose ``tensorflow`` module has a
``__version__`` and a ``version.GIT_VERSION``, and fake ``numpy`` and ``pandas`` (what the
cache installs beside a build). Nothing is downloaded; a venv with them takes seconds.

The fake ``tensorflow`` reads, when imported: ``FAKE_TF_PIDFILE`` (writes its pid there),
``FAKE_TF_SLEEP`` (sleeps that many seconds: a slow import to interrupt) and
``FAKE_TF_BROKEN`` (a version that raises ImportError: a build that installs but does not
import).
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

# GIT_VERSION of fake build 9.0.devN: as a nightly's, `git describe` from an old tag.
FAKE_GIT_VERSION = "v1.12.1-{n}-gabc{n:04d}def"

_TENSORFLOW = '''\
import os
import time
import types

__version__ = "{version}"
version = types.SimpleNamespace(GIT_VERSION="{git_version}", VERSION=__version__)
if os.environ.get("FAKE_TF_PIDFILE"):
    with open(os.environ["FAKE_TF_PIDFILE"], "w") as handle:
        handle.write(str(os.getpid()))
if os.environ.get("FAKE_TF_SLEEP"):
    time.sleep(float(os.environ["FAKE_TF_SLEEP"]))
if os.environ.get("FAKE_TF_BROKEN") == __version__:
    raise ImportError("fake tensorflow {version}: this build does not import")
'''


def write_wheel(folder: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    """A pure-Python wheel of ``files`` (path in the wheel -> text), with its metadata and
    a RECORD of sha256 hashes as pip expects."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents = {**files,
                f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: linfit-tests\n"
                                 "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return wheel


def make_index(folder: Path, nightlies: int = 3) -> Path:
    """Write the fake index into ``folder``: tf-nightly 9.0.dev1 .. 9.0.dev<nightlies>,
    numpy and pandas."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, nightlies + 1):
        version = f"9.0.dev{n}"
        write_wheel(folder, "tf-nightly", version, {
            "tensorflow/__init__.py": _TENSORFLOW.format(
                version=version, git_version=FAKE_GIT_VERSION.format(n=n))})
    write_wheel(folder, "numpy", "9.0", {"numpy/__init__.py": "__version__ = '9.0'\n"})
    write_wheel(folder, "pandas", "9.0", {"pandas/__init__.py": "__version__ = '9.0'\n"})
    return folder


def pip_args(index: Path) -> tuple[str, ...]:
    """pip arguments that read the fake index only."""
    return ("--no-index", "--find-links", str(index))


def isolated_environ(**extra: str) -> dict[str, str]:
    """This process's environment without pip's settings (no configured index, find-links or
    constraints reach the test's pip), with ``extra``."""
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("PIP_") and not name.startswith("FAKE_TF_")}
    return {**environ, "PIP_CONFIG_FILE": os.devnull, **extra}
