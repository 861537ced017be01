"""The pairs file (linfit/ab/pairs.py) and its figures (linfit/ab/plots.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from linfit._errors import ResultsFileError
from linfit.ab.analysis import analyse
from linfit.results.pairs import (
    PAIRS_COLUMNS,
    PAIRS_SCHEMA_VERSION,
    PARTIAL_SUFFIX,
    PairsWriter,
    burst_seconds_per_step,
    is_pairs_file,
    read_pairs,
)


def _burst(side: int, pair: int, call_ns: list[int], **extra: object) -> dict[str, object]:
    return {"session_id": "s", "backend": "tensorflow", "device": "CPU:0",
            "variant": "xla-loop", "n_examples": 1000, "dtype": "float32",
            "steps_per_call": 100, "side_index": side, "side_label": "AB"[side],
            "round": pair, "order_position": side, "sequence": 2 * pair + side,
            "start_unix_ns": 10**18 + pair * 10**9, "calls_per_sample": 2, "status": "ok",
            "call_ns": call_ns, **extra}


def test_a_burst_is_the_median_of_its_samples_per_step():
    # Samples of 2 calls: 300, 700, 400 ns -> median 400 ns / (2 calls * 100 steps).
    assert burst_seconds_per_step([100, 200, 300, 400, 200, 200, 999], 2, 100) == (
        pytest.approx(400e-9 / 200))
    assert burst_seconds_per_step([5], 2, 1) != burst_seconds_per_step([5], 2, 1)  # NaN


def test_rows_are_on_disk_before_the_session_ends_and_renamed_at_its_end(tmp_path):
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1000, 1000]))
    partial = tmp_path / f"s-ab.csv{PARTIAL_SUFFIX}"
    # A crash now keeps the row: the partial file is readable as it is.
    assert len(read_pairs(partial)) == 1
    writer.append(_burst(1, 0, [1100, 1100]))
    path = writer.finish()
    assert path == tmp_path / "s-ab.csv" and not partial.exists()
    frame = read_pairs(path)
    assert list(frame["call_ns"]) == [(1000, 1000), (1100, 1100)]
    assert is_pairs_file(path)


def test_a_schema_1_pairs_file_reads_with_the_key_defaults(tmp_path):
    """Pairs files of before results schema 3 lack replicas and convention: one replica,
    and TensorFlow's compiled variants were called with arguments."""
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1000, 1000], replicas=2, convention="captured"))
    writer.append(_burst(1, 0, [1100, 1100], variant="eager"))
    path = writer.finish()
    current = read_pairs(path)
    assert list(current["replicas"]) == [2, 1] and list(current["convention"]) == [
        "captured", ""]
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    # replicas and convention (schema 2), and the columns of schema 3
    dropped = [header.index(column.name) for column in PAIRS_COLUMNS
               if 1 not in column.versions]
    assert {header[i] for i in dropped} >= {"replicas", "convention"}
    old = tmp_path / "old-ab.csv"
    old.write_text("\n".join(",".join(v for i, v in enumerate(line.split(","))
                                       if i not in dropped).replace(
                                           f"{PAIRS_SCHEMA_VERSION},s,", "1,s,", 1)
                             for line in lines) + "\n")
    frame = read_pairs(old)
    assert list(frame["replicas"]) == [1, 1]
    assert list(frame["convention"]) == ["args", ""]
    assert list(frame["call_ns"]) == [(1000, 1000), (1100, 1100)]


def test_each_side_records_its_tensorflow_build_and_a_schema_2_file_reads_without(tmp_path):
    """Schema 3 (issue 17): the build a side named, its GIT_VERSION and the commit in it."""
    nightly = {"build": "tf-nightly==2.23.0.dev20261026",
               "tensorflow_git_version": "v1.12.1-148158-gef696751006",
               "tensorflow_commit": "ef696751006"}
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1000, 1000], **nightly))
    writer.append(_burst(1, 0, [1100, 1100], tensorflow_git_version="v2.20.0-rc0-7-g72fbba3d20f",
                         tensorflow_commit="72fbba3d20f"))
    path = writer.finish()
    frame = read_pairs(path)
    assert list(frame["build"]) == [nightly["build"], ""]
    assert list(frame["tensorflow_commit"]) == ["ef696751006", "72fbba3d20f"]
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    dropped = [header.index(name) for name in ("build", "tensorflow_git_version",
                                                "tensorflow_commit")]
    old = tmp_path / "v2-ab.csv"
    old.write_text("\n".join(",".join(v for i, v in enumerate(line.split(","))
                                       if i not in dropped).replace(
                                           f"{PAIRS_SCHEMA_VERSION},s,", "2,s,", 1)
                             for line in lines) + "\n")
    frame = read_pairs(old)
    assert list(frame["build"]) == list(frame["tensorflow_commit"]) == ["", ""]
    assert list(frame["call_ns"]) == [(1000, 1000), (1100, 1100)]


