"""linfit.compare and ``linfit compare``: verdicts, golden tables, warnings, bad input.

The fixtures in tests/data/compare/ come from make_fixtures.py there (its docstring says
what each cell shows). After an intended change of the output, regenerate the goldens in
that folder with ``linfit compare base.csv new.csv > compare.txt`` and
``linfit compare base.csv new.csv --format markdown > compare.md``, and review the diff.
"""

import csv
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

from linfit.cli import main
from linfit.compare import (
    COMPARISON_COLUMNS,
    Comparison,
    Difference,
    compare_files,
    compare_frames,
    format_ratio,
    format_seconds,
)
from linfit.results import read_results

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
    base, new = read_results(BASE), read_results(NEW)
    table = compare_frames(base, new).table.set_index(["device", "variant", "n_examples"])
    row = table.loc[("CPU:0", "function", 1000)]
    base_median = np.median(base[base.variant == "function"].samples_seconds.iloc[0])
    new_median = np.median(new[new.variant == "function"].samples_seconds.iloc[0])
    assert row.base_median_seconds == base_median
    assert row.ratio == new_median / base_median
    assert row.ratio_low < row.ratio < row.ratio_high and row.p_value < 0.01
    assert (row.base_rounds, row.new_rounds) == (400, 400)


def test_failed_and_missing_cells_are_kept_apart(fixture_comparison):
    table = fixture_comparison.table.set_index(["device", "variant", "n_examples"])
    failed = table.loc[("GPU:0", "xla", 100_000)]
    assert failed.verdict == "failed"
    assert failed.base_median_seconds > 0 and math.isnan(failed.new_median_seconds)
    assert math.isnan(failed.ratio)
    only_new = table.loc[("GPU:0", "xla-loop", 1000)]
    assert only_new.verdict == "only-in-new" and only_new.base_rounds == 0


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


def test_a_different_device_name_is_a_warning_and_still_compared():
    new = read_results(BASE)
    new.loc[new["device"] == "GPU:0", "device_name"] = "NVIDIA A100-SXM4-40GB"
    comparison = compare_frames(read_results(BASE), new)
    assert comparison.differences == (
        Difference("device_name", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", 4),)
    gpu = comparison.table[comparison.table["device"] == "GPU:0"]
    assert set(gpu["verdict"]) == {"unchanged"}


def test_a_zero_median_is_bad_input_naming_the_run(tmp_path):
    zero = edited(tmp_path, set_field("samples_seconds", "0.0 0.0 0.0 0.0 0.0"))
    with pytest.raises(Exception, match=r"edited\.csv: cell tensorflow CPU:0 eager .* > 0"):
        compare_files(BASE, zero)


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
    assert out.count("no regression") == 1 and out.count("regression: 1 cell") == 1


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
    assert "regression: 1 cell is significantly slower" in capsys.readouterr().out


def test_threshold_and_alpha_are_options(capsys):
    # With a 30% threshold the 25% regression is within it.
    assert main(["compare", str(BASE), str(NEW), "--threshold", "30%"]) == 0
    assert "threshold 30%, 99% confidence" in capsys.readouterr().out
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
                             "line 2: schema_version '0' is not one this linfit reads"),
    "future schema_version": (lambda tmp: edited(tmp, set_field("schema_version", "2", row=3)),
                              "line 5: schema_version '2' is not one this linfit reads (it reads "
                              "1); it was written by a newer linfit"),
    "missing columns": (lambda tmp: edited(tmp, drop_columns("median_seconds", "samples_seconds")),
                        "missing columns: median_seconds, samples_seconds"),
    "non-numeric median": (lambda tmp: edited(tmp, set_field("median_seconds", "fast", row=2)),
                           "line 4, column median_seconds: 'fast' is not a number"),
    "non-numeric samples": (lambda tmp: edited(tmp, set_field("samples_seconds", "1e-4 fast")),
                            "line 2, column samples_seconds: holds a value that is not a number"),
    "NaN median": (lambda tmp: edited(tmp, set_field("median_seconds", "nan", row=1)),
                   "line 3, column median_seconds: 'nan' is not a number"),
    "NaN sample": (lambda tmp: edited(tmp, set_field("samples_seconds", "1e-4 nan 1e-4")),
                   "line 2, column samples_seconds: holds NaN, infinite or negative times"),
    "empty key": (lambda tmp: edited(tmp, set_field("n_examples", "", row=1)),
                  "line 3, column n_examples: is empty, NaN or infinite where a number is "
                  "required"),
    "ok row without samples": (lambda tmp: edited(tmp, set_field("samples_seconds", "", row=6)),
                               "line 8, column samples_seconds: is empty in an ok row"),
    "duplicated cell": (lambda tmp: edited(tmp, duplicate_first_row),
                        "lines 2 and 13: duplicated cell (tensorflow CPU:0 eager n=1000 float32 "
                        "k=1)"),
    "zero median": (lambda tmp: edited(tmp, set_field("samples_seconds", "0 0 0 0 0")),
                    "cell tensorflow CPU:0 eager n=1000 float32 k=1 has a median of 0.0 s per "
                    "step; a step time must be > 0"),
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
