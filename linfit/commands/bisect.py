"""``linfit bisect``: the first TensorFlow build that changed a cell's step time.

The bisect runs in :mod:`linfit.bisect.runner`; this module parses the options, gives it
the TensorFlow builds (:class:`TensorFlowBuilds`, over :mod:`linfit.builds`' cache), renders
the result and turns it into the exit status.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from linfit._errors import LinfitError
from linfit._format import format_ratio, format_seconds, text_table
from linfit._paths import check_output_dir
from linfit.commands._args import (
    CELL_OPTIONS,
    add_cell_options,
    alpha_level,
    fraction,
    int_at_least,
    positive_float,
)
from linfit.stats import DEFAULT_ALPHA

if TYPE_CHECKING:
    from linfit.ab.spec import Side
    from linfit.bisect import BisectResult, Ratio

__all__ = ["EXIT_FOUND", "EXIT_UNRESOLVED", "FIGURE_NAME", "TensorFlowBuilds", "register",
           "render", "run"]

# Exit statuses: found or no change; unresolved, ambiguous or interrupted (bad input is 2,
# from the command line's one handler).
EXIT_FOUND = 0
EXIT_UNRESOLVED = 1
# The figure's file in the output folder.
FIGURE_NAME = "bisect.png"


class TensorFlowBuilds:
    """The builds of a real bisect: TensorFlow wheels from the package index
    (:func:`linfit.builds.available`), each in a venv of the build cache
    (:class:`linfit.builds.BuildCache`; ``LINFIT_BUILD_CACHE``, ``LINFIT_BUILD_PIP_ARGS``)."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress

    def side(self, build: str) -> Side:
        """A side running ``build``, its venv made in the cache now if missing. The side
        names the build, so that each session holds it in use (never evicted meanwhile)
        and its pairs file records it.

        Raises:
            Unavailable: the build does not install or import (one line).
            LinfitError: ``build`` is not ``PACKAGE==VERSION`` of a TensorFlow package.
        """
        from linfit.ab.spec import Side
        from linfit.bisect import Unavailable
        from linfit.builds import BuildCache, BuildUnavailable, parse_build

        parsed = parse_build(build)
        try:
            # Released again at once: between sessions the cache may evict it, and a
            # session makes it again where it must.
            with BuildCache() as cache:
                python = cache.python(parsed, self.progress)
        except BuildUnavailable as error:
            raise Unavailable(str(error)) from None
        return Side("build", str(python), build=parsed)

    def builds_between(self, good: str, bad: str) -> list[str]:
        """The package index's builds strictly between ``good`` and ``bad``, from GOOD's
        side (oldest first when GOOD is the older).

        Raises:
            LinfitError: GOOD and BAD are builds of different packages, or one of them is
                not a build the index lists.
        """
        from linfit.builds import available, parse_build

        first, last = parse_build(good), parse_build(bad)
        if first.package != last.package:
            raise LinfitError(f"--good {good} and --bad {bad} are builds of different "
                              f"packages ({first.package}, {last.package}); bisect the builds "
                              "of one package")
        listed = [build.requirement for build in available(package=first.package)]
        for flag, build in (("--good", first), ("--bad", last)):
            if build.requirement not in listed:
                raise LinfitError(f"{flag} {build.requirement} is not a build the package "
                                  f"index lists for {first.package}: give an exact version "
                                  "that linfit builds available lists")
        start, end = listed.index(first.requirement), listed.index(last.requirement)
        return listed[start + 1:end] if start < end else listed[end + 1:start][::-1]


def build_environments(progress: Callable[[str], None]) -> TensorFlowBuilds:
    """The environments of a bisect from the command line (tests replace this)."""
    return TensorFlowBuilds(progress)


