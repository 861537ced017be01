"""``linfit bisect`` (linfit/commands/bisect.py) end to end over fake builds
(tests/bisect_fake_worker.py): the report, the figure, resuming, exit codes, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bisect_fake_worker import FakeBuilds

import linfit.commands.bisect as command
from linfit.cli import main

COMMIT = "{:05x}c0ffee"
# Short sessions: 8 pairs, the fewest for a 99% interval.
SESSION = ("--min-pairs", "8", "--max-pairs", "8", "--max-seconds", "60")


@pytest.fixture
def builds(tmp_path, monkeypatch):
    """Point the command at fake builds; returns a function that sets them up."""

    def use(count: int, **options: object) -> FakeBuilds:
        fake = FakeBuilds(tmp_path / "python", count, **options)  # type: ignore[arg-type]
        monkeypatch.setattr(command, "build_environments", lambda progress: fake)
        return fake

    return use


def _bisect(fake: FakeBuilds, *args: str) -> int:
    return main(["bisect", "--good", fake.builds[0], "--bad", fake.builds[-1], *SESSION, *args])


def test_the_report_names_the_first_bad_build_its_commits_and_the_link(builds, tmp_path,
                                                                       capsys):
    fake = builds(9, changes="5:1.4")
    state = tmp_path / "state"
    assert _bisect(fake, "--state", str(state)) == 0
    out, err = capsys.readouterr()
    assert f"last good  {fake.builds[4]}  commit {COMMIT.format(4)}" in out
    assert f"first bad  {fake.builds[5]}  commit {COMMIT.format(5)}" in out
    assert (f"https://github.com/tensorflow/tensorflow/compare/{COMMIT.format(4)}..."
            f"{COMMIT.format(5)}") in out
    # The confirming table and every step with its ratios and intervals.
    assert re.search(r"tensorflow-function-CPU:0-n=1000-float32-k=1\s+8\s.*"
                     r"1\.40 \[1\.40, 1\.40\].*slower", out)
    assert "MID/GOOD [99% CI]" in out and "MID/BAD [99% CI]" in out
    steps = [line for line in out.splitlines() if re.match(r"\s+\d+\s+tensorflow-", line)]
    assert len(steps) == 3
    assert re.search(rf"{re.escape(fake.builds[4])}.*1\.00 \[1\.00, 1\.00\]\s+0\.71 "
                     r"\[0\.71, 0\.71\].*good", out)
    assert "found: 1 change(s)" in out
    # Progress, with the steps left.
    assert "steps left: 3" in err and "steps left: 1" in err
    figure = state / command.FIGURE_NAME
    assert f"figure: {figure}" in out
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_builds_whose_workers_report_no_commit_get_no_link(builds, tmp_path, capsys):
    fake = builds(3, changes="1:1.4", settings={"FAKE_BISECT_GIT": "none"})
    assert _bisect(fake, "--state", str(tmp_path / "state")) == 0
    out = capsys.readouterr().out
    assert f"last good  {fake.builds[0]}\n" in out and f"first bad  {fake.builds[1]}\n" in out
    assert "commit" not in out and "github.com" not in out


def test_a_rerun_measures_nothing_and_says_so(builds, tmp_path, capsys):
    fake = builds(5, changes="2:1.4")
    output = tmp_path / "figures"
    args = ("--state", str(tmp_path / "state"), "-o", str(output))
    assert _bisect(fake, *args) == 0
    first = capsys.readouterr().out
    assert _bisect(fake, *args) == 0
    again = capsys.readouterr().out
    assert re.search(r"\((\d+) sessions, \1 measured by this run\)", first)
    assert re.search(r"\(\d+ sessions, 0 measured by this run\)", again)
    # The same steps, from the saved sessions.
    assert first.split("steps:")[1].split("\n\n")[0] == again.split("steps:")[1].split("\n\n")[0]
    assert (output / command.FIGURE_NAME).exists()
    assert not (tmp_path / "state" / command.FIGURE_NAME).exists()


def test_no_change_exits_0(builds, tmp_path, capsys):
    fake = builds(5)
    assert _bisect(fake, "--state", str(tmp_path / "state")) == 0
    out = capsys.readouterr().out
    assert "no change: GOOD and BAD agree within 5% in every selected cell" in out
    assert "1.00 [1.00, 1.00]" in out and "unchanged" in out
    assert "figure:" not in out and "steps:" not in out


def test_an_interrupted_bisect_exits_1_and_resumes(builds, tmp_path, capsys):
    fake = builds(9, changes="5:1.4", interrupt_at=4)
    state = ("--state", str(tmp_path / "state"))
    assert _bisect(fake, *state) == 1
    assert "interrupted: run the same command again to resume" in capsys.readouterr().out
    fake.interrupt_at = None
    assert _bisect(fake, *state) == 0
    out = capsys.readouterr().out
    assert f"first bad  {fake.builds[5]}" in out


def test_ambiguous_beyond_max_changes_exits_1(builds, tmp_path, capsys):
    fake = builds(9, changes="2:1.3,6:1.3")
    assert _bisect(fake, "--state", str(tmp_path / "state"), "--max-changes", "1") == 1
    out = capsys.readouterr().out
    assert "ambiguous" in out and "matches neither end" in out
    assert out.rstrip().splitlines()[-1].startswith("unresolved:")


def test_the_default_state_folder_is_under_results(builds, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fake = builds(3)
    assert _bisect(fake) == 0
    [state] = (tmp_path / "results" / "bisect").iterdir()
    assert state.name.startswith("tf-fake__0.dev00..tf-fake__0.dev02-")
    assert (state / "bisect.json").exists()


def _one_line_exit_2(status: int, capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linfit bisect: error:"), lines
    for needle in needles:
        assert needle in lines[0]


def test_the_same_build_twice_is_bad_input(builds, tmp_path, capsys):
    fake = builds(3)
    status = main(["bisect", "--good", fake.builds[1], "--bad", fake.builds[1],
                   "--state", str(tmp_path / "state")])
    _one_line_exit_2(status, capsys, "--good and --bad are the same build")
    assert not (tmp_path / "state").exists()


def test_min_pairs_above_max_pairs_is_bad_input(builds, tmp_path, capsys):
    fake = builds(3)
    status = main(["bisect", "--good", fake.builds[0], "--bad", fake.builds[2],
                   "--min-pairs", "20", "--max-pairs", "10", "--state", str(tmp_path / "s")])
    _one_line_exit_2(status, capsys, "--min-pairs 20 is above --max-pairs 10")


def test_an_unknown_cell_is_bad_input_after_the_confirming_session(builds, tmp_path, capsys):
    fake = builds(3, changes="1:1.4")
    state = ("--state", str(tmp_path / "state"))
    assert _bisect(fake, *state, "--cell", "nope") == 2
    # Known once the session listed its cells: progress, then the error as the last line.
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("linfit bisect: error: --cell 'nope' is not a cell of the session; "
                       "valid: tensorflow-function-CPU:0-n=1000-float32-k=1, "
                       "tensorflow-xla-CPU:0-n=1000-float32-k=1")
    # The session is saved: the corrected command measures only the steps.
    assert _bisect(fake, *state, "--cell", "tensorflow-xla-CPU:0-n=1000-float32-k=1") == 0
    out = capsys.readouterr().out
    assert "tensorflow-xla-CPU:0-n=1000-float32-k=1: found" in out
    assert "tensorflow-function-CPU:0-n=1000-float32-k=1: found" not in out
    assert re.search(r"\(2 sessions, 1 measured by this run\)", out)


def test_a_state_folder_that_is_a_file_is_bad_input(builds, tmp_path, capsys):
    fake = builds(3)
    (tmp_path / "state").write_text("mine")
    _one_line_exit_2(_bisect(fake, "--state", str(tmp_path / "state")), capsys,
                     "bisect state folder (--state)")
    assert (tmp_path / "state").read_text() == "mine"


def test_a_bad_threshold_is_bad_input(capsys):
    status = main(["bisect", "--good", "a==1", "--bad", "a==2", "--threshold", "5"])
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--threshold" in err


@pytest.fixture
def fake_index(tmp_path, monkeypatch) -> Path:
    """The build cache and the package index of tiny fake builds (tests/builds_fake_index.py):
    tf-nightly 9.0.dev1 to 9.0.dev5, in a cache under tmp_path."""
    from builds_fake_index import isolated_environ, make_index, pip_args

    index = make_index(tmp_path / "index", nightlies=5)
    for name, value in isolated_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LINFIT_BUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LINFIT_BUILD_PIP_ARGS", " ".join(pip_args(index)))
    return index


def test_the_builds_between_come_from_the_index_in_order(fake_index):
    environments = command.TensorFlowBuilds(lambda line: None)
    dev = [f"tf-nightly==9.0.dev{n}" for n in range(1, 6)]
    assert environments.builds_between(dev[0], dev[4]) == dev[1:4]
    # GOOD newer than BAD (a bisect of a speed-up's loss): from GOOD's side.
    assert environments.builds_between(dev[3], dev[0]) == [dev[2], dev[1]]
    assert environments.builds_between(dev[1], dev[2]) == []


@pytest.mark.parametrize(("good", "bad", "message"), [
    ("tensorflow==2.20.0", "tf-nightly==9.0.dev3", "are builds of different packages"),
    ("tf-nightly==9.0.dev9", "tf-nightly==9.0.dev3",
     "--good tf-nightly==9.0.dev9 is not a build the package index lists"),
    ("tf-nightly==9.0.dev1", "tf-nightly==9.0.*", "--bad tf-nightly==9.0.* is not a build"),
])
def test_builds_the_index_cannot_bisect_are_bad_input(fake_index, good, bad, message):
    from linfit._errors import LinfitError

    with pytest.raises(LinfitError, match=re.escape(message)):
        command.TensorFlowBuilds(lambda line: None).builds_between(good, bad)


def test_a_side_runs_its_build_from_the_cache_and_a_broken_one_is_unavailable(
        fake_index, monkeypatch, tmp_path):
    from linfit.bisect import Unavailable
    from linfit.builds import parse_build

    lines: list[str] = []
    environments = command.TensorFlowBuilds(lines.append)
    side = environments.side("tf-nightly==9.0.dev2")
    assert side.build == parse_build("tf-nightly==9.0.dev2")
    assert Path(side.python).is_file() and str(tmp_path / "cache") in side.python
    assert any("making build tf-nightly==9.0.dev2" in line for line in lines)
    monkeypatch.setenv("FAKE_TF_BROKEN", "9.0.dev3")
    with pytest.raises(Unavailable, match=re.escape("tf-nightly==9.0.dev3: importing tensorflow")):
        environments.side("tf-nightly==9.0.dev3")


def test_the_bisect_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, linfit.cli; linfit.cli.build_parser(); "
            "import linfit.commands.bisect, linfit.bisect.runner, linfit.bisect.plots; "
            "print(*(name in sys.modules for name in ('tensorflow', 'jax', 'torch')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[1])
    assert done.stdout.split() == ["False", "False", "False"], done.stderr
