"""``linfit compare``: is a new run slower than a base run, cell by cell, beyond the noise?

The comparison is computed by :mod:`linfit.compare`; this module only renders it (a
terminal table, markdown or CSV) and turns it into the exit status.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from linfit._errors import LinfitError
from linfit._format import (
    format_ratio,
    format_seconds,
    markdown_table,
    markdown_text,
    text_table,
)
from linfit.commands._args import alpha_level, fraction
from linfit.compare import (
    COMPARISON_COLUMNS,
    EXIT_OK,
    Comparison,
    Decision,
    compare_files,
    decide,
)
from linfit.results import Cell
from linfit.stats import (
    BOOTSTRAP_RESAMPLES,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    MIN_SAMPLES,
)

FORMATS = ("terminal", "markdown", "csv")

# Table columns: header, right-aligned (numbers) or not.
_HEADERS = (("backend", False), ("dtype", False), ("n", True), ("variant", False),
            ("steps/call", True), ("base", True), ("new", True), ("new/base [CI]", False),
            ("verdict", False))

EPILOG = f"""\
cells are matched by backend, device id, variant, n, dtype, steps/call, replicas and
calling convention (both shown beside the variant where not the default). Times are
medians per training step. new/base is their ratio (above 1: new is slower), with a
(1 - alpha) confidence interval:
  one run per side (BASE NEW, or --base A --new B): a block bootstrap of the per-round
    samples ({BOOTSTRAP_RESAMPLES} resamples, fixed seed). It covers the noise within each
    run, NOT the drift between runs (10-30% between back-to-back runs on a shared VM).
  several runs per side (--base A1 A2 A3 --new B1 B2 B3, at least 2 each): the unit is
    each run's median; times are geometric means of them, and the interval is Welch's t
    on their logs, so drift between runs is inside it.
  For A/B runs measured interleaved in one session, see 'linfit ab'.
  linfit/stats.py says why each method.

verdicts:
  slower        ratio > 1 + threshold and the interval is above 1: a regression
  faster        ratio < 1 / (1 + threshold) and the interval is below 1
  noise         the ratio is beyond the threshold but the interval contains 1
                (or a side has fewer than {MIN_SAMPLES} rounds): not significant
  unchanged     the ratio is within the threshold
  failed        the cell failed in either file
  only-in-base, only-in-new
                the cell is in one file only

With BASE NEW1 NEW2 ..., BASE is compared with each NEW in turn (one run per side).
Warnings about different machines, software versions, environment flags or device names
are printed but do not change the exit status; so are the warnings on stderr where a
run's load average exceeded its CPUs or the two sides' machines differ (cores, memory,
CPU model, VM or container).

exit status:
  0  no regression, and something was compared
  1  a failed gate: a cell significantly slower beyond the threshold; a cell ok in BASE
     that failed in NEW; a BASE cell missing from NEW (unless --allow-missing); or
     nothing compared at all (no cell ok on both sides)
  2  unusable input: a missing, empty or foreign file, an unknown schema_version,
     a malformed row or value (one line names file, line, column), bad arguments
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare results files: slower, faster, unchanged or noise per cell",
        description="Compare the step times of NEW results files with a BASE file, cell by\n"
                    "cell, with confidence intervals and a verdict per cell.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="*", metavar="BASE.csv NEW.csv",
                        help="the reference run, then the run(s) to judge against it, each "
                             "in turn")
    parser.add_argument("--base", type=Path, nargs="+", dest="base_runs", metavar="CSV",
                        help="several runs of the base side (use with --new)")
    parser.add_argument("--new", type=Path, nargs="+", dest="new_runs", metavar="CSV",
                        help="several runs of the new side (use with --base)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="BASE cells missing from NEW do not fail (the output says so)")
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
             Cell.from_row(row).variant_label, str(row["steps_per_call"]),
             format_seconds(row["base_median_seconds"]),
             format_seconds(row["new_median_seconds"]),
             format_ratio(row["ratio"], row["ratio_low"], row["ratio_high"]),
             str(row["verdict"])]
            for row in table.to_dict("records")]


