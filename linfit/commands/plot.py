"""``linfit plot``: draw the figures of one or more results files."""

from __future__ import annotations

import argparse
from pathlib import Path

from linfit.results_files import read_results_files
from linfit.retrain import convergence_runs

# File-name stem of the figures when several results files are drawn together.
COMBINED_STEM = "combined"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="draw the figures of results CSVs",
        description="Draw time per step against n, the speed-up over eager, first-call time "
                    "and break-even steps, and the convergence of W and b (re-run here) from "
                    "one or more results CSVs; several files are drawn as one run.")
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS.csv",
                        help="results files written by the benchmark")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                        help="folder for the figures (created if missing; figures of the same "
                             "name are replaced)")
    # Checked by linfit.plots, which knows its formats; importing it here would load
    # matplotlib for every linfit command.
    parser.add_argument("--format", nargs="+", default=["png"], dest="formats",
                        metavar="FORMAT", help="figure formats: png and/or svg (default: png)")
    parser.add_argument("--no-convergence", action="store_true",
                        help="skip the convergence figure, which trains every variant again "
                             "for a few seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linfit.plots import check_figure_dir, check_formats, write_run_plots

    # Refused before any file is read or any variant trained again.
    check_formats(args.formats)
    check_figure_dir(args.output)
    from linfit.results.pairs import is_pairs_file

    if any(is_pairs_file(path) for path in args.results):
        # A pairs file of `linfit ab`: its paired ratios and bursts over time, one at a time.
        from linfit.ab.plots import draw_pairs_figures
        from linfit.results.pairs import read_pairs

        for path in args.results:
            for figure in draw_pairs_figures(read_pairs(path), args.output, path.stem,
                                             args.formats):
                print(figure)
        return 0
    frame = read_results_files(args.results)
    stem = args.results[0].stem if len(args.results) == 1 else COMBINED_STEM
    # Drawing never trains: the convergence figure's re-runs are made here, explicitly.
    runs = None if args.no_convergence else convergence_runs(frame)
    written = write_run_plots(frame, args.output, stem, args.formats, convergence=runs)
    for path in written:
        print(path)
    return 0
