"""``linfit ab``: paired, interleaved A/B of two or more environments, cell by cell.

The session runs in :mod:`linfit.ab.coordinator`, the verdicts come from
:mod:`linfit.ab.analysis`; this module parses the sides and options, renders the table
(terminal, markdown or CSV) and turns it into the exit status.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from linfit._errors import LinfitError
from linfit._format import format_ratio, format_seconds, markdown_table, text_table
from linfit.ab.analysis import ABComparison
from linfit.commands._args import (
    CELL_OPTIONS,
    add_cell_options,
    alpha_level,
    fraction,
    int_at_least,
    positive_float,
)
from linfit.compare import EXIT_OK, EXIT_REGRESSION
from linfit.results import Cell
from linfit.stats import DEFAULT_ALPHA

if TYPE_CHECKING:
    from linfit.ab.coordinator import SessionResult

FORMATS = ("terminal", "markdown", "csv")
# Options that shape a session, by dest, with their defaults filled in by _session_options;
# none of them applies to --from, which measures nothing.
_SESSION_DESTS = ("pairs", "min_pairs", "max_pairs", "max_seconds", "seed", "results")
_HEADERS = (("backend", False), ("dtype", False), ("n", True), ("variant", False),
            ("steps/call", True), ("pairs", True), ("A", True), ("B", True),
            ("B/A [CI]", False), ("MDE", True), ("verdict", False))


def _epilog() -> str:
    from linfit.ab.analysis import DEFAULT_AB_THRESHOLD
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
    )
    from linfit.ab.spec import LABEL_RULE

    return f"""\
sides: "LABEL: [PYTHON | BUILD] [NAME=VALUE ...]", split like a shell line. LABEL is
{LABEL_RULE} (default: A, B, ...). PYTHON is an interpreter path, a name on PATH, or
tox:ENV (.tox/ENV/bin/python); the default is this one. BUILD is a TensorFlow build,
PACKAGE==VERSION (tensorflow, tensorflow-cpu, tf-nightly, tf-nightly-cpu): its venv is made
once when the session starts (about a minute) and cached (`linfit builds`); a build that
does not install or import is left out, with one line, while two sides are left. NAME=VALUE
sets an environment variable for that side only. A spec may not be empty: 'base:' is this
interpreter as it is. Examples:

  linfit ab --aa                                   # A/A: this machine's noise
  linfit ab --side "tf220: tox:tf220" --side "tf221: tox:tf221"
  linfit ab --side "2.20: tensorflow==2.20.*" --side "n1026: tf-nightly==2.23.0.dev20261026"
  linfit ab --side "default:" --sizes 1e7 \
      --side "no-rewrite: XLA_FLAGS=--xla_disable_hlo_passes=tree_reduction_rewriter"

Each side runs one worker process; every side runs this linfit source, so only the
environment differs. Bursts of about 60 ms alternate between the sides in a balanced,
seeded order, one worker at a time, across all cells round by round. Each cell gets
{DEFAULT_MIN_PAIRS} pairs, then more while its interval straddles the threshold (at most
{DEFAULT_MAX_PAIRS}), within --max-seconds ({DEFAULT_MAX_SECONDS:g} s, start-up included).
Keras' model.fit cells are measured only when --variants names variants (they take most of
a default budget to build).

B/A is the Hodges-Lehmann estimate of the paired ratios of burst medians, with a
Wilcoxon signed-rank (1 - alpha) interval; MDE is the smallest change this session could
detect at its noise and pair count (80% power). The threshold defaults to
{DEFAULT_AB_THRESHOLD:.0%}.

verdicts:
  slower / faster   beyond the threshold and the interval excludes 1
  noise             beyond the threshold, not significant
  unchanged         within the threshold
  failed            the cell failed its checks (placement, traces, convergence) on a side
  no-pairs          no complete pair was measured
  too-few-pairs     fewer pairs than an interval needs (8 at alpha 0.01): the time budget
                    ran out first; raise --max-seconds or select fewer cells

Where a side's load average exceeded its CPUs during the bursts, or the sides' machines
differ (cores, memory, CPU model, VM or container), a warning goes to stderr; it does not
change the exit status.

