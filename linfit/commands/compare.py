"""``linfit compare``: is a new run slower than a base run, cell by cell, beyond the noise?

The comparison is computed by :mod:`linfit.compare`; this module only renders it (a
terminal table, markdown or CSV) and turns it into the exit status.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from linfit._errors import LinfitError
from linfit.compare import (
    COMPARISON_COLUMNS,
    EXIT_OK,
    EXIT_REGRESSION,
    Comparison,
    compare_files,
    format_ratio,
    format_seconds,
)
from linfit.stats import (
    BOOTSTRAP_RESAMPLES,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    MIN_ALPHA,
    MIN_SAMPLES,
)

FORMATS = ("terminal", "markdown", "csv")

# Table columns: header, right-aligned (numbers) or not.
_HEADERS = (("backend", False), ("dtype", False), ("n", True), ("variant", False),
            ("steps/call", True), ("base", True), ("new", True), ("new/base [CI]", False),
            ("verdict", False))

EPILOG = f"""\
cells are matched by backend, device id, variant, n, dtype and steps/call. Times are
medians per training step. new/base is their ratio (above 1: new is slower), with a
(1 - alpha) confidence interval from a block bootstrap of the per-round samples
({BOOTSTRAP_RESAMPLES} resamples, fixed seed; see linfit/stats.py for why).

verdicts:
  slower        ratio > 1 + threshold and the interval is above 1: a regression
  faster        ratio < 1 / (1 + threshold) and the interval is below 1
  noise         the ratio is beyond the threshold but the interval contains 1
                (or a side has fewer than {MIN_SAMPLES} rounds): not significant
  unchanged     the ratio is within the threshold
  failed        the cell failed in either file
  only-in-base, only-in-new
                the cell is in one file only

With several NEW files, BASE is compared with each in turn. Warnings about different
machines, software versions, environment flags or device names are printed but do not
change the exit status.

exit status:
  0  no regression
  1  at least one cell is slower (significant and beyond the threshold)
  2  unusable input: a missing, empty or foreign file, an unknown schema_version,
     missing columns, bad values or duplicated cells (one line names file, line, column)
"""


def fraction(text: str) -> float:
    """A threshold: ``10%`` or ``0.1``; without ``%`` it must be below 1, so that ``10``
    is not silently read as 1000%."""
    percent = text.strip().endswith("%")
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.1 or 10%") from None
    if percent:
        value /= 100
    if not (math.isfinite(value) and value > 0) or (not percent and value >= 1):
        raise argparse.ArgumentTypeError(
            f"{text} is not a threshold: give a fraction like 0.1 (< 1) or a percentage "
            "like 10% (> 0)")
    return value


def alpha_level(text: str) -> float:
    """A significance level between :data:`~linfit.stats.MIN_ALPHA` and 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not MIN_ALPHA <= value <= 0.5:
        raise argparse.ArgumentTypeError(
            f"{text} must be between {MIN_ALPHA:g} (the bootstrap's resolution) and 0.5")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare results files: slower, faster, unchanged or noise per cell",
        description="Compare the step times of NEW results files with a BASE file, cell by\n"
                    "cell, with confidence intervals and a verdict per cell.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", type=Path, metavar="BASE.csv", help="the reference run")
    parser.add_argument("new", type=Path, nargs="+", metavar="NEW.csv",
                        help="the run(s) to judge against BASE, each in turn")
    parser.add_argument("--threshold", type=fraction, default=DEFAULT_THRESHOLD,
                        help="smallest change that counts, as 0.1 or 10%% "
                             f"(default: {DEFAULT_THRESHOLD * 100:g}%%)")
    parser.add_argument("--alpha", type=alpha_level, default=DEFAULT_ALPHA,
                        help=f"significance level: the intervals are (1 - alpha) "
                             f"(default: {DEFAULT_ALPHA:g})")
    parser.add_argument("--format", choices=FORMATS, default="terminal",
                        help="terminal table (default), markdown, or the comparison as CSV "
                             "(with base_file and new_file columns)")
    parser.add_argument("--plot", type=Path, metavar="FILE",
                        help="also draw the ratios with their intervals (one NEW file only)")
    parser.set_defaults(func=run)


def _confidence(alpha: float) -> str:
    return f"{1 - alpha:.1%}".replace(".0%", "%")


def _cells(table: pd.DataFrame) -> list[list[str]]:
    """The text of each table row, in :data:`_HEADERS` order."""
    return [[str(row["backend"]), str(row["dtype"]), str(row["n_examples"]),
             str(row["variant"]), str(row["steps_per_call"]),
             format_seconds(row["base_median_seconds"]),
             format_seconds(row["new_median_seconds"]),
             format_ratio(row["ratio"], row["ratio_low"], row["ratio_high"]),
             str(row["verdict"])]
            for row in table.to_dict("records")]


