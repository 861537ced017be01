"""``linfit history DIR... -o SITE``: a static site of every cell's step time across the
runs under some folders, with the steps found in each series (:mod:`linfit.history`)."""

from __future__ import annotations

import argparse
import sys

from linfit.history import MARKER_FILE, collect_history, find_steps

EPILOG = f"""\
Reads every results CSV and pairs file (linfit ab) under the folders, recursively; other
CSVs are listed on the site as left out. A results CSV is one run; each side of an A/B
session is one run, its bursts the samples.

Per cell, two graphs: the step time of each run (median and 95% block-bootstrap interval),
one series per machine, x axis by build (the backend's version, then run date) or by run
date. Steps are found in each machine's series in build order with asv's method (an L1
piecewise-constant fit, the number of levels chosen by a Schwarz-type criterion; see
linfit/steps.py) and listed newest first with their runs and, where an A/B session
compared the same two runs or builds of that cell, its paired verdict.

The site is plain HTML and SVG (no script, no network): open SITE/index.html. It is built
beside SITE and renamed into place. A SITE that exists and is not empty is refused unless
--force is given and an earlier 'linfit history' wrote it ({MARKER_FILE}).

exit status: 0 the site was written; 2 bad input (a missing folder, no runs, a results or
pairs file that does not validate, a SITE that may not be replaced)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``history`` to the command line."""
    parser = subparsers.add_parser(
        "history", help="a static site of every cell's history, with detected steps",
        description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", metavar="DIR",
                        help="folders holding results CSVs and pairs files")
    parser.add_argument("-o", "--output", required=True, metavar="SITE",
                        help="the site's folder (created)")
    parser.add_argument("--force", action="store_true",
                        help="replace SITE when an earlier 'linfit history' wrote it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the site; prints where it is and what it found."""
    from linfit.history import write_site

    history = collect_history(args.folders)
    steps = find_steps(history)
    site = write_site(history, steps, args.output, args.folders, force=args.force)
    confirmed = sum(step.confirmation is not None for step in steps)
    print(f"{site}/index.html: {len(history.runs)} runs, {len(history.cells())} cells, "
          f"{len(steps)} steps ({confirmed} with a paired verdict), "
          f"{len(history.skipped)} files left out")
    sys.stdout.flush()
    return 0
