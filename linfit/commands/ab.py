"""``linfit ab``: paired, interleaved A/B of two or more environments, cell by cell.

The session runs in :mod:`linfit.ab.coordinator`, the verdicts come from
:mod:`linfit.ab.analysis`; this module parses the sides and options, renders the table
(terminal, markdown or CSV) and turns it into the exit status.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shlex
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
    non_negative_float,
    positive_float,
)
from linfit.compare import EXIT_OK, EXIT_REGRESSION
from linfit.results import Cell
from linfit.stats import DEFAULT_ALPHA

if TYPE_CHECKING:
    from linfit.ab.coordinator import SessionConfig, SessionResult
    from linfit.ab.projection import SessionProjection

FORMATS = ("terminal", "markdown", "csv")
# Options that shape a session, by dest, with their defaults filled in by _session_options;
# none of them applies to --from, which measures nothing, and --resume takes only
# --max-seconds and --restart-every (and --until-decided): the rest is the session's, read
# from its file.
_SESSION_DESTS = ("pairs", "min_pairs", "max_pairs", "max_seconds", "restart_every", "seed",
                  "results")
_RESUME_REFUSES = ("pairs", "min_pairs", "max_pairs", "seed", "results", "threshold", "alpha")
_HEADERS = (("backend", False), ("dtype", False), ("n", True), ("variant", False),
            ("steps/call", True), ("pairs", True), ("A", True), ("B", True),
            ("B/A [CI]", False), ("MDE", True), ("verdict", False))


def _epilog() -> str:
    from linfit.ab.analysis import DEFAULT_AB_THRESHOLD
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
        DEFAULT_UNTIL_DECIDED_SECONDS,
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
  linfit ab --resume results/<session>-ab.csv --max-seconds 300   # its undecided cells
  linfit ab --side "default:" --sizes 1e7 \
      --side "no-rewrite: XLA_FLAGS=--xla_disable_hlo_passes=tree_reduction_rewriter"

Each side runs one worker process at a time; every side runs this linfit source, so only the
environment differs. Bursts of about 60 ms alternate between the sides in a balanced,
seeded order, one worker at a time, across all cells round by round. Each cell gets
{DEFAULT_MIN_PAIRS} pairs, then more while its interval straddles the threshold (at most
{DEFAULT_MAX_PAIRS}), within --max-seconds ({DEFAULT_MAX_SECONDS:g} s, start-up included).
Keras' model.fit cells are measured only when --variants names variants (they take most of
a default budget to build). --until-decided makes the budget a cap (default
{DEFAULT_UNTIL_DECIDED_SECONDS:g} s): the session ends when every cell is decided. A session
that ends with undecided cells says what each needs (pairs and seconds, from its own noise
and pace) and the command that continues it: --resume PAIRS.csv measures only those cells,
with the same sides, cells and seed, and adds their pairs to the same file; a side whose
interpreter, framework version or settings changed is refused. Every --restart-every seconds
of measuring (where the budget leaves room) each side's worker is replaced by a fresh one:
two processes of one environment can differ by a few per cent, and the interval takes in
how much the sets of workers disagree; no cell is decided on one set's pairs alone.

B/A is the Hodges-Lehmann estimate of the paired ratios of burst medians, with a
Wilcoxon signed-rank interval that holds at 1 - alpha over every look adaptive sampling
takes (each look's interval is wider: Pocock's constant level); MDE is the smallest change
this session could detect at its noise and pair count (80% power). The threshold defaults
to {DEFAULT_AB_THRESHOLD:.0%}.

verdicts:
  slower / faster   beyond the threshold and the interval excludes 1
  noise             beyond the threshold, not significant; or within it, undecided, where
                    its sets of worker processes disagree (the message gives each one's)
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
     --max-pairs, session options with --from, options other than --max-seconds,
     --restart-every and --until-decided with --resume, a pairs file that cannot be resumed,
     a side whose environment changed since the session
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from linfit.ab.analysis import DEFAULT_AB_THRESHOLD
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
        DEFAULT_RESTART_SECONDS,
        DEFAULT_SEED,
        DEFAULT_UNTIL_DECIDED_SECONDS,
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
    sides.add_argument("--resume", type=Path, metavar="PAIRS.csv",
                       help="continue that session: more pairs for its undecided cells, "
                            "the same sides, cells and seed, added to the same file")
    add_cell_options(parser)
    # Default None: --from reads the file's own, and --resume refuses them.
    parser.add_argument("--threshold", type=fraction,
                        help="smallest change that counts, as 0.05 or 5%% "
                             f"(default: {DEFAULT_AB_THRESHOLD * 100:g}%%, or the pairs "
                             "file's with --from)")
    parser.add_argument("--alpha", type=alpha_level,
                        help=f"significance level (default: {DEFAULT_ALPHA:g}, or the pairs "
                             "file's with --from)")
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
                             f"(default: {DEFAULT_MAX_SECONDS:g}; with --until-decided "
                             f"{DEFAULT_UNTIL_DECIDED_SECONDS:g})")
    parser.add_argument("--until-decided", action="store_true",
                        help="measure until every cell is decided, --max-seconds being a "
                             "cap rather than a plan")
    parser.add_argument("--restart-every", type=non_negative_float, metavar="SECONDS",
                        help="replace every side's worker with a fresh one after this many "
                             "seconds of measuring, where the budget leaves room, so that a "
                             "worker process's own offset enters the interval; a cell "
                             "decided within one set of workers is confirmed by the next "
                             f"(default: {DEFAULT_RESTART_SECONDS:g}; 0: never)")
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
        LinfitError: for session options given with --from, options other than
            --max-seconds, --restart-every and --until-decided with --resume, or --pairs
            with --min-pairs or --max-pairs. The values themselves are checked, all in one place, by
            :func:`linfit.ab.coordinator.check_config`.
    """
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
        DEFAULT_RESTART_SECONDS,
        DEFAULT_SEED,
        DEFAULT_UNTIL_DECIDED_SECONDS,
        cli_flag,
    )

    if args.from_file is not None:
        given = [f"--{dest.replace('_', '-')}" for dest in _SESSION_DESTS
                 if getattr(args, dest) is not None]
        given += [cli_flag(option) for option in CELL_OPTIONS
                  if getattr(args, option.dest) is not None]
        given += ["--until-decided"] if args.until_decided else []
        if given:
            raise LinfitError(f"--from reads a finished pairs file and measures nothing; "
                              f"leave out {', '.join(given)}")
        return
    if args.resume is not None:
        given = [f"--{dest.replace('_', '-')}" for dest in _RESUME_REFUSES
                 if getattr(args, dest) is not None]
        given += [cli_flag(option) for option in CELL_OPTIONS
                  if getattr(args, option.dest) is not None]
        if given:
            raise LinfitError(f"--resume continues a session as its pairs file records it "
                              f"(sides, cells, seed, threshold, pairs); leave out "
                              f"{', '.join(given)} (only --max-seconds, --restart-every and "
                              "--until-decided apply)")
    if args.pairs is not None:
        given = [flag for flag, value in (("--min-pairs", args.min_pairs),
                                          ("--max-pairs", args.max_pairs)) if value is not None]
        if given:
            raise LinfitError(f"--pairs N is exactly N pairs per cell: give it without "
                              f"{' and '.join(given)}")
        args.min_pairs = args.max_pairs = args.pairs
    defaults = {"min_pairs": DEFAULT_MIN_PAIRS, "max_pairs": DEFAULT_MAX_PAIRS,
                "max_seconds": (DEFAULT_UNTIL_DECIDED_SECONDS if args.until_decided
                                else DEFAULT_MAX_SECONDS), "seed": DEFAULT_SEED,
                "results": Path("results")}
    if args.restart_every is None:
        args.restart_every = DEFAULT_RESTART_SECONDS
    if args.resume is not None:
        args.max_seconds = args.max_seconds or defaults["max_seconds"]
        return
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


