"""Issue 22's figures: an A/B session that knows how long it needs. Real sessions, on a
quiet machine (about 1.5 hours at the defaults; the integrator runs them):

    python3 bench/ab_budget_figures.py --out results/cpu-2core-ab-budget [--sessions 5]
        [--first 1] [--cap 600] [--figures projection,aa,slow10] [--dry-run]

1. ``projection``: a default session (170 s) of the issue's TensorFlow cells with a real
   10% slowdown on one side (tests/ab_slower_step.py), then ``--resume`` for the time the
   session projected: the share of its undecided cells that the resume decided.
2. ``aa``: ``--sessions`` A/A sessions (seeds ``--first`` on, so that a later run adds
   sessions rather than repeating them) ``--until-decided --max-seconds CAP``: false verdicts
   (slower or faster) out of the cells; the pairs spent per cell against a fixed budget.
3. ``slow10``: ``--sessions`` sessions with the 10% slowdown, ``--until-decided``: is every
   cell slower, and each session's wall time.

Every ``linfit ab`` runs in its own process group with a time limit (its budget plus
:data:`STARTUP_ALLOWANCE_SECONDS`): past it, SIGTERM (the session keeps its pairs), then
SIGKILL. Its stdout (the verdicts as CSV) and stderr are kept under OUT/<figure>/. Results:
OUT/<figure>/figure.csv, one row per session, and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# The default TensorFlow cells: the five hand-written variants at n = 1e3, 1e5, 1e6
# (bench/ab_figures.sh's; the Keras ones came later).
FIVE = ("--backends", "tensorflow", "--variants", "eager,function,xla,function-loop,xla-loop")
SLOW_SIDES = ("--side", "base:", "--side",
              f"slow10: LINFIT_WORKER_PLUGINS=ab_slower_step PYTHONPATH={TESTS}")
# A session's time limit beyond its --max-seconds: the budget includes start-up, but a
# round already started may end after it, and the verdicts take a few seconds.
STARTUP_ALLOWANCE_SECONDS = 300
# After SIGTERM, how long the session has to write its file and stop its workers.
TERM_GRACE_SECONDS = 30
DEFAULT_SESSIONS = 5
DEFAULT_CAP_SECONDS = 600
DEFAULT_BUDGET_SECONDS = 170
FIGURES = ("projection", "aa", "slow10")
_PAIRS_FILE = re.compile(r"pairs file: (\S+)")
# What `linfit ab --until-decided` says when its --max-seconds ended it (not a cell's pairs cap).
_CAP_REACHED = "until decided: the cap of"
_RESUME = re.compile(r"linfit ab --resume (\S+) --max-seconds (\d+)")


def _linfit_ab(args: Sequence[str], limit: float, folder: Path, name: str,
               dry_run: bool) -> tuple[int, float, str, str]:
    """Run ``linfit ab ARGS`` with a time limit; keep its stdout and stderr as NAME.csv and
    NAME.log in ``folder``. Returns (exit status, wall seconds, stdout, stderr)."""
    command = [sys.executable, "-m", "linfit", "ab", *args]
    print(f"[{name}] {shlex.join(command)}  (limit {limit:.0f} s)", flush=True)
    if dry_run:
        return 0, 0.0, "", ""
    folder.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        try:
            out, err = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                out, err = process.communicate(timeout=TERM_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
            err += f"\nab_budget_figures: killed past its limit of {limit:.0f} s\n"
    finally:
        if process.poll() is None:  # Ctrl-C here: the session and its workers go too
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    wall = time.monotonic() - started
    (folder / f"{name}.csv").write_text(out)
    (folder / f"{name}.log").write_text(err)
    print(f"[{name}] exit {process.returncode} after {wall:.0f} s", flush=True)
    return process.returncode, wall, out, err


def _table(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out))) if out.strip() else []


def _counts(table: list[dict[str, str]]) -> dict[str, object]:
    verdicts = [row["verdict"] for row in table]
    pairs = sorted(int(row["pairs"]) for row in table)
    mdes = sorted(float(row["mde"]) for row in table if row["mde"] not in ("", "nan"))
    return {"cells": len(table), **{v: verdicts.count(v) for v in
                                    ("slower", "faster", "noise", "unchanged")},
            "failed": sum(v in ("failed", "no-pairs", "too-few-pairs") for v in verdicts),
            "median_mde": f"{mdes[len(mdes) // 2]:.4f}" if mdes else "",
            "pairs_total": sum(pairs), "pairs_median": pairs[len(pairs) // 2] if pairs else "",
            "pairs_max": pairs[-1] if pairs else ""}


def _undecided(path: Path) -> set[tuple[object, ...]]:
    """The keys of a pairs file's undecided cells, as the session judges them."""
    from linfit.ab.projection import project
    from linfit.results.pairs import read_pairs

    frame = read_pairs(path)
    projection = project(frame, float(frame["threshold"].iloc[0]),
                         float(frame["alpha"].iloc[0]))
    return {cell.cell for cell in projection.cells}


