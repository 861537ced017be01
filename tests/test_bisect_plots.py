"""The bisect's figure (linfit/bisect/plots.py), from a result made by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from linfit.bisect import BisectResult, Change, Ratio, Step
from linfit.bisect.plots import draw_bisect_figure

BUILDS = tuple(f"tf-nightly==2.22.0.dev2026050{i}" for i in range(6))
CELL = "tensorflow-xla-loop-CPU:0-n=100000-float32-k=100"


def _result(tmp_path: Path, times: pd.DataFrame) -> BisectResult:
    same, off = Ratio(1.0, 0.99, 1.01, 0.02, 10), Ratio(0.77, 0.76, 0.78, 0.02, 10)
    steps = (Step(1, CELL, BUILDS[0], BUILDS[2], BUILDS[5], "good", same, off, 1, 0.05),
             Step(2, CELL, BUILDS[2], BUILDS[3], BUILDS[5], "skipped", None, None, 0, 0.05,
                  "does not install"),
             Step(3, CELL, BUILDS[2], BUILDS[4], BUILDS[5], "bad", off.inverse(),
                  same, 1, 0.05))
    change = Change(CELL, Ratio(1.3, 1.28, 1.32, 0.02, 10), "found", BUILDS[2], BUILDS[4],
                    "abc", "def", (BUILDS[3],))
    return BisectResult(good=BUILDS[0], bad=BUILDS[5], status="found", message="",
                        builds=BUILDS, confirm=None, changes=(change,), steps=steps,
                        skipped=((BUILDS[3], "does not install"),), sessions=3, measured=3,
                        state_dir=tmp_path, threshold=0.05, alpha=0.01, step_times=times)


def test_the_figure_of_a_bisect(tmp_path):
    rows = [(CELL, BUILDS[p], p, seconds * (1.3 if p >= 4 else 1.0))
            for p in (0, 2, 4, 5) for seconds in (1.0e-3, 1.1e-3, 0.9e-3)]
    times = pd.DataFrame(rows, columns=["cell", "build", "position", "seconds_per_step"])
    path = tmp_path / "figures" / "bisect.png"
    path.parent.mkdir()
    path.write_bytes(b"an older figure")
    assert draw_bisect_figure(_result(tmp_path, times), path) == path
    # Replaced whole, as a PNG; nothing else left in the folder.
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["bisect.png"]


def test_nothing_bisected_draws_nothing(tmp_path):
    empty = pd.DataFrame(columns=["cell", "build", "position", "seconds_per_step"])
    assert draw_bisect_figure(_result(tmp_path, empty), tmp_path / "bisect.png") is None
    assert not (tmp_path / "bisect.png").exists()