def _settings(args: argparse.Namespace, frame: pd.DataFrame | None) -> tuple[float, float]:
    """The threshold and alpha to judge with: those given, else the pairs file's own where
    it records them (pairs schema 3), else the defaults."""
    from linfit.ab.analysis import DEFAULT_AB_THRESHOLD

    recorded = (frame is not None and "threshold" in frame and not frame.empty
                and not math.isnan(frame["threshold"].iloc[0]))
    threshold = args.threshold or (float(frame["threshold"].iloc[0]) if recorded
                                   else DEFAULT_AB_THRESHOLD)
    alpha = args.alpha or (float(frame["alpha"].iloc[0]) if recorded else DEFAULT_ALPHA)
    return threshold, alpha


def _size_of(cell: Cell) -> str:
    return f"{cell.backend} {cell.dtype} {_size(cell.n_examples)} {cell.variant_label}"


def projection_notes(projection: SessionProjection, path: Path, resumable: bool) -> list[str]:
    """What the undecided cells need, one line each, the session's total and the command
    that continues it (where the file can be resumed)."""
    if not projection.cells:
        return []
    lines = [f"{len(projection.cells)} of {projection.total} cells undecided (an interval "
             "across a threshold boundary, or too few pairs); what each needs at its own "
             "noise and pace on this machine:"]
    for cell in projection.cells:
        head = f"  {_size_of(cell.cell)}: {cell.pairs} pairs"
        if not cell.known:
            lines.append(f"{head}, too few to tell")
            continue
        head += f", MDE {cell.mde:.1%}" + (" (its estimate sits near the threshold)"
                                           if cell.on_boundary else "")
        if cell.within_cap:
            lines.append(f"{head}: about {math.ceil(cell.pairs_needed)} pairs, "
                         f"{cell.seconds:.0f} s more")
        else:
            needed = ("" if math.isinf(cell.pairs_needed)
                      else f" (about {math.ceil(cell.pairs_needed)})")
            lines.append(f"{head}: more than the cap of {cell.max_pairs} pairs{needed}")
    decidable = len(projection.decidable)
    others = len(projection.cells) - decidable
    if not decidable:
        lines.append("no more pairs within the max-pairs cap would decide them: their "
                     "changes sit near the threshold, or their noise is too high for it")
        return lines
    startup = ("" if not math.isnan(projection.startup_seconds)
               else " of measuring (and the start-up)")
    rest = (f" ({others} more would need more than the cap or more pairs to tell)"
            if others else "")
    total = (f"on this machine, about {projection.seconds:.0f} more seconds{startup} would "
             f"decide the remaining {decidable} cell{'s' if decidable > 1 else ''}{rest}")
    if resumable:
        total += (f": linfit ab --resume {shlex.quote(str(path))} --max-seconds "
                  f"{projection.max_seconds}")
    return [*lines, total]


