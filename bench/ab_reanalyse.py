"""The verdicts of finished A/B sessions, read again by this checkout (issue 22): one row a
pairs file, as ``linfit ab --from`` would call its cells.

    python3 bench/ab_reanalyse.py results/cpu-2core-ab-restarts/aa [...] > table.md

Each row: the file, its parts (sets of worker processes), the seconds from its start to its
last burst, the pairs, the count of each verdict, and the cells whose parts disagree
(:func:`linfit.ab.analysis.processes_disagree`). Reads only; a folder without pairs files is
one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from linfit.ab.analysis import analyse
from linfit.results.pairs import is_pairs_file, read_pairs

VERDICTS = ("slower", "faster", "noise", "unchanged", "failed")


def main(folders: list[str]) -> int:
    files = sorted(path for folder in folders for path in Path(folder).glob("*-ab.csv")
                   if is_pairs_file(path))
    if not files:
        print(f"ab_reanalyse: no pairs file (*-ab.csv) in {', '.join(folders) or 'no folder'}",
              file=sys.stderr)
        return 2
    print("| file | parts | seconds | pairs | " + " | ".join(VERDICTS) + " | parts disagree |")
    print("|--" * (len(VERDICTS) + 5) + "|")
    for path in files:
        frame = read_pairs(path)
        table = analyse(frame).table
        counts = table["verdict"].value_counts()
        seconds = (frame["start_unix_ns"].max() - frame["part_start_unix_ns"].min()) * 1e-9
        disagree = int((table["message"].str.contains("disagree")).sum())
        print(f"| {path.parent.name}/{path.name} | {frame['part'].nunique()} | {seconds:.0f} | "
              f"{int(table['pairs'].sum())} | "
              + " | ".join(str(int(counts.get(name, 0))) for name in VERDICTS)
              + f" | {disagree} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
