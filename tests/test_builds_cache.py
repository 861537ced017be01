"""The build cache (linfit/builds/_cache.py) on a local index of tiny fake builds
(tests/builds_fake_index.py): made once and reused, two processes at once, a maker killed
or interrupted mid-way, the cap and least-recently-used eviction (never a build in use), a
build that does not exist or does not import, and ``linfit builds list`` / ``prune``.

Every venv here is real (``venv --without-pip`` and this interpreter's pip) but holds a few
kB: seconds each. Nothing is downloaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from builds_fake_index import FAKE_GIT_VERSION, isolated_environ, make_index, pip_args

from linfit.builds import Build, BuildCache, BuildUnavailable, parse_build
from linfit.builds._cache import MARKER_NAME
from linfit.cli import main

TESTS = Path(__file__).parent
ROOT = TESTS.parent
DEV = {n: Build("tf-nightly", f"9.0.dev{n}") for n in (1, 2, 3)}
# Seconds a child may take to make a fake build here (venv + pip on a busy 2-core VM).
MAKE_SECONDS = 120
# A process that asks the cache for one build and prints what it got, as JSON.
_ASK = """\
import json, sys
from pathlib import Path
from builds_fake_index import isolated_environ, pip_args
from linfit.builds import BuildCache, parse_build
root, index, build = sys.argv[1:4]
settings = dict(arg.split("=", 1) for arg in sys.argv[4:])
lines = []
cache = BuildCache(Path(root), pip_args=pip_args(Path(index)),
                   environ=isolated_environ(**settings))
python = cache.python(parse_build(build), lambda line: print(line, flush=True))
print(json.dumps({"python": str(python)}), flush=True)
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    return make_index(tmp_path_factory.mktemp("index"), nightlies=3)


def _cache(root: Path, index: Path, cap_bytes: int | None = None, **settings: str) -> BuildCache:
    return BuildCache(root, cap_bytes, pip_args=pip_args(index),
                      environ=isolated_environ(**settings))


@pytest.fixture(scope="module")
def made(tmp_path_factory, index) -> Iterator[tuple[BuildCache, list[str]]]:
    """A cache that made 9.0.dev1 once, and the progress lines it said."""
    cache = _cache(tmp_path_factory.mktemp("made"), index)
    lines: list[str] = []
    cache.python(DEV[1], lines.append)
    yield cache, lines
    cache.close()


