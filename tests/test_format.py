"""linfit._format: the one home of time formatting and of the text and markdown tables."""

from __future__ import annotations

import math

import pytest

from linfit import compare
from linfit._format import format_ratio, format_seconds, markdown_table, text_table


@pytest.mark.parametrize(("seconds", "text"), [
    (2.134e-6, "2.13 µs"), (0.0213, "21.3 ms"), (213.0, "213 s"), (9.9996e-4, "1.00 ms"),
    (-2e-3, "-2.00 ms"), (math.nan, "-"), (5e-10, "0.50 ns"),
])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_compare_re_exports_the_same_functions():
    assert compare.format_seconds is format_seconds
    assert compare.format_ratio is format_ratio


def test_format_ratio():
    assert format_ratio(1.2711, 1.21, 1.334) == "1.27 [1.21, 1.33]"
    assert format_ratio(1.5, math.nan, math.nan) == "1.50"
    assert format_ratio(math.nan, 1, 2) == "-"


def test_text_table_aligns_columns_and_draws_rules():
    lines = text_table([["name", "n"], None, ["xla", "1,000"], ["eager", "10"]],
                       [False, True], indent="  ")
    assert lines == ["  name       n",
                     "  -----  -----",
                     "  xla    1,000",
                     "  eager     10"]
    assert text_table([]) == []


def test_markdown_table_escapes_pipes_and_newlines():
    assert markdown_table(["a", "b"], [["x|y", "1\n2"]]) == (
        "| a | b |\n|---|---|\n| x\\|y | 1 2 |")
