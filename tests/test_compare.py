"""linfit.compare and ``linfit compare``: verdicts, golden tables, warnings, the gate's
decision, several runs per side, bad input.

The fixtures in tests/data/compare/ come from make_fixtures.py there (its docstring says
what each cell shows; base.csv and new.csv are schema-1 files). After an intended change of
the output, regenerate the goldens in that folder with
``linfit compare base.csv new.csv > compare.txt`` and
``linfit compare base.csv new.csv --format markdown > compare.md``, and review the diff.
The reader's refusals, class by class, are tested in test_results.py.
"""

import csv
import dataclasses
import hashlib
import io
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linfit._errors import LinfitError, ResultsFileError
from linfit.cli import main
from linfit.compare import (
    COMPARISON_COLUMNS,
    DRIFT_NOTE,
    EXIT_OK,
    EXIT_REGRESSION,
    Comparison,
    Difference,
    compare_files,
    compare_frames,
    compare_results,
    decide,
    format_ratio,
    format_seconds,
)
from linfit.results import Cell, read_frame, read_results, write_results
from linfit.results.record import CellResult
from linfit.stats import ratio_of_run_medians

DATA = Path(__file__).parent / "data" / "compare"
BASE = DATA / "base.csv"
NEW = DATA / "new.csv"

FIXTURE_VERDICTS = {
    ("CPU:0", "eager", 1000): "unchanged",
    ("CPU:0", "function", 1000): "slower",
    ("CPU:0", "function-loop", 1000): "noise",
    ("CPU:0", "xla", 1000): "faster",
    ("CPU:0", "xla-loop", 1000): "only-in-base",
    ("CPU:0", "eager", 100_000): "unchanged",
    ("CPU:0", "xla", 100_000): "unchanged",
    ("GPU:0", "eager", 1000): "unchanged",
    ("GPU:0", "xla", 1000): "unchanged",
    ("GPU:0", "xla-loop", 1000): "only-in-new",
    ("GPU:0", "eager", 100_000): "unchanged",
    ("GPU:0", "xla", 100_000): "failed",
}


@pytest.fixture(scope="module")
def fixture_comparison() -> Comparison:
    """base.csv against new.csv, computed once for the tests that only read it."""
    return compare_files(BASE, NEW)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verdicts(table: pd.DataFrame) -> dict[tuple[str, str, int], str]:
    return {(row.device, row.variant, row.n_examples): row.verdict for row in table.itertuples()}


def edited(tmp_path: Path, change: Callable[[list[str], list[list[str]]], None],
           name: str = "edited.csv") -> Path:
    """A copy of base.csv with ``change(header, rows)`` applied to its text fields."""
    with BASE.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    change(header, rows)
    target = tmp_path / name
    with target.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return target


def set_field(column: str, value: str, row: int = 0):
    def change(header: list[str], rows: list[list[str]]) -> None:
        rows[row][header.index(column)] = value
    return change


def drop_columns(*columns: str):
    def change(header: list[str], rows: list[list[str]]) -> None:
        keep = [i for i, name in enumerate(header) if name not in columns]
        header[:] = [header[i] for i in keep]
        rows[:] = [[row[i] for i in keep] for row in rows]
    return change


def duplicate_first_row(header: list[str], rows: list[list[str]]) -> None:
    rows.append(list(rows[0]))


def only_header(header: list[str], rows: list[list[str]]) -> None:
    rows.clear()


# --- formatting -----------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (2.134e-6, "2.13 µs"), (21.34e-6, "21.3 µs"), (213.4e-6, "213 µs"), (999.96e-6, "1.00 ms"),
    (0.0213, "21.3 ms"), (1.5, "1.50 s"), (250.0, "250 s"), (5e-10, "0.50 ns"),
    (9.996e-7, "1.00 µs"), (math.nan, "-"), (-2e-3, "-2.00 ms"), (-0.0123, "-12.3 ms"),
])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_format_ratio():
    assert format_ratio(1.2712, 1.2071, 1.3349) == "1.27 [1.21, 1.33]"
    assert format_ratio(1.3, math.nan, math.nan) == "1.30"
    assert format_ratio(math.nan, math.nan, math.nan) == "-"