def _devices(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(device id, its names, its rows) per device, in table order."""
    return [(str(device), " / ".join(dict.fromkeys(str(n) for n in rows["device_name"])), rows)
            for device, rows in table.groupby("device", sort=False)]


def _summary(comparison: Comparison) -> list[str]:
    counts = comparison.counts()
    parts = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    worse = len(comparison.worsened)
    threshold = f"{comparison.threshold:.0%}"
    verdict = (f"regression: {worse} cell{'s are' if worse > 1 else ' is'} significantly slower "
               f"by more than {threshold}" if worse else
               f"no regression (no cell significantly slower by more than {threshold})")
    return [f"{len(comparison.table)} cells: {parts}", verdict]


def render_terminal(comparison: Comparison, base: str, new: str) -> str:
    """The comparison as fixed-width text tables, one per device."""
    headers = [name for name, _ in _HEADERS]
    headers[7] = f"new/base [{_confidence(comparison.alpha)} CI]"
    widths = [max([len(h), *(len(row[i]) for row in _cells(comparison.table))])
              for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  " + "  ".join(value.rjust(width) if right else value.ljust(width)
                                for value, width, (_, right)
                                in zip(values, widths, _HEADERS, strict=True)).rstrip()

    out = [f"{base} -> {new}: threshold {comparison.threshold:.0%}, "
           f"{_confidence(comparison.alpha)} confidence intervals"]
    for device, names, rows in _devices(comparison.table):
        out += ["", f"{device}  {names}", line(headers), line(["-" * w for w in widths])]
        out += [line(cells) for cells in _cells(rows)]
    if comparison.differences:
        out += ["", "warnings (they do not change the exit status):"]
        out += [f"  {difference}" for difference in comparison.differences]
    out += ["", *_summary(comparison)]
    return "\n".join(out) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(comparison: Comparison, base: str, new: str) -> str:
    """The comparison as GitHub markdown: a heading and a table per device."""
    confidence = _confidence(comparison.alpha)
    headers = [name for name, _ in _HEADERS]
    headers[7] = f"new/base [{confidence} CI]"
    rule = ["--:" if right else ":--" for _, right in _HEADERS]
    out = [f"## `{base}` → `{new}`", "",
           f"Threshold {comparison.threshold:.0%}, {confidence} confidence intervals."]
    for device, names, rows in _devices(comparison.table):
        out += ["", f"### {device} — {_markdown_cell(names)}", "",
                "| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
        for cells in _cells(rows):
            if cells[-1] == "slower":
                cells[-1] = "**slower**"
            out.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    if comparison.differences:
        out += ["", "**Warnings** (they do not change the exit status):", ""]
        out += [f"- {_markdown_cell(str(difference))}" for difference in comparison.differences]
    summary = _summary(comparison)
    out += ["", f"**{summary[0]}**; {summary[1]}."]
    return "\n".join(out) + "\n"


def render_csv(comparisons: Sequence[tuple[str, str, Comparison]]) -> str:
    """The comparisons as one CSV: base_file, new_file, then :data:`COMPARISON_COLUMNS`."""
    frames = [comparison.table.assign(base_file=base, new_file=new)
              for base, new, comparison in comparisons]
    table = pd.concat(frames, ignore_index=True)[["base_file", "new_file",
                                                  *COMPARISON_COLUMNS]]
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


_RENDERERS: dict[str, Callable[[Comparison, str, str], str]] = {
    "terminal": render_terminal, "markdown": render_markdown,
}


def run(args: argparse.Namespace) -> int:
    if args.plot and len(args.new) > 1:
        raise LinfitError(f"--plot draws one comparison: give one NEW file, not {len(args.new)}")
    # Compute every comparison first: bad input in any file fails before anything prints.
    comparisons = [(str(args.base), str(new), compare_files(args.base, new, args.threshold,
                                                            args.alpha))
                   for new in args.new]
    if args.format == "csv":
        sys.stdout.write(render_csv(comparisons))
        for base, new, comparison in comparisons:
            for difference in comparison.differences:
                print(f"linfit compare: warning: {base} -> {new}: {difference}",
                      file=sys.stderr)
    else:
        sys.stdout.write("\n".join(_RENDERERS[args.format](comparison, base, new)
                                   for base, new, comparison in comparisons))
    if args.plot:
        from linfit.plots import plot_comparison

        written = plot_comparison(comparisons[0][2].table, args.plot)
        print(f"figure written to {written}", file=sys.stderr if args.format == "csv"
              else sys.stdout)
    worsened = any(len(comparison.worsened) for _, _, comparison in comparisons)
    return EXIT_REGRESSION if worsened else EXIT_OK