def _epilog() -> str:
    from linfit.ab.coordinator import DEFAULT_MAX_SECONDS
    from linfit.bisect.runner import (
        DEFAULT_MAX_CHANGES,
        DEFAULT_MAX_EXTENSIONS,
        DEFAULT_STATE_ROOT,
    )

    return f"""\
builds: PACKAGE==VERSION as pip names them, e.g. tf-nightly==2.23.0.dev20261026 or
tensorflow==2.20.0; the builds between GOOD and BAD are the package index's.

  linfit bisect --good tf-nightly==2.21.0.dev20260202 --bad tf-nightly==2.23.0.dev20261026 \\
      --backends tensorflow --variants xla-loop --sizes 1e5

First one paired session of GOOD against BAD confirms which cells changed beyond
--threshold. Cells whose BAD/GOOD intervals overlap are one change, bisected on its most
certain cell; --cell CELL (an id of the confirming table) bisects that cell's change only.
Each step is a paired session of MID against GOOD and BAD: MID is good (it matches GOOD
and differs from BAD, with intervals, within a band of the threshold or half the change
if smaller), bad (the other way round), ambiguous (it differs from both: more pairs, then
two changes, one in each half, each bisected), or undecided (an interval on the band's
edge, or a minimum detectable effect above the change: another session with twice the
budget, pooled, at most {DEFAULT_MAX_EXTENSIONS} more by default). A build that does not
install or import, or whose cell fails, is skipped (as git bisect skip) and named.
Each session has --max-seconds (default {DEFAULT_MAX_SECONDS:g} s). At most
{DEFAULT_MAX_CHANGES} changes a cell by default.

Every session is saved in the state folder (default: {DEFAULT_STATE_ROOT}/GOOD..BAD-HASH) as
it ends; the same command run again resumes and measures nothing twice, after Ctrl-C,
SIGTERM or a crash.

exit status:
  0  the first bad build of every change was found, or GOOD and BAD agree
  1  unresolved (a step stayed undecided, only skipped builds left, a session failed),
     ambiguous beyond --max-changes, or interrupted
  2  bad input (one line)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from linfit.ab.analysis import DEFAULT_AB_THRESHOLD
    from linfit.ab.coordinator import (
        DEFAULT_MAX_PAIRS,
        DEFAULT_MAX_SECONDS,
        DEFAULT_MIN_PAIRS,
        DEFAULT_SEED,
    )
    from linfit.bisect.runner import DEFAULT_MAX_CHANGES, DEFAULT_MAX_EXTENSIONS

    parser = subparsers.add_parser(
        "bisect", help="the first TensorFlow build that changed a cell's step time",
        description="Bisect the TensorFlow builds between GOOD and BAD with paired sessions,\n"
                    "to the last good and first bad build and their commits.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--good", required=True, metavar="BUILD",
                        help="the build before the change, e.g. tf-nightly==2.21.0.dev20260202")
    parser.add_argument("--bad", required=True, metavar="BUILD",
                        help="the build after the change")
    add_cell_options(parser)
    parser.add_argument("--cell", metavar="CELL",
                        help="bisect this cell's change only (an id of the confirming table, "
                             "e.g. tensorflow-xla-loop-CPU:0-n=100000-float32-k=100)")
    parser.add_argument("--threshold", type=fraction, default=DEFAULT_AB_THRESHOLD,
                        help="smallest change that counts, as 0.05 or 5%% "
                             f"(default: {DEFAULT_AB_THRESHOLD * 100:g}%%)")
    parser.add_argument("--alpha", type=alpha_level, default=DEFAULT_ALPHA,
                        help=f"significance level (default: {DEFAULT_ALPHA:g})")
    parser.add_argument("--min-pairs", type=int_at_least(1), default=DEFAULT_MIN_PAIRS,
                        help=f"pairs per cell before a session may stop (default: "
                             f"{DEFAULT_MIN_PAIRS})")
    parser.add_argument("--max-pairs", type=int_at_least(1), default=DEFAULT_MAX_PAIRS,
                        help=f"most pairs per cell in a session (default: {DEFAULT_MAX_PAIRS})")
    parser.add_argument("--max-seconds", type=positive_float, default=DEFAULT_MAX_SECONDS,
                        help="wall-time budget of each session, start-up included (default: "
                             f"{DEFAULT_MAX_SECONDS:g}); an extension gets twice the one before")
    parser.add_argument("--seed", type=int_at_least(0), default=DEFAULT_SEED,
                        help=f"seed of the burst order (default: {DEFAULT_SEED})")
    parser.add_argument("--max-extensions", type=int_at_least(0),
                        default=DEFAULT_MAX_EXTENSIONS,
                        help="sessions that may extend an undecided step (default: "
                             f"{DEFAULT_MAX_EXTENSIONS})")
    parser.add_argument("--max-changes", type=int_at_least(1), default=DEFAULT_MAX_CHANGES,
                        help="changes one cell's range may split into (default: "
                             f"{DEFAULT_MAX_CHANGES})")
    parser.add_argument("--state", type=Path, metavar="DIR",
                        help="state folder: sessions and progress (default: derived from the "
                             "builds and options, under results/bisect/)")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help=f"folder of the figure, {FIGURE_NAME} (default: the state folder)")
    parser.set_defaults(func=run)


def _confidence(alpha: float) -> str:
    return f"{1 - alpha:.1%}".replace(".0%", "%")


def _ratio_text(ratio: Ratio | None) -> str:
    return "-" if ratio is None else format_ratio(ratio.ratio, ratio.low, ratio.high)


def _mde_text(values: Sequence[float]) -> str:
    known = [value for value in values if not math.isnan(value)]
    return f"{max(known):.1%}" if known else "-"


def _commit_text(commit: str) -> str:
    """``  commit abc123``; nothing where the worker did not report its build's commit."""
    return f"  commit {commit}" if commit else ""