# --- the comparison as data -----------------------------------------------------------

def test_compare_files_gives_each_cell_its_verdict(fixture_comparison):
    comparison = fixture_comparison
    assert tuple(comparison.table.columns) == COMPARISON_COLUMNS
    assert verdicts(comparison.table) == FIXTURE_VERDICTS
    assert list(comparison.worsened["variant"]) == ["function"]
    assert list(comparison.improved["variant"]) == ["xla"]
    assert comparison.counts() == {"slower": 1, "faster": 1, "noise": 1, "unchanged": 6,
                                   "failed": 1, "only-in-base": 1, "only-in-new": 1}


def test_medians_and_ratio_come_from_the_raw_samples():
    base, new = read_frame(BASE), read_frame(NEW)
    table = compare_frames(base, new).table.set_index(["device", "variant", "n_examples"])
    row = table.loc[("CPU:0", "function", 1000)]
    base_median = np.median(base[base.variant == "function"].samples_seconds.iloc[0])
    new_median = np.median(new[new.variant == "function"].samples_seconds.iloc[0])
    assert row.base_median_seconds == base_median
    assert row.ratio == new_median / base_median
    assert row.ratio_low < row.ratio < row.ratio_high and row.p_value < 0.01
    assert (row.base_rounds, row.new_rounds) == (400, 400)
    assert (row.base_runs, row.new_runs) == (1, 1)
    # Records and frames give the same comparison.
    records = compare_results([read_results(BASE)], [read_results(NEW)]).table
    pd.testing.assert_frame_equal(records, compare_frames(base, new).table)


def test_failed_and_missing_cells_are_kept_apart(fixture_comparison):
    table = fixture_comparison.table.set_index(["device", "variant", "n_examples"])
    failed = table.loc[("GPU:0", "xla", 100_000)]
    assert failed.verdict == "failed"
    assert failed.base_median_seconds > 0 and math.isnan(failed.new_median_seconds)
    assert math.isnan(failed.ratio)
    only_new = table.loc[("GPU:0", "xla-loop", 1000)]
    assert only_new.verdict == "only-in-new" and only_new.base_rounds == 0
    assert (failed.base_status, failed.new_status) == ("ok", "failed")
    assert (only_new.base_status, only_new.new_status) == ("missing", "ok")


def test_an_a_a_comparison_has_no_regression_and_no_warning():
    comparison = compare_files(BASE, BASE)
    assert set(comparison.table["verdict"]) == {"unchanged"}
    assert (comparison.table["ratio"] == 1).all()
    assert comparison.differences == ()


def test_differences_list_what_differs_between_the_runs(fixture_comparison):
    differences = fixture_comparison.differences
    assert differences == (
        Difference("host", "build-7", "build-8", 9),
        Difference("backend_version", "2.20.0", "2.21.0", 9),
        Difference("xla_flags", "", "--xla_gpu_autotune_level=0", 9),
        Difference("git_dirty", "False", "True", 9),
    )
    assert str(differences[0]) == "host differs: 'build-7' (base) vs 'build-8' (new) in 9 cells"


def _renamed(record: CellResult, **facts) -> CellResult:
    return dataclasses.replace(record, facts={**record.facts, **facts})