def projection_figure(out: Path, budget: int, dry_run: bool) -> list[dict[str, object]]:
    folder = out / "projection"
    status, wall, table, err = _linfit_ab(
        [*FIVE, *SLOW_SIDES, "--max-seconds", str(budget), "--format", "csv", "--results",
         str(folder)], budget + STARTUP_ALLOWANCE_SECONDS, folder, "session", dry_run)
    row: dict[str, object] = {"session_exit": status, "session_wall_s": f"{wall:.1f}"}
    if dry_run:
        _linfit_ab(["--resume", "PAIRS.csv", "--max-seconds", "S", "--format", "csv"], 0,
                   folder, "resume", dry_run)
        return [row]
    found, resume = _PAIRS_FILE.search(err), _RESUME.search(err)
    if not found:
        return [{**row, "note": "the session wrote no pairs file"}]
    pairs = Path(found.group(1))
    before = _undecided(pairs)
    row.update(pairs_file=str(pairs), cells=len(_table(table)), undecided=len(before),
               slower=_counts(_table(table))["slower"])
    if not resume:
        return [{**row, "note": "nothing projected (every cell decided, or none decidable "
                                "within the cap)"}]
    seconds = int(resume.group(2))
    status, wall, table, _ = _linfit_ab(["--resume", str(pairs), "--max-seconds", str(seconds),
                                         "--format", "csv"], seconds
                                        + STARTUP_ALLOWANCE_SECONDS, folder, "resume", dry_run)
    decided = before - _undecided(pairs)
    row.update(projected_s=seconds, resume_exit=status, resume_wall_s=f"{wall:.1f}",
               decided_by_resume=len(decided),
               share_decided=f"{len(decided) / len(before):.2f}" if before else "",
               slower_after=_counts(_table(table))["slower"])
    return [row]


def sessions_figure(out: Path, figure: str, sessions: int, first: int, cap: int,
                    dry_run: bool) -> list[dict[str, object]]:
    folder = out / figure
    sides = ("--aa",) if figure == "aa" else SLOW_SIDES
    rows = []
    for index in range(first, first + sessions):
        status, wall, table, err = _linfit_ab(
            [*FIVE, *sides, "--seed", str(index), "--until-decided", "--max-seconds", str(cap),
             "--format", "csv", "--results", str(folder)], cap + STARTUP_ALLOWANCE_SECONDS,
            folder, f"{figure}-{index}", dry_run)
        found = _PAIRS_FILE.search(err)
        rows.append({"session": index, "exit": status, "wall_s": f"{wall:.1f}",
                     "cap_reached": _CAP_REACHED in err, **_counts(_table(table)),
                     "pairs_file": found.group(1) if found else ""})
    return rows


