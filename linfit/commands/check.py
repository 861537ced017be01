"""``linfit check``: the device regression check of one results file.

The findings are computed by :mod:`linfit.check`; this module prints them, one line each,
and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linfit.check import RULES, check_results, exit_status
from linfit.commands._args import alpha_level, fraction, positive_float
from linfit.compare import DRIFT_NOTE, machine_warnings
from linfit.convergence import TOLERANCES
from linfit.results import read_results
from linfit.stats import DEFAULT_ALPHA, DEFAULT_THRESHOLD

_DEFAULT_RTOLS = ", ".join(f"{dtype} {rtol:g}" for dtype, (rtol, _) in TOLERANCES.items())

EPILOG = f"""\
rules (one line is printed per failure, with the numbers):
  failed       every cell ran to the end (status ok)                      error
  numerics     W and b agree with the reference run within rtol: the      error
               CPU:0 eager cell of the same backend, n and dtype (else
               the reference W and b the row recorded), and with the
               least-squares W and b
  placement    every cell ran on the device it names                      error
  performance  with --baseline: no cell on a device of the same name is   error
               slower, by the rule of 'linfit compare'; no baseline cell
               is missing (unless --allow-missing); no cell ok in the
               baseline failed; at least one cell was compared
  sanity       on a GPU at the largest n, the best GPU variant beats the  warning
               best CPU variant

default rtol per dtype: {_DEFAULT_RTOLS}.
Warnings never change the exit status, nor do those on stderr where a run's load
average exceeded its CPUs or (with --baseline) the two runs' machines differ (cores,
memory, CPU model, VM or container). The performance rule compares one run with one
run: its interval covers the noise within each run, not the drift between runs; for
that, compare several runs per side with 'linfit compare --base ... --new ...', or
measure both interleaved with 'linfit ab'.

exit status:
  0  no error (warnings may have been printed)
  1  at least one error (with --baseline: also a missing cell, a cell that failed
     only here, or nothing compared)
  2  unusable input (one line names the file, line and column)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check a results file: numerics, placement, performance, sanity",
        description="Check every cell of a results file: the right W and b, on the device\n"
                    "it names, no slower than a baseline, and GPUs that beat the CPU.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, metavar="RESULTS.csv")
    parser.add_argument("--baseline", type=Path, metavar="BASELINE.csv",
                        help="an earlier run; enables the performance rule")
    parser.add_argument("--allow-missing", action="store_true",
                        help="baseline cells missing from the results are a warning, not "
                             "an error")
    parser.add_argument("--rtol", type=positive_float,
                        help="relative tolerance of W and b against the reference cell "
                             "(default: per dtype, see below)")
    parser.add_argument("--threshold", type=fraction, default=DEFAULT_THRESHOLD,
                        help="smallest slowdown that counts, as 0.1 or 10%% "
                             f"(default: {DEFAULT_THRESHOLD * 100:g}%%)")
    parser.add_argument("--alpha", type=alpha_level, default=DEFAULT_ALPHA,
                        help=f"significance level of the performance rule "
                             f"(default: {DEFAULT_ALPHA:g})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Read both before checking: bad input in either fails before anything prints.
    results = read_results(args.results)
    baseline = None if args.baseline is None else read_results(args.baseline)
    findings = check_results(results, baseline, args.rtol, args.threshold, args.alpha,
                             results_label=str(args.results),
                             baseline_label=str(args.baseline),
                             allow_missing=args.allow_missing)
    for finding in findings:
        print(finding)
    for line in machine_warnings([] if baseline is None else [baseline], [results],
                                 str(args.baseline), str(args.results)):
        print(f"linfit check: warning: {line}", file=sys.stderr)
    rules = [rule for rule in RULES if args.baseline or rule != "performance"]
    errors = sum(finding.severity == "error" for finding in findings)
    warnings = len(findings) - errors
    outcome = (f"{errors} error(s), {warnings} warning(s)" if findings
               else "every rule passed")
    skipped = "" if args.baseline else " (performance needs --baseline)"
    print(f"check of {args.results}, {len(results)} cells: {outcome}; rules: {', '.join(rules)}"
          f"{skipped}")
    if args.baseline:
        print(f"note: {DRIFT_NOTE}")
    return exit_status(findings)
