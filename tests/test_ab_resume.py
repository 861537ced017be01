"""Continuing an A/B session (linfit/ab/resume.py, issue 22) with fake workers
(tests/ab_fake_worker.py): it appends to the same file, continues the seed's balanced order,
and refuses a side whose environment changed."""

from __future__ import annotations

import pytest
from test_ab_coordinator import _config, _fake_argv, _quiet, _sides

from linfit._errors import LinfitError
from linfit.ab.coordinator import run_session
from linfit.ab.resume import read_resume, resumed_config
from linfit.results.pairs import PARTIAL_SUFFIX, PairsWriter, read_pairs

# Every cell's bursts spread widely, and at alpha 1e-6 no interval exists within 12 pairs:
# no cell is decided, whatever its bursts (the order of a session is then known).
NOISY = {"FAKE_AB_NOISE": "v0:1,v1:1,v2:1"}
ALPHA = 1e-6
FAKE = {"worker_argv": _fake_argv, "target_burst_seconds": 0.005, "hello_timeout": 20.0,
        "build_timeout": 20.0, "burst_timeout": 3.0}


def _session(tmp_path, sides=None):
    config = _config(tmp_path, sides or _sides(NOISY, NOISY), min_pairs=6, max_pairs=12,
                     seed=7, alpha=ALPHA)
    result = run_session(config, _quiet)
    assert result.failures == [] and result.path is not None
    return result


def _cut(path, rounds, target):
    """The session's file as if its clock had run out after ``rounds`` rounds."""
    lines = path.read_text().splitlines(keepends=True)
    frame = read_pairs(path)
    bursts = rounds * frame["variant"].nunique() * 2
    target.write_text("".join(lines[:1 + bursts]))
    return target


def _order(frame):
    """The measurement order: cell and side of each burst, by sequence."""
    rows = frame.sort_values("sequence")
    return list(zip(rows["variant"], rows["round"], rows["side_index"], strict=True))


def test_a_resumed_session_appends_and_continues_the_seeds_order(tmp_path):
    """Six rounds then a resume draw what one session of twelve rounds draws: the cell
    order and each cell's side order go on from the seed, they do not start again."""
    whole_path = _session(tmp_path / "whole").path
    whole = read_pairs(whole_path)
    assert set(whole["round"]) == set(range(12))
    short = _cut(whole_path, 6, tmp_path / "short-ab.csv")
    before = short.read_bytes()
    state = read_resume(short)
    assert state.next_round == 6 and state.part == 1 and len(state.undecided) == 3
    result = run_session(resumed_config(state, 60.0, **FAKE), _quiet)
    assert result.failures == [] and result.path == short
    # Appended: the file as it was, then the new rows; one file, no partial left.
    after = short.read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))
    frame = read_pairs(short)
    assert set(frame["session_id"]) == set(whole["session_id"])
    assert set(frame["part"]) == {0, 1}
    assert sorted(frame["sequence"]) == list(range(len(frame)))
    assert set(frame["round"]) == set(range(12))
    # The same order as the one long session, round 6 onwards.
    assert _order(frame) == _order(whole)
    for _, rows in frame.groupby("variant"):
        firsts = rows[rows["order_position"] == 0]
        assert (firsts["side_index"] == 0).sum() == (firsts["side_index"] == 1).sum() == 6


def test_a_session_cut_mid_pair_resumes_keeping_its_pairs_balanced(tmp_path):
    """Ctrl-C at A's 26th burst may leave a torn pair: the resumed cell skips that round on
    the side that has it and goes on; its complete pairs stay balanced AB against BA. (The
    setting is the side's, so the resumed worker has it too: it measures fewer bursts.)"""
    result = _session(tmp_path, sides=_sides({**NOISY, "FAKE_AB_INTERRUPT_AFTER": "25"},
                                              NOISY))
    assert result.interrupted
    counts = read_pairs(result.path).groupby(["variant", "side_index"]).size().unstack()
    assert (counts[0] != counts[1]).any()  # a torn pair: B measured, A interrupted
    state = read_resume(result.path)
    resumed = run_session(resumed_config(state, 60.0, **FAKE), _quiet)
    assert resumed.failures == [] and not resumed.interrupted
    frame = read_pairs(result.path)
    for _, rows in frame.groupby("variant"):
        by_round = rows.pivot(index="round", columns="side_index", values="order_position")
        complete = by_round.dropna()
        assert len(complete) >= 11
        a_first = int((complete[0] < complete[1]).sum())
        assert abs(a_first - (len(complete) - a_first)) <= len(complete) % 2


def test_a_decided_session_has_nothing_to_resume(tmp_path):
    config = _config(tmp_path, _sides(), min_pairs=6, max_pairs=6)
    state = read_resume(run_session(config, _quiet).path)
    assert state.undecided == ()


@pytest.mark.parametrize(("setting", "value", "what"), [
    ("FAKE_AB_PYTHON_VERSION", "3.12.1", "Python version is '3.12.1' here, '3.11.0'"),
    ("FAKE_AB_BACKEND_VERSION", "2", "framework version for fake-v"),
])
def test_a_changed_environment_is_refused_in_one_line_leaving_the_file(tmp_path, monkeypatch,
                                                                       setting, value, what):
    state = read_resume(_cut(_session(tmp_path).path, 6, tmp_path / "cut-ab.csv"))
    before = state.path.read_bytes()
    monkeypatch.setenv(setting, value)
    with pytest.raises(LinfitError) as error:
        run_session(resumed_config(state, 60.0, **FAKE), _quiet)
    message = str(error.value)
    assert what in message and "only an unchanged environment may continue" in message
    assert "\n" not in message and message.startswith(str(state.path))
    assert state.path.read_bytes() == before
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))


def test_a_file_being_resumed_is_not_resumed_twice(tmp_path):
    state = read_resume(_cut(_session(tmp_path).path, 6, tmp_path / "cut-ab.csv"))
    (tmp_path / f"cut-ab.csv{PARTIAL_SUFFIX}").write_text("another resume\n")
    with pytest.raises(LinfitError, match=r"cut-ab\.csv\.partial exists: a session is "
                                          "resuming"):
        run_session(resumed_config(state, 60.0, **FAKE), _quiet)
    assert (tmp_path / f"cut-ab.csv{PARTIAL_SUFFIX}").read_text() == "another resume\n"


def test_files_that_cannot_be_resumed_are_refused(tmp_path):
    writer = PairsWriter(tmp_path / "old-ab.csv")
    for side in (0, 1):
        writer.append({"session_id": "s", "backend": "fake", "device": "CPU:0",
                       "variant": "v0", "n_examples": 1000, "dtype": "float32",
                       "steps_per_call": 1, "side_index": side, "side_label": "AB"[side],
                       "round": 0, "order_position": side, "start_unix_ns": side,
                       "calls_per_sample": 1, "status": "ok", "call_ns": [1000]})
    with pytest.raises(LinfitError, match="does not record what its session needs"):
        read_resume(writer.finish())
    partial = tmp_path / f"x-ab.csv{PARTIAL_SUFFIX}"
    with pytest.raises(LinfitError, match="the partial file of a session that was killed"):
        read_resume(partial)
