"""The modules one cell passes through in the harness, in order (issue 19's figure).

Runs the benchmark for one cell (default: TensorFlow ``xla`` at n=1000, untimed) with a
profile hook while the test runs. The path follows the cell itself: every call of a linfit
function that is handed the cell (a :class:`~linfit.results.Cell`), its record (a
:class:`~linfit.results.CellResult`) or a row dict of them as an argument, by the module it
lives in, in call order, with consecutive calls in the same module counted once (the record
type's own methods do not count: they are the record, not a stop on its way). A *return* is
an entry into a module the path has already left: issue 19 asks for two or fewer.

    python bench/cell_path.py [--variant xla] [--backend tensorflow] [--size 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Generator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from linfit.results import Cell, CellResult

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "linfit"


def _module(filename: str) -> str | None:
    path = Path(filename)
    if not path.is_relative_to(PACKAGE):
        return None
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _carries_cell(value: object) -> bool:
    """The cell, its record, or a row dict of them (how the harness carried a cell before
    issue 19: ``row: dict[str, Any]`` through ``to_row`` / ``from_row``)."""
    return (isinstance(value, (Cell, CellResult))
            or (isinstance(value, Mapping) and "variant" in value and "backend" in value))


class PathRecorder:
    """A pytest plugin: records the modules the cell and its record pass through."""

    def __init__(self) -> None:
        self.path: list[str] = []

    def _profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call":
            return
        module = _module(frame.f_code.co_filename)
        # The record's own methods (``self`` is the record) are the type, not a stop.
        if module is None or not any(_carries_cell(value) for name, value
                                     in frame.f_locals.items() if name != "self"):
            return
        if not self.path or self.path[-1] != module:
            self.path.append(module)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        sys.setprofile(self._profile)
        try:
            yield
        finally:
            sys.setprofile(None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--variant", default="xla")
    parser.add_argument("--size", default="1000")
    args = parser.parse_args()
    recorder = PathRecorder()
    with tempfile.TemporaryDirectory() as results:
        status = pytest.main(
            [str(ROOT / "bench"), "-q", "-p", "no:cacheprovider", "--benchmark-disable",
             "--linfit-no-plots", "--linfit-floors", "off", "--linfit-results", results,
             "--linfit-backends", args.backend, "--linfit-variants", args.variant,
             "--linfit-sizes", args.size], plugins=[recorder])
    if status != 0:
        print(f"the benchmark run failed (pytest exit {status})", file=sys.stderr)
        return 1
    counts = Counter(recorder.path)
    returns = len(recorder.path) - len(counts)
    print("path: " + " -> ".join(recorder.path))
    print(f"modules: {len(counts)}; entries: {len(recorder.path)}; returns to a module "
          f"already left: {returns}"
          + (f" ({', '.join(f'{m} x{c}' for m, c in counts.items() if c > 1)})"
             if returns else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
