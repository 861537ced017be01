"""``linfit plot``: draw the figures of one or more results files."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from linfit._errors import LinfitError
from linfit.results import Cell, duplicate_cells, read_frame
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


def read_results_files(paths: Sequence[Path]) -> pd.DataFrame:
    """Read and concatenate results files; a cell may appear in one of them only.

    Raises:
        ResultsFileError: for a file :func:`linfit.results.read_results` rejects.
        LinfitError: naming both files when two hold the same cell.
    """
    frames = [read_frame(path) for path in paths]
    sources = [str(path) for path, frame in zip(paths, frames, strict=True)
               for _ in range(len(frame))]
    combined = pd.concat(frames, ignore_index=True)
    duplicated = duplicate_cells(Cell.from_row(row) for row in combined.to_dict("records"))
    if duplicated is not None:
        index, twin, cell = duplicated
        first, second = sources[index], sources[twin]
        where = (f"{first} is given twice" if first == second
                 else f"both {first} and {second} hold it")
        raise LinfitError(f"cell {cell} appears twice: {where}; give each cell once")
    return combined


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
