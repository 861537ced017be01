"""The A/B coordinator (linfit/ab/coordinator.py) with fake workers that import no
framework (tests/ab_fake_worker.py): balanced order, one burst at a time, failures."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builds_fake_index import isolated_environ, make_index, pip_args

from linfit._errors import LinfitError
from linfit.ab.analysis import analyse, machine_warnings
from linfit.ab.coordinator import (
    SessionCell,
    SessionConfig,
    SideBuild,
    check_config,
    round_orders,
    run_session,
)
from linfit.ab.spec import Side, parse_side
from linfit.builds import BuildCache
from linfit.results import Cell
from linfit.results.pairs import PARTIAL_SUFFIX, read_pairs

FAKE_WORKER = str(Path(__file__).with_name("ab_fake_worker.py"))


def _fake_argv(side: Side) -> list[str]:
    return [sys.executable, FAKE_WORKER]


def _sides(a: dict[str, str] | None = None, b: dict[str, str] | None = None,
           log: Path | None = None) -> tuple[Side, ...]:
    def env(label: str, extra: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
        settings = {"FAKE_AB_LABEL": label, **({"FAKE_AB_LOG": str(log)} if log else {}),
                    **(extra or {})}
        return tuple(settings.items())

    return (Side("A", sys.executable, env("A", a)), Side("B", sys.executable, env("B", b)))


def _config(tmp_path: Path, sides: tuple[Side, ...], **overrides: object) -> SessionConfig:
    settings: dict[str, object] = dict(sides=sides, results_dir=tmp_path, min_pairs=6,
                                       max_pairs=6, max_seconds=60.0,
                                       target_burst_seconds=0.005, worker_argv=_fake_argv,
                                       hello_timeout=20.0, build_timeout=20.0,
                                       burst_timeout=3.0)
    settings.update(overrides)
    return SessionConfig(**settings)  # type: ignore[arg-type]


def _quiet(line: str) -> None:
    pass


def test_orders_are_balanced_for_two_and_for_three_sides():
    for sides in (2, 3):
        orders: list[list[int]] = []
        for pair in range(20):
            [(_, order)] = round_orders(0, pair, [(pair, orders[-1] if orders else [])], sides)
            orders.append(order)
        for a in range(sides):
            for b in range(a + 1, sides):
                first = sum(order.index(a) < order.index(b) for order in orders)
                assert first == 10


def test_slow_calls_get_fewer_calls_per_sample(tmp_path, monkeypatch):
    import linfit.ab.coordinator as coordinator

    # Calls of 2 ms against a longest sample of 5 ms: 2 calls a sample, not 10.
    monkeypatch.setattr(coordinator, "MAX_SAMPLE_SECONDS", 0.005)
    slow = {"FAKE_AB_SECONDS": "0.002"}
    result = run_session(_config(tmp_path, _sides(slow, slow), min_pairs=2, max_pairs=2),
                         _quiet)
    assert result.failures == []
    frame = read_pairs(result.path)
    assert set(frame["calls_per_sample"]) == {2}
    # Fast calls keep their ten, under the real longest sample.
    monkeypatch.undo()
    fast = run_session(_config(tmp_path / "fast", _sides(), min_pairs=2, max_pairs=2), _quiet)
    assert set(read_pairs(fast.path)["calls_per_sample"]) == {coordinator.CALLS_PER_SAMPLE}


def test_a_session_alternates_balanced_pairs_one_burst_at_a_time(tmp_path):
    log = tmp_path / "bursts.log"
    result = run_session(_config(tmp_path, _sides(log=log)), _quiet)
    assert result.failures == [] and not result.interrupted
    assert result.path is not None and result.path.exists()
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))
    frame = read_pairs(result.path)
    assert len(frame) == 3 * 6 * 2
    for _, rows in frame.groupby("variant"):
        assert sorted(rows["round"].unique()) == list(range(6))
        firsts = rows[rows["order_position"] == 0]
        # As many rounds with A first as with B first.
        assert (firsts["side_index"] == 0).sum() == (firsts["side_index"] == 1).sum() == 3
    # One worker measures at a time: no two bursts overlap in time.
    spans = sorted(tuple(map(int, line.split()[:2])) for line in log.read_text().splitlines())
    assert len(spans) == len(frame)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    # 6 pairs: at alpha 0.05 a signed-rank interval exists (at 0.01 it needs 8).
    comparison = analyse(frame, 0.05, alpha=0.05)
    assert set(comparison.table["verdict"]) <= {"unchanged", "noise"}


def test_a_slower_side_under_drift_is_slower_and_adaptive_sampling_stops(tmp_path):
    sides = _sides(a={"FAKE_AB_DRIFT": "2"}, b={"FAKE_AB_DRIFT": "2", "FAKE_AB_FACTOR": "1.2"})
    result = run_session(_config(tmp_path, sides, min_pairs=8, max_pairs=40), _quiet)
    comparison = analyse(read_pairs(result.path), 0.05)
    assert list(comparison.table["verdict"]) == ["slower"] * 3
    # Decided cells stop getting pairs: far fewer than the maximum.
    assert result.decided == 3 and comparison.table["pairs"].max() < 40


def test_decided_cells_stop_and_an_undecided_one_goes_on_to_its_cap(tmp_path):
    """The stopping rule by decision (issue 22): two steady cells are decided (unchanged)
    and stop; a cell whose bursts spread widely stays undecided and gets every pair the cap
    allows; the session ends then, not by its clock. (At alpha 1e-4 the noisy cell is
    decided by chance in one session of ten thousand at most.)"""
    noisy = {"FAKE_AB_NOISE": "v2:1"}
    result = run_session(_config(tmp_path, _sides(noisy, noisy), min_pairs=6, max_pairs=30,
                                 alpha=1e-4), _quiet)
    assert result.failures == [] and not result.budget_reached
    frame = read_pairs(result.path)
    pairs = frame.groupby("variant")["round"].max() + 1
    assert pairs["v2"] == 30
    assert pairs["v0"] < 30 and pairs["v1"] < 30
    assert result.decided == 2
    table = analyse(frame, alpha=1e-4).table.set_index("variant")
    assert list(table.loc[["v0", "v1"], "verdict"]) == ["unchanged", "unchanged"]
    # The undecided cell's interval still spans far beyond the threshold on both sides.
    assert table.loc["v2", "ratio_low"] < 1 / 1.05 and table.loc["v2", "ratio_high"] > 1.05


def test_the_time_cap_ends_a_session_whose_cells_are_undecided(tmp_path):
    """--until-decided's cap: no round starts that the last round's length would carry past
    it, and within a round no pair whose expected length would, however undecided the
    cells: every pair's first burst starts within the cap. (A pair's second burst may start
    after it where the first ran long: these bursts spread by a factor e either way.)"""
    noisy = {"FAKE_AB_NOISE": "v0:1,v1:1,v2:1"}
    config = _config(tmp_path, _sides(noisy, noisy), min_pairs=6, max_pairs=100,
                     max_seconds=3.0, target_burst_seconds=0.05)
    result = run_session(config, _quiet)
    assert result.budget_reached and result.rounds >= 1
    frame = read_pairs(result.path)
    assert frame["round"].max() + 1 < 100
    firsts = frame[frame["order_position"] == 0]
    last_start = firsts["start_unix_ns"].max() - frame["part_start_unix_ns"].iloc[0]
    assert last_start * 1e-9 <= config.max_seconds


def test_a_worker_that_crashes_ends_the_session_and_keeps_every_pair(tmp_path):
    sides = _sides(b={"FAKE_AB_CRASH_AFTER": "7"})
    result = run_session(_config(tmp_path, sides), _quiet)
    assert len(result.failures) == 1
    assert "side B" in result.failures[0] and "exited with status 3" in result.failures[0]
    assert "fake worker: crashing" in result.failures[0]
    frame = read_pairs(result.path)
    assert (frame["side_index"] == 1).sum() == 7
    # The pairs B completed before it crashed are all in the verdicts.
    assert analyse(frame).table["pairs"].sum() == 7


def test_a_worker_that_hangs_times_out_and_is_killed(tmp_path):
    sides = _sides(a={"FAKE_AB_HANG_AFTER": "4"})
    started = time.monotonic()
    result = run_session(_config(tmp_path, sides, burst_timeout=1.0), _quiet)
    assert len(result.failures) == 1 and "did not answer burst" in result.failures[0]
    assert "fake worker: hanging" in result.failures[0]
    assert time.monotonic() - started < 30  # not an hour: the hung worker was killed
    assert (read_pairs(result.path)["side_index"] == 0).sum() == 4


def test_ctrl_c_keeps_the_pairs_already_measured(tmp_path):
    sides = _sides(a={"FAKE_AB_INTERRUPT_AFTER": "5"})
    result = run_session(_config(tmp_path, sides), _quiet)
    assert result.interrupted
    frame = read_pairs(result.path)
    assert (frame["side_index"] == 0).sum() == 5
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))


def test_a_cell_that_fails_its_checks_is_reported_not_dropped(tmp_path):
    sides = _sides(b={"FAKE_AB_FAIL_CELL": "fake-v1-CPU:0-n=1e+03-float32-k=1"})
    result = run_session(_config(tmp_path, sides), _quiet)
    table = analyse(read_pairs(result.path)).table.set_index("variant")
    assert table.loc["v1", "verdict"] == "failed"
    assert "fake convergence failure" in table.loc["v1", "message"]
    assert table.loc["v0", "pairs"] == 6


def test_a_worker_that_cannot_start_is_bad_input_with_its_stderr(tmp_path):
    sides = _sides(b={"FAKE_AB_HELLO": "exit"})
    with pytest.raises(LinfitError, match=r"side B: .* cannot run linfit's worker: "
                                          r"fake worker: cannot import linfit"):
        run_session(_config(tmp_path, sides), _quiet)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("op", ["hello", "plan"])
def test_a_worker_killed_before_measuring_is_a_failed_session_not_bad_input(tmp_path, op):
    """Issue 20: a worker killed during start-up or planning is a crash (exit 1), not bad
    input (exit 2): the session ends with the failure, and nothing is written."""
    result = run_session(_config(tmp_path, _sides(b={f"FAKE_AB_{op.upper()}": "kill"})),
                         _quiet)
    [failure] = result.failures
    assert failure.startswith(f"side B: killed by signal 9 (SIGKILL) during {op}")
    assert f"fake worker: killed during {op}" in failure
    assert result.path is None and not list(tmp_path.iterdir())


def test_a_plan_error_is_bad_input_only_when_the_worker_says_so(tmp_path):
    with pytest.raises(LinfitError, match="side B: cell options: fake plan error"):
        run_session(_config(tmp_path, _sides(b={"FAKE_AB_PLAN": "input"})), _quiet)
    result = run_session(_config(tmp_path, _sides(b={"FAKE_AB_PLAN": "internal"})), _quiet)
    assert result.failures == ["side B: failed cell options: fake plan error"]


def test_sigterm_ends_the_session_keeping_the_pairs_and_killing_the_workers(tmp_path):
    log = tmp_path / "bursts.log"
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "from pathlib import Path\n"
              "from test_ab_coordinator import _config, _sides\n"
              "from linfit.ab.coordinator import run_session\n"
              f"config = _config(Path({str(tmp_path)!r}), _sides(log=Path({str(log)!r})),"
              " min_pairs=10**6, max_pairs=10**6)\n"
              "result = run_session(config, lambda line: print(line, flush=True))\n"
              "print('RESULT', result.interrupted, result.path, flush=True)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("round 3:"):
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    [result] = [line.split() for line in rest.splitlines() if line.startswith("RESULT")]
    assert result[1] == "True"
    assert len(read_pairs(result[2])) >= 3 * 3 * 2
    for pid in {int(line.split()[3]) for line in log.read_text().splitlines()}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_three_sides_each_against_the_first_in_balanced_orders(tmp_path):
    a, b = _sides()
    c = Side("C", sys.executable, (("FAKE_AB_LABEL", "C"), ("FAKE_AB_FACTOR", "1.5")))
    result = run_session(_config(tmp_path, (a, b, c), min_pairs=8, max_pairs=8), _quiet)
    frame = read_pairs(result.path)
    table = analyse(frame, 0.05).table
    assert list(table["new_label"]) == ["B", "C"] * 3
    assert set(table[table["new_label"] == "C"]["verdict"]) == {"slower"}
    for _, rows in frame.groupby("variant"):
        by_round = rows.pivot(index="round", columns="side_index", values="order_position")
        for first in range(3):
            for second in range(first + 1, 3):
                ahead = (by_round[first] < by_round[second]).sum()
                assert ahead == len(by_round) - ahead


def test_a_side_that_names_a_build_runs_in_its_venv_and_the_pairs_record_the_build(tmp_path):
    """Issue 17: the build's venv comes from the cache; a build that does not install is
    left out in one line while two sides are left; the pairs file says each side's build."""
    index = make_index(tmp_path / "index", nightlies=1)
    cache = BuildCache(tmp_path / "cache", pip_args=pip_args(index),
                       environ=isolated_environ())
    a, _ = _sides()
    nightly = parse_side("n1: tf-nightly==9.0.dev1 FAKE_AB_LABEL=n1 "
                         "FAKE_AB_GIT_VERSION=v1.12.1-1-gabc0001def", "B")
    missing = parse_side("gone: tf-nightly==9.9.dev9", "C")
    lines: list[str] = []
    # The fake worker needs the standard library only: it runs in the build's venv.
    result = run_session(_config(tmp_path, (a, nightly, missing), build_cache=cache,
                                 worker_argv=lambda side: [side.python, FAKE_WORKER]),
                         lines.append)
    venv_python = str(cache.path(nightly.build) / "bin" / "python")
    assert result.unavailable == [
        "side gone left out: build tf-nightly==9.9.dev9: pip install failed: ERROR: No matching "
        "distribution found for tf-nightly==9.9.dev9"]
    assert lines[0].startswith("making build tf-nightly==9.0.dev1 (about a minute)")
    assert result.unavailable[0] in lines and not result.failures
    frame = read_pairs(result.path)
    sides = frame.groupby("side_label").first()
    assert list(sides.index) == ["A", "n1"]
    assert sides.loc["n1", "python"] == venv_python and sides.loc["A", "python"] != venv_python
    assert list(sides["build"]) == ["", "tf-nightly==9.0.dev1"]
    assert list(sides["tensorflow_git_version"]) == ["", "v1.12.1-1-gabc0001def"]
    assert list(sides["tensorflow_commit"]) == ["", "abc0001def"]
    # The session released the build: another may evict it now.
    assert cache._using == {}