@pytest.mark.parametrize(("side_b", "column", "what"), [
    ({"tensorflow_git_version": "v2.20.0-rc0-7-g72fbba3d20f", "tensorflow_commit": "0"},
     "tensorflow_commit", "'0' is not the commit in tensorflow_git_version ('72fbba3d20f')"),
    ({"tensorflow_git_version": "v2.20.0", "tensorflow_commit": "72fbba3d20f"},
     "tensorflow_commit", "'72fbba3d20f' is not the commit in tensorflow_git_version ('')"),
])
def test_a_commit_that_is_not_the_one_in_the_git_version_is_refused(tmp_path, side_b, column,
                                                                     what):
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1000, 1000]))
    writer.append(_burst(1, 0, [1100, 1100], **side_b))
    path = writer.finish()
    with pytest.raises(ResultsFileError) as error:
        read_pairs(path)
    assert str(error.value) == f"{path} line 3, column {column}: {what}"


def test_a_side_with_two_builds_is_refused(tmp_path):
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1000, 1000], build="tensorflow==2.20.*"))
    writer.append(_burst(1, 0, [1100, 1100]))
    writer.append(_burst(0, 1, [1000, 1000], build="tensorflow==2.21.*"))
    writer.append(_burst(1, 1, [1100, 1100]))
    path = writer.finish()
    with pytest.raises(ResultsFileError) as error:
        read_pairs(path)
    assert str(error.value).startswith(f"{path} line 4, column build: 'tensorflow==2.21.*' "
                                       "differs from side 0's 'tensorflow==2.20.*'")


def test_a_file_is_never_overwritten(tmp_path):
    (tmp_path / "s-ab.csv").write_text("taken")
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1, 1]))
    assert writer.finish() == tmp_path / "s-ab-2.csv"
    assert (tmp_path / "s-ab.csv").read_text() == "taken"


def test_a_session_without_rows_leaves_no_file(tmp_path):
    assert PairsWriter(tmp_path / "s-ab.csv").finish() is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("text", "message"), [
    ("a,b\n1,2\n", "not a linfit pairs file"),
    ("schema_version,session_id\n", "no bursts"),
    ("schema_version,session_id\n9,s\n", "schema_version '9'"),
    ("schema_version,session_id\n1,s\n", "missing columns"),
])
def test_unusable_files_are_refused_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ResultsFileError, match=message):
        read_pairs(path)


def test_failed_cells_and_incomplete_pairs(tmp_path):
    writer = PairsWriter(tmp_path / "s-ab.csv")
    for pair in range(3):
        writer.append(_burst(0, pair, [1000, 1000]))
        writer.append(_burst(1, pair, [1200, 1200]))
    writer.append(_burst(0, 3, [1000, 1000]))  # B crashed before its burst
    writer.append(_burst(1, -1, [], variant="xla", status="failed", message="retraced",
                         calls_per_sample="", order_position="", start_unix_ns=""))
    frame = read_pairs(writer.finish())
    table = analyse(frame).table.set_index("variant")
    assert table.loc["xla-loop", "pairs"] == 3
    assert table.loc["xla-loop", "ratio"] == pytest.approx(1.2)
    assert table.loc["xla", "verdict"] == "failed"
    assert table.loc["xla", "message"] == "B: retraced"


def test_too_few_pairs_for_an_interval_is_no_verdict(tmp_path):
    # 3 pairs cannot give a 99% interval: the cell is not called unchanged on nothing, and
    # it counts among the failed rows (the exit status says so).
    writer = PairsWriter(tmp_path / "s-ab.csv")
    for pair in range(3):
        writer.append(_burst(0, pair, [1000 + pair, 1000]))
        writer.append(_burst(1, pair, [1001 + pair, 1000]))
    comparison = analyse(read_pairs(writer.finish()))
    [row] = comparison.table.to_dict("records")
    assert row["verdict"] == "too-few-pairs" and row["pairs"] == 3
    assert "--max-seconds" in row["message"]
    assert len(comparison.failed) == 1