def _spent_note(comparison: ABComparison) -> str:
    """The pairs the stopping rule spent per cell, against a fixed budget of the cap."""
    pairs = comparison.table["pairs"]
    cap = comparison.max_pairs
    fixed = f"; {cap} pairs a cell, a fixed budget, would be {cap * len(pairs)}" if cap else ""
    return (f"pairs spent: {int(pairs.sum())} in {len(pairs)} comparisons, median "
            f"{pairs.median():.0f} a cell ({int(pairs.min())} to {int(pairs.max())}){fixed}")


def _new_config(args: argparse.Namespace) -> SessionConfig:
    """The session the flags describe (not --from, not --resume)."""
    from linfit.ab.coordinator import SessionConfig
    from linfit.ab.spec import aa_sides, parse_sides

    if args.aa:
        sides = aa_sides()
    elif args.sides:
        sides = parse_sides(args.sides)
    else:
        raise LinfitError("give the sides: --side SPEC twice or more, or --aa")
    threshold, alpha = _settings(args, None)
    return SessionConfig(
        sides=tuple(sides),
        values={option.dest: getattr(args, option.dest) for option in CELL_OPTIONS},
        environ=dict(os.environ), results_dir=args.results, threshold=threshold,
        alpha=alpha, min_pairs=args.min_pairs, max_pairs=args.max_pairs,
        max_seconds=args.max_seconds, seed=args.seed, restart_seconds=args.restart_every)


