"""linfit.report and ``linfit report``: every section, relative figure links, no overwrite."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linfit import report, retrain, summary
from linfit._errors import LinfitError
from linfit.cli import main
from linfit.commands import report as report_command
from linfit.results import read_frame

DATA = Path(__file__).parent / "data" / "plots"
MULTI = DATA / "multi.csv"
SMALL = DATA / "single_variant.csv"  # the quickest to draw


@pytest.fixture(scope="module")
def multi() -> pd.DataFrame:
    return read_frame(MULTI)


@pytest.fixture(scope="module")
def multi_report(multi, tmp_path_factory) -> Path:
    """The report of the multi-device, multi-backend fixture, written once."""
    folder = tmp_path_factory.mktemp("report") / "out"
    return report.write_report(multi, folder / "run.md", [str(MULTI)])


def _links(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_has_every_section_and_its_figures(multi_report):
    target = multi_report
    text = target.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == list(report.SECTIONS)
    links = _links(text)
    assert links == ["run-figures/run-step-time.png", "run-figures/run-speedup.png",
                     "run-figures/run-first-call.png"]
    for link in links:
        assert not Path(link).is_absolute()
        assert (target.parent / link).stat().st_size > 0
    assert list(target.parent.glob(".*.tmp")) == []


def test_report_tables(multi_report):
    text = multi_report.read_text(encoding="utf-8")
    assert "| results file | " + str(MULTI) + " |" in text
    assert "| backend tensorflow | 2.21.0 (built with cuda 12.5, cudnn 9) |" in text
    assert "| device GPU:0 | Synthetic GPU 80GB (compute capability 9.0) |" in text
    assert "failed: ResourceExhaustedError: out of memory |" in text
    assert "W and b are the weights after 100 steps from W=5, b=0." in text
    # The break-even of jax jit on CPU:0 at n=1M: its step is slower than eager's.
    assert re.search(r"\| jax \| CPU:0 \| jit \| 1,000,000 \| .* \| never \(not faster than "
                     r"eager\) \|", text)
    assert "fastest is xla-loop (k=100)" in text
    assert "The convergence figure was not drawn (--no-convergence)." in text
    # A schema-1 file: its floors were one probe each.
    assert "Each floor is one probe measurement, of unknown spread" in text


def test_report_shows_the_efficiency_range_of_the_floor_rounds(multi, tmp_path):
    measured = multi["floor_seconds"].notna()
    frame = multi.assign(floor_rounds=np.where(measured, 4, np.nan),
                         floor_spread=np.where(measured, 1.5, np.nan))
    text = report.render_report(frame, summary.speedups(frame), summary.break_even(frame), [],
                                tmp_path, ["x.csv"],
                                efficiencies=summary.efficiency_ranges(frame),
                                floor_rounds=summary.floor_rounds(frame))
    row = frame[(frame.device == "GPU:0") & (frame.variant == "xla")
                & (frame.n_examples == 1_000_000)].iloc[0]
    low, high = f"{row.efficiency:.3g}", f"{row.efficiency * 1.5:.3g}"
    assert f"| {low} to {high} |" in text
    assert ("Each floor is the best of 4 probe rounds; across the rounds a cell's floor varied "
            "by up to 1.50x (worst / best round)") in text
    # CPU rows have no floor: no efficiency, no range.
    cpu = [line for line in text.splitlines() if line.startswith("| tensorflow | CPU:0 |")]
    assert cpu and all(" to " not in line for line in cpu)


def test_report_without_eager_says_why(tmp_path):
    frame = read_frame(SMALL)
    text = report.write_report(frame, tmp_path / "r.md", ["x.csv"]).read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", text, flags=re.MULTILINE) == list(report.SECTIONS)
    assert "No speed-ups: the results hold no eager cell" in text
    assert "No break-even steps: the results hold no eager cell" in text
    assert _links(text) == ["r-figures/r-step-time.png", "r-figures/r-first-call.png"]


def test_report_lists_the_variants_it_could_not_rerun(tf_backend, tmp_path):
    frame = read_frame(SMALL).assign(device="GPU:99")
    runs = retrain.convergence_runs(frame)
    text = report.write_report(frame, tmp_path / "r.md", ["x.csv"],
                               convergence=runs).read_text(encoding="utf-8")
    assert "r-figures/r-convergence.png" in _links(text)
    assert "- tensorflow xla on GPU:99: tensorflow has no device GPU:99 here" in text


def test_report_is_never_overwritten_unless_forced(tmp_path):
    frame = read_frame(SMALL)
    target = tmp_path / "r.md"
    target.write_text("keep me")
    with pytest.raises(LinfitError, match=r"r\.md exists already; use --force to replace it$"):
        report.write_report(frame, target, ["x.csv"])
    assert target.read_text() == "keep me"
    assert not (tmp_path / "r-figures").exists()
    report.write_report(frame, target, ["x.csv"], force=True)
    assert target.read_text(encoding="utf-8").startswith("# linfit report: ")


def test_report_command(tmp_path, capsys):
    target = tmp_path / "report.md"
    arguments = ["report", str(SMALL), "-o", str(target), "--no-convergence"]
    assert main(arguments) == 0
    assert capsys.readouterr().out == f"report written to {target}\n"
    assert main(arguments) == 2
    assert capsys.readouterr().err == (f"linfit report: error: {target} exists already; use "
                                       "--force to replace it\n")
    assert main([*arguments, "--force"]) == 0


@pytest.mark.parametrize(
    ("output", "force", "message"),
    [
        ("a-folder", False, "{tmp}/a-folder is a directory; give the report's file name, such "
                            "as {tmp}/a-folder/report.md"),
        ("a-folder", True, "{tmp}/a-folder is a directory; give the report's file name"),
        ("a-file/r.md", False, "cannot write the report {tmp}/a-file/r.md: {tmp}/a-file is not "
                               "a directory"),
        ("a-file", False, "{tmp}/a-file exists already; use --force to replace it"),
        ("blocked.md", False, "cannot write the report's figures into {tmp}/blocked-figures: "
                              "{tmp}/blocked-figures is not a directory"),
        ("results.csv", True, "{tmp}/results.csv is one of the results files the report is "
                              "made from; give the report another name"),
    ],
)
def test_report_command_refuses_an_output_it_cannot_write(output, force, message, tmp_path,
                                                          monkeypatch, capsys):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("keep me")
    (tmp_path / "blocked-figures").write_text("keep me too")
    results = tmp_path / "results.csv"
    results.write_bytes(SMALL.read_bytes())
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    monkeypatch.setattr(report_command, "convergence_runs",
                        lambda frame: pytest.fail("trained before the output was checked"))
    arguments = ["report", str(results), "-o", str(tmp_path / output)]
    assert main([*arguments, *(["--force"] if force else [])]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"linfit report: error: {message.format(tmp=tmp_path)}\n" or (
        captured.err.startswith(f"linfit report: error: {message.format(tmp=tmp_path)}")
        and captured.err.count("\n") == 1)
    assert captured.out == ""
    after = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    assert after == before
    assert list((tmp_path / "a-folder").iterdir()) == []


def test_report_shows_the_machine_and_the_peak_memory(tmp_path):
    small = Path(__file__).parent / "data" / "compare" / "small-v5.csv"  # schema 5
    target = report.write_report(read_frame(small), tmp_path / "run.md", [str(small)])
    text = target.read_text(encoding="utf-8")
    for row in ("| Keras | 3.11.3 |", "| CPUs the run could use | 0-1 |",
                "| CPU governor | unknown |", "| virtual machine | kvm |",
                "| container | docker |", "| logical cores | 2 |", "| physical cores | 2 |",
                "| memory | 23.5 GiB |", "| CPU frequency at the start | 2596 MHz |",
                "| load average at the start (1 min) | 0.52 |",
                "| load average at the end (1 min) | 1.73 |"):
        assert row in text, row
    assert "| peak RSS added |" in text and "| 1.57 MB |" in text
    assert "Peak RSS added: the most resident memory the cell" in text
    assert "run-figures/run-peak-memory.png" in _links(text)
    # A file before schema 5: the machine is unknown, and there is no memory column.
    old = report.render_report(*_parts(read_frame(MULTI)), [], tmp_path, ["multi.csv"])
    assert "| logical cores | unknown |" in old and "peak RSS added" not in old


def _parts(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return frame, summary.speedups(frame), summary.break_even(frame)
