"""Bad input as a new user or a CI script would give it: every case must end with the exit
status it documents, one line on stderr, no traceback, no hang, and no input file changed.

    python3 bench/input_cases.py [--quick]

Runs each case of issue 10's list in a fresh process under a time limit, in a scratch
folder, and prints one line per case and a count. ``--quick`` leaves out the cases that run
the benchmark (they import TensorFlow and take seconds each). Exit 1 when a case is not
handled well. This is a check script, not a test: the test suite covers each class with its
own test (tests/test_results.py, test_compare.py, test_check.py, test_harness.py,
test_journal.py, test_cli.py).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "compare" / "small-v2.csv"
# Long enough for a benchmark session at n=1000 on a loaded 2-core machine; a case that
# runs longer counts as a hang.
CASE_TIMEOUT_SECONDS = 180
# The benchmark at its smallest: TensorFlow, one size, no floors, no figures.
TINY_BENCH = ("-m", "pytest", "bench/", "--benchmark-only", "-q", "-p", "no:cacheprovider",
              "--linfit-backends", "tensorflow", "--linfit-variants", "xla",
              "--linfit-sizes", "1000", "--linfit-floors", "off", "--linfit-no-plots",
              "--benchmark-max-time", "0.02")


@dataclass
class Case:
    """One bad input: the command (argv after the interpreter), the exit statuses that handle
    it well, and whether stderr must be a single line."""

    name: str
    argv: tuple[str, ...]
    expected: tuple[int, ...]
    one_line: bool = True
    env: dict[str, str] = field(default_factory=dict)
    bench: bool = False
    pipe_to_head: bool = False


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def _edited(folder: Path, name: str, edit: Callable[[list[list[str]]], None]) -> str:
    rows = _rows(FIXTURE)
    edit(rows)
    return str(_write(folder / f"{name}.csv", rows))


def _set(column: str, value: str, row: int = 1) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        rows[row][rows[0].index(column)] = value
    return edit


def make_cases(folder: Path) -> list[Case]:
    """Every case, with the files it reads made in ``folder``."""
    base = str(FIXTURE)
    a_file = folder / "a-file"
    a_file.write_text("not a folder\n")
    dangling = folder / "dangling"
    dangling.symlink_to(folder / "nowhere")
    text = FIXTURE.read_text()
    cut_short = folder / "cut-short.csv"
    cut_short.write_text(text.rsplit(",", 12)[0] + "\n")
    cut_mid = folder / "cut-mid.csv"
    cut_mid.write_text(text[: len(text) - 200])
    header, *data = _rows(FIXTURE)
    only_some = str(_write(folder / "only-some.csv", [header, data[0]]))
    status = header.index("status")
    all_failed = [row[:] for row in data]
    for row in all_failed:
        row[status] = "failed"
        row[header.index("message")] = "broken"
    failed = str(_write(folder / "all-failed.csv", [header, *all_failed]))
    foreign = [row[:] for row in data]
    for row in foreign:
        row[header.index("n_examples")] = "777"
    disjoint = str(_write(folder / "disjoint.csv", [header, *foreign]))
    extra = _rows(FIXTURE)
    extra[1].append("surprise")
    extra_field = str(_write(folder / "extra-field.csv", extra))
    report_dir = folder / "report-dir"
    report_dir.mkdir()
    cli = ("-m", "linfit")
    cases = [
        # 1-2: output places, found before anything is timed
        Case("results path is a regular file", (*TINY_BENCH, "--linfit-results", str(a_file)),
             (4,), bench=True),
        Case("results path is a dangling symlink",
             (*TINY_BENCH, "--linfit-results", str(dangling)), (4,), bench=True),
        Case("results path is /dev/full", (*TINY_BENCH, "--linfit-results", "/dev/full"), (4,),
             bench=True),
        Case("results folder under a file",
             (*TINY_BENCH, "--linfit-results", str(a_file / "sub")), (4,), bench=True),
        Case("results folder in /proc", (*TINY_BENCH, "--linfit-results", "/proc/linfit"),
             (4,), bench=True),
        Case("HOME is a file (cache unusable: a warning, the run goes on)",
             (*TINY_BENCH, "--linfit-floors", "cache", "--linfit-results", str(folder / "r1")),
             (0,), one_line=False, env={"HOME": str(a_file), "XDG_CACHE_HOME": ""},
             bench=True),
        Case("XDG_CACHE_HOME is a file (a warning, the run goes on)",
             (*TINY_BENCH, "--linfit-floors", "cache", "--linfit-results", str(folder / "r2")),
             (0,), one_line=False, env={"XDG_CACHE_HOME": str(a_file)}, bench=True),
        # 3: gates that must not pass on nothing
        Case("compare: NEW shares no cell with BASE", (*cli, "compare", base, disjoint), (1,),
             one_line=False),
        Case("compare: NEW holds only some of BASE's cells", (*cli, "compare", base, only_some),
             (1,), one_line=False),
        Case("compare: NEW failed in every cell", (*cli, "compare", base, failed), (1,),
             one_line=False),
        Case("check --baseline with no cell in common",
             (*cli, "check", disjoint, "--baseline", base), (1,), one_line=False),
        Case("bench --linfit-baseline where every cell was skipped",
             (*TINY_BENCH, "--linfit-sizes", "1e13", "--linfit-baseline", base,
              "--linfit-results", str(folder / "r3")), (1, 5), one_line=False, bench=True),
        # 4-5: files the reader must refuse
        Case("a row cut short", (*cli, "check", str(cut_short)), (2,)),
        Case("a row cut mid-line", (*cli, "compare", base, str(cut_mid)), (2,)),
        Case("an unknown status", (*cli, "check", _edited(folder, "status", _set("status",
                                                                                 "flaky"))),
             (2,)),
        Case("an extra field in the first data row", (*cli, "check", extra_field), (2,)),
        Case("a zero median", (*cli, "check", _edited(folder, "zero", _set("median_seconds",
                                                                           "0"))), (2,)),
        Case("a negative median", (*cli, "report", _edited(folder, "negative", _set(
            "median_seconds", "-1e-3")), "-o", str(folder / "r.md")), (2,)),
        Case("steps_per_call 0", (*cli, "plot", _edited(folder, "k0", _set("steps_per_call",
                                                                           "0")),
                                  "-o", str(folder / "figs")), (2,)),
        Case("n_examples 1000.7", (*cli, "check", _edited(folder, "n", _set("n_examples",
                                                                            "1000.7"))), (2,)),
        Case("a median that contradicts the samples",
             (*cli, "report", _edited(folder, "median", _set("median_seconds", "123")),
              "-o", str(folder / "r2.md")), (2,)),
        Case("an unknown backend", (*cli, "check", _edited(folder, "backend", _set(
            "backend", "mxnet"))), (2,)),
        Case("an unknown dtype", (*cli, "check", _edited(folder, "dtype", _set("dtype",
                                                                               "int8"))), (2,)),
        # 6: the command line
        Case("fit --n 1e11 (745 GiB)", (*cli, "fit", "--n", "1e11"), (2,)),
        Case("fit --n 1e20", (*cli, "fit", "--n", "1e20"), (2,)),
        Case("fit --seed -1", (*cli, "fit", "--seed", "-1"), (2,)),
        Case("fit --plot under a file", (*cli, "fit", "--plot", str(a_file / "f.png")), (2,)),
        Case("fit --plot with an unknown format", (*cli, "fit", "--plot",
                                                   str(folder / "f.foo")), (2,)),
        Case("fit --plot into an existing folder", (*cli, "fit", "--plot", str(report_dir)),
             (2,)),
        Case("plot -o under a file", (*cli, "plot", base, "-o", str(a_file / "x")), (2,)),
        Case("plot -o in /proc", (*cli, "plot", base, "-o", "/proc/linfit"), (2,)),
        Case("report -o under a file", (*cli, "report", base, "-o", str(a_file / "r.md")),
             (2,)),
        Case("report -o an existing folder", (*cli, "report", base, "-o", str(report_dir)),
             (2,)),
        Case("report -o an existing folder --force", (*cli, "report", base, "-o",
                                                     str(report_dir), "--force"), (2,)),
        Case("report -o its own input --force", (*cli, "report", base, "-o", base, "--force"),
             (2,)),
        Case("fit piped into head", (*cli, "fit", "--steps", "50"), (0, 141), one_line=False,
             pipe_to_head=True),
        Case("compare piped into head", (*cli, "compare", base, base, "--format", "csv"),
             (0, 141), one_line=False, pipe_to_head=True),
        Case("LINFIT_NO_PLOTS=maybe", (*TINY_BENCH, "--linfit-results", str(folder / "r4")),
             (4,), env={"LINFIT_NO_PLOTS": "maybe"}, bench=True),
    ]
    return cases


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in paths if path.is_file()}


def run_case(case: Case, folder: Path) -> tuple[bool, str]:
    """Run one case; (handled well, what was seen)."""
    inputs = [*sorted(folder.glob("*.csv")), FIXTURE]
    before = _digest(inputs)
    env = {**os.environ, **case.env}
    argv = [sys.executable, *case.argv]
    try:
        if case.pipe_to_head:
            # The shell reports the status of linfit (pipefail), head closes early.
            command = " ".join(f"'{a}'" for a in argv) + " | head -n 1 > /dev/null"
            done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ROOT,
                                  env=env, capture_output=True, text=True,
                                  timeout=CASE_TIMEOUT_SECONDS)
        else:
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=CASE_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"hung (no end in {CASE_TIMEOUT_SECONDS} s)"
    stderr = [line for line in done.stderr.splitlines() if line.strip()]
    problems = []
    if done.returncode not in case.expected:
        problems.append(f"exit {done.returncode}, expected {case.expected}")
    if "Traceback" in done.stderr or "INTERNALERROR" in done.stdout + done.stderr:
        problems.append("traceback")
    if case.one_line and len(stderr) != 1 and not case.bench:
        problems.append(f"{len(stderr)} lines on stderr")
    if case.bench and case.one_line and done.returncode == 4 and len(stderr) != 1:
        problems.append(f"usage error of {len(stderr)} lines")
    if _digest(inputs) != before:
        problems.append("an input file changed")
    seen = stderr[-1] if stderr else (done.stdout.strip().splitlines() or [""])[-1]
    return not problems, "; ".join(problems) or f"exit {done.returncode}: {seen[:110]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="leave out the cases that run the benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linfit-cases-") as scratch:
        folder = Path(scratch)
        cases = [case for case in make_cases(folder) if not (args.quick and case.bench)]
        good = 0
        for case in cases:
            ok, seen = run_case(case, folder)
            good += ok
            print(f"{'ok ' if ok else 'BAD'}  {case.name}: {seen}", flush=True)
    print(f"{good} of {len(cases)} cases handled well")
    return 0 if good == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
