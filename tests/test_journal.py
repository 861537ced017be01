"""The journal of finished cells, `linfit recover`, and the check of an output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linfit._paths import output_dir_problem
from linfit.cli import main
from linfit.results import Cell, read_results
from linfit.results.journal import (
    JOURNAL_SUFFIX,
    Journal,
    JournalError,
    leftover_journals,
    read_journal,
    recover,
)
from linfit.results.record import CellResult

RUN_ID = "20261127T013000Z-host-abc1234567"


def _result(variant: str, seconds: float = 1e-3, status: str = "ok") -> CellResult:
    row = {"backend": "tensorflow", "device": "CPU:0", "variant": variant, "n_examples": 1000,
           "dtype": "float32", "steps_per_call": 1, "status": status,
           "message": "" if status == "ok" else "it broke", "run_id": RUN_ID,
           "timestamp_utc": "2026-11-27T01:30:00+00:00", "git_commit": "abc1234567",
           "git_dirty": False, "host": "host", "os": "Linux", "python_version": "3.11",
           "numpy_version": "2", "cpu_model": "cpu", "backend_version": "2.21",
           "device_kind": "CPU", "device_name": "cpu", "placement": "CPU:0",
           "intra_op_threads": 0, "inter_op_threads": 0, "compiled": variant != "eager",
           "xla": False, "loop": False, "learning_rate": 0.1, "seed": 0,
           "call_samples_seconds": (seconds, seconds * 1.5, seconds * 0.9),
           "iterations": 1, "first_call_seconds": 0.5, "traces": int(variant != "eager"),
           "convergence_steps": 100, "final_w": 3.0, "final_b": 2.0, "final_loss": 1.0,
           "w_ols": 3.0, "b_ols": 2.0, "reference": "tensorflow eager CPU:0",
           "reference_w": 3.0, "reference_b": 2.0, "check_placement": "ok",
           "check_traces": "ok", "check_convergence": "ok" if status == "ok" else "failed"}
    return CellResult.from_row(row)


def _journal(tmp_path: Path, *results: CellResult) -> Path:
    journal = Journal(tmp_path / f"{RUN_ID}{JOURNAL_SUFFIX}", RUN_ID)
    for result in results:
        journal.append(result.to_row())
    journal.close()
    return journal.path


def test_a_journal_holds_every_appended_cell_and_a_rerun_cell_once(tmp_path):
    eager, xla = _result("eager"), _result("xla", status="failed")
    path = _journal(tmp_path, eager, xla, _result("eager", seconds=2e-3))
    assert path.read_text().count("\n") == 4  # header + 3 cells, each line complete
    contents = read_journal(path)
    assert contents.run_id == RUN_ID and contents.torn_line is None
    assert [r.cell.variant for r in contents.results] == ["xla", "eager"]
    assert contents.results[0].to_row() == xla.to_row()  # the row round-trips
    assert contents.results[1].per_call_seconds == _result("eager", 2e-3).per_call_seconds


def test_a_journal_is_never_appended_to_by_another_run(tmp_path):
    path = _journal(tmp_path, _result("eager"))
    with pytest.raises(FileExistsError):
        Journal(path, RUN_ID).append(_result("xla").to_row())


def test_a_torn_last_line_is_the_cell_in_flight_and_is_left_out(tmp_path):
    path = _journal(tmp_path, _result("eager"), _result("xla"))
    text = path.read_text()
    path.write_text(text + text.splitlines()[-1][:40])  # killed while writing a line
    contents = read_journal(path)
    assert contents.torn_line == 4
    assert len(contents.results) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ('{"something": 1}\n', "line 1: not a linfit journal"),
        ('{"linfit_journal": 9, "run_id": "r"}\n', "line 1: journal format 9 is not one"),
        ('{"linfit_journal": 1, "run_id": "r"}\nnot json\n{}\n', "line 2: not a JSON line"),
        # A complete last line (it ends with a newline) is not torn: it is malformed.
        ('{"linfit_journal": 1, "run_id": "r"}\n{"backend": \n', "line 2: not a JSON line"),
        ('{"linfit_journal": 1, "run_id": "r"}\n[1, 2]\n', "line 2: not a result row"),
        ('{"linfit_journal": 1, "run_id": "r"}\n{"backend": "tensorflow"}\n',
         "line 2: a row without device, variant"),
    ],
)
def test_a_malformed_journal_is_refused_naming_the_line(tmp_path, text, message):
    path = tmp_path / "bad.journal.jsonl"
    path.write_text(text)
    with pytest.raises(JournalError, match=message):
        read_journal(path)


def test_recover_writes_an_interrupted_results_file_and_never_overwrites(tmp_path, capsys):
    path = _journal(tmp_path, _result("eager"), _result("xla"))
    before = path.read_text()
    written, contents = recover(path)
    assert written == tmp_path / f"{RUN_ID}.csv" and len(contents.results) == 2
    records = read_results(written)
    assert [r.cell for r in records] == [r.cell for r in contents.results]
    assert [r.facts["run_interrupted"] for r in records] == [True, True]
    assert records[0].per_call_seconds == _result("eager").per_call_seconds

    assert main(["recover", str(path), "-o", str(tmp_path)]) == 0
    second = tmp_path / f"{RUN_ID}-2.csv"
    assert capsys.readouterr().out == (f"recovered 2 finished cells of run {RUN_ID} into "
                                       f"{second}\n")
    assert read_results(second)[0].facts["run_id"] == f"{RUN_ID}-2"
    assert path.read_text() == before  # the journal is only read


def test_recover_command_errors_are_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.journal.jsonl"
    bad.write_text('{"linfit_journal": 1, "run_id": "r"}\nnot json\n')
    header_only = tmp_path / "empty.journal.jsonl"
    header_only.write_text(json.dumps({"linfit_journal": 1, "run_id": "r"}) + "\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    good = _journal(tmp_path, _result("eager"))
    for args, message in [
        ([str(bad)], f"{bad} line 2: not a JSON line"),
        ([str(header_only)], "holds no finished cell"),
        ([str(tmp_path / "missing.jsonl")], "no such file"),
        ([str(good), "-o", str(blocker / "sub")], f"cannot write the results into {blocker}"),
    ]:
        assert main(["recover", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("linfit recover: error: ") and message in err, err
        assert err.count("\n") == 1


def test_leftover_journals(tmp_path):
    assert leftover_journals(tmp_path / "missing") == []
    path = _journal(tmp_path, _result("eager"))
    (tmp_path / "other.csv").write_text("")
    assert leftover_journals(tmp_path) == [path]


def test_output_folder_problems(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert output_dir_problem(tmp_path) == ""
    assert output_dir_problem(tmp_path / "new" / "deeper") == ""
    assert not (tmp_path / "new").exists()  # checked, not created
    assert output_dir_problem(tmp_path / "file") == f"{tmp_path / 'file'} is not a directory"
    assert output_dir_problem(tmp_path / "file" / "sub") == (
        f"{tmp_path / 'file'} is not a directory (in the path of {tmp_path / 'file' / 'sub'})")
    assert output_dir_problem(tmp_path / "link") == (
        f"{tmp_path / 'link'} is a dangling symbolic link")
    assert list(tmp_path.iterdir()) != [] and not any(
        p.name.startswith(".linfit-probe-") for p in tmp_path.iterdir())
    if Path("/dev/full").exists():
        assert output_dir_problem("/dev/full") == "/dev/full is not a directory"


def test_cell_keys_survive_the_journal(tmp_path):
    path = _journal(tmp_path, _result("eager"))
    assert read_journal(path).results[0].cell == Cell("tensorflow", "CPU:0", "eager", 1000,
                                                      "float32", 1)


@pytest.mark.parametrize(("drop", "why"), [
    ("final_w", "column final_w: is empty where a value is required (the cell is ok)"),
    # No samples: the statistics derived from them are the first thing missing.
    ("call_samples_seconds", "column rounds: is empty where a value is required (the cell "
     "is ok)"),
])
def test_recover_writes_nothing_the_results_reader_would_refuse(tmp_path, capsys, drop, why):
    """Issue 20 class 7: a journal row the reader would refuse (an ok cell without final_w)
    is named with the reader's reason, exit 2, and no file is written."""
    journal = Journal(tmp_path / f"{RUN_ID}{JOURNAL_SUFFIX}", RUN_ID)
    journal.append(_result("xla").to_row())
    journal.append({name: value for name, value in _result("eager").to_row().items()
                    if name != drop})
    journal.close()
    before = sorted(tmp_path.iterdir())
    assert main(["recover", str(journal.path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err == (f"linfit recover: error: {journal.path}: cell tensorflow CPU:0 eager n=1000 "
                   f"float32 k=1 cannot be recovered: {why}; nothing was written\n")
    assert sorted(tmp_path.iterdir()) == before


def test_recover_writes_what_the_reader_reads_back(tmp_path):
    # Text a spreadsheet would run (issue 20 class 8) goes through recover and back.
    journal = Journal(tmp_path / f"{RUN_ID}{JOURNAL_SUFFIX}", RUN_ID)
    journal.append({**_result("eager").to_row(), "message": "", "xla_flags": "--xla_cpu=1",
                    "cpu_model": "=HYPERLINK(1)"})
    journal.close()
    written, _ = recover(journal.path)
    [record] = read_results(written)
    assert record.facts["xla_flags"] == "--xla_cpu=1"
    assert record.facts["cpu_model"] == "=HYPERLINK(1)"
    assert ",'=HYPERLINK(1)," in written.read_text()


@pytest.mark.parametrize(("column", "value"), [("steps_per_call", 0), ("n_examples", -5),
                                               ("replicas", "two"), ("steps_per_call", 1.5),
                                               ("steps_per_call", "0")])
def test_a_journal_row_whose_counts_are_not_counts_is_refused_before_anything_is_derived(
        tmp_path, capsys, column, value):
    path = _journal(tmp_path, _result("eager"))
    assert read_journal(path).results  # as written, it reads
    header, row = path.read_text().splitlines()
    record = json.loads(row)
    record[column] = value
    path.write_text(header + "\n" + json.dumps(record) + "\n")
    with pytest.raises(JournalError, match=f"line 2: column {column}: .* is not an integer >= 1"):
        read_journal(path)
    assert main(["recover", str(path), "-o", str(tmp_path / "out")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