def _imports(python: Path) -> dict[str, str]:
    """What the venv's own tensorflow says, in a fresh interpreter."""
    out = subprocess.run([str(python), "-I", "-c", "import json, tensorflow as tf, numpy, pandas;"
                          "print(json.dumps([tf.__version__, tf.version.GIT_VERSION]))"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    version, git_version = json.loads(out)
    return {"version": version, "git_version": git_version}


def _ask(root: Path, index: Path, build: str, **settings: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    return subprocess.Popen([sys.executable, "-c", _ASK, str(root), str(index), build,
                             *(f"{k}={v}" for k, v in settings.items())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environ)


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = MAKE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# --- made once, then reused ----------------------------------------------------------------


def test_a_build_is_made_once_with_its_facts_in_the_marker_written_last(made):
    cache, lines = made
    python = cache.path(DEV[1]) / "bin" / "python"
    assert lines[0].startswith("making build tf-nightly==9.0.dev1 (about a minute)")
    assert lines[1].startswith("made build tf-nightly==9.0.dev1: tensorflow 9.0.dev1, "
                               f"{FAKE_GIT_VERSION.format(n=1)}")
    assert _imports(python) == {"version": "9.0.dev1",
                                "git_version": FAKE_GIT_VERSION.format(n=1)}
    marker = json.loads((cache.path(DEV[1]) / MARKER_NAME).read_text())
    assert marker["git_version"] == "v1.12.1-1-gabc0001def"
    assert marker["requirement"] == "tf-nightly==9.0.dev1" and marker["size_bytes"] > 0
    [entry] = cache.entries()
    assert (entry.build, entry.python, entry.commit) == (DEV[1], python, "abc0001def")
    assert entry.tensorflow_version == "9.0.dev1" and entry.complete
    # Not linfit: a worker runs this checkout's source.
    site = next((cache.path(DEV[1]) / "lib").glob("python*/site-packages"))
    assert {"tensorflow", "numpy", "pandas"} <= {p.name for p in site.iterdir()}
    assert not list(site.glob("linfit*"))


def test_a_made_build_is_reused_and_its_last_use_touched(made):
    cache, _ = made
    before = cache.entries()[0].last_used
    time.sleep(0.01)
    lines: list[str] = []
    again = _cache(cache.root, Path("/nonexistent-index"))  # no pip may run
    assert again.python(DEV[1], lines.append) == cache.path(DEV[1]) / "bin" / "python"
    assert lines == [] and again.entries()[0].last_used > before
    again.close()


# --- two processes, one build --------------------------------------------------------------


def test_two_processes_wanting_one_build_make_it_once_and_both_use_it(tmp_path, index):
    # The import takes 2 s, so the second process comes while the first still makes it.
    first = _ask(tmp_path, index, "tf-nightly==9.0.dev2", FAKE_TF_SLEEP="2")
    second = _ask(tmp_path, index, "tf-nightly==9.0.dev2", FAKE_TF_SLEEP="2")
    outputs = [process.communicate(timeout=MAKE_SECONDS) for process in (first, second)]
    assert [process.returncode for process in (first, second)] == [0, 0], outputs
    said = [out.splitlines() for out, _ in outputs]
    assert sorted(sum(line.startswith("making build") for line in lines) for lines in said) == [
        0, 1]
    assert any("waiting for another linfit that is making build tf-nightly==9.0.dev2" in lines
               for lines in said)
    pythons = {json.loads(lines[-1])["python"] for lines in said}
    assert pythons == {str(tmp_path / "tf-nightly-9.0.dev2" / "bin" / "python")}
    assert _imports(Path(pythons.pop()))["version"] == "9.0.dev2"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [
        "tf-nightly-9.0.dev2"]


# --- a maker stopped mid-way ---------------------------------------------------------------


def test_a_maker_killed_mid_way_leaves_a_half_made_venv_that_is_never_used_but_redone(
        tmp_path, index):
    pidfile = tmp_path / "import.pid"
    root = tmp_path / "cache"
    maker = _ask(root, index, "tf-nightly==9.0.dev3", FAKE_TF_SLEEP="300",
                 FAKE_TF_PIDFILE=str(pidfile))
    _wait_for(pidfile, maker)  # installed; the check's import is running
    maker.kill()
    maker.communicate()
    # SIGKILL lets the maker clean nothing: its check is orphaned (ended here by hand).
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    folder = root / "tf-nightly-9.0.dev3"
    assert (folder / "bin" / "python").exists() and not (folder / MARKER_NAME).exists()
    cache = _cache(root, index)
    assert cache.entries() == []
    [half] = [e for e in cache._all() if not e.complete]
    assert half.build == DEV[3]
    lines: list[str] = []
    python = cache.python(DEV[3], lines.append)
    assert lines[0].startswith("making build tf-nightly==9.0.dev3")
    assert _imports(python)["version"] == "9.0.dev3"
    assert [e.build for e in cache.entries()] == [DEV[3]]
    cache.close()


def test_a_maker_interrupted_mid_way_ends_its_child_and_leaves_nothing(tmp_path, index):
    pidfile = tmp_path / "import.pid"
    maker = _ask(tmp_path / "cache", index, "tf-nightly==9.0.dev3", FAKE_TF_SLEEP="300",
                 FAKE_TF_PIDFILE=str(pidfile))
    _wait_for(pidfile, maker)
    maker.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = maker.communicate(timeout=30)
    assert maker.returncode != 0 and "KeyboardInterrupt" in err
    assert _gone(int(pidfile.read_text())), "the check's process outlived its maker"
    assert not (tmp_path / "cache" / "tf-nightly-9.0.dev3").exists()


# --- builds that cannot be used ------------------------------------------------------------


def test_a_build_that_does_not_exist_is_one_line_and_leaves_nothing(tmp_path, index):
    cache = _cache(tmp_path, index)
    with pytest.raises(BuildUnavailable) as error:
        cache.python(parse_build("tf-nightly==9.9.dev9"))
    assert str(error.value) == ("build tf-nightly==9.9.dev9: pip install failed: ERROR: No "
                                "matching distribution found for tf-nightly==9.9.dev9")
    assert not cache.path(Build("tf-nightly", "9.9.dev9")).exists()
    assert cache._using == {}  # released


def test_a_build_that_does_not_import_is_one_line(tmp_path, index):
    cache = _cache(tmp_path, index, FAKE_TF_BROKEN="9.0.dev2")
    with pytest.raises(BuildUnavailable) as error:
        cache.python(DEV[2])
    assert str(error.value) == ("build tf-nightly==9.0.dev2: importing tensorflow failed: "
                                "ImportError: fake tensorflow 9.0.dev2: this build does not "
                                "import")
    assert cache.entries() == [] and not cache.path(DEV[2]).exists()


def test_ab_with_builds_that_leave_fewer_than_two_sides_exits_2_in_one_line(
        tmp_path, index, monkeypatch, capsys):
    for name, value in isolated_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LINFIT_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LINFIT_BUILD_PIP_ARGS", " ".join(pip_args(index)))
    status = main(["ab", "--side", "A: tf-nightly==9.9.dev1", "--side", "B: tf-nightly==9.9.dev2",
                   "--results", str(tmp_path / "results"), "--sizes", "1000"])
    assert status == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == (
        "linfit ab: error: side A left out: build tf-nightly==9.9.dev1: pip install failed: "
        "ERROR: No matching distribution found for tf-nightly==9.9.dev1; side B left out: "
        "build tf-nightly==9.9.dev2: pip install failed: ERROR: No matching distribution found "
        "for tf-nightly==9.9.dev2; 0 side(s) left, a session needs two")
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())


# --- the cap, least recently used first, never one in use ----------------------------------


def test_the_cap_evicts_the_least_recently_used_but_never_one_in_use(tmp_path, index):
    cache = _cache(tmp_path, index)
    cache.python(DEV[1])
    size = cache.entries()[0].size_bytes
    # Room for two builds: making a third removes one.
    cache.cap_bytes = int(2.5 * size)
    cache.python(DEV[2])
    cache.close()
    os.utime(cache.path(DEV[2]) / MARKER_NAME, (1e9, 1e9))  # 2.0 is the least recently used
    os.utime(cache.path(DEV[1]) / MARKER_NAME, (2e9, 2e9))
    assert [e.build for e in cache.entries()] == [DEV[2], DEV[1]]
    # Another session uses 2.0 (a second cache: its own lock, as another process's).
    other = _cache(tmp_path, index)
    other.python(DEV[2])
    lines: list[str] = []
    cache.python(DEV[3], lines.append)
    assert [e.build for e in cache.entries()] == [DEV[2], DEV[3]]
    assert any(line.startswith("removed build tf-nightly==9.0.dev1 from the cache") and
               "least recently used" in line for line in lines)
    # Released, 2.0 goes at the next build made; the one just made stays even alone over
    # the cap.
    other.close()
    cache.cap_bytes = 1
    cache.release(DEV[3])
    cache.python(DEV[1])
    assert [e.build for e in cache.entries()] == [DEV[1]]
    cache.close()


def test_prune_keeps_the_newest_and_never_one_in_use_and_says_what_went(tmp_path, index,
                                                                       monkeypatch, capsys):
    cache = _cache(tmp_path, index)
    for n in (1, 2, 3):
        cache.python(DEV[n])
        os.utime(cache.path(DEV[n]) / MARKER_NAME, (n * 1e9, n * 1e9))
    cache.release(DEV[1])
    cache.release(DEV[3])  # 2.0 stays in use
    (tmp_path / "tf-nightly-9.0.dev7" / "bin").mkdir(parents=True)  # half-made, abandoned
    removed = cache.prune(keep=1)
    assert [(e.build, e.complete) for e in removed] == [
        (Build("tf-nightly", "9.0.dev7"), False), (DEV[1], True)]
    assert [e.build for e in cache.entries()] == [DEV[2], DEV[3]]
    monkeypatch.setenv("LINFIT_BUILD_CACHE", str(tmp_path))
    assert main(["builds", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["build", "tensorflow", "commit", "size", "last", "used", "(UTC)"]
    assert out[2].split()[:3] == ["tf-nightly==9.0.dev2", "9.0.dev2", "abc0002def"]
    assert out[3].split()[:3] == ["tf-nightly==9.0.dev3", "9.0.dev3", "abc0003def"]
    assert out[-1].startswith("2 builds, ") and out[-1].endswith(f"of the cap 20.0 GB, in "
                                                                 f"{tmp_path}")
    assert main(["builds", "prune", "tf-nightly==9.0.dev2", "tf-nightly==9.0.dev3"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("removed tf-nightly==9.0.dev3: ")
    assert captured.err == ("linfit builds: build tf-nightly==9.0.dev2 is in use by a running "
                            "session: kept\n")
    cache.close()
    assert main(["builds", "prune", "--max-gb", "0"]) == 0
    assert capsys.readouterr().out.startswith("removed tf-nightly==9.0.dev2: ")
    assert main(["builds", "prune"]) == 0
    assert capsys.readouterr().out == "nothing to remove\n"
