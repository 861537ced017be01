"""The HLO of the cells an A/B session found changed (linfit/ab/hlo_files.py, issue 17):
asked from the workers after the bursts, written beside the pairs file with a diff. Fake
workers (tests/ab_fake_worker.py) import no framework; their HLO is a file's text."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from test_hlo import FUSION, SPLIT

from linfit.ab.coordinator import SessionConfig, SessionResult, run_session
from linfit.ab.hlo_files import HloCapture, hlo_folder, write_hlo_files
from linfit.ab.spec import Side
from linfit.commands.ab import _save_hlo
from linfit.hlo import HloProgram
from linfit.results import Cell
from linfit.results.pairs import read_pairs

FAKE_WORKER = str(Path(__file__).with_name("ab_fake_worker.py"))
CELL = Cell("fake", "CPU:0", "v0", 1000, "float32", 1)
KEY = "fake-v0-CPU:0-n=1e+03-float32-k=1"


def _session(tmp_path: Path, b_factor: str, noise: str = "", **overrides: object
             ) -> SessionResult:
    (tmp_path / "a.hlo").write_text(FUSION)
    (tmp_path / "b.hlo").write_text(SPLIT)

    def side(label: str, hlo: str, factor: str) -> Side:
        return Side(label, sys.executable, (("FAKE_AB_LABEL", label), ("FAKE_AB_CELLS", "2"),
                                            ("FAKE_AB_HLO", str(tmp_path / hlo)),
                                            ("FAKE_AB_FACTOR", factor),
                                            ("FAKE_AB_NOISE", noise)))

    config = SessionConfig(sides=(side("A", "a.hlo", "1"), side("B", "b.hlo", b_factor)),
                           results_dir=tmp_path, min_pairs=10, max_pairs=10, max_seconds=60.0,
                           target_burst_seconds=0.005,
                           worker_argv=lambda side: [sys.executable, FAKE_WORKER],
                           hello_timeout=20.0, build_timeout=20.0, burst_timeout=3.0)
    return run_session(dataclasses.replace(config, **overrides), lambda line: None)


def test_a_changed_cell_gets_both_sides_hlo_and_a_diff_beside_the_pairs_file(tmp_path):
    result = _session(tmp_path, b_factor="1.5")
    assert result.failures == [] and result.path is not None
    assert [(c.worker_key, c.side_label) for c in result.hlo] == [
        ("fake-v0-CPU:0-n=1e+03-float32-k=1", "A"), ("fake-v0-CPU:0-n=1e+03-float32-k=1", "B"),
        ("fake-v1-CPU:0-n=1e+03-float32-k=1", "A"), ("fake-v1-CPU:0-n=1e+03-float32-k=1", "B")]
    assert [c.program.text for c in result.hlo[:2]] == [FUSION, SPLIT]
    notes = _save_hlo(result, result.path)
    folder = hlo_folder(result.path)
    assert notes == [f"optimized HLO of the 2 changed cells and their diffs: {folder}/ (6 files)"]
    name = "fake-v0-CPU_0-n_1e+03-float32-k_1"
    assert (folder / f"{name}.A.hlo.txt").read_text() == FUSION
    assert (folder / f"{name}.B.hlo.txt").read_text() == SPLIT
    diff = (folder / f"{name}.A-vs-B.diff.txt").read_text()
    assert "  +1  multiply  [outside loops]  (0 -> 1)" in diff.splitlines()


def test_an_unchanged_session_asks_for_no_hlo(tmp_path):
    result = _session(tmp_path, b_factor="1")
    assert result.failures == [] and result.hlo == ()
    assert _save_hlo(result, result.path) == []
    assert not hlo_folder(result.path).exists()


def test_a_side_without_hlo_is_named_and_gets_no_diff(tmp_path):
    pairs = tmp_path / "s-ab.csv"
    captures = (HloCapture(CELL, KEY, 0, "A", HloProgram(FUSION)),
                HloCapture(CELL, KEY, 1, "B", None, "RuntimeError: no HLO today"),
                HloCapture(CELL, "other", 0, "A", None),
                HloCapture(CELL, "other", 1, "B", HloProgram(SPLIT)))
    written, problems = write_hlo_files(captures, pairs)
    assert [path.name for path in written] == ["fake-v0-CPU_0-n_1e+03-float32-k_1.A.hlo.txt",
                                               "other.B.hlo.txt"]
    assert problems == [f"{KEY} on side B: no HLO (RuntimeError: no HLO today)"]


def test_hlo_files_that_cannot_be_written_are_a_warning(tmp_path):
    pairs = tmp_path / "s-ab.csv"
    hlo_folder(pairs).write_text("a file where the folder goes")
    result = SessionResult(path=pairs, hlo=(HloCapture(CELL, KEY, 0, "A", HloProgram(FUSION)),))
    [note] = _save_hlo(result, pairs)
    assert note.startswith(f"warning: the HLO files could not be written to {hlo_folder(pairs)}")


def test_a_cell_decided_before_the_last_restart_is_built_again_for_its_hlo(tmp_path):
    """The workers of the last part built only the cells still measured; a changed cell
    decided earlier is built again in them before its HLO is asked (a fake worker, as the
    real one, answers only for a cell it has built). Parts of 0.1 s: v0, steady, is decided
    as soon as a second part confirms it; v1's bursts spread (a lognormal sigma of 0.5
    against a change of log 1.5 = 0.41), so it needs several parts more and is measured in
    parts that v0 no longer is. (With parts of 0.3 s and a sigma of 0.4, a loaded machine
    could decide both in one part, and the test had nothing to check.)"""
    result = _session(tmp_path, b_factor="1.5", noise="v1:0.5", min_pairs=8, max_pairs=400,
                      restart_seconds=0.1, max_seconds=120.0)
    frame = read_pairs(result.path)
    assert frame[frame["variant"] == "v1"]["part"].max() > frame[frame["variant"] == "v0"][
        "part"].max()
    assert result.failures == [] and result.restarts >= 1
    assert len(result.hlo) == 4
    assert all(capture.program is not None and not capture.error for capture in result.hlo)