exit status:
  0  no regression
  1  a cell is slower, a cell failed or got too few pairs, a worker failed, a side's build
     did not install, or the session was interrupted
  2  bad input (one line, before any worker starts where it can be known then): a
     malformed or empty side, a bad or repeated label, an interpreter that does not exist
     or cannot run linfit or the selected backends, builds that leave fewer than two sides,
     a bad cell option, --min-pairs above --max-pairs, --pairs with --min-pairs or
     --max-pairs, session options with --from
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from linfit.ab.analysis import DEFAULT_AB_THRESHOLD
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
        DEFAULT_SEED,
    )
    from linfit.ab.spec import LABEL_RULE

    parser = subparsers.add_parser(
        "ab", help="paired, interleaved A/B of environments: slower, faster or unchanged",
        description="Measure two or more environments (interpreter + environment variables)\n"
                    "alternately, burst by burst, and compare each with the first, cell by cell.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sides = parser.add_mutually_exclusive_group()
    sides.add_argument("--side", action="append", dest="sides", metavar="SPEC",
                       help="one side, 'LABEL: [PYTHON | BUILD] [NAME=VALUE ...]' (give it "
                            "twice or more; the first is the base); BUILD is a TensorFlow "
                            f"build, e.g. tensorflow==2.20.*; LABEL is {LABEL_RULE}")
    sides.add_argument("--aa", action="store_true",
                       help="A/A: this environment against itself, to see the machine's noise")
    sides.add_argument("--from", dest="from_file", type=Path, metavar="PAIRS.csv",
                       help="measure nothing: the verdicts of an existing pairs file")
    add_cell_options(parser)
    parser.add_argument("--threshold", type=fraction, default=DEFAULT_AB_THRESHOLD,
                        help="smallest change that counts, as 0.05 or 5%% "
                             f"(default: {DEFAULT_AB_THRESHOLD * 100:g}%%)")
    parser.add_argument("--alpha", type=alpha_level, default=DEFAULT_ALPHA,
                        help=f"significance level (default: {DEFAULT_ALPHA:g})")
    # The session's options default to None here, so that giving one with --from (or
    # --min-pairs with --pairs) is seen; _session_options fills in the defaults.
    parser.add_argument("--pairs", type=int_at_least(1), metavar="N",
                        help="exactly N pairs per cell, no adaptive sampling (not with "
                             "--min-pairs or --max-pairs)")
    parser.add_argument("--min-pairs", type=int_at_least(1),
                        help=f"pairs per cell before it may stop (default: {DEFAULT_MIN_PAIRS})")
    parser.add_argument("--max-pairs", type=int_at_least(1),
                        help="most pairs per cell, at least --min-pairs "
                             f"(default: {DEFAULT_MAX_PAIRS})")
    parser.add_argument("--max-seconds", type=positive_float,
                        help="wall-time budget of the session, start-up included "
                             f"(default: {DEFAULT_MAX_SECONDS:g})")
    parser.add_argument("--seed", type=int_at_least(0),
                        help=f"seed of the burst order (default: {DEFAULT_SEED})")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the pairs file (default: results/)")
    parser.add_argument("--format", choices=FORMATS, default="terminal",
                        help="terminal table (default), markdown, or CSV")
    parser.set_defaults(func=run)


def _size(n_examples: int) -> str:
    """``1e6`` for a power of ten, else the number: ``2500``."""
    exponent = len(str(n_examples)) - 1
    return f"1e{exponent}" if n_examples == 10 ** exponent and exponent > 1 else str(n_examples)


def _cells(table: pd.DataFrame) -> list[list[str]]:
    return [[str(row["backend"]), str(row["dtype"]), _size(row["n_examples"]),
             Cell.from_row(row).variant_label, str(row["steps_per_call"]), str(row["pairs"]),
             format_seconds(row["base_median_seconds"]),
             format_seconds(row["new_median_seconds"]),
             format_ratio(row["ratio"], row["ratio_low"], row["ratio_high"]),
             "-" if pd.isna(row["mde"]) else f"{row['mde']:.1%}", str(row["verdict"])]
            for row in table.to_dict("records")]


def _confidence(alpha: float) -> str:
    return f"{1 - alpha:.1%}".replace(".0%", "%")


def _groups(comparison: ABComparison) -> list[tuple[str, pd.DataFrame]]:
    table = comparison.table
    out = []
    for (device, base, new), rows in table.groupby(["device", "base_label", "new_label"],
                                                   sort=False):
        names = " / ".join(dict.fromkeys(str(n) for n in rows["device_name"] if n))
        out.append((f"{device}  {names}  {new} against {base}".rstrip(), rows))
    return out


def _headers(base: str, new: str, alpha: float) -> list[str]:
    headers = [name for name, _ in _HEADERS]
    headers[6], headers[7] = base, new
    headers[8] = f"{new}/{base} [{_confidence(alpha)} CI]"
    return headers


def _summary(comparison: ABComparison, notes: Sequence[str]) -> list[str]:
    counts = comparison.counts()
    table = comparison.table
    mde = table["mde"].dropna()
    parts = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    lines = [f"{len(table)} comparisons: {parts}"]
    if len(mde):
        lines.append(f"median minimum detectable effect {mde.median():.1%} "
                     f"(the threshold is {comparison.threshold:.0%})")
    return [*lines, *notes]


def render_terminal(comparison: ABComparison, title: str, notes: Sequence[str] = ()) -> str:
    """The verdicts as fixed-width tables, one per device and compared side."""
    out = [title]
    right = [right for _, right in _HEADERS]
    for heading, rows in _groups(comparison):
        base, new = rows["base_label"].iloc[0], rows["new_label"].iloc[0]
        headers = _headers(base, new, comparison.alpha)
        out += ["", heading, *text_table([headers, None, *_cells(rows)], right, indent="  ")]
    out += ["", *_summary(comparison, notes)]
    return "\n".join(out) + "\n"


def render_markdown(comparison: ABComparison, title: str, notes: Sequence[str] = ()) -> str:
    """The verdicts as GitHub markdown tables."""
    out = [f"## {title}"]
    right = [right for _, right in _HEADERS]
    for heading, rows in _groups(comparison):
        base, new = rows["base_label"].iloc[0], rows["new_label"].iloc[0]
        cells = _cells(rows)
        for row in cells:
            if row[-1] == "slower":
                row[-1] = "**slower**"
        out += ["", f"### {heading}", "",
                markdown_table(_headers(base, new, comparison.alpha), cells, right)]
    out += ["", *(f"{line}  " for line in _summary(comparison, notes))]
    return "\n".join(out) + "\n"


def render_csv(comparison: ABComparison) -> str:
    """The verdict table as CSV (:data:`linfit.ab.analysis.AB_COLUMNS`)."""
    buffer = io.StringIO()
    comparison.table.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _session_options(args: argparse.Namespace) -> None:
    """Check the flags that go together or not, then fill in the session's defaults.

    Raises:
        LinfitError: for session options given with --from, or --pairs with --min-pairs
            or --max-pairs. The values themselves are checked, all in one place, by
            :func:`linfit.ab.coordinator.check_config`.
    """
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
        DEFAULT_SEED,
        cli_flag,
    )

    if args.from_file is not None:
        given = [f"--{dest.replace('_', '-')}" for dest in _SESSION_DESTS
                 if getattr(args, dest) is not None]
        given += [cli_flag(option) for option in CELL_OPTIONS
                  if getattr(args, option.dest) is not None]
        if given:
            raise LinfitError(f"--from reads a finished pairs file and measures nothing; "
                              f"leave out {', '.join(given)}")
        return
    if args.pairs is not None:
        given = [flag for flag, value in (("--min-pairs", args.min_pairs),
                                          ("--max-pairs", args.max_pairs)) if value is not None]
        if given:
            raise LinfitError(f"--pairs N is exactly N pairs per cell: give it without "
                              f"{' and '.join(given)}")
        args.min_pairs = args.max_pairs = args.pairs
    defaults = {"min_pairs": DEFAULT_MIN_PAIRS, "max_pairs": DEFAULT_MAX_PAIRS,
                "max_seconds": DEFAULT_MAX_SECONDS, "seed": DEFAULT_SEED,
                "results": Path("results")}
    # One bound given alone moves the other's default with it: --min-pairs 300 raises the
    # maximum to 300, --max-pairs 5 lowers the minimum to 5. Both given must agree.
    if args.min_pairs is not None and args.max_pairs is None:
        defaults["max_pairs"] = max(DEFAULT_MAX_PAIRS, args.min_pairs)
    if args.max_pairs is not None and args.min_pairs is None:
        defaults["min_pairs"] = min(DEFAULT_MIN_PAIRS, args.max_pairs)
    for dest, default in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)