def test_builds_that_leave_one_side_are_bad_input_before_any_worker(tmp_path):
    index = make_index(tmp_path / "index", nightlies=1)
    cache = BuildCache(tmp_path / "cache", pip_args=pip_args(index),
                       environ=isolated_environ())
    a, _ = _sides()
    with pytest.raises(LinfitError) as error:
        run_session(_config(tmp_path, (a, parse_side("tf-nightly==9.9.dev9", "B")),
                            build_cache=cache, worker_argv=_no_worker), _quiet)
    assert str(error.value) == (
        "side B left out: build tf-nightly==9.9.dev9: pip install failed: ERROR: No matching "
        "distribution found for tf-nightly==9.9.dev9; 1 side(s) left, a session needs two")


def _no_worker(side: Side) -> list[str]:
    raise AssertionError(f"a worker was started for side {side.label}")


def test_a_results_folder_that_cannot_take_the_file_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LinfitError, match="--results"):
        run_session(_config(blocker, _sides()), _quiet)


def test_keras_cells_are_measured_only_when_variants_are_named(tmp_path):
    """Keras' cells take most of a default budget to build: a session without --variants
    leaves them out and says so; naming variants brings them back."""
    lines: list[str] = []
    keras = {"FAKE_AB_KERAS": "1"}
    result = run_session(_config(tmp_path / "default", _sides(keras, keras)),
                         progress=lines.append)
    assert set(read_pairs(result.path).variant) == {"v0", "v1", "v2"}
    assert any(line.startswith("left out 1 Keras cells") for line in lines)
    # A name from linfit's registries (the session checks them); the fake worker plans the
    # same cells whatever is named.
    named = run_session(_config(tmp_path / "named", _sides(keras, keras),
                                values={"linfit_variants": "eager,keras-xla"}), progress=_quiet)
    assert "keras-xla" in set(read_pairs(named.path).variant)


