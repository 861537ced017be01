"""The bisect (linfit/bisect/runner.py) over fake builds: workers whose step time depends on
the build's index (tests/bisect_fake_worker.py), no framework imported."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from bisect_fake_worker import FakeBuilds
from test_hlo import FUSION, SPLIT

from linfit._errors import LinfitError
from linfit.ab.coordinator import SessionConfig
from linfit.bisect import (
    FOUND,
    INTERRUPTED,
    NO_CHANGE,
    UNRESOLVED,
    BisectConfig,
    BisectResult,
    default_state_dir,
    run_bisect,
)
from linfit.bisect.state import STATE_FILE

# The fake's commit of build INDEX (its GIT_VERSION ends in -g<INDEX as 5 hex>c0ffee).
COMMIT = "{:05x}c0ffee"
CELL_FUNCTION = "tensorflow-function-CPU:0-n=1000-float32-k=1"


def _session(**overrides: object) -> SessionConfig:
    # Short sessions: 8 pairs (the fewest for a 99% interval) to 16, bursts of ~5 ms.
    settings: dict[str, object] = dict(sides=(), values={}, environ={}, min_pairs=8,
                                       max_pairs=16, max_seconds=60.0,
                                       target_burst_seconds=0.005, hello_timeout=30.0,
                                       build_timeout=30.0, burst_timeout=10.0)
    settings.update(overrides)
    return SessionConfig(**settings)  # type: ignore[arg-type]


def _bisect(tmp_path: Path, fake: FakeBuilds, **overrides: object) -> BisectResult:
    session = overrides.pop("session", _session())
    config = BisectConfig(good=fake.builds[0], bad=fake.builds[-1], session=session,
                          state_dir=tmp_path / "state", **overrides)  # type: ignore[arg-type]
    return run_bisect(config, fake, lambda line: None)


def _pairs_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "pairs").glob("*.csv"))


def test_it_finds_the_planted_build_in_few_sessions(tmp_path):
    count = 17
    fake = FakeBuilds(tmp_path, count, changes="11:1.3")
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    [change] = result.changes
    assert (change.last_good, change.first_bad) == (fake.builds[10], fake.builds[11])
    assert change.last_good_commit == COMMIT.format(10)
    assert change.first_bad_commit == COMMIT.format(11)
    assert change.compare_url == ("https://github.com/tensorflow/tensorflow/compare/"
                                  f"{COMMIT.format(10)}...{COMMIT.format(11)}")
    assert change.ratio.ratio == pytest.approx(1.3, rel=0.01)
    # The confirming session and one per step: at most ceil(log2 N) + 2 sessions.
    assert result.sessions == result.measured == len(_pairs_files(tmp_path))
    assert result.sessions <= math.ceil(math.log2(count)) + 2
    # Each step's MID is the middle of the range left.
    assert [step.mid for step in result.steps][:2] == [fake.builds[8], fake.builds[12]]
    assert all(step.outcome in ("good", "bad") for step in result.steps)
    # Both cells changed alike: one change, bisected on one cell, narrowed to it alone.
    assert result.confirm is not None and list(result.confirm.table["verdict"]) == ["slower"] * 2
    assert set(result.step_times["cell"]) == {change.cell}
    assert set(result.step_times["build"]) == {fake.builds[0], fake.builds[-1],
                                               *(step.mid for step in result.steps)}


def test_the_hlo_of_the_last_good_and_first_bad_build_is_diffed(tmp_path):
    # Builds before the change compile to one fused kernel, from it on to two
    # (tests/test_hlo.py's FUSION and SPLIT): the last step's session saves both and a diff.
    (tmp_path / "before.hlo").write_text(FUSION)
    (tmp_path / "after.hlo").write_text(SPLIT)
    fake = FakeBuilds(tmp_path, 9, changes="5:1.3", settings={
        "FAKE_BISECT_HLO": f"{tmp_path / 'before.hlo'},{tmp_path / 'after.hlo'}"})
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    [change] = result.changes
    assert (change.last_good, change.first_bad) == (fake.builds[4], fake.builds[5])
    assert change.hlo_diff is not None
    # The last step's MID (5, bad) is its session's base, against GOOD (4).
    assert change.hlo_diff.name == ("tensorflow-function-CPU_0-n_1000-float32-k_1."
                                    "0.dev05-vs-0.dev04.diff.txt")
    diff = change.hlo_diff.read_text().splitlines()
    assert diff[0] == "HLO of 0.dev05 (A) and 0.dev04 (B)"
    assert "  -1  multiply  [outside loops]  (1 -> 0)" in diff
    texts = {path.name: path.read_text() for path in change.hlo_diff.parent.glob("*.hlo.txt")}
    assert sorted(texts.values()) == sorted([FUSION, SPLIT])


def test_a_build_that_does_not_install_is_skipped_and_named(tmp_path):
    # The middle build (4 of 0..8) does not install: its neighbour is tested instead.
    fake = FakeBuilds(tmp_path, 9, changes="4:1.3", broken={4})
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    [change] = result.changes
    # 4 could not be measured: the first bad build is 4 or 5, and the report says so.
    assert (change.last_good, change.first_bad) == (fake.builds[3], fake.builds[5])
    assert change.untested == (fake.builds[4],)
    assert "skipped" in change.note
    assert [build for build, _ in result.skipped] == [fake.builds[4]]
    assert "does not install" in result.skipped[0][1]
    skipped_steps = [step for step in result.steps if step.outcome == "skipped"]
    assert [step.mid for step in skipped_steps] == [fake.builds[4]]
    assert fake.builds[4] not in set(result.step_times["build"])


def test_a_build_whose_worker_cannot_start_is_skipped(tmp_path):
    fake = FakeBuilds(tmp_path, 9, changes="6:1.3", per_build={4: {"FAKE_BISECT_HELLO": "exit"}})
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    assert result.changes[0].first_bad == fake.builds[6]
    [(build, why)] = result.skipped
    assert build == fake.builds[4] and "cannot run linfit's worker" in why


def test_a_build_whose_worker_crashes_is_skipped(tmp_path):
    fake = FakeBuilds(tmp_path, 9, changes="6:1.3",
                      per_build={4: {"FAKE_BISECT_CRASH_AFTER": "3"}})
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    assert (result.changes[0].last_good, result.changes[0].first_bad) == (fake.builds[5],
                                                                          fake.builds[6])
    [(build, why)] = result.skipped
    assert build == fake.builds[4] and "exited with status 3" in why


def test_a_crash_of_an_end_stops_and_a_rerun_retries(tmp_path):
    # GOOD's worker crashes in the confirming session: nothing can be skipped, so the bisect
    # stops (its pairs saved); the rerun counts them and measures one more session.
    broken = FakeBuilds(tmp_path, 5, changes="2:1.3",
                        per_build={0: {"FAKE_BISECT_CRASH_AFTER": "3"}})
    stopped = _bisect(tmp_path, broken)
    assert stopped.status == UNRESOLVED and stopped.sessions == 1
    assert "side 0.dev00" in stopped.message and "exited with status 3" in stopped.message
    assert "run the same command again" in stopped.message
    resumed = _bisect(tmp_path, FakeBuilds(tmp_path, 5, changes="2:1.3"))
    assert resumed.status == FOUND, resumed.message
    assert resumed.changes[0].first_bad == broken.builds[2]
    assert resumed.changes[0].ratio.pairs > 8  # the crashed session's pairs count too


def test_it_resumes_after_an_interrupt_without_measuring_again(tmp_path):
    log = tmp_path / "hellos.log"
    settings = {"FAKE_BISECT_LOG": str(log)}
    # side() calls: GOOD, BAD, then one MID a step: the 4th call is the second step's MID,
    # so Ctrl-C comes after step 1 was saved.
    first = FakeBuilds(tmp_path, 9, changes="3:1.3", settings=settings, interrupt_at=4)
    stopped = _bisect(tmp_path, first)
    assert stopped.status == INTERRUPTED and "run the same command again" in stopped.message
    assert stopped.measured == stopped.sessions == 2 and len(stopped.steps) == 1
    hellos_before = log.read_text().splitlines()

    again = FakeBuilds(tmp_path, 9, changes="3:1.3", settings=settings)
    resumed = _bisect(tmp_path, again)
    assert resumed.status == FOUND, resumed.message
    assert (resumed.changes[0].last_good, resumed.changes[0].first_bad) == (
        again.builds[2], again.builds[3])
    # Nothing measured twice: the saved sessions were replayed, and the rerun measured only
    # the steps after them: one session each, as an uninterrupted bisect.
    assert resumed.steps[0] == stopped.steps[0]
    assert resumed.sessions == stopped.sessions + resumed.measured == 1 + len(resumed.steps)
    keys = [record["key"] for record in json.loads(
        (tmp_path / "state" / STATE_FILE).read_text())["sessions"]]
    assert len(keys) == len(set(keys)) == len(_pairs_files(tmp_path)) == resumed.sessions
    hellos_after = log.read_text().splitlines()[len(hellos_before):]
    assert len(hellos_after) == 3 * resumed.measured  # three sides a step, no confirm again
    # The confirming session is not run again: BAD, needed only there, is not prepared.
    assert first.builds[8] in first.side_calls and again.builds[8] not in again.side_calls
    # A third run measures nothing at all.
    assert _bisect(tmp_path, FakeBuilds(tmp_path, 9, changes="3:1.3")).measured == 0


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_inside_a_session_keeps_its_pairs_for_the_rerun(tmp_path, signal_name):
    # The first step's MID (4) sends Ctrl-C (or SIGTERM) after 5 of its bursts.
    first = FakeBuilds(tmp_path, 9, changes="3:1.3",
                       per_build={4: {"FAKE_BISECT_INTERRUPT_AFTER": "5",
                                      "FAKE_BISECT_SIGNAL": signal_name}})
    stopped = _bisect(tmp_path, first)
    assert stopped.status == INTERRUPTED
    state = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert [record["interrupted"] for record in state["sessions"]] == [False, True]
    # Every saved session's pairs file is whole (renamed from .partial), nothing half-made.
    assert len(_pairs_files(tmp_path)) == 2
    assert not [path for path in (tmp_path / "state").rglob("*") if path.name.endswith(
        (".partial", ".tmp"))]
    resumed = _bisect(tmp_path, FakeBuilds(tmp_path, 9, changes="3:1.3"))
    assert resumed.status == FOUND, resumed.message
    # The interrupted session's pairs count in step 1, which an extension completed: its
    # 8 pairs and those measured before Ctrl-C.
    step = resumed.steps[0]
    assert step.sessions == 2 and step.outcome == "bad" and step.mid_vs_good.pairs > 8
    assert resumed.measured == resumed.sessions - 2
    assert resumed.changes[0].first_bad == first.builds[3]


def test_no_change_when_the_endpoints_agree(tmp_path):
    fake = FakeBuilds(tmp_path, 9, changes="")
    result = _bisect(tmp_path, fake)
    assert result.status == NO_CHANGE
    assert result.sessions == 1 and not result.steps and not result.changes
    assert result.confirm is not None
    assert set(result.confirm.table["verdict"]) == {"unchanged"}
    assert result.confirm.table["ratio"].tolist() == pytest.approx([1.0, 1.0])


def test_two_planted_changes_are_both_found(tmp_path):
    fake = FakeBuilds(tmp_path, 9, changes="2:1.3,6:1.3")
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    found = sorted((change.last_good, change.first_bad) for change in result.changes)
    assert found == [(fake.builds[1], fake.builds[2]), (fake.builds[5], fake.builds[6])]
    # The first MID (4) matched neither end: ambiguous after one more session, then split.
    assert result.steps[0].mid == fake.builds[4]
    assert result.steps[0].outcome == "ambiguous" and result.steps[0].sessions == 2
    ratios = sorted(change.ratio.ratio for change in result.changes)
    assert ratios == pytest.approx([1.3, 1.3], rel=0.01)


def test_two_changes_beyond_max_changes_are_reported_as_ambiguous(tmp_path):
    fake = FakeBuilds(tmp_path, 9, changes="2:1.3,6:1.3")
    result = _bisect(tmp_path, fake, max_changes=1)
    assert result.status == UNRESOLVED
    [change] = result.changes
    assert change.status == "ambiguous" and fake.builds[4] in change.note
    assert (change.last_good, change.first_bad) == (fake.builds[0], fake.builds[8])


def test_distinct_changes_in_two_cells_are_bisected_each(tmp_path):
    # function slows by 1.3 at build 3, xla by 1.8 at build 6: intervals apart, two changes.
    fake = FakeBuilds(tmp_path, 9, changes="3:1.3:function,6:1.8:xla")
    result = _bisect(tmp_path, fake)
    assert result.status == FOUND, result.message
    by_cell = {change.cell: (change.last_good, change.first_bad) for change in result.changes}
    assert by_cell == {CELL_FUNCTION: (fake.builds[2], fake.builds[3]),
                       "tensorflow-xla-CPU:0-n=1000-float32-k=1": (fake.builds[5], fake.builds[6])}
    # The larger change first.
    assert result.changes[0].cell.startswith("tensorflow-xla")


def test_cell_bisects_that_cells_change_only(tmp_path):
    fake = FakeBuilds(tmp_path, 9, changes="3:1.3:function,6:1.8:xla")
    result = _bisect(tmp_path, fake, cell=CELL_FUNCTION)
    assert result.status == FOUND, result.message
    assert [(c.cell, c.first_bad) for c in result.changes] == [(CELL_FUNCTION, fake.builds[3])]
    assert list(result.confirm.table["verdict"]) == ["slower", "slower"]


def test_a_cell_that_is_not_measured_is_bad_input(tmp_path):
    fake = FakeBuilds(tmp_path, 5, changes="2:1.3")
    with pytest.raises(LinfitError, match="--cell 'tf-xla' is not a cell of the session; "
                                          f"valid: {CELL_FUNCTION}"):
        _bisect(tmp_path, fake, cell="tf-xla")


def test_an_undecided_step_gets_more_pairs_before_it_is_decided(tmp_path):
    # Sessions of 4 pairs, too few for a 99% interval (8): every step, and the confirming
    # session, is undecided after its first session, and decided on the pooled pairs of two.
    fake = FakeBuilds(tmp_path, 5, changes="2:1.3")
    result = _bisect(tmp_path, fake, session=_session(min_pairs=4, max_pairs=4))
    assert result.status == FOUND, result.message
    assert result.changes[0].first_bad == fake.builds[2]
    assert result.changes[0].ratio.pairs == 8
    assert [step.sessions for step in result.steps] == [2, 2]
    for step in result.steps:
        assert step.mid_vs_good.pairs == step.mid_vs_bad.pairs == 8
    assert result.sessions == 2 + 2 * len(result.steps)


def test_no_step_is_decided_on_an_mde_above_the_change(tmp_path):
    # Noisy calls and sessions of 8 pairs: steps are extended until their intervals clear
    # the band's edges; none is decided on pairs whose MDE exceeds the change.
    fake = FakeBuilds(tmp_path, 5, changes="2:1.3", settings={"FAKE_BISECT_NOISE": "0.1"})
    result = _bisect(tmp_path, fake, session=_session(min_pairs=8, max_pairs=8),
                     max_extensions=4)
    assert result.status == FOUND, result.message
    assert result.changes[0].first_bad == fake.builds[2]
    change = abs(math.log(result.changes[0].ratio.ratio))
    for step in result.steps:
        assert step.outcome in ("good", "bad")
        # Decided on every pair of its sessions.
        for ratio in (step.mid_vs_good, step.mid_vs_bad):
            assert ratio.pairs == 8 * step.sessions
            assert math.log1p(ratio.mde) <= change


def test_an_end_that_does_not_install_is_bad_input(tmp_path):
    fake = FakeBuilds(tmp_path, 5, changes="2:1.3", broken={0})
    with pytest.raises(LinfitError, match="does not install"):
        _bisect(tmp_path, fake)


def test_the_same_build_twice_is_bad_input(tmp_path):
    fake = FakeBuilds(tmp_path, 3)
    config = BisectConfig(good=fake.builds[1], bad=fake.builds[1], session=_session(),
                          state_dir=tmp_path / "state")
    with pytest.raises(LinfitError, match="the same build"):
        run_bisect(config, fake, lambda line: None)
    assert not (tmp_path / "state").exists()


def test_a_state_of_other_settings_is_refused_and_kept(tmp_path):
    fake = FakeBuilds(tmp_path, 5, changes="")
    _bisect(tmp_path, fake)
    saved = (tmp_path / "state" / STATE_FILE).read_bytes()
    with pytest.raises(LinfitError, match=r"other settings \(threshold\)"):
        _bisect(tmp_path, fake, session=_session(threshold=0.1))
    assert (tmp_path / "state" / STATE_FILE).read_bytes() == saved


def test_the_default_state_folder_follows_the_settings():
    def config(**values: str) -> BisectConfig:
        return BisectConfig(good="tf-nightly==2.21.0.dev20260202",
                            bad="tf-nightly==2.23.0.dev20261026",
                            session=_session(values=values), state_dir=Path("unused"))

    first = default_state_dir(config(linfit_sizes="1e5"))
    assert first == default_state_dir(config(linfit_sizes="1e5"))
    assert first != default_state_dir(config(linfit_sizes="1e6"))
    assert first.parent == Path("results/bisect")
    assert first.name.startswith("tf-nightly__2.21.0.dev20260202..tf-nightly__2.23.0.dev20261026-")
