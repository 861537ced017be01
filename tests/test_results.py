"""linfit.results (csv, record, cell, columns): the schema-5 file, its one writer and one
reader, the record and its derived statistics, files of schemas 1 to 4, every class of file
the reader refuses, the byte-order mark and spreadsheet formulas (issue 20 class 8).

Fixtures: tests/data/compare/small-v5.csv (schema 5, from make_fixtures.py there), the same
four cells in small-v4.csv (schema 4), small-v3.csv (schema 3) and small-v2.csv (schema 2),
and base.csv (schema 1).
"""

import csv
import dataclasses
import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linfit._errors import ResultsFileError
from linfit.cli import main
from linfit.results import (
    COLUMN_NAMES,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    Cell,
    ResultSet,
    atomic_write_text,
    columns_of,
    duplicate_cells,
    legacy_convention,
    read_frame,
    read_results,
    write_results,
)
from linfit.results.record import FACT_COLUMNS, CellResult, Reference, step_statistics

DATA = Path(__file__).parent / "data" / "compare"
SMALL = DATA / "small-v5.csv"
SCHEMA_4 = DATA / "small-v4.csv"
SCHEMA_3 = DATA / "small-v3.csv"
SCHEMA_2 = DATA / "small-v2.csv"
SCHEMA_1 = DATA / "base.csv"
PLOTS = Path(__file__).parent / "data" / "plots"

EAGER = Cell("tensorflow", "CPU:0", "eager", 1000, "float32", 1)
LOOP = Cell("tensorflow", "CPU:0", "xla-loop", 1000, "float32", 100, convention="args")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the record ------------------------------------------------------------------------

def test_statistics_derive_from_per_call_samples_in_one_place():
    record = CellResult(LOOP, "ok", per_call_seconds=(4e-4, 2e-4, 3e-4, 5e-4), iterations=3)
    assert record.per_step_seconds == (4e-4 / 100, 2e-4 / 100, 3e-4 / 100, 5e-4 / 100)
    assert record.rounds == 4 and record.steps_per_call == 100
    assert record.median_seconds == pytest.approx(3.5e-6, rel=1e-15)
    assert (record.min_seconds, record.max_seconds) == (2e-4 / 100, 5e-4 / 100)
    assert record.iqr_seconds == pytest.approx(1.5e-6, rel=1e-12)
    assert dict(record.statistics) == step_statistics(record.per_step_seconds)
    assert record.to_row()["median_seconds"] == record.median_seconds


def test_an_untimed_record_has_no_statistics():
    record = CellResult(EAGER, "failed", message="boom")
    assert record.rounds == 0 and not record.timed
    assert math.isnan(record.median_seconds) and record.efficiency is None
    assert record.to_row()["median_seconds"] is None


def test_efficiency_carries_the_spread_of_the_floor_rounds():
    record = CellResult(EAGER, "ok", per_call_seconds=(4e-4, 2e-4, 3e-4), floor_seconds=1.5e-4,
                        floor_rounds=4, floor_spread=1.2)
    assert record.efficiency == pytest.approx(0.5)
    # Against the best round's floor, and had the floor been the worst round's.
    assert record.efficiency_low == record.efficiency
    assert record.efficiency_high == pytest.approx(0.6)
    unknown = dataclasses.replace(record, floor_rounds=None, floor_spread=None)
    assert unknown.efficiency_low == unknown.efficiency_high == unknown.efficiency
    none = dataclasses.replace(record, floor_seconds=None)
    assert none.efficiency_low is None and none.efficiency_high is None
    row = record.to_row()
    assert (row["floor_rounds"], row["floor_spread"]) == (4, 1.2)
    assert "efficiency_high" not in row  # derived, not a second column


@pytest.mark.parametrize(("samples", "floor"), [((0.0, 0.0), 1e-4), ((1e-4,), float("nan")),
                                              ((1e-4,), 0.0), ((float("inf"),), 1e-4)])