_SAME_SECOND_SCRIPT = """\
import sys; sys.path.insert(0, {tests!r})
from datetime import UTC, datetime
from pathlib import Path
import linfit.ab.coordinator as coordinator
from test_ab_coordinator import _config, _quiet, _sides

class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 4, 2, 0, 0, tzinfo=UTC)

coordinator.datetime = _FrozenClock
result = coordinator.run_session(_config(Path({folder!r}), _sides()), _quiet)
print("RESULT", result.path, result.failures, flush=True)
"""


def test_two_sessions_started_in_the_same_second_finish_with_distinct_files(tmp_path):
    """Issue 20, class 5: the second session took the first's id and died on its .partial
    file. Both run at once here, with the clock frozen to the same second."""
    script = _SAME_SECOND_SCRIPT.format(tests=str(Path(__file__).parent), folder=str(tmp_path))
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
        assert "RESULT" in out and "[]" in out, out + err[-3000:]
    files = sorted(tmp_path.glob("*.csv"))
    assert [path.name for path in files] == ["20261204T020000Z-fakehost-fake-ab-2.csv",
                                             "20261204T020000Z-fakehost-fake-ab.csv"]
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))
    for path in files:
        frame = read_pairs(path)
        # The id in the rows is the file's name: the suffix is the session's own.
        assert set(frame["session_id"]) == {path.stem}
        assert len(frame) == 3 * 6 * 2