def _save_hlo(result: SessionResult, path: Path) -> list[str]:
    """Write the changed cells' HLO and diffs beside the pairs file; the notes to print.
    A file that cannot be written costs nothing measured: it is a note."""
    from linfit.ab.hlo_files import hlo_folder, write_hlo_files

    if not result.hlo:
        return []
    try:
        written, problems = write_hlo_files(result.hlo, path)
    except OSError as error:
        return [f"warning: the HLO files could not be written to {hlo_folder(path)}: "
                f"{error.strerror or error}"]
    cells = len({capture.worker_key for capture in result.hlo})
    notes = [f"warning: {problem}" for problem in problems]
    if written:
        notes.append(f"optimized HLO of the {cells} changed cells and their diffs: "
                     f"{hlo_folder(path)}/ ({len(written)} files)")
    return notes


def run(args: argparse.Namespace) -> int:
    from linfit.ab.analysis import analyse, machine_warnings
    from linfit.ab.coordinator import SessionConfig, run_session
    from linfit.ab.spec import aa_sides, parse_sides
    from linfit.results.pairs import read_pairs

    notes: list[str] = []
    failed_session = False
    _session_options(args)
    if args.from_file is not None:
        path = args.from_file
    else:
        if args.aa:
            sides = aa_sides()
        elif args.sides:
            sides = parse_sides(args.sides)
        else:
            raise LinfitError("give the sides: --side SPEC twice or more, or --aa")
        config = SessionConfig(
            sides=tuple(sides),
            values={option.dest: getattr(args, option.dest) for option in CELL_OPTIONS},
            environ=dict(os.environ), results_dir=args.results, threshold=args.threshold,
            alpha=args.alpha, min_pairs=args.min_pairs, max_pairs=args.max_pairs,
            max_seconds=args.max_seconds, seed=args.seed)
        result = run_session(config)
        for failure in result.failures:
            print(f"linfit ab: {failure}", file=sys.stderr)
        notes += result.unavailable
        if result.interrupted:
            notes.append("interrupted: the table holds the pairs measured until then")
        failed_session = bool(result.failures or result.unavailable) or result.interrupted
        if result.path is None:
            print("linfit ab: nothing was measured", file=sys.stderr)
            return EXIT_REGRESSION
        path = result.path
        notes.append(f"{result.rounds} rounds, {result.decided}/{result.cells} cells decided "
                     f"in {result.seconds:.0f} s; pairs file: {path}")
        notes += _save_hlo(result, path)
    pairs = read_pairs(path)
    comparison = analyse(pairs, args.threshold, args.alpha)
    for line in machine_warnings(pairs):
        print(f"linfit ab: warning: {line}", file=sys.stderr)
    if args.format == "csv":
        sys.stdout.write(render_csv(comparison))
        for note in notes:
            print(f"linfit ab: {note}", file=sys.stderr)
    else:
        title = (f"{path}: " + " vs ".join(comparison.labels)
                 + f", threshold {comparison.threshold:.0%}, "
                 f"{_confidence(comparison.alpha)} intervals")
        render = render_terminal if args.format == "terminal" else render_markdown
        sys.stdout.write(render(comparison, title, notes))
    if (failed_session or len(comparison.worsened) or len(comparison.failed)
            or comparison.table.empty):
        return EXIT_REGRESSION
    return EXIT_OK
