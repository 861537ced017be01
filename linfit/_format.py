"""Text formatting shared by every command: times, sizes, ratios and tables.

One home for each: the terminal tables of ``linfit compare``, ``linfit ab``, ``linfit
floors`` and the bench session's speed-up summary, and the markdown tables of the report,
``compare`` and ``ab``, all go through :func:`text_table` and :func:`markdown_table` (and
markdown text through :func:`markdown_text`); every time shown anywhere goes through
:func:`format_seconds`, every size on disk through :func:`format_bytes`. Nothing here
computes a number; it only lays numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["format_bytes", "format_ratio", "format_seconds", "markdown_table", "markdown_text",
           "text_table"]

# Time units for display, largest first: the first whose scale fits is used.
_TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
# Size units for display (decimal, as `du --si` and disk makers count), largest first.
_SIZE_UNITS = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("B", 1.0))
# Columns of a terminal table are separated by this many spaces.
_COLUMN_GAP = "  "


def format_seconds(seconds: float) -> str:
    """A time with its unit and three significant digits: ``2.13 µs``, ``21.3 ms``, ``213 s``.

    NaN is shown as ``-``; a negative time (a difference, such as a compile cost below
    eager's) keeps its sign and gets the unit of its magnitude: ``-2.00 ms``.
    """
    if math.isnan(seconds):
        return "-"
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    # Decide on the rounded value, so 999.96 µs shows as 1.00 ms, not 1000 µs; below 1 ns
    # the last unit stays.
    unit, scale = next(((unit, scale) for unit, scale in _TIME_UNITS
                        if float(f"{seconds / scale:.3g}") >= 1), _TIME_UNITS[-1])
    value = seconds / scale
    decimals = 2 if value < 9.995 else 1 if value < 99.95 else 0
    return f"{value:.{decimals}f} {unit}"


def format_bytes(size: float) -> str:
    """A size with its unit and three significant digits: ``2.71 GB``, ``18.5 kB``,
    ``512 B``."""
    unit, scale = next(((unit, scale) for unit, scale in _SIZE_UNITS
                        if float(f"{size / scale:.3g}") >= 1), _SIZE_UNITS[-1])
    value = size / scale
    if unit == "B":
        return f"{size:.0f} B"
    decimals = 2 if value < 9.995 else 1 if value < 99.95 else 0
    return f"{value:.{decimals}f} {unit}"


def format_ratio(ratio: float, low: float, high: float) -> str:
    """``1.27 [1.21, 1.33]``; the interval is left out where it is NaN; ``-`` for NaN."""
    if math.isnan(ratio):
        return "-"
    if math.isnan(low):
        return f"{ratio:.2f}"
    return f"{ratio:.2f} [{low:.2f}, {high:.2f}]"


def text_table(rows: Sequence[Sequence[str] | None],
               right_aligned: Sequence[bool] | None = None, indent: str = "") -> list[str]:
    """Rows of text as fixed-width lines, each column as wide as its widest cell.

    Args:
        rows: the cells, row by row (a header row is just the first row); every row has
            the same number of cells. ``None`` is a rule: dashes as wide as each column.
        right_aligned: per column, whether it is right-aligned (numbers); default: none.
        indent: put before every line.

    Returns:
        One line per row, columns separated by two spaces, trailing spaces removed.
    """
    cells = [row for row in rows if row is not None]
    if not cells:
        return []
    columns = len(cells[0])
    right = tuple(right_aligned) if right_aligned is not None else (False,) * columns
    widths = [max(len(row[i]) for row in cells) for i in range(columns)]
    lines = []
    for row in rows:
        texts = ["-" * width for width in widths] if row is None else row
        lines.append((indent + _COLUMN_GAP.join(
            text.rjust(width) if align_right else text.ljust(width)
            for text, width, align_right in zip(texts, widths, right, strict=True))).rstrip())
    return lines


def markdown_text(value: object) -> str:
    """Text for one markdown table cell or line: ``|`` escaped, newlines as spaces."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                   right_aligned: Sequence[bool] | None = None) -> str:
    """A GitHub markdown table; ``|`` in a cell is escaped and newlines become spaces.

    Args:
        headers: the header row.
        rows: the cells, row by row.
        right_aligned: per column, whether it is right-aligned (``--:``) or left-aligned
            (``:--``); default: GitHub's own alignment (``---``).
    """
    rule = ("|" + "---|" * len(headers) if right_aligned is None else
            "|" + "|".join("--:" if right else ":--" for right in right_aligned) + "|")
    lines = ["| " + " | ".join(markdown_text(h) for h in headers) + " |", rule]
    lines += ["| " + " | ".join(markdown_text(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