def test_a_session_takes_the_next_id_when_its_name_is_taken(tmp_path, monkeypatch):
    import linfit.ab.coordinator as coordinator

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 4, 2, 0, 0, tzinfo=UTC)

    monkeypatch.setattr(coordinator, "datetime", FrozenClock)
    stem = "20261204T020000Z-fakehost-fake-ab"
    # A finished session of that second, and a running one holding -2's partial file.
    (tmp_path / f"{stem}.csv").write_text("taken\n")
    (tmp_path / f"{stem}-2.csv{PARTIAL_SUFFIX}").write_text("running\n")
    result = run_session(_config(tmp_path, _sides(), min_pairs=2, max_pairs=2), _quiet)
    assert result.path == tmp_path / f"{stem}-3.csv"
    assert set(read_pairs(result.path)["session_id"]) == {f"{stem}-3"}
    assert (tmp_path / f"{stem}.csv").read_text() == "taken\n"
    assert (tmp_path / f"{stem}-2.csv{PARTIAL_SUFFIX}").read_text() == "running\n"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"min_pairs": 20, "max_pairs": 10}, "--min-pairs 20 is above --max-pairs 10"),
    ({"min_pairs": 0}, "--min-pairs 0 must be an integer >= 1"),
    ({"min_pairs": 10, "max_pairs": 1001}, "--max-pairs 1001 is above 1000"),
    ({"max_seconds": 0.0}, "--max-seconds 0 must be a finite number > 0"),
    ({"max_seconds": -5.0}, "--max-seconds -5 must be"),
    ({"max_seconds": float("inf")}, "--max-seconds inf must be"),
    ({"threshold": 0.0}, "--threshold 0 must be"),
    ({"threshold": float("nan")}, "--threshold nan must be"),
    ({"alpha": 1.0}, "--alpha 1 must be between 0 and 1"),
    ({"seed": -1}, "--seed -1 must be an integer >= 0"),
    ({"burst_timeout": 0.0}, "burst_timeout 0 must be"),
    ({"values": {"linfit_sizes": ""}}, "--sizes '' names nothing"),
    ({"values": {"linfit_backends": "tensorflow,nosuch"}}, "unknown backend 'nosuch'"),
    ({"values": {"linfit_backends": " , "}}, "names nothing"),
    ({"environ": {"LINFIT_BACKENDS": "nosuch"}}, "unknown backend 'nosuch'"),
    # Issue 20, class 4: an unknown variant reached the workers before it was refused.
    ({"values": {"linfit_variants": "nosuch"}},
     "--variants/LINFIT_VARIANTS: no backend has variant 'nosuch'; valid, alone or as "
     "backend:variant: tensorflow: eager, function, xla"),
    ({"environ": {"LINFIT_VARIANTS": "xla,tensorflow:nosuch"}},
     "no backend has variant 'tensorflow:nosuch'"),
    ({"values": {"linfit_variants": "jax:xla"}}, "no backend has variant 'jax:xla'"),
    ({"values": {"linfit_backends": "jax", "linfit_variants": "xla"}},
     "no backend of --backends jax has variant 'xla'; valid, alone or as backend:variant: "
     "jax: eager, jit, jit-loop, sharded-jit"),
    ({"values": {"linfit_variants": " , "}}, "--variants/LINFIT_VARIANTS ' , ' names nothing"),
])
def test_options_that_cannot_make_sense_stop_before_any_worker_starts(tmp_path, overrides,
                                                                     message):
    log = tmp_path / "bursts.log"
    config = _config(tmp_path / "out", _sides(log=log), **overrides)
    with pytest.raises(LinfitError, match=re.escape(message)):
        check_config(config)
    with pytest.raises(LinfitError, match=re.escape(message)):
        run_session(config, _quiet)
    assert not (tmp_path / "out").exists() and not log.exists()


