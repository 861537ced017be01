"""Side specs of ``linfit ab`` (linfit/ab/spec.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from linfit._errors import LinfitError
from linfit.ab.coordinator import worker_environ
from linfit.ab.spec import (
    MAX_LABEL_CHARS,
    Side,
    aa_sides,
    check_label,
    parse_side,
    parse_sides,
)
from linfit.builds import Build


def test_label_interpreter_and_settings(tmp_path):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    side = parse_side("new: bin/python XLA_FLAGS='--a=1 --b' OMP_NUM_THREADS=1", "A",
                      cwd=tmp_path)
    assert side == Side("new", str(python), (("XLA_FLAGS", "--a=1 --b"),
                                             ("OMP_NUM_THREADS", "1")))
    assert side.env_text == "XLA_FLAGS='--a=1 --b' OMP_NUM_THREADS=1"


def test_defaults_are_this_interpreter_and_no_settings():
    # An empty spec is refused (issue 20, class 4: an unset shell variable ran a session);
    # a label alone is this interpreter as it is.
    with pytest.raises(LinfitError, match="is empty"):
        parse_side("", "B")
    assert parse_side("B:", "B") == Side("B", sys.executable)
    assert parse_side("base:", "A") == Side("base", sys.executable)
    assert parse_side("TF_ENABLE_ONEDNN_OPTS=0", "B") == Side(
        "B", sys.executable, (("TF_ENABLE_ONEDNN_OPTS", "0"),))


@pytest.mark.parametrize(("spec", "side"), [
    ("2.20: tensorflow==2.20.*", Side("2.20", "", (), build=Build("tensorflow", "2.20.*"))),
    ("n1026: tf-nightly==2.23.0.dev20261026", Side("n1026", "", (), build=Build(
        "tf-nightly", "2.23.0.dev20261026"))),
    # A build with settings; a build is not an environment setting although its name is an
    # identifier and it holds "=".
    ("cpu: tensorflow-cpu==2.16.1 TF_ENABLE_ONEDNN_OPTS=0", Side(
        "cpu", "", (("TF_ENABLE_ONEDNN_OPTS", "0"),), build=Build("tensorflow-cpu", "2.16.1"))),
    ("tf_nightly_cpu==2.21.0.dev20260202", Side("B", "", (), build=Build(
        "tf-nightly-cpu", "2.21.0.dev20260202"))),
])
def test_a_side_may_name_a_tensorflow_build(spec, side):
    parsed = parse_side(spec, "B")
    assert parsed == side and parsed.spec == spec
    # Its interpreter comes from the build cache when the session starts.
    assert parsed.python == ""


def test_an_environment_setting_is_still_one():
    # `==` in a setting whose name is not TensorFlow's stays a setting, as before.
    assert parse_side("B: MY_FLAG==x", "B") == Side("B", sys.executable, (("MY_FLAG", "=x"),))


@pytest.mark.parametrize(("spec", "message"), [
    ("B: tensorflow>=2.20", "side 'B: tensorflow>=2.20': build 'tensorflow>=2.20' is not "
                            "PACKAGE==VERSION"),
    ("B: tensorflow==2.x", "build 'tensorflow==2.x': '2.x' is not a version"),
    ("B: tensorflow==2.20.* tf-nightly==2.23.0.dev1", "two interpreters or builds, "
                                                      "'tensorflow==2.20.*' and 'tf-nightly"),
    ("B: tensorflow==2.20.* python3", "two interpreters or builds, 'tensorflow==2.20.*' and "
                                      "'python3'"),
    ("B: python3 tensorflow==2.20.*", "two interpreters or builds, 'python3' and "
                                      "'tensorflow==2.20.*'"),
])
def test_a_build_that_cannot_be_one_names_the_spec(spec, message):
    with pytest.raises(LinfitError) as error:
        parse_side(spec, "B")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_tox_environment_is_an_interpreter(tmp_path):
    python = tmp_path / ".tox" / "tf220" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert parse_side("tox:tf220", "A", cwd=tmp_path).python == str(python)
    assert parse_side("2.20: tox:tf220", "A", cwd=tmp_path).label == "2.20"
    with pytest.raises(LinfitError, match="tox -e tf219 --notest"):
        parse_side("tox:tf219", "A", cwd=tmp_path)


@pytest.mark.parametrize(("spec", "message"), [
    ("B: 1X=2", "not a NAME=VALUE setting"),
    ("B: 'unclosed", "No closing quotation"),
    ("B: python3 python3", "two interpreters or builds"),
    ("B: /no/such/python", "does not exist"),
    ("B: no-such-python-here", "no interpreter"),
])
def test_malformed_specs_name_the_spec(spec, message):
    with pytest.raises(LinfitError, match=message):
        parse_side(spec, "B")


def test_sides_need_two_and_distinct_labels():
    with pytest.raises(LinfitError, match="two sides or more"):
        parse_sides(["A:"])
    with pytest.raises(LinfitError, match="used twice"):
        parse_sides(["x:", "x: OMP_NUM_THREADS=1"])
    assert [s.label for s in parse_sides(["X=1", "X=2", "X=3"])] == ["A", "B", "C"]
    with pytest.raises(LinfitError, match="is empty"):
        parse_sides(["A:", "  "])


@pytest.mark.parametrize("label", ["Ω", "bad label", "x" * (MAX_LABEL_CHARS + 1),
                                   "a" * 100_000, "-lead", ".lead", "a*"])
def test_a_label_outside_the_rule_is_refused_not_taken_for_an_interpreter(label):
    with pytest.raises(LinfitError, match="is not a label: give 1 to 40 ASCII") as caught:
        parse_side(f"{label}: OMP_NUM_THREADS=1", "B")
    # One short line, also for a label of 100,000 characters.
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400
    with pytest.raises(LinfitError, match="is not a label"):
        check_label(label)


@pytest.mark.parametrize("label", ["A", "tf-2.21", "x" * MAX_LABEL_CHARS, "gcc+O3", "v_1"])
def test_labels_inside_the_rule(label):
    assert parse_side(f"{label}: OMP_NUM_THREADS=1", "B").label == check_label(label) == label


def test_what_is_not_a_label_before_a_colon_stays_a_setting_or_interpreter(tmp_path):
    assert parse_side("X=1:2", "B").env == (("X", "1:2"),)
    python = tmp_path / "py:thon"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert parse_side(f"{python}", "B", cwd=tmp_path).python == str(python)


def test_aa_is_this_environment_twice():
    first, second = aa_sides()
    assert first.python == second.python == sys.executable
    assert (first.label, second.label) == ("A", "A2") and first.env == second.env == ()


def test_workers_run_this_linfit_source_with_the_side_settings():
    side = Side("B", sys.executable, (("PYTHONPATH", "tests"), ("XLA_FLAGS", "--x")))
    environ = worker_environ(side, {"PATH": "/bin", "XLA_FLAGS": "--base"})
    source = str(Path(__file__).resolve().parents[1])
    assert environ["PYTHONPATH"].split(":") == [source, "tests"]
    assert environ["XLA_FLAGS"] == "--x" and environ["PATH"] == "/bin"
    assert environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
