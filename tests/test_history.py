"""linfit history (linfit.history, linfit.commands.history): the runs and points read from
results and pairs files, the steps and their paired confirmation, the site (every cell has
its graphs, every link resolves), its atomic write and its refusals."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import background
import numpy as np
import pytest

from linfit.cli import main
from linfit.history import (
    MARKER_FILE,
    History,
    PairedVerdict,
    Point,
    Run,
    build_key,
    collect_history,
    find_steps,
)
from linfit.history.site import cell_slug
from linfit.results import Cell, read_results, write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
TEMPLATE = RESULTS / "cpu-2core-v4" / "20261127T214238Z-vm-b40633feb3.csv"
TF220_221 = RESULTS / "cpu-2core-ab" / "tf220-221"
SLOW10 = RESULTS / "cpu-2core-ab" / "slow10"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(str(values[name]))


def check_site(site: Path) -> dict[str, _Links]:
    """Every page parses; every relative link and image resolves to a file in the site,
    and every #anchor to an id on its page. Returns each page's links."""
    pages = {}
    for page in site.glob("*.html"):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        pages[page.name] = parser
    for name, parser in pages.items():
        for link in parser.links:
            url = urlparse(link)
            assert not url.scheme and not url.netloc, f"{name}: {link} leaves the site"
            target = site / unquote(url.path) if url.path else site / name
            assert target.is_file(), f"{name}: {link} does not resolve"
            if url.fragment:
                assert url.fragment in pages[target.name].ids, f"{name}: no #{url.fragment}"
    return pages


def synthetic_runs(folder: Path, builds: list[str], hosts: tuple[str, ...] = ("a", "b"),
                   slower_from: str = "2.21.0", factor: float = 1.5,
                   cells: tuple[str, ...] = ()) -> None:
    """One results CSV per build and host from the template's first three cells (or those
    named); every cell ``factor`` faster before build ``slower_from``."""
    template = [r for r in read_results(TEMPLATE) if r.ok and (str(r.cell) in cells
                                                              or not cells)][:3]
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    index = 0
    for build in builds:
        for host in hosts:
            index += 1
            when = start + timedelta(hours=index)
            run_id = f"{when:%Y%m%dT%H%M%SZ}-{host}-{index:010x}"
            records = []
            for record in template:
                level = float(np.median(record.per_call_seconds))
                if build_key(build) < build_key(slower_from):
                    level /= factor
                samples = level * np.exp(0.02 * rng.standard_normal(20))
                records.append(dataclasses.replace(record, per_call_seconds=tuple(samples),
                               facts={**record.facts, "run_id": run_id, "host": host,
                                      "timestamp_utc": when.isoformat(),
                                      "backend_version": build}))
            write_results(records, folder / f"{run_id}.csv")


BUILDS = ["2.19.0", "2.19.0", "2.20.0", "2.20.0", "2.21.0", "2.21.0", "2.21.0"]


def test_build_order() -> None:
    ordered = ["0.4.30", "2.9.1", "2.20.0", "2.21.0rc1", "2.21", "2.21.0+cpu",
               "2.22.0.dev20260101", "2.22.0.dev20260102", "2.22.0rc0", "2.22.0"]
    assert sorted(reversed(ordered), key=build_key)[:3] == ordered[:3]
    assert build_key("2.21") == build_key("2.21.0")
    assert build_key("2.21.0rc1") < build_key("2.21.0")
    assert build_key("2.21.0+cpu")[:2] == build_key("2.21.0")[:2]
    assert build_key("2.22.0.dev20260101") < build_key("2.22.0.dev20260102")
    assert build_key("2.22.0.dev20260102") < build_key("2.22.0rc0") < build_key("2.22.0")
    assert build_key("unknown") < build_key("0.1")


def test_steps_of_synthetic_runs_per_machine(tmp_path: Path) -> None:
    synthetic_runs(tmp_path, BUILDS)
    history = collect_history([tmp_path])
    assert len(history.runs) == 14 and len(history.cells()) == 3
    # A machine is its host with its CPU model.
    assert {p.run.host for p in history.points} == {"a (AMD EPYC)", "b (AMD EPYC)"}
    steps = find_steps(history)
    # One step per cell and machine, between 2.20 and 2.21, none confirmed (no A/B session).
    assert len(steps) == 6
    for step in steps:
        assert (step.before.build, step.after.build) == ("2.20.0", "2.21.0")
        assert step.ratio == pytest.approx(1.5, rel=0.05)
        assert step.confirmation is None
        assert step.before.low_seconds <= step.before.median_seconds <= step.before.high_seconds
    dates = [step.after.run.started for step in steps]
    assert dates == sorted(dates, reverse=True)