def test_sides_are_checked_by_the_config_too(tmp_path):
    a, _ = _sides()
    for sides, message in (((a,), "two sides or more"), ((a, a), "'A' is used twice"),
                           ((a, Side("Ω", sys.executable)), "is not a label")):
        with pytest.raises(LinfitError, match=message):
            check_config(_config(tmp_path, sides))


@pytest.mark.parametrize("variants", [
    "eager", "tensorflow:xla,jit", "keras-xla-spe", "mirrored-xla,jax:sharded-jit",
    "torch:cuda-graph", " xla , eager "])
def test_variants_in_the_registries_pass_in_every_form_the_harness_reads(tmp_path,
                                                                          monkeypatch,
                                                                          variants):
    import linfit.ab.coordinator as coordinator

    # Checked against linfit's registries, also where this interpreter has no backend.
    monkeypatch.setattr(coordinator, "available_backends", lambda: [])
    check_config(_config(tmp_path, _sides(), values={"linfit_variants": variants}))
    check_config(_config(tmp_path, _sides(), environ={"LINFIT_VARIANTS": variants}))


def test_cell_options_are_checked_with_the_harness_resolver(tmp_path, monkeypatch):
    import linfit.ab.coordinator as coordinator

    # Where this interpreter has a backend, a bad value is caught here, before the workers.
    monkeypatch.setattr(coordinator, "available_backends", lambda: ["tensorflow"])
    with pytest.raises(LinfitError, match="'lots' is not a data set size"):
        check_config(_config(tmp_path, _sides(), values={"linfit_sizes": "lots"}))
    with pytest.raises(LinfitError, match="LINFIT_DTYPES: unknown 'float7'"):
        check_config(_config(tmp_path, _sides(), environ={"LINFIT_DTYPES": "float7"}))
    # Where it has none (the sides may be other interpreters), the workers check them.
    monkeypatch.setattr(coordinator, "available_backends", lambda: [])
    check_config(_config(tmp_path, _sides(), values={"linfit_sizes": "lots"}))


