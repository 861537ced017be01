"""linfit export (linfit.export, linfit.commands.export): each format against its documented
shape, pytest-benchmark's through its own loader and `pytest-benchmark compare`, and the
refusals."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linfit.cli import main
from linfit.export import FORMATS, load_benchmarks
from linfit.results import read_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "cpu-2core" / "20261127T020452Z-vm-9eaf9c69c0.csv"
PAIRS = ROOT / "results" / "cpu-2core-ab" / "tf220-221" / "20261127T203613Z-vm-e51df34ab1-ab.csv"
# The documented schema of Bencher Metric Format (https://bencher.dev/bmf.json): an object of
# benchmarks, each an object of measures, each with a number "value" and optional number
# "lower_value" and "upper_value".
BMF_KEYS = {"value", "lower_value", "upper_value"}


def export(path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> object:
    assert main(["export", str(path), "--format", fmt]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", [RESULTS, PAIRS], ids=["results", "pairs"])
def test_bmf_has_bencher_s_shape(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = export(path, "bmf", capsys)
    assert isinstance(data, dict) and data
    benchmarks = load_benchmarks(path)
    assert set(data) == {b.name for b in benchmarks}
    for benchmark in benchmarks:
        measures = data[benchmark.name]
        assert isinstance(measures, dict) and set(measures) == {"latency"}
        metric = measures["latency"]
        assert set(metric) == BMF_KEYS
        assert all(isinstance(metric[k], float) and math.isfinite(metric[k]) for k in BMF_KEYS)
        assert metric["lower_value"] <= metric["value"] <= metric["upper_value"]
        assert metric["value"] == pytest.approx(benchmark.median_seconds * 1e9)


def test_bmf_of_results_holds_each_ok_cell_s_median(capsys: pytest.CaptureFixture[str]) -> None:
    data = export(RESULTS, "bmf", capsys)
    records = [r for r in read_results(RESULTS) if r.ok]
    assert len(data) == len(records)
    for record in records:
        assert data[str(record.cell)]["latency"]["value"] == pytest.approx(
            record.median_seconds * 1e9)


def test_pairs_benchmarks_are_per_side(capsys: pytest.CaptureFixture[str]) -> None:
    data = export(PAIRS, "bmf", capsys)
    cell = "tensorflow CPU:0 xla-loop n=1e+06 float32 k=100 closure"
    old, new = data[f"{cell} [2.20]"]["latency"], data[f"{cell} [2.21]"]["latency"]
    assert new["value"] / old["value"] == pytest.approx(1.56, rel=0.1)  # the session's 1.56


@pytest.mark.parametrize("path", [RESULTS, PAIRS], ids=["results", "pairs"])
def test_benchmark_action_is_custom_smaller_is_better(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # github-action-benchmark's customSmallerIsBetter input: a list of objects with a
    # string name and unit, a number value, and optional string range and extra.
    data = export(path, "benchmark-action", capsys)
    assert isinstance(data, list) and data
    names = [entry["name"] for entry in data]
    assert len(set(names)) == len(names)
    for entry in data:
        assert set(entry) <= {"name", "unit", "value", "range", "extra"}
        assert isinstance(entry["name"], str) and isinstance(entry["unit"], str)
        assert isinstance(entry["value"], float) and entry["value"] > 0
        assert isinstance(entry["range"], str) and isinstance(entry["extra"], str)


def test_pytest_benchmark_round_trips_through_its_loader(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_benchmark.logger import Logger
    from pytest_benchmark.storage.file import FileStorage

    out = tmp_path / "0001_linfit.json"
    assert main(["export", str(RESULTS), "--format", "pytest-benchmark", "-o", str(out)]) == 0
    storage = FileStorage(tmp_path, Logger(Logger.QUIET))
    loaded = list(storage.load_benchmarks(str(out)))
    records = {str(r.cell): r for r in read_results(RESULTS) if r.ok}
    assert {b["name"] for b in loaded} == set(records)
    for bench in loaded:
        record = records[bench["name"]]
        assert bench["median"] == pytest.approx(record.median_seconds)
        assert bench["min"] == pytest.approx(record.min_seconds)
        assert bench["rounds"] == record.rounds
        assert bench["data"] == pytest.approx(list(record.per_step_seconds))


def test_pytest_benchmark_compare_reads_the_export(tmp_path: Path) -> None:
    command = shutil.which("pytest-benchmark") or shutil.which("py.test-benchmark")
    if command is None:
        pytest.skip("pytest-benchmark's command line is not on PATH")
    out = tmp_path / "0001_linfit.json"
    assert main(["export", str(PAIRS), "--format", "pytest-benchmark", "-o", str(out)]) == 0
    table = tmp_path / "compare.csv"
    done = subprocess.run([command, "compare", str(out), "--csv", str(table)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(table.open()))
    names = {b.name for b in load_benchmarks(PAIRS)}
    assert {row["name"] for row in rows} == names
    assert "Failed to load" not in done.stdout + done.stderr


def test_output_file_is_never_overwritten(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bmf.json"
    out.write_text("mine")
    assert main(["export", str(RESULTS), "--format", "bmf", "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == "mine"


@pytest.mark.parametrize("make", [
    lambda d: d / "missing.csv",
    lambda d: (d / "notes.csv", (d / "notes.csv").write_text("a,b\n1,2\n"))[0],
], ids=["missing", "foreign"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          make) -> None:
    path = make(tmp_path)
    assert main(["export", str(path), "--format", "bmf"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error


def test_unknown_format_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(RESULTS), "--format", "csv"]) == 2
    error = capsys.readouterr().err
    assert all(fmt in error for fmt in FORMATS)


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "linfit", "export", str(RESULTS), "--format",
                           "benchmark-action"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)