def test_an_efficiency_of_figures_that_are_not_finite_and_positive_is_unknown(samples, floor):
    """Issue 20: a derived figure is unknown, never a ZeroDivisionError that costs the row."""
    record = CellResult(EAGER, "ok", per_call_seconds=samples, floor_seconds=floor)
    assert record.efficiency is None and record.efficiency_high is None
    assert record.to_row()["efficiency"] is None


def test_a_record_is_immutable_and_checks_its_vocabulary():
    record = CellResult(EAGER, "ok", per_call_seconds=(1.0,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "failed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.facts["host"] = "x"  # type: ignore[index]
    with pytest.raises(ValueError, match="status 'passed'"):
        CellResult(EAGER, "passed")
    with pytest.raises(ValueError, match="check_traces 'maybe'"):
        CellResult(EAGER, "ok", check_traces="maybe")
    assert hash(record) == hash(CellResult(EAGER, "ok", per_call_seconds=(1.0,)))


def test_from_row_and_to_row_round_trip_a_harness_dict():
    [record, *_] = read_results(SMALL)
    row = record.to_row()
    assert set(row) == set(COLUMN_NAMES) - {"schema_version"}
    assert CellResult.from_row(row) == record
    # The harness's older dicts carry per-step samples: they become per-call times k.
    per_step = {**row, "call_samples_seconds": None, "samples_seconds": record.per_step_seconds}
    assert CellResult.from_row(per_step).per_call_seconds == pytest.approx(
        record.per_call_seconds, rel=1e-15)
    assert set(FACT_COLUMNS) >= {"host", "git_commit", "xla_flags", "run_interrupted"}


# --- writing and reading schema 5 ------------------------------------------------------

def test_the_small_fixture_reads_as_records():
    results = read_results(SMALL)
    assert isinstance(results, ResultSet) and results.path == SMALL
    assert results.schema_version == SCHEMA_VERSION == 5
    # Schema 4 has no HLO account: every record's is unknown.
    assert all(r.hlo_bytes_per_step is None and r.hlo_loops == ""
               for r in read_results(SCHEMA_4))
    by_cell = results.by_cell()
    loop = by_cell[LOOP]
    assert loop.per_step_seconds == tuple(s / 100 for s in loop.per_call_seconds)
    assert str(loop.reference) == "tensorflow eager CPU:0"
    assert (loop.check_placement, loop.check_traces, loop.check_convergence) == ("ok",) * 3
    assert loop.facts["run_interrupted"] is False and loop.facts["strategy"] == "none"
    assert (loop.cell.replicas, loop.cell.convention) == (1, "args")
    assert by_cell[EAGER].cell.convention == ""
    failed = next(r for r in results if not r.ok)
    assert failed.check_convergence == "failed" and failed.timed
    eager = by_cell[EAGER]
    assert (eager.floor_rounds, eager.floor_spread) == (3, 1.25)
    assert eager.efficiency_high == pytest.approx(eager.efficiency * 1.25)
    assert (loop.floor_rounds, loop.floor_spread) == (None, None)


def test_write_then_read_is_exact(tmp_path):
    records = read_results(SMALL)
    written = write_results(records, tmp_path / "again.csv")
    again = read_results(written)
    assert list(again) == list(records)
    assert written.read_text() == SMALL.read_text()


def test_to_frame_is_the_frame_pandas_users_had():
    results = read_results(SMALL)
    frame = results.to_frame()
    # One truth per frame: per-step samples, where the file keeps per-call ones.
    assert list(frame.columns) == [
        "samples_seconds" if name == "call_samples_seconds" else name for name in COLUMN_NAMES]
    loop = frame[frame["variant"] == "xla-loop"].iloc[0]
    assert loop["samples_seconds"] == results.by_cell()[LOOP].per_step_seconds
    assert loop["median_seconds"] == np.median(loop["samples_seconds"])
    assert frame["n_examples"].dtype == np.int64 and frame["loop"].dtype == bool
    assert frame.equals(read_frame(SMALL))


def test_plain_pandas_reads_the_file():
    frame = pd.read_csv(SMALL)
    first = frame.iloc[0]
    samples = [float(s) for s in first["call_samples_seconds"].split()]
    assert first["median_seconds"] == np.median(samples) / first["steps_per_call"]


def test_the_writer_never_overwrites_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "run.csv"
    write_results(read_results(SMALL), target)
    before = digest(target)
    with pytest.raises(FileExistsError):
        write_results(read_results(SMALL), target)
    assert digest(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_the_writer_refuses_duplicates_and_unknown_columns(tmp_path):
    record = read_results(SMALL)[0]
    with pytest.raises(ValueError, match="rows 0 and 1: duplicated cell"):
        write_results([record, record], tmp_path / "dup.csv")
    with pytest.raises(ValueError, match="unknown result columns: \\['colour'\\]"):
        write_results([{**record.to_row(), "colour": "red"}], tmp_path / "bad.csv")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_refuses_or_replaces(tmp_path):
    target = tmp_path / "sub" / "page.md"
    atomic_write_text(target, "one\n")
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "two\n")
    assert target.read_text() == "one\n"
    atomic_write_text(target, "two\n", overwrite=True)
    assert target.read_text() == "two\n"
    assert os.listdir(target.parent) == ["page.md"]


def test_duplicate_cells():
    assert duplicate_cells([EAGER, LOOP]) is None
    assert duplicate_cells([EAGER, LOOP, EAGER]) == (0, 2, EAGER)


def test_replicas_and_convention_are_part_of_the_key():
    two = Cell("tensorflow", "CPU:0", "function", 1000, "float32", 1, replicas=2,
               convention="args")
    captured = dataclasses.replace(two, replicas=1, convention="captured")
    assert len({EAGER, two, captured, dataclasses.replace(two, replicas=1)}) == 4
    # Shown only where not the default, so one-device cells read as they always did.
    assert str(EAGER) == "tensorflow CPU:0 eager n=1000 float32 k=1"
    assert str(LOOP) == "tensorflow CPU:0 xla-loop n=1000 float32 k=100"
    assert str(two) == "tensorflow CPU:0 function n=1000 float32 k=1 r=2"
    assert str(captured).endswith("k=1 captured")
    # A row without the schema-3 key columns (an older harness dict, a journal line).
    row = {name: getattr(two, name) for name in ("backend", "device", "variant",
                                                  "n_examples", "dtype", "steps_per_call")}
    assert Cell.from_row(row) == dataclasses.replace(two, replicas=1, convention="")
    assert Cell.from_row({**row, "replicas": float("nan"), "convention": None}) == (
        Cell.from_row(row))


def test_a_replicated_cell_round_trips(tmp_path):
    record = read_results(SMALL)[1]
    two = dataclasses.replace(record, cell=dataclasses.replace(record.cell, replicas=2),
                              facts={**record.facts, "strategy": "mirrored"})
    [again] = read_results(write_results([two], tmp_path / "r2.csv"))
    assert again == two and again.facts["strategy"] == "mirrored"


# --- schemas 4, 3 and 2 ----------------------------------------------------------------

def _without_schema_5(record: CellResult) -> CellResult:
    """A schema-5 record as its schema-4 file reads: every column schema 5 added empty."""
    text = {c.name for c in columns_of(5) if c.type == "str"}
    empty = {name: "" if name in text else None for name in (
        "tensorflow_git_version", "tensorflow_commit", *SCHEMA_5_MACHINE_AND_MEMORY)}
    return dataclasses.replace(record, facts={**record.facts, **empty})


def test_a_schema_4_file_reads_with_no_tensorflow_commit():
    old, new = read_results(SCHEMA_4), read_results(SMALL)
    assert (old.schema_version, new.schema_version) == (4, 5)
    # small-v5.csv is small-v4.csv's four records with the TensorFlow cells' build (and the
    # machine and each peak, below).
    assert list(old) == [_without_schema_5(r) for r in new]
    assert {(r.cell.backend, r.facts["tensorflow_commit"]) for r in new} == {
        ("tensorflow", "a481b10260d"), ("jax", "")}
    frame = old.to_frame()
    assert (frame["tensorflow_git_version"] == "").all() and (
        frame["tensorflow_commit"] == "").all()


def test_a_schema_3_file_reads_with_no_floor_rounds_or_spread():
    old, new = read_results(SCHEMA_3), read_results(SCHEMA_4)
    assert (old.schema_version, new.schema_version) == (3, 4)
    assert all(r.floor_rounds is None and r.floor_spread is None for r in old)
    # small-v4.csv is small-v3.csv's four records with the eager cell's rounds and spread.
    assert list(old) == [dataclasses.replace(r, floor_rounds=None, floor_spread=None)
                         for r in new]
    eager = old.by_cell()[EAGER]
    assert eager.floor_seconds == 8e-5 and eager.efficiency_high == eager.efficiency
    frame = old.to_frame()
    assert frame["floor_rounds"].isna().all() and frame["floor_spread"].isna().all()


# The columns schema 5 added (issue 18): the machine's state, Keras, the peak memory.
SCHEMA_5_MACHINE_AND_MEMORY = (
    "keras_version", "logical_cores", "physical_cores", "memory_bytes", "cpu_affinity",
    "cpu_frequency_mhz", "cpu_governor", "virtual_machine", "container", "load_average_start",
    "load_average_end", "peak_rss_bytes", "device_peak_bytes")


def test_a_schema_4_file_reads_with_the_machine_and_memory_columns_empty():
    old, new = read_results(SCHEMA_4), read_results(SMALL)
    assert (old.schema_version, new.schema_version) == (4, 5)
    # small-v5.csv is small-v4.csv's four records with the machine and each peak (and the
    # TensorFlow cells' build, above).
    assert list(old) == [_without_schema_5(r) for r in new]
    assert new.by_cell()[EAGER].facts["logical_cores"] == 2
    assert new.by_cell()[EAGER].facts["peak_rss_bytes"] == 1_572_864
    assert new.by_cell()[LOOP].facts["load_average_end"] == 1.73
    frame = old.to_frame()
    assert frame["logical_cores"].isna().all() and (frame["virtual_machine"] == "").all()
    assert frame["peak_rss_bytes"].isna().all()


def test_a_schema_2_file_gives_the_same_cells_with_the_old_convention_filled_in():
    old, new = read_results(SCHEMA_2), read_results(SCHEMA_3)
    assert (old.schema_version, new.schema_version) == (2, 3)
    # small-v3.csv is small-v2.csv's four records with the convention linfit then used.
    assert list(old) == list(new)
    conventions = {(r.cell.backend, r.cell.variant): r.cell.convention for r in old}
    assert conventions == {("tensorflow", "eager"): "", ("tensorflow", "xla-loop"): "args",
                           ("tensorflow", "function"): "args", ("jax", "jit"): ""}
    assert {(r.cell.replicas, r.facts["strategy"]) for r in old} == {(1, "none")}


def test_legacy_convention():
    assert legacy_convention("tensorflow", compiled=True) == "args"
    assert legacy_convention("tensorflow", compiled=False) == ""
    assert legacy_convention("jax", compiled=True) == ""


# --- schema 1 --------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted([
    *Path(__file__).parent.parent.glob("results/*/*.csv"), SCHEMA_1, DATA / "new.csv",
    *PLOTS.glob("*.csv")]), ids=lambda p: p.name)