def test_a_cell_is_a_typed_record_sized_from_its_builds():
    planned = SessionCell.from_plan({"key": "k", "backend": "fake", "device": "CPU:0",
                                     "variant": "v0", "n_examples": 1000, "dtype": "float32",
                                     "steps_per_call": 1, "skip_reason": ""})
    assert planned.cell == Cell("fake", "CPU:0", "v0", 1000, "float32", 1)
    assert planned.worker_key == "k" and planned.builds == ()
    ok = SideBuild.from_reply({"status": "ok", "call_seconds": 0.5, "device_name": "cpu"})
    # 0.5 s a call: 4 calls fill the longest sample (2 s), one sample a burst.
    cell = planned.calibrated([ok, ok], target_burst_seconds=0.06)
    assert (cell.calls_per_sample, cell.samples_per_burst) == (4, 1)
    assert cell.expected_burst_seconds == pytest.approx(2.0)
    assert cell.failed_sides == [] and cell.builds == (ok, ok)
    failed = SideBuild.from_reply({"status": "failed", "message": "placement"})
    assert planned.calibrated([ok, failed], 0.06).failed_sides == [1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.samples_per_burst = 2  # type: ignore[misc]


def test_each_side_s_machine_load_and_peak_memory_reach_the_pairs_file(tmp_path):
    two = {"logical_cores": 2, "physical_cores": 2, "memory_bytes": 24 * 2**30,
           "cpu_affinity": "0-1", "cpu_model": "AMD EPYC", "virtual_machine": "kvm",
           "container": "docker", "keras_version": "3.11.3", "cpu_frequency_mhz": 2596.1,
           "cpu_governor": ""}
    four = {**two, "logical_cores": 4, "physical_cores": 4, "cpu_affinity": "0-3"}
    sides = _sides(a={"FAKE_AB_MACHINE": json.dumps(two), "FAKE_AB_LOAD": "3.5",
                      "FAKE_AB_PEAK_RSS": "1048576"},
                   b={"FAKE_AB_MACHINE": json.dumps(four), "FAKE_AB_LOAD": "1.25"})
    result = run_session(_config(tmp_path, sides, min_pairs=2, max_pairs=2), _quiet)
    assert result.failures == [] and result.path is not None
    frame = read_pairs(result.path)
    a, b = frame[frame["side_index"] == 0], frame[frame["side_index"] == 1]
    for column, value in two.items():
        assert set(a[column]) == {value}, column
    assert set(b["logical_cores"]) == {4} and set(b["cpu_affinity"]) == {"0-3"}
    assert set(a["load_average"]) == {3.5} and set(b["load_average"]) == {1.25}
    assert set(a["peak_rss_bytes"]) == {1048576} and b["peak_rss_bytes"].isna().all()
    assert frame["device_peak_bytes"].isna().all()  # not measured
    assert machine_warnings(frame) == (
        "side A: the load average reached 3.50 with 2 CPU(s) available: threads waited for a "
        "CPU during the run (other work, or more framework threads than CPUs), so its times "
        "may be inflated",
        "the machines of sides A and B differ: logical cores 2 vs 4; physical cores 2 vs 4; "
        "available CPUs 2 vs 4")


def test_a_side_that_records_no_machine_gives_no_machine_warning(tmp_path):
    result = run_session(_config(tmp_path, _sides(), min_pairs=2, max_pairs=2), _quiet)
    frame = read_pairs(result.path)
    assert frame["logical_cores"].isna().all() and set(frame["cpu_affinity"]) == {""}
    assert frame["load_average"].isna().all()
    assert machine_warnings(frame) == ()


def test_restarts_replace_every_worker_and_confirm_each_verdict_in_a_second_part(tmp_path):
    """Step 6 (issue 22): after restart_seconds of measuring, fresh workers take over; the
    rows of each set of workers are a part, and no cell is decided on one part's pairs."""
    log = tmp_path / "bursts.log"
    sides = _sides(b={"FAKE_AB_FACTOR": "1.2"}, log=log)
    result = run_session(_config(tmp_path, sides, min_pairs=8, max_pairs=60,
                                 restart_seconds=0.3), _quiet)
    assert result.failures == [] and result.restarts >= 1 and result.decided == 3
    frame = read_pairs(result.path)
    assert frame["part"].max() == result.restarts
    # Every part is a fresh pair of processes, and every part has its own start.
    pids = [line.split()[3] for line in log.read_text().splitlines()]
    assert len(set(pids)) == 2 * (result.restarts + 1)
    assert frame.groupby("part")["part_start_unix_ns"].nunique().eq(1).all()
    assert frame["part_start_unix_ns"].nunique() == result.restarts + 1
    for _, rows in frame[frame["side_index"] == 0].groupby("variant"):
        per_part = rows["part"].value_counts()
        assert per_part.sum() - per_part.max() >= 8
        assert rows["calls_per_sample"].nunique() == 1
    assert list(analyse(frame).table["verdict"]) == ["slower"] * 3


def test_a_cell_decided_in_one_part_waits_for_the_next(tmp_path):
    """A steady slowdown is decided within the first part's pairs; with a restart long
    due (restart_seconds far beyond the session) it is the wait that brings fresh workers,
    as soon as every cell waits, and the second part confirms it."""
    sides = _sides(b={"FAKE_AB_FACTOR": "1.2"})
    result = run_session(_config(tmp_path, sides, min_pairs=8, max_pairs=60,
                                 restart_seconds=3600.0), _quiet)
    assert result.restarts == 1 and result.decided == 3
    frame = read_pairs(result.path)
    counts = frame[frame["side_index"] == 0].groupby(["variant", "part"]).size()
    assert (counts.xs(0, level="part") >= 8).all() and (counts.xs(1, level="part") >= 8).all()


def test_without_room_for_another_part_one_part_decides(tmp_path, monkeypatch):
    monkeypatch.setattr("linfit.ab.coordinator.RESTART_BUILDS", 1e9)
    result = run_session(_config(tmp_path, _sides(b={"FAKE_AB_FACTOR": "1.2"}), min_pairs=8,
                                 max_pairs=60, restart_seconds=0.01), _quiet)
    assert result.restarts == 0 and result.decided == 3
    assert set(read_pairs(result.path)["part"]) == {0}


def test_never_restarting_decides_on_one_part(tmp_path):
    result = run_session(_config(tmp_path, _sides(b={"FAKE_AB_FACTOR": "1.2"}), min_pairs=8,
                                 max_pairs=60, restart_seconds=0), _quiet)
    assert result.restarts == 0 and result.decided == 3
    assert read_pairs(result.path)["round"].max() + 1 < 60


@pytest.mark.parametrize(("later", "said"), [
    ({"FAKE_AB_LATER_BACKEND_VERSION": "1"},
     "restarted with 1 on fake CPU, where it ran 0 on fake CPU"),
    ({"FAKE_AB_LATER_DIRTY": "1"}, "side B: restarted with another git_dirty")])
def test_a_worker_that_restarts_in_another_environment_ends_the_session(tmp_path, later, said):
    """A restarted worker must run what the first one ran: another framework version, or
    this checkout edited since the session started, ends the session there (exit 1, not bad
    input), its pairs kept."""
    starts = {"FAKE_AB_STARTS": str(tmp_path / "starts"), "FAKE_AB_FACTOR": "1.2", **later}
    result = run_session(_config(tmp_path, _sides(b=starts), min_pairs=8, max_pairs=60,
                                 restart_seconds=0.2), _quiet)
    assert len(result.failures) == 1
    assert said in result.failures[0]
    frame = read_pairs(result.path)
    assert set(frame["part"]) == {0} and len(frame) > 0