def test_figures_of_a_pairs_file(tmp_path):
    from linfit.ab.plots import draw_pairs_figures

    writer = PairsWriter(tmp_path / "s-ab.csv")
    for pair in range(12):
        writer.append(_burst(0, pair, [1000 + pair, 1000]))
        writer.append(_burst(1, pair, [1100 + pair, 1100]))
    written = draw_pairs_figures(read_pairs(writer.finish()), tmp_path / "fig", "s-ab",
                                 ["png", "svg"])
    assert sorted(p.name for p in written) == [
        f"s-ab-{name}.{fmt}" for name in ("bursts", "ratios", "sides") for fmt in ("png", "svg")]
    assert all(p.stat().st_size > 1000 for p in written)


def test_every_panel_of_the_sides_figure_gives_a_variant_the_same_colour(tmp_path,
                                                                        monkeypatch):
    # Cells come back in a shuffled order each round: two panels that met their variants in
    # opposite orders must still draw each variant in its one colour (one legend for all).
    from matplotlib.colors import to_hex

    import linfit.ab.plots as ab_plots
    from linfit.plots import variant_color

    drawn = []
    monkeypatch.setattr(ab_plots, "save_figure", lambda figure, path: drawn.append(figure) or path)
    writer = PairsWriter(tmp_path / "s-ab.csv")
    for n_examples, variants in ((1000, ("xla", "eager")), (100000, ("eager", "xla"))):
        for pair in range(3):
            for variant in variants:
                for side in (0, 1):
                    writer.append(_burst(side, pair, [1000, 1000], variant=variant,
                                         n_examples=n_examples, steps_per_call=1))
    ab_plots._draw_sides(read_pairs(writer.finish()), {0: "A", 1: "B"}, tmp_path / "s.png")
    lines = [line for ax in drawn[0].axes for line in ax.get_lines()]
    assert len(lines) == 4
    for line in lines:
        variant = line.get_label().split()[1]
        assert to_hex(line.get_color()) == to_hex(variant_color("tensorflow", variant))


def test_results_readme_documents_every_column():
    from pathlib import Path

    from linfit.results.pairs import PAIRS_COLUMNS

    text = (Path(__file__).parents[1] / "results" / "README.md").read_text()
    section = text[text.index("## A/B pairs files"):]
    for column in PAIRS_COLUMNS:
        assert f"| `{column.name}` | {column.type} |" in section


# --- the reader's strictness (issue 20 class 3) ------------------------------------------

VALID_PAIRS = Path(__file__).parent / "data" / "results" / "valid-pairs.csv"


def _replace_field(text: str, line: int, column: str, value: str) -> str:
    lines = text.split("\n")
    header = lines[0].split(",")
    fields = lines[line - 1].split(",")
    fields[header.index(column)] = value
    lines[line - 1] = ",".join(fields)
    return "\n".join(lines)


