"""linfit/results_files.py: several results files read as one run, through the one reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from linfit._errors import LinfitError, ResultsFileError
from linfit.results import read_frame
from linfit.results_files import read_results_files

DATA = Path(__file__).parent / "data" / "plots"


def test_files_are_read_by_the_reader_and_joined_in_order():
    paths = [DATA / "single_size.csv", DATA / "single_variant.csv"]
    combined = read_results_files(paths)
    frames = [read_frame(path) for path in paths]
    assert len(combined) == sum(len(frame) for frame in frames)
    assert list(combined["variant"]) == [v for frame in frames for v in frame["variant"]]


def test_a_cell_in_two_files_names_both(tmp_path):
    copy = tmp_path / "copy.csv"
    copy.write_bytes((DATA / "single_size.csv").read_bytes())
    with pytest.raises(LinfitError, match=rf"appears twice: both .*single_size.csv and {copy}"):
        read_results_files([DATA / "single_size.csv", copy])
    with pytest.raises(LinfitError, match="is given twice"):
        read_results_files([copy, copy])


def test_a_file_the_reader_refuses_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,results,file\n")
    with pytest.raises(ResultsFileError, match=r"bad\.csv"):
        read_results_files([DATA / "single_size.csv", bad])