def test_the_site_of_synthetic_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    synthetic_runs(runs, BUILDS)
    (runs / "notes.csv").write_text("a,b\n1,2\n")
    site = tmp_path / "site"
    assert main(["history", str(runs), "-o", str(site)]) == 0
    pages = check_site(site)
    history = collect_history([runs])
    for cell in history.cells():
        for axis in ("build", "date"):
            assert (site / "svg" / f"{cell_slug(cell)}-{axis}.svg").is_file()
        assert cell_slug(cell) in pages["index.html"].ids
    assert len(list((site / "svg").iterdir())) == 2 * len(history.cells())
    index = (site / "index.html").read_text(encoding="utf-8")
    ratios = re.findall(r'class="slower">(\d\.\d\d)x', index)
    assert len(ratios) == 6 and all(1.45 < float(r) < 1.55 for r in ratios)
    assert "notes.csv" in index  # listed as left out
    assert "by-date.html" in pages["index.html"].links
    assert not re.search(r"<script|https?://", index)  # offline: no script, no network
    marker = json.loads((site / MARKER_FILE).read_text())
    assert marker["runs"] == 14 and marker["steps"] == 6
    assert not list(tmp_path.glob(".site.*"))  # the temporary folder is gone


def test_the_site_is_replaced_only_with_force(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    synthetic_runs(runs, BUILDS[:2], hosts=("a",))
    site = tmp_path / "site"
    assert main(["history", str(runs), "-o", str(site)]) == 0
    first = (site / "index.html").read_text()
    assert main(["history", str(runs), "-o", str(site)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (site / "index.html").read_text() == first
    assert main(["history", str(runs), "-o", str(site), "--force"]) == 0
    assert (site / MARKER_FILE).is_file()
    # A folder linfit did not write is never replaced, with or without --force.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    assert main(["history", str(runs), "-o", str(other), "--force"]) == 2
    assert "not a site" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "keep"
    # An empty folder is fine; the input folder itself is refused.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["history", str(runs), "-o", str(empty)]) == 0
    assert main(["history", str(runs), "-o", str(tmp_path), "--force"]) == 2
    assert "input folder" in capsys.readouterr().err


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: None, "no results CSV or pairs file"),
    (lambda d: (d / "bad.csv").write_text("schema_version,run_id\n9,x\n"), "schema_version"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          make, message: str) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    make(runs)
    assert main(["history", str(runs), "-o", str(tmp_path / "site")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "site").exists()


def test_a_missing_folder_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", str(tmp_path / "nothing"), "-o", str(tmp_path / "s")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_step_confirmed_by_an_ab_session_of_the_same_builds(tmp_path: Path) -> None:
    # Runs of 2.20 and 2.21 on the machine of the committed tf220-221 session, with its
    # xla-loop n=1e6 cell 1.56x slower on 2.21, as that session measured it: the step is
    # shown with the session's paired verdict.
    cell = "tensorflow CPU:0 xla-loop n=1e+06 float32 k=100 closure"
    synthetic_runs(tmp_path, ["2.20.0"] * 3 + ["2.21.0"] * 3, hosts=("vm",), factor=1.56,
                   cells=(cell,))
    history = collect_history([tmp_path, TF220_221])
    steps = [step for step in find_steps(history) if str(step.cell) == cell]
    assert len(steps) == 1
    step = steps[0]
    assert (step.before.build, step.after.build) == ("2.20.0", "2.21.0")
    verdict = step.confirmation
    assert verdict is not None
    assert verdict.session_id == "20261127T203613Z-vm-e51df34ab1-ab"
    assert (verdict.base_build, verdict.new_build, verdict.verdict) == ("2.20.0", "2.21.0",
                                                                         "slower")
    assert verdict.low > 1


def test_tf220_against_221_points_and_verdicts() -> None:
    history = collect_history([TF220_221])
    assert {run.side_label for run in history.runs} == {"2.20", "2.21"}
    builds = {p.build for p in history.points}
    assert builds == {"2.20.0", "2.21.0"}
    slower = {(str(v.cell), v.base_build, v.new_build) for v in history.verdicts
              if v.verdict == "slower"}
    assert ("tensorflow CPU:0 xla-loop n=1e+06 float32 k=100 closure", "2.20.0",
            "2.21.0") in slower


# The site of every committed results and pairs file, and what the test checks it against:
# the slug of each cell, the runs, the A/B sessions and the files left out. Built in a child
# beside the session (tests/background.py): a minute or more on 2 cores, mostly the graphs.
COMMITTED_SITE = textwrap.dedent("""
    import json
    import sys
    from pathlib import Path

    from linfit.history import collect_history, find_steps, write_site
    from linfit.history.site import cell_slug

    results, site = Path(sys.argv[1]), Path(sys.argv[2])
    history = collect_history([results])
    write_site(history, find_steps(history), site, [results])
    print(json.dumps({"cells": [cell_slug(cell) for cell in history.cells()],
                      "runs": len(history.runs),
                      "sessions": len({v.session_id for v in history.verdicts}),
                      "skipped": [path.name for path, _ in history.skipped]}))
""")
# Seconds the site may take: several times its time on a quiet 2-core machine.
COMMITTED_SITE_SECONDS = 600


def _build_committed_site() -> tuple[dict[str, Any], Path]:
    site = background.folder("committed") / "site"
    done = background.run([sys.executable, "-c", COMMITTED_SITE, str(RESULTS), str(site)],
                          timeout=COMMITTED_SITE_SECONDS, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), site


def start_committed_site() -> None:
    background.queue("committed site", _build_committed_site)


@pytest.mark.background.with_args(start_committed_site)
def test_the_site_of_the_committed_results() -> None:
    facts, site = background.result("committed site", start_committed_site)
    pages = check_site(site)
    assert len(facts["cells"]) > 100 and facts["runs"] > 50
    for slug in facts["cells"]:
        assert slug in pages["index.html"].ids
        assert slug in pages["by-date.html"].ids
        for axis in ("build", "date"):
            assert (site / "svg" / f"{slug}-{axis}.svg").is_file()
    assert len(pages["runs.html"].ids) == facts["runs"]
    assert facts["sessions"] == len(pages["sessions.html"].ids)
    # The verdict tables of linfit ab --format csv are not results: listed as left out.
    assert "tf220-221.csv" in facts["skipped"]


def _point(cell: Cell, run: Run, build: str, seconds: float) -> Point:
    return Point(cell, run, build, seconds, seconds * 0.99, seconds * 1.01, 10)


def test_a_step_between_the_two_sides_of_one_session_gets_its_verdict() -> None:
    cell = Cell("tensorflow", "CPU:0", "xla", 1000, "float32", 1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    path = Path("session-ab.csv")

    def run(name: str, hours: float, session: str = "", side: str = "") -> Run:
        kind = "ab-side" if session else "results"
        return Run(name, kind, "vm", start + timedelta(hours=hours), "abc", path, session, side)

    base, new = run("S/base", 2, "S", "base"), run("S/new", 2.01, "S", "new")
    points = [_point(cell, run("r1", 0), "2.21.0", 1e-4), _point(cell, run("r2", 1), "2.21.0",
              1e-4), _point(cell, base, "2.21.0", 1e-4), _point(cell, new, "2.21.0", 1.3e-4),
              _point(cell, run("r3", 3), "2.21.0", 1.3e-4),
              _point(cell, run("r4", 4), "2.21.0", 1.3e-4)]
    verdict = PairedVerdict("S", path, cell, "vm", "base", "new", "2.21.0", "2.21.0", 1.3,
                            1.25, 1.35, "slower")
    other = PairedVerdict("T", path, cell, "vm", "base", "new", "2.21.0", "2.21.0", 1.0, 0.9,
                          1.1, "unchanged")
    history = History(tuple(p.run for p in points), tuple(points), (other, verdict), ())
    steps = find_steps(history)
    assert len(steps) == 1
    assert (steps[0].before.run, steps[0].after.run) == (base, new)
    assert steps[0].confirmation == verdict


def test_a_session_of_the_builds_the_other_way_round_is_turned() -> None:
    cell = Cell("tensorflow", "CPU:0", "xla-loop", 1000, "float32", 100, 1, "closure")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [Run(f"r{i}", "results", "vm", start + timedelta(hours=i), "abc", Path("r.csv"))
            for i in range(4)]
    points = [_point(cell, runs[0], "2.20.0", 1e-4), _point(cell, runs[1], "2.20.0", 1e-4),
              _point(cell, runs[2], "2.21.0", 2e-4), _point(cell, runs[3], "2.21.0", 2e-4)]
    # A session with 2.21 as its base: 2.20 measured 2x faster.
    session = PairedVerdict("S", Path("s.csv"), cell, "vm", "new-tf", "old-tf", "2.21.0",
                            "2.20.0", 0.5, 0.4, 0.625, "faster")
    steps = find_steps(History(tuple(runs), tuple(points), (session,), ()))
    assert len(steps) == 1
    turned = steps[0].confirmation
    assert turned is not None
    assert (turned.base_build, turned.new_build, turned.verdict) == ("2.20.0", "2.21.0",
                                                                      "slower")
    assert (turned.ratio, turned.low, turned.high) == pytest.approx((2.0, 1.6, 2.5))
    # Another machine's session confirms nothing here.
    elsewhere = dataclasses.replace(session, host="other")
    steps = find_steps(History(tuple(runs), tuple(points), (elsewhere,), ()))
    assert steps[0].confirmation is None
