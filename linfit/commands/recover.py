"""``linfit recover``: turn the journal a killed benchmark run left behind into a results file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recover", help="turn a left-over journal of a killed run into a results CSV",
        description="pytest bench/ appends every finished cell to <results>/<run_id>"
                    ".journal.jsonl as it finishes and removes the journal once the CSV is "
                    "written. A journal left behind (the run was killed: SIGKILL, the OOM "
                    "killer, a lost machine) becomes <run_id>.csv here, marked "
                    "run_interrupted. The cell in flight when the run died (a torn last "
                    "line) is left out. The journal is only read; no file is overwritten.")
    parser.add_argument("journal", type=Path, metavar="JOURNAL",
                        help="the journal (<run_id>.journal.jsonl)")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="folder for the results CSV (default: the journal's folder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from linfit.results.journal import recover

    written, contents = recover(args.journal, args.output)
    torn = (f"; line {contents.torn_line}, the cell in flight when the run died, is left out"
            if contents.torn_line is not None else "")
    print(f"recovered {len(contents.results)} finished cells of run {contents.run_id} into "
          f"{written}{torn}")
    return 0
