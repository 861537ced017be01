"""Several results files read as one run, for the commands that draw or report them.

Each file goes through the one results reader (:func:`linfit.results.read_frame`); this
module only joins them and refuses a cell that two files both hold.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from linfit._errors import LinfitError
from linfit.results import Cell, duplicate_cells, read_frame

__all__ = ["read_results_files"]


def read_results_files(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
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