def test_a_different_device_name_is_a_warning_and_still_compared():
    new = [_renamed(r, device_name="NVIDIA A100-SXM4-40GB") if r.cell.device == "GPU:0" else r
           for r in read_results(BASE)]
    comparison = compare_frames(read_results(BASE), new)
    assert comparison.differences == (
        Difference("device_name", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", 4),)
    gpu = comparison.table[comparison.table["device"] == "GPU:0"]
    assert set(gpu["verdict"]) == {"unchanged"}


def test_a_zero_median_is_bad_input_naming_the_run():
    # The reader refuses a zero time in a file; records made in code are checked too.
    zero = [dataclasses.replace(r, per_call_seconds=(0.0,) * 5) if r.cell.variant == "eager"
            else r for r in read_results(BASE)]
    with pytest.raises(ResultsFileError, match=r"zero: cell tensorflow CPU:0 eager .* > 0"):
        compare_frames(read_results(BASE), zero, new_label="zero")


# --- the command: golden output and exit statuses -------------------------------------

def test_terminal_table_golden(monkeypatch, capsys):
    monkeypatch.chdir(DATA)
    assert main(["compare", "base.csv", "new.csv"]) == 1
    captured = capsys.readouterr()
    assert captured.out == (DATA / "compare.txt").read_text()
    assert captured.err == ""


def test_markdown_golden(monkeypatch, capsys):
    monkeypatch.chdir(DATA)
    assert main(["compare", "base.csv", "new.csv", "--format", "markdown"]) == 1
    assert capsys.readouterr().out == (DATA / "compare.md").read_text()


def test_csv_format_is_the_comparison_for_pandas(monkeypatch, capsys, fixture_comparison):
    monkeypatch.chdir(DATA)
    assert main(["compare", "base.csv", "new.csv", "--format", "csv"]) == 1
    captured = capsys.readouterr()
    table = pd.read_csv(io.StringIO(captured.out))
    assert list(table.columns) == ["base_file", "new_file", *COMPARISON_COLUMNS]
    assert set(table["new_file"]) == {"new.csv"}
    assert verdicts(table) == FIXTURE_VERDICTS
    expected = fixture_comparison.table
    np.testing.assert_array_equal(table["ratio"].to_numpy(), expected["ratio"].to_numpy())
    # Warnings go to stderr, so stdout stays a clean CSV.
    assert "host differs" in captured.err


def test_several_new_files_are_each_compared_with_base(monkeypatch, capsys):
    monkeypatch.chdir(DATA)
    assert main(["compare", "base.csv", "base.csv", "new.csv"]) == 1
    out = capsys.readouterr().out
    assert out.index("base.csv -> base.csv:") < out.index("base.csv -> new.csv:")
    assert out.count("no regression") == 1 and out.count("the gate fails (3 reason(s))") == 1


def test_several_new_files_in_csv_share_one_header(monkeypatch, capsys):
    monkeypatch.chdir(DATA)
    assert main(["compare", "base.csv", "base.csv", "new.csv", "--format", "csv"]) == 1
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table.groupby("new_file").size().to_dict() == {"base.csv": 11, "new.csv": 12}


def test_exit_0_without_regression_even_with_warnings(tmp_path, capsys):
    other_machine = edited(tmp_path, lambda header, rows: [
        row.__setitem__(header.index("host"), "elsewhere") for row in rows])
    assert main(["compare", str(BASE), str(other_machine)]) == 0
    out = capsys.readouterr().out
    assert "host differs: 'build-7' (base) vs 'elsewhere' (new) in 11 cells" in out
    assert "no regression" in out


def test_exit_1_when_either_direction_has_a_regression(capsys):
    # Reversed, the 2x faster xla cell becomes a 2x slower one.
    assert main(["compare", str(NEW), str(BASE)]) == 1
    out = capsys.readouterr().out
    assert "fail: 1 cell(s) significantly slower by more than 10% (the first: tensorflow CPU:0 " \
           "xla n=1000" in out


def test_threshold_and_alpha_are_options(capsys):
    # With a 30% threshold the 25% regression is within it; the failed and the missing
    # cell still fail the gate, unless missing cells are allowed.
    assert main(["compare", str(BASE), str(NEW), "--threshold", "30%"]) == 1
    out = capsys.readouterr().out
    assert "threshold 30%, 99% confidence" in out and "significantly slower" not in out
    assert main(["compare", str(BASE), str(NEW), "--threshold", "0.2", "--alpha", "0.05"]) == 1
    assert "threshold 20%, 95% confidence" in capsys.readouterr().out


def test_plot_draws_the_comparison(tmp_path, capsys):
    target = tmp_path / "comparison.png"
    assert main(["compare", str(BASE), str(NEW), "--plot", str(target)]) == 1
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"figure written to {target}" in capsys.readouterr().out


# --- bad input: exit 2, one line naming file, line and column; files untouched --------

BAD_FILES = {
    "empty": (lambda tmp: _write(tmp, b""), "the file is empty"),
    "not ours": (lambda tmp: _write(tmp, b"name,score\nada,3\n"),
                 "not a linfit results CSV (it has no schema_version column)"),
    "binary": (lambda tmp: _write(tmp, b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00" * 20),
               "not"),
    "header only": (lambda tmp: edited(tmp, only_header), "holds a header but no result rows"),
    "wrong schema_version": (lambda tmp: edited(tmp, set_field("schema_version", "0")),
                             "line 2, column schema_version: '0' is not a schema_version this "
                             "linfit reads"),
    "future schema_version": (lambda tmp: edited(tmp, set_field("schema_version", "6", row=3)),
                              "line 5, column schema_version: '6' is not a schema_version this "
                              "linfit reads (it reads 1, 2, 3, 4 and 5); it was written by a "
                              "newer linfit"),
    "missing columns": (lambda tmp: edited(tmp, drop_columns("median_seconds", "samples_seconds")),
                        "missing columns: median_seconds, samples_seconds"),
    "non-numeric median": (lambda tmp: edited(tmp, set_field("median_seconds", "fast", row=2)),
                           "line 4, column median_seconds: 'fast' is not a number"),
    "non-numeric samples": (lambda tmp: edited(tmp, set_field("samples_seconds", "1e-4 fast")),
                            "line 2, column samples_seconds: holds a value that is not a number"),
    "NaN median": (lambda tmp: edited(tmp, set_field("median_seconds", "nan", row=1)),
                   "line 3, column median_seconds: 'nan' is NaN or infinite"),
    "NaN sample": (lambda tmp: edited(tmp, set_field("samples_seconds", "1e-4 nan 1e-4")),
                   "line 2, column samples_seconds: holds NaN or infinite times"),
    "empty key": (lambda tmp: edited(tmp, set_field("n_examples", "", row=1)),
                  "line 3, column n_examples: is empty where a value is required"),
    "ok row without samples": (lambda tmp: edited(tmp, set_field("samples_seconds", "", row=6)),
                               "line 8, column samples_seconds: is empty in an ok row"),
    "duplicated cell": (lambda tmp: edited(tmp, duplicate_first_row),
                        "lines 2 and 13: duplicated cell (tensorflow CPU:0 eager n=1000 float32 "
                        "k=1)"),
    "zero samples": (lambda tmp: edited(tmp, set_field("samples_seconds", "0 0 0 0 0")),
                     "line 2, column samples_seconds: holds a time that is not strictly "
                     "positive"),
}


def _write(tmp_path: Path, content: bytes) -> Path:
    target = tmp_path / "bad.csv"
    target.write_bytes(content)
    return target


def assert_one_line_error(capsys, command: str, path: Path, message: str) -> None:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"linfit {command}: error: {path}")
    assert message in lines[0]


@pytest.mark.parametrize("side", ["base", "new"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_exits_2_with_one_line(case, side, tmp_path, capsys):
    make, message = BAD_FILES[case]
    bad = make(tmp_path)
    before = digest(bad)
    files = [str(bad), str(NEW)] if side == "base" else [str(BASE), str(bad)]
    assert main(["compare", *files]) == 2
    assert_one_line_error(capsys, "compare", bad, message)
    assert digest(bad) == before


def test_missing_file_exits_2(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    assert main(["compare", str(BASE), str(missing)]) == 2
    assert_one_line_error(capsys, "compare", missing, "no such file")


def test_bad_input_in_a_later_new_file_prints_nothing_else(tmp_path, capsys):
    assert main(["compare", str(BASE), str(NEW), str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().out == ""


def test_compare_and_check_import_no_framework():
    # They must work on any machine: a results file is all they need.
    code = ("import sys; from linfit.cli import main; "
            f"main(['compare', {str(BASE)!r}, {str(NEW)!r}, '--format', 'csv']); "
            f"main(['check', {str(NEW)!r}, '--baseline', {str(BASE)!r}]); "
            "print(sorted(m for m in ('tensorflow', 'jax', 'torch') if m in sys.modules), "
            "file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stderr.splitlines()[-1] == "[]"


def test_inputs_are_never_modified(tmp_path):
    before = digest(BASE), digest(NEW)
    main(["compare", str(BASE), str(NEW), "--format", "csv"])
    assert (digest(BASE), digest(NEW)) == before


@pytest.mark.parametrize(("flags", "message"), [
    (["--threshold", "10"], "is not a threshold"),
    (["--threshold=-5%"], "is not a threshold"),
    (["--threshold", "ten"], "is not a fraction"),
    (["--alpha", "0.0001"], "must be between 0.001"),
    (["--alpha", "0.9"], "must be between 0.001"),
    (["--format", "xml"], "invalid choice"),
    ([str(NEW), "--plot", "x.png"], "--plot draws one comparison"),
])
def test_bad_flags_exit_2_with_one_line(flags, message, capsys):
    try:
        status = main(["compare", str(BASE), str(NEW), *flags])
    except SystemExit as exit_info:  # argparse rejects a flag by exiting
        status = exit_info.code
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and message in captured.err


# --- the gate: it cannot pass on nothing ----------------------------------------------

def _write_run(tmp_path: Path, name: str, records) -> Path:
    return write_results(list(records), tmp_path / name)


def _ok_base() -> list[CellResult]:
    """base.csv's cells that are ok (all of them)."""
    return [r for r in read_results(BASE) if r.ok]


def test_decide_returns_data_and_passes_a_clean_a_a():
    decision = decide(compare_files(BASE, BASE))
    assert decision.exit_status == EXIT_OK and decision.failures == ()
    assert decision.notes == (DRIFT_NOTE,)


def test_a_base_cell_missing_from_new_fails_unless_allowed(tmp_path, capsys):
    fewer = _write_run(tmp_path, "fewer.csv", [r for r in _ok_base() if r.cell.variant != "eager"])
    assert main(["compare", str(BASE), str(fewer)]) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "fail: 4 base cell(s) missing from new (the first: tensorflow CPU:0 eager n=1000 " \
           "float32 k=1); --allow-missing accepts that" in out
    assert main(["compare", str(BASE), str(fewer), "--allow-missing"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "note: 4 base cell(s) missing from new" in out and "allowed by --allow-missing" in out


def test_a_cell_ok_in_base_that_failed_in_new_fails(tmp_path, capsys):
    broken = _write_run(tmp_path, "broken.csv", [
        dataclasses.replace(r, status="failed", message="boom") if r.cell.variant == "xla"
        else r for r in _ok_base()])
    assert main(["compare", str(BASE), str(broken), "--allow-missing"]) == EXIT_REGRESSION
    assert "fail: 4 cell(s) ok in base failed in new" in capsys.readouterr().out


def test_new_failed_in_every_cell_fails(tmp_path, capsys):
    broken = _write_run(tmp_path, "broken.csv", [
        dataclasses.replace(r, status="failed", message="boom") for r in _ok_base()])
    assert main(["compare", str(BASE), str(broken)]) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "fail: 11 cell(s) ok in base failed in new" in out
    assert "fail: nothing was compared: no cell is ok in both base and new" in out


def test_no_cell_in_common_fails_even_with_allow_missing(tmp_path, capsys):
    elsewhere = _write_run(tmp_path, "elsewhere.csv", [
        dataclasses.replace(r, cell=dataclasses.replace(r.cell, n_examples=r.cell.n_examples * 7))
        for r in _ok_base()])
    assert main(["compare", str(BASE), str(elsewhere), "--allow-missing"]) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "nothing was compared" in out and "allowed by --allow-missing" in out
    comparison = compare_files(BASE, elsewhere)
    assert len(comparison.compared) == 0
    assert decide(comparison, allow_missing=True).failures == (
        "nothing was compared: no cell is ok in both base and new",)


def test_the_decision_in_csv_format_goes_to_stderr(tmp_path, capsys):
    fewer = _write_run(tmp_path, "fewer.csv", _ok_base()[1:])
    assert main(["compare", str(BASE), str(fewer), "--format", "csv"]) == EXIT_REGRESSION
    captured = capsys.readouterr()
    assert "missing from new" in captured.err and "missing from new" not in captured.out


# --- several runs per side ------------------------------------------------------------

def _scaled(records, factor: float) -> list[CellResult]:
    return [dataclasses.replace(r, per_call_seconds=tuple(s * factor for s in r.per_call_seconds))
            for r in records]


def _runs(tmp_path: Path, side: str, factors) -> list[Path]:
    return [_write_run(tmp_path, f"{side}{index}.csv", _scaled(_ok_base(), factor))
            for index, factor in enumerate(factors)]


def test_ratio_of_run_medians_is_welch_on_logs():
    base = np.array([1.0, 1.2, 0.9, 1.1])
    estimate = ratio_of_run_medians(base, base * 1.5, alpha=0.01)
    assert estimate.ratio == pytest.approx(1.5)
    assert 1 < estimate.low < 1.5 < estimate.high and estimate.p_value < 0.01
    same = ratio_of_run_medians(base, base[::-1])
    assert same.ratio == pytest.approx(1.0) and same.low < 1 < same.high
    assert same.p_value == pytest.approx(1.0)
    one = ratio_of_run_medians(base[:1], base * 2)
    assert one.ratio == pytest.approx(np.exp(np.mean(np.log(base * 2))))
    assert math.isnan(one.low) and math.isnan(one.p_value)
    with pytest.raises(ValueError):
        ratio_of_run_medians(base, np.array([1.0, 0.0]))


def test_drift_between_runs_is_in_the_interval_over_runs(tmp_path, capsys):
    """No real change, but runs drift by up to 30% (the new side happened to run on worse
    minutes): one run per side calls cells slower; with three runs per side the drift is
    in the interval, and the verdict is noise, not slower."""
    base = _runs(tmp_path, "a", [1.0, 0.8, 1.3])
    new = _runs(tmp_path, "b", [1.3, 1.0, 1.5])
    single = compare_files(base[0], new[0])
    assert "slower" in set(single.table["verdict"]) <= {"slower", "noise"}
    pooled = compare_files(base, new)
    assert pooled.over_runs and (pooled.base_runs, pooled.new_runs) == (3, 3)
    assert pooled.table["ratio"].to_numpy() == pytest.approx(1.23, rel=0.01)
    assert set(pooled.table["verdict"]) == {"noise"}
    assert set(pooled.table["base_runs"]) == {3}
    assert DRIFT_NOTE not in decide(pooled).notes
    assert main(["compare", "--base", *map(str, base), "--new", *map(str, new)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "99% confidence intervals over runs (3 base, 3 new)" in out
    assert "drift between runs" not in out


def test_a_real_change_is_found_over_runs(tmp_path, capsys):
    base = _runs(tmp_path, "a", [1.0, 1.02, 0.99])
    new = _runs(tmp_path, "b", [1.5, 1.48, 1.52])
    comparison = compare_files(base, new)
    assert set(comparison.table["verdict"]) == {"slower"}
    assert comparison.table["ratio"].to_numpy() == pytest.approx(1.5, rel=0.02)
    assert main(["compare", "--base", *map(str, base), "--new", *map(str, new),
                 "--format", "markdown"]) == EXIT_REGRESSION
    assert "intervals over runs (3 base, 3 new)" in capsys.readouterr().out


def test_one_run_per_side_says_what_its_interval_cannot_see(capsys):
    assert main(["compare", str(BASE), str(BASE)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"note: {DRIFT_NOTE}" in out and "linfit ab" in out
    assert main(["compare", "--base", str(BASE), "--new", str(BASE)]) == EXIT_OK
    assert "intervals over the rounds of one run per side" in capsys.readouterr().out


def test_one_run_against_several_is_refused():
    with pytest.raises(LinfitError, match="needs at least 2 runs on each side"):
        compare_results([read_results(BASE)], [read_results(BASE), read_results(NEW)])


@pytest.mark.parametrize(("argv", "message"), [
    (["--base", str(BASE), "--new", str(BASE), str(NEW)], "needs at least 2 runs on each side"),
    (["--base", str(BASE), str(NEW)], "--base and --new go together"),
    ([str(BASE), "--base", str(BASE), "--new", str(NEW)], "not both"),
    ([str(BASE)], "give a BASE and at least one NEW file"),
])
def test_bad_sides_exit_2_with_one_line(argv, message, capsys):
    assert main(["compare", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert message in captured.err


def test_a_cell_failed_in_any_run_of_a_side_is_failed(tmp_path):
    base = _runs(tmp_path, "a", [1.0, 1.1])
    broken = [dataclasses.replace(r, status="failed", message="boom")
              if r.cell == Cell("tensorflow", "CPU:0", "xla", 1000, "float32", 1, convention="args")
              else r
              for r in _scaled(_ok_base(), 1.05)]
    new = [*_runs(tmp_path, "b", [1.0]), _write_run(tmp_path, "b-broken.csv", broken)]
    table = compare_files(base, new).table.set_index(["device", "variant", "n_examples"])
    assert table.loc[("CPU:0", "xla", 1000)].verdict == "failed"
    assert table.loc[("CPU:0", "xla", 1000)].new_status == "failed"


# --- the machines (issue 18): warnings on stderr, never the exit status -------------------

SMALL_V5 = DATA / "small-v5.csv"  # a 2-CPU KVM guest, load 0.52 at the start, 1.73 at the end


def _on_machine(tmp_path: Path, name: str, **facts: object) -> Path:
    records = [dataclasses.replace(r, facts={**r.facts, **facts})
               for r in read_results(SMALL_V5)]
    return write_results(records, tmp_path / name)


def test_a_loaded_run_and_another_machine_are_warnings_on_stderr(tmp_path, capsys):
    new = _on_machine(tmp_path, "new.csv", logical_cores=4, physical_cores=4,
                      cpu_affinity="0-3", load_average_end=5.0)
    assert main(["compare", str(SMALL_V5), str(new)]) == EXIT_OK  # warnings only
    err = capsys.readouterr().err.splitlines()
    prefix = f"linfit compare: warning: {SMALL_V5} -> {new}: "
    assert err == [
        f"{prefix}{new}: the load average reached 5.00 with 4 CPU(s) available: threads "
        "waited for a CPU during the run (other work, or more framework threads than CPUs), "
        "so its times may be inflated",
        f"{prefix}the machines of {SMALL_V5} and {new} differ: logical cores 2 vs 4; physical "
        "cores 2 vs 4; available CPUs 2 vs 4; their times are not like for like"]


def test_the_same_machine_unloaded_gives_no_machine_warning(tmp_path, capsys):
    again = _on_machine(tmp_path, "again.csv")
    comparison = compare_files(SMALL_V5, again)
    assert comparison.machine_warnings == ()
    main(["compare", str(SMALL_V5), str(again), "--format", "csv"])
    assert "load average" not in capsys.readouterr().err
    # Files before schema 5 record no machine: nothing to compare, no warning.
    assert compare_files(BASE, NEW).machine_warnings == ()


def test_several_runs_per_side_name_each_loaded_run_by_its_run_id(tmp_path):
    runs = [_on_machine(tmp_path, f"r{i}.csv", run_id=f"run-{i}", load_average_end=load)
            for i, load in enumerate([1.0, 2.5, 1.5, 3.0])]
    comparison = compare_files(runs[:2], runs[2:])
    assert [line.split(":")[0] for line in comparison.machine_warnings] == ["run-1", "run-3"]
