"""``linfit plot``: draw the figures of one or more results files."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from linfit._errors import LinfitError
from linfit.results import KEY_COLUMNS, Cell, read_results

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
    frames = [read_results(path) for path in paths]
    sources = [str(path) for path, frame in zip(paths, frames, strict=True)
               for _ in range(len(frame))]
    combined = pd.concat(frames, ignore_index=True)
    duplicated = combined.duplicated(list(KEY_COLUMNS), keep=False).to_numpy()
    if duplicated.any():
        rows = [index for index, twin in enumerate(duplicated) if twin]
        cell = Cell.from_row(combined.iloc[rows[0]])
        twin = next(r for r in rows[1:] if Cell.from_row(combined.iloc[r]) == cell)
        first, second = sources[rows[0]], sources[twin]
        where = (f"{first} is given twice" if first == second
                 else f"both {first} and {second} hold it")
        raise LinfitError(f"cell {cell} appears twice: {where}; give each cell once")
    return combined


def run(args: argparse.Namespace) -> int:
    from linfit.plots import write_run_plots

    frame = read_results_files(args.results)
    stem = args.results[0].stem if len(args.results) == 1 else COMBINED_STEM
    written = write_run_plots(frame, args.output, stem, args.formats,
                              convergence=not args.no_convergence)
    for path in written:
        print(path)
    return 0