def test_every_committed_results_file_is_still_read(path):
    results = read_results(path)
    assert results.schema_version in READABLE_SCHEMA_VERSIONS and len(results) > 0
    if results.schema_version != 1:
        return
    for record in results:
        assert record.reference is None and record.to_row()["reference"] == "unknown"
        assert (record.check_placement, record.check_traces,
                record.check_convergence) == ("unknown",) * 3
        assert record.facts["run_interrupted"] is None
        assert record.cell.replicas == 1 and record.facts["strategy"] == "none"
        assert record.cell.convention == legacy_convention(record.cell.backend,
                                                           record.facts["compiled"])


def test_schema_1_samples_become_per_call_and_keep_their_statistics():
    frame = pd.read_csv(SCHEMA_1)
    results = read_results(SCHEMA_1)
    for record, (_, row) in zip(results, frame.iterrows(), strict=True):
        if record.ok:
            stored = [float(s) for s in row["samples_seconds"].split()]
            assert record.per_step_seconds == pytest.approx(stored, rel=1e-15)
            assert record.median_seconds == pytest.approx(row["median_seconds"], rel=1e-12)


def test_a_schema_1_file_rewritten_is_the_current_schema(tmp_path):
    again = read_results(write_results(read_results(SCHEMA_1), tmp_path / "v5.csv"))
    assert again.schema_version == SCHEMA_VERSION == 5
    assert [r.per_call_seconds for r in again] == [r.per_call_seconds
                                                    for r in read_results(SCHEMA_1)]
    assert again[0].check_placement == "unknown"


