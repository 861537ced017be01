"""``linfit report``: a markdown page with the environment, results, speed-ups and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from linfit.results_files import read_results_files
from linfit.retrain import convergence_runs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a markdown report of results CSVs",
        description="Write a markdown page: the environment, the results table, the speed-up "
                    "over eager, the break-even steps and the figures, which go in a folder "
                    "beside the report (report.md -> report-figures/) and are linked by "
                    "relative path.")
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS.csv",
                        help="results files written by the benchmark")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="REPORT.md",
                        help="the report to write")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing report and its figures")
    parser.add_argument("--no-convergence", action="store_true",
                        help="skip the convergence figure, which trains every variant again "
                             "for a few seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linfit.report import check_report_path, write_report

    # Refused before any file is read or any variant trained again.
    check_report_path(args.output, force=args.force, inputs=args.results)
    frame = read_results_files(args.results)
    # The report never trains: the convergence figure's re-runs are made here, explicitly.
    runs = None if args.no_convergence else convergence_runs(frame)
    written = write_report(frame, args.output, [str(p) for p in args.results],
                           force=args.force, convergence=runs)
    print(f"report written to {written}")
    return 0