# (line, column, new value, where the reader says it is, what it says)
PAIRS_REFUSALS = {
    "a third side": (2, "side_index", "2", "line 2, column side_index",
                     "2 is labelled 'B', the label of side 1"),
    "a side beyond the sides": (14, "side_index", "5", "line 14, column side_index",
                                "5 is labelled 'B', the label of side 1"),
    "a side's other label": (4, "side_label", "C", "line 4, column side_label",
                             "'C' where side 0 is labelled 'A'"),
    "a negative round": (2, "round", "-2", "line 2, column round", "is below -1"),
    "round -1 in an ok row": (2, "round", "-1", "line 2, column round", "-1 in an ok row"),
    "a round skipped": (10, "round", "3", "line 10, column round",
                        "3 where this side's bursts of the cell so far make it 2"),
    "an unknown status": (2, "status", "fine", "line 2, column status",
                          "'fine' is not one of ok, failed"),
    "an empty status": (2, "status", "", "line 2, column status",
                        "'' is not one of ok, failed"),
    "a failed row with a round": (14, "round", "0", "line 14, column round",
                                  "0 in a failed row"),
    "a failed row with a burst": (14, "call_ns", "5 5", "line 14, column call_ns",
                                  "holds a value in a failed row"),
    "a zero time": (2, "call_ns", "0 1 2 3", "line 2, column call_ns",
                    "not strictly positive"),
    "a negative time": (2, "call_ns", "-5 1 2 3", "line 2, column call_ns",
                        "not strictly positive"),
    "zero calls per sample": (2, "calls_per_sample", "0", "line 2, column calls_per_sample",
                              "0 is not strictly positive"),
    "fewer calls than a sample": (2, "calls_per_sample", "8", "line 2, column call_ns",
                                  "4 calls, fewer than one sample"),
    "a huge integer": (2, "start_unix_ns", "9" * 30, "line 2, column start_unix_ns",
                       "beyond a 64-bit integer"),
    "a fraction": (2, "n_examples", "1000.5", "line 2, column n_examples",
                   "'1000.5' is not an integer"),
    "NaN calls": (2, "call_ns", "nan", "line 2, column call_ns", "not an integer"),
    "an unknown dtype": (2, "dtype", "float31", "line 2, column dtype", "is not one of"),
    "a sequence out of order": (3, "sequence", "7", "line 3, column sequence",
                                "7 where the bursts so far make it 1"),
    "a position twice": (3, "order_position", "0", "line 3, column order_position",
                         "a second row for this order_position"),
    "a position beyond the sides": (3, "order_position", "2", "line 3, column order_position",
                                    "2 with 2 sides"),
    "a second session": (3, "session_id", "other", "line 3, column session_id",
                         "a pairs file is one session"),
    "a side's other interpreter": (4, "python", "/bin/py", "line 4, column python",
                                   "differs from side 0's"),
}


@pytest.mark.parametrize("case", list(PAIRS_REFUSALS))
def test_the_pairs_reader_refuses_naming_line_and_column(tmp_path, case):
    line, column, value, where, what = PAIRS_REFUSALS[case]
    path = tmp_path / "bad-ab.csv"
    path.write_text(_replace_field(VALID_PAIRS.read_text(), line, column, value))
    with pytest.raises(ResultsFileError) as error:
        read_pairs(path)
    message = str(error.value)
    assert message.startswith(f"{path} {where}: ") and what in message, message
    assert "\n" not in message


@pytest.mark.parametrize(("case", "edit", "where"), [
    ("every row twice", lambda text: text + text.split("\n", 1)[1],
     "line 15, column side_index: a second row"),
    ("a row cut in the middle", lambda text: text[:-20], "line 14: the last row has no "
                                                         "line end"),
    ("a field dropped", lambda text: text.replace(",ok,,", ",ok,", 1),
     f"line 2, column {PAIRS_COLUMNS[-1].name}: the row ends after "
     f"{len(PAIRS_COLUMNS) - 1}"),
    ("a column twice", lambda text: text.replace("git_commit", "host", 1), "line 1: the "
                                                                          "header names host"),
])
def test_the_structure_of_a_pairs_file_is_checked(tmp_path, case, edit, where):
    path = tmp_path / "bad-ab.csv"
    path.write_text(edit(VALID_PAIRS.read_text()))
    with pytest.raises(ResultsFileError, match=f"^{path} {where}"):
        read_pairs(path)


def test_a_byte_order_mark_reads_the_same_as_without(tmp_path, capsys):
    from linfit.cli import main

    excel = tmp_path / "excel-ab.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + VALID_PAIRS.read_bytes())
    assert is_pairs_file(excel)
    assert read_pairs(excel).equals(read_pairs(VALID_PAIRS))
    assert main(["ab", "--from", str(excel)]) in (0, 1)
    assert "error" not in capsys.readouterr().err


def test_text_a_spreadsheet_would_run_is_escaped_in_pairs_files(tmp_path):
    writer = PairsWriter(tmp_path / "s-ab.csv")
    writer.append(_burst(0, 0, [1000, 1000], side_label="=A", message="",
                         python="-python", host="@host"))
    writer.append(_burst(1, 0, [1100, 1100], side_label="'+B", host="@host"))
    path = writer.finish()
    text = path.read_text()
    assert ",'=A," in text and ",'-python," in text and ",'@host," in text
    assert ",''+B," in text
    frame = read_pairs(path)
    assert list(frame["side_label"]) == ["=A", "'+B"]
    assert list(frame["python"]) == ["-python", ""]
    assert list(frame["n_examples"]) == [1000, 1000]  # numbers are never escaped