def _measure(config: SessionConfig, until_decided: bool, notes: list[str]
             ) -> tuple[Path | None, bool]:
    """Run the session; its notes into ``notes``. Returns its pairs file (None when nothing
    was measured) and whether it failed (a worker, an interrupt)."""
    from linfit.ab.coordinator import run_session

    result = run_session(config)
    for failure in result.failures:
        print(f"linfit ab: {failure}", file=sys.stderr)
    if config.resume is not None:
        notes.append(f"resumed {result.cells} undecided of {len(config.resume.cells)} cells "
                     f"(part {config.resume.part})")
    notes += result.unavailable
    if result.interrupted:
        notes.append("interrupted: the table holds the pairs measured until then")
    if result.path is not None:
        restarts = (f", {result.restarts} worker restart{'s' if result.restarts > 1 else ''}"
                    if result.restarts else "")
        notes.append(f"{result.rounds} rounds, {result.decided}/{result.cells} cells decided "
                     f"in {result.seconds:.0f} s{restarts}; pairs file: {result.path}")
        notes += _save_hlo(result, result.path)
    if until_decided:
        notes.append("until decided: " + (
            "the session ended early (see above)" if result.failures or result.interrupted
            else f"the cap of {config.max_seconds:g} s came first" if result.budget_reached
            else "every cell was decided or got its max pairs"))
    return result.path, bool(result.failures or result.unavailable) or result.interrupted


def run(args: argparse.Namespace) -> int:
    from linfit.ab.analysis import analyse, machine_warnings
    from linfit.ab.projection import project
    from linfit.ab.resume import read_resume, resumed_config
    from linfit.results.pairs import read_pairs

    notes: list[str] = []
    failed_session = False
    _session_options(args)
    if args.from_file is not None:
        path = args.from_file
    elif args.resume is not None and not (state := read_resume(args.resume)).undecided:
        notes.append("nothing to resume: every cell is decided or has its max pairs")
        path = state.path
    else:
        config = (resumed_config(state, args.max_seconds, restart_seconds=args.restart_every)
                  if args.resume is not None else _new_config(args))
        measured, failed_session = _measure(config, args.until_decided, notes)
        if measured is None:
            print("linfit ab: nothing was measured", file=sys.stderr)
            return EXIT_REGRESSION
        path = measured
    frame = read_pairs(path)
    threshold, alpha = _settings(args, frame)
    comparison = analyse(frame, threshold, alpha)
    for line in machine_warnings(frame):
        print(f"linfit ab: warning: {line}", file=sys.stderr)
    if args.until_decided:
        notes.append(_spent_note(comparison))
    if comparison.sequential:
        notes.append(f"each interval is taken at {1 - comparison.look_alpha:.2%}, so that "
                     f"{_confidence(alpha)} holds over all of a cell's looks up to "
                     f"{comparison.max_pairs} pairs (adaptive sampling reads it every round)")
    notes += [f"{_size_of(Cell.from_row(row))} ({row['new_label']}): {row['message']}"
              for row in comparison.table.to_dict("records")
              if row["message"] and row["verdict"] != "failed"
              and row["verdict"] not in ("no-pairs", "too-few-pairs")]
    resumable = "seed" in frame and int(frame["seed"].iloc[0]) >= 0
    notes += projection_notes(project(frame, threshold, alpha), path, resumable)
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