# --- the reader refuses what it cannot trust -------------------------------------------

def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def _edited(tmp_path: Path, change: Callable[[list[str], list[list[str]]], None],
            source: Path = SMALL) -> Path:
    header, rows = _rows(source)
    change(header, rows)
    target = tmp_path / "edited.csv"
    with target.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    return target


def _set(column: str, value: str, row: int = 0):
    def change(header: list[str], rows: list[list[str]]) -> None:
        rows[row][header.index(column)] = value
    return change


def _cut(row: int, keep: int):
    def change(header: list[str], rows: list[list[str]]) -> None:
        rows[row][:] = rows[row][:keep]
    return change


def _extra(row: int):
    def change(header: list[str], rows: list[list[str]]) -> None:
        rows[row].append("surprise")
    return change


def _multiline_message_then(column: str, value: str):
    """Row 4's message spans three physical lines; then row 4 (line 5) is not the bad one:
    the bad value goes into the row after it, which starts on physical line 8."""
    def change(header: list[str], rows: list[list[str]]) -> None:
        rows[3][header.index("message")] = "first\nsecond\nthird"
        rows.append(list(rows[0]))
        rows[-1][header.index("variant")] = "function-loop"
        rows[-1][header.index(column)] = value
    return change


# (change, the line and column in the message, what it says)
REFUSALS: dict[str, tuple[Callable, str, str]] = {
    "short row": (_cut(1, 40), "line 3, column ", "the row ends after 40 of the header's"),
    "short row cut mid-samples": (_cut(2, 49), "line 4, column ",
                                  "the row ends after 49 of the header's"),
    "long row": (_extra(2), "line 4:", "fields where the header has"),
    "extra field in the first data row": (_extra(0), "line 2:", "(extra after column"),
    "status outside the vocabulary": (_set("status", "passed", 1), "line 3, column status",
                                      "'passed' is not one of ok, failed"),
    "zero median": (_set("median_seconds", "0", 0), "line 2, column median_seconds",
                    "0.0 is not strictly positive"),
    "negative first call": (_set("first_call_seconds", "-0.5", 1),
                            "line 3, column first_call_seconds", "-0.5 is not strictly positive"),
    "zero sample": (_set("call_samples_seconds", "0.001 0.0 0.001 0.001 0.001", 0),
                    "line 2, column call_samples_seconds",
                    "holds a time that is not strictly positive"),
    "fractional n_examples": (_set("n_examples", "1000.7", 0), "line 2, column n_examples",
                              "'1000.7' is not an integer"),
    "zero steps_per_call": (_set("steps_per_call", "0", 1), "line 3, column steps_per_call",
                            "0 is not strictly positive"),
    "median disagrees with the samples": (_set("median_seconds", "123.0", 2),
                                          "line 4, column median_seconds",
                                          "123.0 disagrees with the samples"),
    "round count disagrees with the samples": (_set("rounds", "9", 0), "line 2, column rounds",
                                               "9 rounds, but call_samples_seconds holds 5"),
    "unknown backend": (_set("backend", "tensorflw", 0), "line 2, column backend",
                        "'tensorflw' is not one of tensorflow, jax, torch"),
    "unknown dtype": (_set("dtype", "float8", 0), "line 2, column dtype",
                      "'float8' is not one of float32, float64, bfloat16, float16"),
    "unknown check outcome": (_set("check_traces", "fine", 0), "line 2, column check_traces",
                              "'fine' is not one of ok, failed, not-run, unknown"),
    "efficiency that is not floor / median": (_set("efficiency", "0.5", 0),
                                              "line 2, column efficiency",
                                              "is not floor_seconds / the median"),
    "physical line after a quoted multi-line field": (
        _multiline_message_then("dtype", "float8"), "line 8, column dtype",
        "'float8' is not one of"),
    "ok row without samples": (_set("call_samples_seconds", "", 1),
                               "line 3, column call_samples_seconds",
                               "is empty in an ok row"),
    "duplicated cell": (lambda header, rows: rows.append(list(rows[0])), "lines 2 and 6",
                        "duplicated cell (tensorflow CPU:0 eager n=1000 float32 k=1)"),
    "future schema_version": (_set("schema_version", "6", 0), "line 2, column schema_version",
                              "'6' is not a schema_version this linfit reads (it reads 1, 2, 3, "
                              "4 and 5); it was written by a newer linfit"),
    "mixed schema_versions": (_set("schema_version", "2", 2), "line 4, column schema_version",
                              "2 differs from the first row's 5"),
    "commit not the build's": (_set("tensorflow_commit", "0123456789a", 0),
                               "line 2, column tensorflow_commit",
                               "'0123456789a' is not the commit in tensorflow_git_version "
                               "('a481b10260d')"),
    "floor spread below 1": (_set("floor_spread", "0.9", 0), "line 2, column floor_spread",
                             "0.9 is below 1"),
    "floor spread of one round": (
        lambda header, rows: (_set("floor_rounds", "1", 0)(header, rows),
                              _set("floor_spread", "1.25", 0)(header, rows)),
        "line 2, column floor_spread", "1.25 where floor_rounds is 1"),
    "zero floor rounds": (_set("floor_rounds", "0", 0), "line 2, column floor_rounds",
                          "0 is not strictly positive"),
    "zero replicas": (_set("replicas", "0", 1), "line 3, column replicas",
                      "0 is not strictly positive"),
    "empty replicas": (_set("replicas", "", 1), "line 3, column replicas",
                       "is empty where a value is required"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_the_reader_refuses(case, tmp_path):
    change, where, what = REFUSALS[case]
    bad = _edited(tmp_path, change)
    with pytest.raises(ResultsFileError) as error:
        read_results(bad)
    message = str(error.value)
    assert message.startswith(f"{bad} "), message
    assert where in message and what in message, message
    assert "\n" not in message


@pytest.mark.parametrize("command", ["compare", "check"])
@pytest.mark.parametrize("case", ["short row", "fractional n_examples",
                                  "median disagrees with the samples", "unknown backend"])
def test_the_commands_exit_2_with_one_line_and_leave_the_file(case, command, tmp_path, capsys):
    change, where, what = REFUSALS[case]
    bad = _edited(tmp_path, change)
    before = digest(bad)
    argv = ["compare", str(SMALL), str(bad)] if command == "compare" else ["check", str(bad)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"linfit {command}: error: {bad} ") and where in line and what in line
    assert digest(bad) == before


def test_a_schema_1_row_with_a_round_count_but_no_samples_is_refused(tmp_path):
    bad = _edited(tmp_path, _set("samples_seconds", "", 4), source=SCHEMA_1)
    with pytest.raises(ResultsFileError, match="line 6, column samples_seconds: is empty in an "
                                               "ok row"):
        read_results(bad)
    failed = _edited(tmp_path, lambda header, rows: (
        _set("status", "failed", 4)(header, rows), _set("samples_seconds", "", 4)(header, rows)),
        source=SCHEMA_1)
    with pytest.raises(ResultsFileError, match="line 6, column rounds: 40 rounds, but "
                                               "samples_seconds holds 0 samples"):
        read_results(failed)


def test_a_failed_row_may_lack_what_it_never_measured(tmp_path):
    def untimed(header: list[str], rows: list[list[str]]) -> None:
        for column in ("call_samples_seconds", "rounds", "min_seconds", "median_seconds",
                       "mean_seconds", "stddev_seconds", "iqr_seconds", "max_seconds",
                       "final_w", "placement", "device_name"):
            rows[3][header.index(column)] = ""
    [*_, failed] = read_results(_edited(tmp_path, untimed))
    assert not failed.ok and not failed.timed and failed.final_w is None


def test_every_schema_5_column_is_declared_once():
    assert len(set(COLUMN_NAMES)) == len(COLUMN_NAMES)
    assert {"tensorflow_git_version", "tensorflow_commit", *SCHEMA_5_MACHINE_AND_MEMORY,
            "hlo_kernels_per_step", "hlo_loops", "hlo_bytes_per_step", "hlo_bytes_ratio"} == (
        set(COLUMN_NAMES) - {c.name for c in columns_of(4)})
    assert {"floor_rounds", "floor_spread"} == {c.name for c in columns_of(4)} - {
        c.name for c in columns_of(3)}
    assert {"replicas", "convention", "strategy"} == {c.name for c in columns_of(3)} - {
        c.name for c in columns_of(2)}
    assert "samples_seconds" in {c.name for c in columns_of(1)} - set(COLUMN_NAMES)
    assert {"call_samples_seconds", "reference", "reference_w", "reference_b",
            "check_placement", "check_traces", "check_convergence",
            "run_interrupted"} <= set(COLUMN_NAMES) - {c.name for c in columns_of(1)}


def test_a_reference_names_backend_variant_and_device():
    reference = Reference.parse("jax eager CPU:0", 3.0, 2.0)
    assert str(reference) == "jax eager CPU:0" and reference.w == 3.0
    with pytest.raises(ValueError):
        Reference.parse("jax eager")


def test_the_record_module_imports_no_pandas():
    """Issue 19: a measurement is recorded without pandas (a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys, linfit.results.record; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ,
                                            "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_cell_module_imports_nothing_of_linfit():
    import linfit.results.cell as cell_module

    source = Path(cell_module.__file__).read_text()
    assert "import linfit" not in source and "from linfit" not in source


def test_a_reference_that_is_not_three_words_is_refused_in_one_line(tmp_path):
    # Found by the property tests: a traceback (ValueError) before the reader checked it.
    bad = _edited(tmp_path, _set("reference", "abc"))
    with pytest.raises(ResultsFileError, match=r"line 2, column reference: 'abc' is not "
                                               r"'backend variant device'"):
        read_results(bad)


@pytest.mark.parametrize("command", [["check"], ["compare", str(SMALL)], ["plot", "-o", "{out}"],
                                     ["report", "-o", "{out}/r.md"]])
def test_a_byte_order_mark_reads_the_same_in_every_command(tmp_path, capsys, command):
    """Issue 20 class 8: Excel's "CSV UTF-8" starts with a BOM; every reader drops it."""
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + SMALL.read_bytes())
    assert list(read_results(excel)) == list(read_results(SMALL))
    args = [arg.format(out=tmp_path / "out") for arg in command]
    status = main([args[0], str(excel), *args[1:]])
    err = capsys.readouterr().err
    assert status in (0, 1) and "error" not in err, err


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "'=x",
                                  "''@x", "'plain", "plain", "--xla_cpu_flag=1"])
def test_text_a_spreadsheet_would_run_is_escaped_and_read_back_exactly(tmp_path, text):
    from linfit.results.columns import escape_text, unescape_text

    assert unescape_text(escape_text(text)) == text
    record = dataclasses.replace(read_results(SMALL)[0], message=text, facts={
        **read_results(SMALL)[0].facts, "xla_flags": text})
    path = write_results([record], tmp_path / "r.csv")
    [again] = read_results(path)
    assert again == record and again.facts["xla_flags"] == text
    [row] = list(csv.DictReader(path.open(newline="")))
    runs = text.lstrip("'")[:1] in ("=", "+", "-", "@", "\t", "\r")
    assert row["message"] == ("'" + text if runs else text)


def test_numbers_are_never_escaped(tmp_path):
    record = dataclasses.replace(read_results(SMALL)[0], final_w=-3.0, final_b=-2.5)
    path = write_results([record], tmp_path / "r.csv")
    [row] = list(csv.DictReader(path.open(newline="")))
    assert (row["final_w"], row["final_b"]) == ("-3.0", "-2.5")
    assert read_results(path)[0].final_w == -3.0
