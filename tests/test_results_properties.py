"""Property tests of both readers (issue 20): any mutation of a valid results file or pairs
file either reads to valid records (the same, where the mutation cannot be told from valid
data) or raises the reader's one-line error. Never a traceback, a hang or an accepted
change that no writer could have made.

The bulk goes through the reader functions; a few mutations go through the command line
(``linfit check`` and ``linfit ab --from``): exit 2 and one line on stderr.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linfit._errors import ResultsFileError
from linfit.ab.pairs import PAIRS_SCHEMA_VERSION, PairsWriter, read_pairs
from linfit.cli import main
from linfit.results import ALL_COLUMNS, read_results, write_results
from linfit.results.pairs import PAIRS_COLUMNS

DATA = Path(__file__).parent / "data" / "results"
RESULTS_TEXT = (DATA / "valid-results.csv").read_text()
PAIRS_TEXT = (DATA / "valid-pairs.csv").read_text()
# Enough examples to try every kind of mutation on most columns, in a few seconds a reader.
EXAMPLES = 200
# No single read may take longer: a hang is a failure, not a slow test.
READ_SECONDS = 20

# Values a mutated field takes: non-finite, negative, zero, huge, another type, text a
# spreadsheet would run, and blanks.
ODD_VALUES = ("", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "-0", "1e308",
              "9" * 30, "1.5", "abc", "True", "=1+1", "@SUM(A1)", "'x", "ok", "failed",
              "tensorflow", "float64", "-1 2", "1 nan")
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging) when the block takes longer than ``seconds``."""
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"a read took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@st.composite
def mutations(draw: st.DrawFn, text: str) -> tuple[str, str, str]:
    """(kind, column, mutated text) of one mutation of ``text``."""
    rows = _rows(text)
    header = rows[0]
    kind = draw(st.sampled_from(("set", "set", "set", "drop", "duplicate", "duplicate-row",
                                 "cut")))
    row = draw(st.integers(1, len(rows) - 1))
    column = draw(st.integers(0, len(header) - 1))
    fields = list(rows[row])
    if kind == "set":
        original = fields[column]
        fields[column] = draw(st.one_of(
            st.sampled_from(ODD_VALUES), st.text(max_size=8),
            st.sampled_from((f"-{original}", original * 2, original[:-1], f"{original}0",
                             f"{original} {original}"))))
        rows[row] = fields
    elif kind == "drop":
        del fields[column]
        rows[row] = fields
    elif kind == "duplicate":
        fields.insert(column, fields[column])
        rows[row] = fields
    elif kind == "duplicate-row":
        rows.insert(draw(st.integers(1, len(rows))), fields)
    mutated = _text(rows)
    if kind == "cut":
        mutated = text[:draw(st.integers(1, len(text) - 2))]
    return kind, header[column], mutated