def _devices(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(device id, its names, its rows) per device, in table order."""
    return [(str(device), " / ".join(dict.fromkeys(str(n) for n in rows["device_name"])), rows)
            for device, rows in table.groupby("device", sort=False)]


def _summary(comparison: Comparison, decision: Decision) -> tuple[str, str, list[str]]:
    """(the verdict counts, the outcome, one line per failure and note)."""
    counts = comparison.counts()
    parts = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    threshold = f"{comparison.threshold:.0%}"
    outcome = (f"the gate fails ({len(decision.failures)} reason(s))" if decision.failures
               else f"no regression (no cell significantly slower by more than {threshold})")
    lines = [*(f"fail: {failure}" for failure in decision.failures),
             *(f"note: {note}" for note in decision.notes)]
    return f"{len(comparison.table)} cells: {parts}", outcome, lines


def _intervals(comparison: Comparison) -> str:
    over = (f"intervals over runs ({comparison.base_runs} base, {comparison.new_runs} new)"
            if comparison.over_runs else "intervals over the rounds of one run per side")
    return f"{_confidence(comparison.alpha)} confidence {over}"


def render_terminal(comparison: Comparison, base: str, new: str,
                    decision: Decision | None = None) -> str:
    """The comparison as fixed-width text tables, one per device, then what it means
    (``decision``, default :func:`linfit.compare.decide`)."""
    decision = decision or decide(comparison)
    headers = [name for name, _ in _HEADERS]
    headers[7] = f"new/base [{_confidence(comparison.alpha)} CI]"
    devices = [(device, names, _cells(rows)) for device, names, rows
               in _devices(comparison.table)]
    # One table for every device, so that the columns line up from one device to the next.
    lines = text_table([headers, None, *(cells for *_, rows in devices for cells in rows)],
                       [right for _, right in _HEADERS], indent="  ")
    head, body = lines[:2], iter(lines[2:])
    out = [f"{base} -> {new}: threshold {comparison.threshold:.0%}, {_intervals(comparison)}"]
    for device, names, rows in devices:
        out += ["", f"{device}  {names}", *head, *(next(body) for _ in rows)]
    if comparison.differences:
        out += ["", "warnings (they do not change the exit status):"]
        out += [f"  {difference}" for difference in comparison.differences]
    counts, outcome, lines = _summary(comparison, decision)
    out += ["", counts, outcome, *lines]
    return "\n".join(out) + "\n"


def render_markdown(comparison: Comparison, base: str, new: str,
                    decision: Decision | None = None) -> str:
    """The comparison as GitHub markdown: a heading and a table per device, then what it
    means (``decision``, default :func:`linfit.compare.decide`)."""
    decision = decision or decide(comparison)
    confidence = _confidence(comparison.alpha)
    headers = [name for name, _ in _HEADERS]
    headers[7] = f"new/base [{confidence} CI]"
    out = [f"## `{base}` → `{new}`", "",
           f"Threshold {comparison.threshold:.0%}, {_intervals(comparison)}."]
    for device, names, rows in _devices(comparison.table):
        cells = _cells(rows)
        for row in cells:
            if row[-1] == "slower":
                row[-1] = "**slower**"
        out += ["", f"### {device} — {markdown_text(names)}", "",
                markdown_table(headers, cells, [right for _, right in _HEADERS])]
    if comparison.differences:
        out += ["", "**Warnings** (they do not change the exit status):", ""]
        out += [f"- {markdown_text(difference)}" for difference in comparison.differences]
    counts, outcome, lines = _summary(comparison, decision)
    out += ["", f"**{counts}**; {outcome}."]
    if lines:
        out += ["", *(f"- {markdown_text(line)}" for line in lines)]
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


_RENDERERS: dict[str, Callable[[Comparison, str, str, Decision], str]] = {
    "terminal": render_terminal, "markdown": render_markdown,
}


def _sides(args: argparse.Namespace) -> list[tuple[list[Path], list[Path]]]:
    """(base files, new files) of each comparison the arguments ask for."""
    if args.base_runs or args.new_runs:
        if args.files:
            raise LinfitError("give BASE NEW ... or --base ... --new ..., not both")
        if not (args.base_runs and args.new_runs):
            raise LinfitError("--base and --new go together: give both")
        return [(list(args.base_runs), list(args.new_runs))]
    if len(args.files) < 2:
        raise LinfitError("give a BASE and at least one NEW file (or --base ... --new ...)")
    base, *news = args.files
    return [([base], [new]) for new in news]


def _name(paths: Sequence[Path]) -> str:
    return " ".join(str(path) for path in paths)


def run(args: argparse.Namespace) -> int:
    sides = _sides(args)
    if args.plot and len(sides) > 1:
        raise LinfitError(f"--plot draws one comparison: give one NEW file, not {len(sides)}")
    if args.plot:
        from linfit.plots import check_figure_path  # matplotlib only when a figure is asked

        check_figure_path(args.plot)  # before anything prints
    # Compute every comparison first: bad input in any file fails before anything prints.
    comparisons = [(_name(base), _name(new), compare_files(base, new, args.threshold,
                                                           args.alpha))
                   for base, new in sides]
    decisions = [decide(comparison, args.allow_missing) for _, _, comparison in comparisons]
    for base, new, comparison in comparisons:
        for line in comparison.machine_warnings:
            print(f"linfit compare: warning: {base} -> {new}: {line}", file=sys.stderr)
    if args.format == "csv":
        sys.stdout.write(render_csv(comparisons))
        for (base, new, comparison), decision in zip(comparisons, decisions, strict=True):
            for difference in comparison.differences:
                print(f"linfit compare: warning: {base} -> {new}: {difference}",
                      file=sys.stderr)
            for line in (*decision.failures, *decision.notes):
                print(f"linfit compare: {base} -> {new}: {line}", file=sys.stderr)
    else:
        sys.stdout.write("\n".join(
            _RENDERERS[args.format](comparison, base, new, decision)
            for (base, new, comparison), decision in zip(comparisons, decisions, strict=True)))
    if args.plot:
        from linfit.plots import plot_comparison

        written = plot_comparison(comparisons[0][2].table, args.plot)
        print(f"figure written to {written}", file=sys.stderr if args.format == "csv"
              else sys.stdout)
    return max((decision.exit_status for decision in decisions), default=EXIT_OK)
