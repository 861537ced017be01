"""``linfit export RESULTS_OR_PAIRS --format bmf|benchmark-action|pytest-benchmark``: a
results CSV or a pairs file as JSON that Bencher, github-action-benchmark or
pytest-benchmark reads (:mod:`linfit.export`)."""

from __future__ import annotations

import argparse
import sys

from linfit._errors import LinfitError
from linfit.export import FORMATS, load_benchmarks, render
from linfit.results import atomic_write_text

EPILOG = """\
formats:
  bmf               Bencher Metric Format: {name: {"latency": {"value", "lower_value",
                    "upper_value"}}} in ns (bencher run --adapter json --file FILE)
  benchmark-action  github-action-benchmark, tool: customSmallerIsBetter: a list of
                    {"name", "unit": "s/step", "value", "range", "extra"}
  pytest-benchmark  pytest-benchmark's saved JSON: pytest-benchmark compare FILE reads it

A benchmark is an ok cell of a results CSV, or a cell on one side of an A/B session
(named "... [side]"). Its value is the median time per training step; its interval, the
95% block-bootstrap interval of that median. Failed cells are left out.

The JSON goes to stdout, or with -o to FILE, written atomically and never over an
existing file.

exit status: 0 written; 2 bad input (a missing or foreign file, a file that does not
validate, no ok cell, FILE exists)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to the command line."""
    parser = subparsers.add_parser(
        "export", help="a results or pairs file as Bencher, github-action-benchmark or "
                       "pytest-benchmark JSON",
        description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="RESULTS_OR_PAIRS",
                        help="a results CSV or a pairs file (linfit ab)")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here (never over an existing file) instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the export."""
    text = render(load_benchmarks(args.path), args.fmt)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        atomic_write_text(args.output, text)
    except FileExistsError:
        raise LinfitError(f"{args.output}: exists; linfit export never overwrites a "
                          f"file") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