def _one_line(error: Exception, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(str(path)), message


def _must_refuse(kind: str, mutated: str, original: str) -> bool:
    """Whether no writer could have written ``mutated``: a field dropped or duplicated, a
    row written twice, or a row cut short (a cut that ends on a line end is a shorter file
    that a writer could have left)."""
    if kind in ("drop", "duplicate", "duplicate-row"):
        return True
    return kind == "cut" and not mutated.endswith("\n")


_NUMERIC = {column.name for column in ALL_COLUMNS if column.type in ("int", "float", "samples")}


def _numeric_values(rows: list[list[str]], header: list[str]) -> Iterator[tuple[str, str]]:
    for fields in rows[1:]:
        for name, value in zip(header, fields, strict=False):
            if name in _NUMERIC:
                yield name, value


def _holds_non_finite(text: str) -> bool:
    rows = _rows(text)
    for _, value in _numeric_values(rows, rows[0]):
        for word in value.split():
            try:
                if not math.isfinite(float(word)):
                    return True
            except ValueError:
                return True
    return False


@PROPERTY_SETTINGS
@given(mutations(RESULTS_TEXT))
def test_a_mutated_results_file_reads_to_valid_records_or_is_refused(mutation):
    kind, column, mutated = mutation
    original = list(read_results(DATA / "valid-results.csv"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated.csv"
        path.write_text(mutated)
        try:
            with time_limit(READ_SECONDS):
                records = list(read_results(path))
        except ResultsFileError as error:
            _one_line(error, path)
            return
        assert not _must_refuse(kind, mutated, RESULTS_TEXT), (kind, column)
        assert not _holds_non_finite(mutated), (kind, column)
        # What was read is valid: written again and read back, it is the same records.
        again = write_results(records, Path(folder) / "again.csv")
        assert list(read_results(again)) == records
        if kind == "cut":  # a cut at a line end: the first rows, unchanged
            assert records == original[:len(records)]


# Integers a pairs row may leave empty (the session settings of schema 3): -1 in the frame.
_OPTIONAL_PAIRS_INTS = {column.name for column in PAIRS_COLUMNS
                        if column.type == "int" and not column.required}


def _pairs_frame_rows(frame) -> list[dict[str, object]]:
    """The frame's rows as the writer takes them: the -1 that stands for a failed row's
    missing integers or a missing optional one, and the NaN of a missing optional number,
    back to empty; without schema_version, which the writer sets (a file of an older schema
    is rewritten in the current one)."""
    return [{name: ("" if (value == -1 and name != "round" and row["status"] == "failed")
                    or (value == -1 and name in _OPTIONAL_PAIRS_INTS)
                    or (isinstance(value, float) and math.isnan(value)) else value)
             for name, value in row.items() if name not in ("seconds_per_step",
                                                            "schema_version")}
            for row in frame.to_dict("records")]


@PROPERTY_SETTINGS
@given(mutations(PAIRS_TEXT))
def test_a_mutated_pairs_file_reads_to_valid_bursts_or_is_refused(mutation):
    kind, column, mutated = mutation
    original = _pairs_frame_rows(read_pairs(DATA / "valid-pairs.csv"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated-ab.csv"
        path.write_text(mutated)
        try:
            with time_limit(READ_SECONDS):
                frame = read_pairs(path)
        except ResultsFileError as error:
            _one_line(error, path)
            return
        assert not _must_refuse(kind, mutated, PAIRS_TEXT), (kind, column)
        assert not _holds_non_finite(mutated), (kind, column)
        rows = _pairs_frame_rows(frame)
        # Every number a burst derives is a finite positive time (NaN only where failed).
        for row, seconds in zip(rows, frame["seconds_per_step"], strict=True):
            assert row["status"] in ("ok", "failed")
            if row["status"] == "ok":
                assert seconds > 0 and math.isfinite(seconds)
        writer = PairsWriter(Path(folder) / "again-ab.csv")
        for row in rows:
            writer.append(row)
        again = writer.finish()
        assert again is not None and _pairs_frame_rows(read_pairs(again)) == rows
        assert set(read_pairs(again)["schema_version"]) == {PAIRS_SCHEMA_VERSION}
        if kind == "cut":
            assert rows == original[:len(rows)]
        elif column in ("side_index", "round", "status", "sequence", "order_position"):
            # The structure of a session: a change here is always refused or not a change.
            assert rows == original


@pytest.mark.parametrize(("kind", "edit"), [
    ("a row twice", lambda rows: [*rows, rows[-1]]),
    ("a field dropped", lambda rows: [rows[0], rows[1][:-1], *rows[2:]]),
    ("a NaN time", lambda rows: [rows[0], [("nan" if name == "min_seconds" else value)
                                           for name, value in zip(rows[0], rows[1],
                                                                  strict=True)], *rows[2:]]),
])
def test_linfit_check_refuses_a_mutated_results_file_in_one_line(tmp_path, capsys, kind,
                                                                  edit):
    path = tmp_path / "mutated.csv"
    path.write_text(_text(edit(_rows(RESULTS_TEXT))))
    with time_limit(READ_SECONDS):
        status = main(["check", str(path)])
    err = capsys.readouterr().err
    assert status == 2, kind
    assert len(err.strip().splitlines()) == 1 and str(path) in err, err


@pytest.mark.parametrize(("kind", "edit"), [
    ("every row twice", lambda text: text + text.split("\n", 1)[1]),
    ("a row cut in the middle", lambda text: text[:-20]),
    ("a third side", lambda text: text.replace(",1,B,0,0,", ",2,B,0,0,", 1)),
    ("a negative round", lambda text: text.replace(",1,B,0,0,", ",1,B,-2,0,", 1)),
    ("an unknown status", lambda text: text.replace(",ok,", ",fine,", 1)),
    ("a negative time", lambda text: text.replace(",1010 1011 ", ",-1010 1011 ", 1)),
    ("zero calls per sample", lambda text: text.replace(",2,1010 ", ",0,1010 ", 1)),
])
def test_linfit_ab_from_refuses_a_mutated_pairs_file_in_one_line(tmp_path, capsys, kind,
                                                                  edit):
    path = tmp_path / "mutated-ab.csv"
    mutated = edit(PAIRS_TEXT)
    assert mutated != PAIRS_TEXT, kind
    path.write_text(mutated)
    with time_limit(READ_SECONDS):
        status = main(["ab", "--from", str(path)])
    err = capsys.readouterr().err
    assert status == 2, kind
    assert len(err.strip().splitlines()) == 1 and str(path) in err, err


# Characters around the integer syntax: digits and signs, what str.split() splits on (a
# space, a tab, \x1c, no-break and em spaces, NEL), and what int() would take but the writer
# never writes (an underscore, a plus, an Arabic-Indic digit).
_INTEGER_FIELD_CHARACTERS = "0123456789-+ \t\x1c\u00a0\u2003\x85_a\u0663"


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(alphabet=_INTEGER_FIELD_CHARACTERS, max_size=12))
def test_an_integer_field_is_checked_whole_as_it_was_word_by_word(text):
    """The pairs reader checks a field of integers (call_ns) with one pattern over the whole
    field, not one per word: it accepts exactly the fields whose every word (as
    str.split() splits them) is an integer as the writer writes one."""
    from linfit.results.pairs import _INTEGER, _INTEGERS

    word_by_word = all(_INTEGER.fullmatch(word) for word in text.split())
    assert (_INTEGERS.fullmatch(text) is not None) == word_by_word
