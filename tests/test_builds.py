"""linfit.builds (the build, its commit, the index's builds) and ``linfit builds``: parsing
with no pip at all, then ``available`` on pip's output (faked) and on a local index of tiny
fake builds (tests/builds_fake_index.py). The cache itself: tests/test_builds_cache.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from builds_fake_index import isolated_environ, make_index, pip_args

import linfit.builds._build as build_module
from linfit._errors import LinfitError
from linfit._process import ChildResult, WorkerFailed
from linfit.builds import (
    BUILD_PACKAGES,
    PIP_ARGS_ENV,
    Build,
    BuildCache,
    available,
    git_commit,
    looks_like_build,
    parse_build,
    parse_index_versions,
    parse_size,
)
from linfit.cli import main

# --- a build, written and read -------------------------------------------------------------


@pytest.mark.parametrize(("text", "build"), [
    ("tensorflow==2.20.*", Build("tensorflow", "2.20.*")),
    ("tf-nightly==2.23.0.dev20261026", Build("tf-nightly", "2.23.0.dev20261026")),
    ("tensorflow-cpu==2.16.1", Build("tensorflow-cpu", "2.16.1")),
    ("tf_nightly_cpu == 2.21.0.dev20260202", Build("tf-nightly-cpu", "2.21.0.dev20260202")),
    ("TensorFlow==2.19.0", Build("tensorflow", "2.19.0")),
])
def test_a_build_reads_as_pip_reads_it(text, build):
    assert parse_build(text) == build
    assert parse_build(build.requirement) == build
    assert str(build) == build.requirement == f"{build.package}=={build.version}"


def test_the_requirement_is_package_equals_version():
    assert Build("tf-nightly", "2.23.0.dev20261026").requirement == (
        "tf-nightly==2.23.0.dev20261026")


@pytest.mark.parametrize(("text", "what"), [
    ("torch==2.0", "'torch' is not a TensorFlow package; give one of tensorflow, "
                   "tensorflow-cpu, tf-nightly, tf-nightly-cpu"),
    ("tensorflow>=2.20", "is not PACKAGE==VERSION"),
    ("tensorflow==", "is not PACKAGE==VERSION"),
    ("tensorflow==two", "'two' is not a version"),
    ("tensorflow==2.*.1", "'2.*.1' is not a version"),
    ("tensorflow", "is not PACKAGE==VERSION"),
])
def test_a_build_that_is_not_one_is_one_line(text, what):
    with pytest.raises(LinfitError) as error:
        parse_build(text)
    message = str(error.value)
    assert message.startswith(f"build {text!r}") and what in message and "\n" not in message


@pytest.mark.parametrize(("token", "meant"), [
    ("tensorflow==2.20.*", True), ("tf-nightly==2.23.0.dev20261026", True),
    ("tf_nightly==1", True), ("tensorflow>=2.20", True), ("TF-Nightly-CPU~=2.21", True),
    ("tensorflow", False), ("TF_ENABLE_ONEDNN_OPTS=0", False), ("torch==2.0", False),
    ("XLA_FLAGS=--xla_dump_to=x", False), (".venv/bin/python", False),
])
def test_a_token_is_a_build_when_it_names_a_tensorflow_package_and_a_version(token, meant):
    assert looks_like_build(token) is meant


@pytest.mark.parametrize(("git_version", "commit"), [
    ("v1.12.1-148158-gef696751006", "ef696751006"),  # tf-nightly 2.23.0.dev20261026
    ("v2.21.0-rc1-5-ga481b10260d", "a481b10260d"),  # tensorflow 2.21.0 as built
    ("v2.20.0-rc0-12-g72fbba3d20f", "72fbba3d20f"),
    ("v2.20.0-rc0-12-g72fbba3d20f-dirty", "72fbba3d20f"),
    ("ef696751006", "ef696751006"),  # a bare hash
    ("v2.20.0", ""),  # built at its tag: no hash in it
    ("unknown", ""),
    ("", ""),
    ("v2.20.0-rc0-12-gXYZ", ""),  # not hexadecimal
])
def test_the_commit_is_the_hash_git_describe_put_in_the_git_version(git_version, commit):
    assert git_commit(git_version) == commit


@pytest.mark.parametrize(("text", "size"), [
    ("20G", 20 * 10**9), ("20 GB", 20 * 10**9), ("2.5g", 25 * 10**8), ("500M", 500 * 10**6),
    ("1000000", 10**6), ("3kb", 3000), ("1T", 10**12),
])
def test_a_size_reads_in_decimal_units(text, size):
    assert parse_size(text, "LINFIT_BUILD_CACHE_CAP") == size


@pytest.mark.parametrize("text", ["", "big", "-1G", "20X", "1e9"])
def test_a_size_that_is_not_one_names_where(text):
    with pytest.raises(LinfitError, match=f"^LINFIT_BUILD_CACHE_CAP {text!r} is not a size"):
        parse_size(text, "LINFIT_BUILD_CACHE_CAP")


def test_the_cache_reads_its_folder_cap_and_pip_arguments_from_the_environment(tmp_path):
    cache = BuildCache(environ={"LINFIT_BUILD_CACHE": str(tmp_path / "c"),
                                "LINFIT_BUILD_CACHE_CAP": "3G",
                                PIP_ARGS_ENV: "--index-url 'file:///x y'"})
    assert (cache.root, cache.cap_bytes) == (tmp_path / "c", 3 * 10**9)
    assert cache.pip_args == ("--index-url", "file:///x y")
    default = BuildCache(environ={"HOME": str(tmp_path)})
    assert default.root == tmp_path / ".cache" / "linfit" / "builds"
    assert default.cap_bytes == 20 * 10**9
    with pytest.raises(LinfitError, match="LINFIT_BUILD_CACHE_CAP 'lots' is not a size"):
        BuildCache(environ={"LINFIT_BUILD_CACHE_CAP": "lots"})
    with pytest.raises(LinfitError, match=f"^{PIP_ARGS_ENV} "):
        BuildCache(environ={PIP_ARGS_ENV: "--index-url 'unclosed"})


# --- the index's builds, from pip's output -------------------------------------------------

# What `pip index versions tf-nightly --pre` prints (pip 26), newest first, with a version
# whose order is not the text's (2.9 before 2.10).
PIP_OUTPUT = """\
tf-nightly (2.23.0.dev20261026)
Available versions: 2.23.0.dev20261026, 2.23.0.dev20261025, 2.10.0.dev20220101, \
2.9.0.dev20210101, 2.23.0.dev20260930
"""


def _fake_pip(monkeypatch, stdout: str = PIP_OUTPUT, returncode: int = 0, stderr: str = "",
              seen: list[list[str]] | None = None) -> None:
    def run_child(label, argv, environ, timeout, cwd=None):
        if seen is not None:
            seen.append(list(argv))
        return ChildResult(returncode, stdout, stderr)

    monkeypatch.setattr(build_module, "run_child", run_child)


def test_the_versions_are_read_from_the_available_versions_line():
    assert parse_index_versions(PIP_OUTPUT, "tf-nightly") == [
        "2.23.0.dev20261026", "2.23.0.dev20261025", "2.10.0.dev20220101", "2.9.0.dev20210101",
        "2.23.0.dev20260930"]
    with pytest.raises(LinfitError, match="no 'Available versions:' line"):
        parse_index_versions("tf-nightly (2.23.0)\n", "tf-nightly")


def test_available_builds_come_oldest_first_in_version_order(monkeypatch):
    seen: list[list[str]] = []
    _fake_pip(monkeypatch, seen=seen)
    builds = available("tf-nightly", pip_args=("--index-url", "file:///idx"))
    assert [b.version for b in builds] == ["2.9.0.dev20210101", "2.10.0.dev20220101",
                                           "2.23.0.dev20260930", "2.23.0.dev20261025",
                                           "2.23.0.dev20261026"]
    assert {b.package for b in builds} == {"tf-nightly"}
    # pip's own query, with --pre for a nightly (every version is a development release),
    # and the extra arguments.
    assert seen[0][1:6] == ["-m", "pip", "index", "versions", "tf-nightly"]
    assert "--pre" in seen[0] and seen[0][-2:] == ["--index-url", "file:///idx"]


def test_releases_are_asked_without_pre(monkeypatch):
    seen: list[list[str]] = []
    _fake_pip(monkeypatch, "tensorflow (2.21.0)\nAvailable versions: 2.21.0, 2.20.0\n",
              seen=seen)
    assert available("tensorflow", pip_args=()) == [Build("tensorflow", "2.20.0"),
                                                    Build("tensorflow", "2.21.0")]
    assert "--pre" not in seen[0]


@pytest.mark.parametrize(("between", "and_", "versions"), [
    ("2.10.0.dev20220101", "2.23.0.dev20261025",
     ["2.10.0.dev20220101", "2.23.0.dev20260930", "2.23.0.dev20261025"]),
    ("tf-nightly==2.23.0.dev20260930", None,
     ["2.23.0.dev20260930", "2.23.0.dev20261025", "2.23.0.dev20261026"]),
    (None, "2.9.0.dev20210101", ["2.9.0.dev20210101"]),
    ("2.23.0.dev20261027", None, []),
])
def test_the_bounds_are_inclusive(monkeypatch, between, and_, versions):
    _fake_pip(monkeypatch)
    assert [b.version for b in available("tf-nightly", between, and_, pip_args=())] == versions


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"package": "torch"}, "--package 'torch' is not a TensorFlow package"),
    ({"between": "yesterday"}, "--between 'yesterday' is not a version of tf-nightly"),
    ({"and_": "2.x"}, "--and '2.x' is not a version of tf-nightly"),
    ({"between": "2.23", "and_": "2.22"}, "--between 2.23 is after --and 2.22; give the older "
                                          "first"),
])
def test_bad_bounds_or_packages_are_refused_before_pip_runs(monkeypatch, kwargs, what):
    seen: list[list[str]] = []
    _fake_pip(monkeypatch, seen=seen)
    with pytest.raises(LinfitError) as error:
        available(**{"pip_args": (), **kwargs})
    assert what in str(error.value) and not seen


def test_pip_failing_is_its_last_error_line(monkeypatch):
    _fake_pip(monkeypatch, "", 1, "WARNING: Location 'x' is ignored\nERROR: Could not reach "
              "the index\nsome trailing note")
    with pytest.raises(LinfitError) as error:
        available("tf-nightly", pip_args=())
    assert str(error.value) == ("pip index versions tf-nightly failed: ERROR: Could not reach "
                                "the index")
    # pip says "no matching distribution" on stderr with status 0, and prints no versions.
    _fake_pip(monkeypatch, "", 0, "ERROR: No matching distribution found for tf-nightly")
    with pytest.raises(LinfitError, match="No matching distribution found for tf-nightly"):
        available("tf-nightly", pip_args=())


def test_pip_running_past_its_limit_is_one_line(monkeypatch):
    def run_child(label, argv, environ, timeout, cwd=None):
        raise WorkerFailed(label, f"did not finish within {timeout:g} s (killed)", "Looking...")

    monkeypatch.setattr(build_module, "run_child", run_child)
    with pytest.raises(LinfitError, match="did not finish within 120 s"):
        available("tf-nightly", pip_args=())


# --- the same against a local index of fake builds (a real pip) ---------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    return make_index(tmp_path_factory.mktemp("index"), nightlies=3)


def test_available_asks_pip_itself(index):
    builds = available("tf-nightly", "9.0.dev2", pip_args=pip_args(index),
                       environ=isolated_environ())
    assert builds == [Build("tf-nightly", "9.0.dev2"), Build("tf-nightly", "9.0.dev3")]


def test_builds_available_prints_one_build_a_line(index, monkeypatch, capsys):
    for name, value in isolated_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(PIP_ARGS_ENV, " ".join(pip_args(index)))
    assert main(["builds", "available", "--package", "tf-nightly", "--and", "9.0.dev2"]) == 0
    assert capsys.readouterr().out == "tf-nightly==9.0.dev1\ntf-nightly==9.0.dev2\n"
    assert main(["builds", "available", "--package", "tensorflow"]) == 2
    err = capsys.readouterr().err
    # pip's own reason, its last error line (pip exits 1 with --no-index, 0 on an index).
    assert err.startswith("linfit builds: error: pip index versions tensorflow")
    assert err.endswith(": ERROR: No matching distribution found for tensorflow\n")
    assert err.count("\n") == 1


def test_builds_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINFIT_BUILD_CACHE", str(tmp_path))
    assert main(["builds", "prune", "torch==2.0"]) == 2
    assert capsys.readouterr().err == (
        "linfit builds: error: build 'torch==2.0': 'torch' is not a TensorFlow package; give "
        f"one of {', '.join(BUILD_PACKAGES)}\n")
    assert main(["builds", "prune", "tensorflow==2.20.*"]) == 2
    assert capsys.readouterr().err == (
        f"linfit builds: error: build tensorflow==2.20.* is not in the cache {tmp_path}; "
        "`linfit builds list` shows what is\n")
    assert main(["builds", "prune", "--keep", "-1"]) == 2
    assert "--keep: -1 must be an integer >= 0" in capsys.readouterr().err
    assert main(["builds", "available", "--package", "torch"]) == 2
    assert "invalid choice: 'torch'" in capsys.readouterr().err
    assert main(["builds", "list"]) == 0
    assert capsys.readouterr().out == f"no builds in {tmp_path}\n"