def render(result: BisectResult, figure: Path | None) -> str:
    """The result as text: the confirming table, every step, every change with its commits
    and compare link, the skipped builds, the figure and state, and the outcome."""
    from linfit.bisect import FOUND, NO_CHANGE
    from linfit.harness import cell_id
    from linfit.results import Cell

    ci = _confidence(result.alpha)
    between = max(len(result.builds) - 2, 0)
    out = [f"linfit bisect {result.good} .. {result.bad}: {between} builds between, "
           f"threshold {result.threshold:.0%}, {ci} intervals"]
    if result.confirm is not None:
        rows = [["cell", "pairs", "GOOD", "BAD", f"BAD/GOOD [{ci} CI]", "MDE", "verdict"],
                None]
        for row in result.confirm.table.to_dict("records"):
            rows.append([cell_id(Cell.from_row(row)), str(row["pairs"]),
                         format_seconds(row["base_median_seconds"]),
                         format_seconds(row["new_median_seconds"]),
                         format_ratio(row["ratio"], row["ratio_low"], row["ratio_high"]),
                         _mde_text([row["mde"]]), str(row["verdict"])])
        out += ["", "GOOD against BAD, per cell:",
                *text_table(rows, [False, True, True, True, False, True, False], "  ")]
    if result.steps:
        rows = [["step", "cell", "MID", "GOOD", "BAD", f"MID/GOOD [{ci} CI]",
                 f"MID/BAD [{ci} CI]", "MDE", "pairs", "sessions", "MID is"], None]
        for step in result.steps:
            ratios = [r for r in (step.mid_vs_good, step.mid_vs_bad) if r is not None]
            rows.append([str(step.number), step.cell, step.mid, step.good, step.bad,
                         _ratio_text(step.mid_vs_good), _ratio_text(step.mid_vs_bad),
                         _mde_text([r.mde for r in ratios]),
                         str(min((r.pairs for r in ratios), default=0)), str(step.sessions),
                         step.outcome])
        right = [True, False, False, False, False, False, False, True, True, True, False]
        out += ["", "steps:", *text_table(rows, right, "  ")]
    for change in result.changes:
        out += ["", f"{change.cell}: {change.status}, BAD/GOOD {_ratio_text(change.ratio)}",
                f"  last good  {change.last_good}{_commit_text(change.last_good_commit)}",
                f"  first bad  {change.first_bad}{_commit_text(change.first_bad_commit)}"]
        if change.compare_url:
            out.append(f"  {change.compare_url}")
        if change.hlo_diff is not None:
            out.append(f"  HLO diff: {change.hlo_diff}")
        if change.untested:
            out.append(f"  untested between them: {', '.join(change.untested)}")
        if change.note:
            out.append(f"  {change.note}")
    if result.skipped:
        out += ["", "skipped builds:", *(f"  {build}: {why}" for build, why in result.skipped)]
    out.append("")
    if figure is not None:
        out.append(f"figure: {figure}")
    out.append(f"state: {result.state_dir} ({result.sessions} sessions, {result.measured} "
               "measured by this run)")
    if result.status == FOUND:
        out.append(f"found: {len(result.changes)} change(s)")
    elif result.status == NO_CHANGE:
        out.append(f"no change: GOOD and BAD agree within {result.threshold:.0%} in every "
                   "selected cell")
    else:
        out.append(f"{result.status}: {result.message}")
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    from linfit.ab.coordinator import SessionConfig
    from linfit.bisect import FOUND, NO_CHANGE, BisectConfig, default_state_dir, run_bisect
    from linfit.bisect.plots import draw_bisect_figure

    if args.min_pairs > args.max_pairs:
        raise LinfitError(f"--min-pairs {args.min_pairs} is above --max-pairs "
                          f"{args.max_pairs}; give --max-pairs >= --min-pairs")
    session = SessionConfig(
        sides=(), values={option.dest: getattr(args, option.dest) for option in CELL_OPTIONS},
        environ=dict(os.environ), threshold=args.threshold, alpha=args.alpha,
        min_pairs=args.min_pairs, max_pairs=args.max_pairs, max_seconds=args.max_seconds,
        seed=args.seed)
    config = BisectConfig(good=args.good, bad=args.bad, session=session,
                          state_dir=args.state or Path(), cell=args.cell,
                          max_extensions=args.max_extensions, max_changes=args.max_changes)
    if args.state is None:
        config = replace(config, state_dir=default_state_dir(config))
    if args.output is not None:  # (the state folder is checked with the bisect's options)
        check_output_dir(args.output, "figure folder (-o)")
    output = args.output or config.state_dir

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_bisect(config, build_environments(progress), progress)
    figure = draw_bisect_figure(result, output / FIGURE_NAME)
    sys.stdout.write(render(result, figure))
    return EXIT_FOUND if result.status in (FOUND, NO_CHANGE) else EXIT_UNRESOLVED