def _read(out: Path, figure: str) -> list[dict[str, object]]:
    path = out / figure / "figure.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write(out: Path, figure: str, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Write OUT/FIGURE.csv: ``rows``, and an earlier run's sessions of other numbers (a run
    with ``--first`` adds to them); returns what it wrote."""
    if figure != "projection":
        done = {str(row["session"]) for row in rows}
        rows = sorted([*(row for row in _read(out, figure) if str(row["session"]) not in done),
                       *rows], key=lambda row: int(str(row["session"])))
    names = list(dict.fromkeys(name for row in rows for name in row))
    (out / figure).mkdir(parents=True, exist_ok=True)
    with open(out / figure / "figure.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, names)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _summary(results: dict[str, list[dict[str, object]]], cap: int) -> str:
    lines = ["# Issue 22: a session that knows how long it needs", ""]
    for figure, rows in results.items():
        names = list(dict.fromkeys(name for row in rows for name in row))
        lines += [f"## {figure}", "", "| " + " | ".join(names) + " |",
                  "|" + "--|" * len(names)]
        lines += ["| " + " | ".join(str(row.get(name, "")) for name in names) + " |"
                  for row in rows]
        cells = sum(int(row.get("cells") or 0) for row in rows)
        if figure == "projection" and rows and rows[0].get("undecided"):
            row = rows[0]
            lines.append(f"\n**The resume decided {row.get('decided_by_resume', 0)} of "
                         f"{row['undecided']} undecided cells** in the {row.get('projected_s')} "
                         "s the session projected.")
        elif figure == "aa":
            false = sum(int(row.get("slower") or 0) + int(row.get("faster") or 0)
                        for row in rows)
            spent = sum(int(row.get("pairs_total") or 0) for row in rows)
            lines.append(f"\n**False verdicts: {false} of {cells}** (`--until-decided`, cap "
                         f"{cap} s). Pairs spent: {spent}, against {200 * cells} for a fixed "
                         "200 a cell.")
        elif figure == "slow10":
            every = sum(int(row.get("slower") or 0) == int(row.get("cells") or -1)
                        for row in rows)
            walls = ", ".join(str(row["wall_s"]) for row in rows)
            lines.append(f"\n**Every cell slower in {every} of {len(rows)} sessions**; wall "
                         f"times (s): {walls}.")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder of the sessions, the CSVs and summary.md")
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS,
                        help=f"sessions of the aa and slow10 figures (default: "
                             f"{DEFAULT_SESSIONS})")
    parser.add_argument("--first", type=int, default=1,
                        help="the first session's number and seed, for adding sessions to an "
                             "earlier run's (default: 1)")
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP_SECONDS,
                        help=f"--until-decided's cap, seconds (default: {DEFAULT_CAP_SECONDS})")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET_SECONDS,
                        help="the projection figure's first session, seconds (default: "
                             f"{DEFAULT_BUDGET_SECONDS}, linfit ab's default)")
    parser.add_argument("--figures", default=",".join(FIGURES),
                        help=f"comma-separated, from {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the commands, run nothing")
    args = parser.parse_args(argv)
    figures = [name.strip() for name in args.figures.split(",") if name.strip()]
    unknown = [name for name in figures if name not in FIGURES]
    if unknown or min(args.sessions, args.first, args.cap, args.budget) < 1:
        parser.error(f"--figures from {', '.join(FIGURES)}; --sessions, --first, --cap and "
                     "--budget at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, object]]] = {}
    for figure in figures:
        results[figure] = (projection_figure(args.out, args.budget, args.dry_run)
                           if figure == "projection" else
                           sessions_figure(args.out, figure, args.sessions, args.first,
                                           args.cap, args.dry_run))
        if not args.dry_run:
            results[figure] = _write(args.out, figure, results[figure])
    if not args.dry_run:
        # Every figure of OUT, also those an earlier run made.
        summary = _summary({figure: results.get(figure) or _read(args.out, figure)
                            for figure in FIGURES if figure in results
                            or (args.out / figure / "figure.csv").exists()}, args.cap)
        (args.out / "summary.md").write_text(summary)
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
