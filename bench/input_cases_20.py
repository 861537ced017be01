"""Issue 20's classes of bad input, re-tried as a new user would: several cases per class,
beyond the issue's own examples. Each case must end with the exit status it documents, one
line on stderr where it refuses, no traceback, no hang, and nothing lost or left behind.

    python3 bench/input_cases_20.py [--classes 2,3]

Classes: 1 a floors cache of non-finite or non-positive figures (a tiny bench run each),
2 special files given to every reader, 3 mutated pairs files, 4 ``linfit ab`` options that
cannot make sense (no worker may start), 5 A/B sessions started in the same second, 6 a
worker that crashes while starting (exit 1, not 2), 7 ``recover`` of a journal the results
reader would refuse, 8 judgement calls (a BOM, formula escaping, TF_CPP_MIN_LOG_LEVEL).

Prints one line per case (class, handled well yes/no, the case, the first stderr line), a
total per class, and the command of every case not handled well. Exit 1 when any case is
not handled well. The helpers come from bench/input_cases.py (issue 10's re-try).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from input_cases import FIXTURE, ROOT, TINY_BENCH, _digest, _rows, _write

TESTS = ROOT / "tests"
PAIRS = ROOT / "results" / "cpu-2core-ab" / "aa" / "20261127T190624Z-vm-91bb8cac62-ab.csv"
FAKE_WORKER = TESTS / "ab_fake_worker.py"
WORKER_MODULE = "linfit.ab.worker"
# A command that reads one file gets this long: far more than any reader needs on a loaded
# 2-core machine (about 2 s), so a case that runs longer is blocked (a FIFO) or reading
# endless input (/dev/zero).
READ_TIMEOUT_SECONDS = 20
# A command that first imports TensorFlow (`floors` reads its cache after the backend is
# loaded) or draws figures (`plot` of a good pairs file): on the 2-core VM at a load average
# of about 6, 13 to 21 s for `floors --cache /dev/zero`, 14 to 16 s for `plot` of the
# original pairs file. A blocked read never ends and an endless one hits MEMORY_CAP_BYTES,
# so this longer limit still tells them apart.
START_UP_TIMEOUT_SECONDS = 60
# An option check runs before any worker starts: linfit's import and argparse take about a
# second. A command still running after this long has started a session.
OPTION_SECONDS = 10
# The tiny bench run (TensorFlow, one cell, the floors' end round) takes about 20 s.
BENCH_TIMEOUT_SECONDS = 240
# A session that starts workers (classes 5 and 6): start-up, plan and a few pairs.
SESSION_TIMEOUT_SECONDS = 120
# Address space for the special-file cases: a reader that reads /dev/zero without a bound
# fails here (MemoryError) instead of taking the shared machine's memory. linfit with
# pandas and matplotlib maps well under 2 GiB.
MEMORY_CAP_BYTES = 4 << 30
# Seconds the coordinator gets to end its workers after SIGTERM, before SIGKILL.
TERM_GRACE_SECONDS = 10


@dataclass
class Case:
    """One case: a linfit command (argv after ``python -m linfit``, or a bench run) and what
    handles it well, or a ``custom`` check for what one command cannot show."""

    klass: int
    name: str
    argv: tuple[str, ...] = ()
    expected: tuple[int, ...] = (2,)
    one_line: bool = True  # exactly one stderr line when it exits 2
    needles: tuple[str, ...] = ()  # each in the stderr line (when it exits 2)
    absent: tuple[str, ...] = ()  # none of these on stderr
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = READ_TIMEOUT_SECONDS
    max_seconds: float | None = None  # a "few seconds" limit: slower is not handled well
    watch_workers: bool = False  # no linfit.ab.worker may start
    memory_cap: bool = False
    allow_traceback: bool = False  # a worker's own stderr may hold one (class 6)
    bench: bool = False  # argv is a python -m pytest run, not linfit
    after: Callable[[subprocess.CompletedProcess[str]], str] | None = None  # '' when fine
    custom: Callable[[], tuple[bool, str]] | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, *(self.argv if self.bench else ("-m", "linfit", *self.argv))]


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def _workers_of(pid: int) -> set[int]:
    """linfit.ab.worker processes whose parent is ``pid`` (another helper's are not)."""
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", WORKER_MODULE],
                           capture_output=True, text=True, timeout=10)
    return {int(word) for word in found.stdout.split()}


def _end(process: subprocess.Popen[str], workers: set[int]) -> None:
    """End a command that ran over its time: SIGTERM first (the coordinator ends its
    workers), then SIGKILL to its group and to any worker seen that is still there."""
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(TERM_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def execute(case: Case, folder: Path) -> tuple[subprocess.CompletedProcess[str] | None,
                                               float, set[int]]:
    """Run the command: (what it gave, None when it hung; seconds; workers it started)."""
    out, err = folder / ".stdout", folder / ".stderr"
    env = {**os.environ, **case.env}
    workers: set[int] = set()
    start = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(case.command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, text=True,
                                   start_new_session=True,
                                   preexec_fn=_cap_memory if case.memory_cap else None)
        while process.poll() is None:
            if time.monotonic() - start > case.timeout:
                _end(process, workers)
                return None, time.monotonic() - start, workers
            if case.watch_workers:
                workers |= _workers_of(process.pid)
            time.sleep(0.05)
    seconds = time.monotonic() - start
    done = subprocess.CompletedProcess(case.command, process.returncode, out.read_text(),
                                       err.read_text())
    return done, seconds, workers


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def run_case(case: Case, folder: Path) -> tuple[bool, str]:
    """(handled well, the first stderr line or what went wrong)."""
    if case.custom is not None:
        return case.custom()
    done, seconds, workers = execute(case, folder)
    if done is None:
        return False, f"hung (no end in {case.timeout:.0f} s)"
    stderr = _lines(done.stderr)
    first = stderr[0] if stderr else ""
    problems = []
    if done.returncode not in case.expected:
        problems.append(f"exit {done.returncode}, expected {case.expected}")
    if not case.allow_traceback and ("Traceback" in done.stderr
                                     or "INTERNALERROR" in done.stdout + done.stderr):
        problems.append("traceback")
    if done.returncode == 2 and case.one_line and not case.bench and len(stderr) != 1:
        problems.append(f"{len(stderr)} lines on stderr")
    if done.returncode == 2 and case.needles:
        missing = [needle for needle in case.needles if needle not in first]
        if missing:
            problems.append(f"the line does not name {missing}")
    found = [word for word in case.absent if word in done.stderr]
    if found:
        problems.append(f"stderr holds {found}")
    if workers:
        problems.append(f"{len(workers)} worker(s) started")
    if case.max_seconds is not None and seconds > case.max_seconds:
        problems.append(f"took {seconds:.0f} s")
    if case.after is not None and not problems:
        problem = case.after(done)
        if problem:
            problems.append(problem)
    shown = first or (_lines(done.stdout) or [""])[-1]
    if case.bench:
        shown = next(iter(_warnings(done)), shown)
    if problems:
        return False, "; ".join([*problems, f"[{shown[:150]}]"])
    return True, f"exit {done.returncode}: {shown[:150]}"


# --- 1: a floors cache of figures that parse but are no finite time ---------------------


def _bench_argv(results: Path) -> tuple[str, ...]:
    # TINY_BENCH turns the floors off; the later flag wins.
    return (*TINY_BENCH, "--linfit-floors", "cache", "--linfit-results", str(results))


def _warnings(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if "warning:" in line]


def _bench_wrote(results: Path) -> Callable[[subprocess.CompletedProcess[str]], str]:
    def check(done: subprocess.CompletedProcess[str]) -> str:
        if not list(results.glob("*.csv")):
            return "no results CSV written"
        if list(results.glob("*.journal.jsonl")):
            return "the journal was left behind"
        warnings = _warnings(done)
        if len(warnings) != 1:
            return f"{len(warnings)} warnings, expected 1: {warnings[:3]}"
        return ""
    return check


def floors_cases(folder: Path) -> list[Case]:
    """A real cache made by one bench run, then copies with every probe figure set to a value
    that parses but is no finite time > 0 (or a count that is 0 or negative)."""
    made = folder / "floors-made"
    setup = Case(1, "setup", _bench_argv(made / "results"), (0,), bench=True,
                 env={"XDG_CACHE_HOME": str(made / "cache")}, timeout=BENCH_TIMEOUT_SECONDS)

    def sample(value: float) -> Callable[[dict[str, object]], None]:
        def edit(measurement: dict[str, object]) -> None:
            samples = measurement["samples_seconds"]
            assert isinstance(samples, list)
            measurement["samples_seconds"] = [value] * len(samples)
        return edit

    def counts(measurement: dict[str, object]) -> None:
        measurement["bytes_per_call"] = -1 if measurement["kind"] == "read" else 0
        measurement["calls_per_sample"] = 0

    edits = {"every probe sample NaN": sample(math.nan),
             "every probe sample inf": sample(math.inf),
             "every probe sample 0": sample(0.0),
             "every probe sample negative": sample(-1e-3),
             "read bytes -1, copy bytes 0, calls per sample 0": counts}
    state: dict[str, Path] = {}

    def make_cache() -> str:
        if "cache" not in state:
            ok, seen = run_case(setup, folder)
            caches = list((made / "cache" / "linfit").glob("floors-*.json"))
            if not ok or len(caches) != 1:
                raise RuntimeError(f"the run that makes a floors cache failed: {seen}")
            state["cache"] = caches[0]
        return ""

    cases = []
    for number, (name, edit) in enumerate(edits.items()):
        home = folder / f"floors-{number}"
        results = home / "results"

        def run(edit: Callable[[dict[str, object]], None] = edit, home: Path = home,
                results: Path = results, name: str = name) -> tuple[bool, str]:
            try:
                make_cache()
            except RuntimeError as error:
                return False, str(error)
            document = json.loads(state["cache"].read_text())
            for device in document["devices"]:
                for measurement in device["measurements"]:
                    edit(measurement)
            cache = home / "cache" / "linfit" / state["cache"].name
            cache.parent.mkdir(parents=True)
            # NaN and Infinity as Python's json writes them (JSON5): the reader takes them.
            cache.write_text(json.dumps(document))
            case = Case(1, name, _bench_argv(results), (0,), bench=True,
                        env={"XDG_CACHE_HOME": str(home / "cache")},
                        timeout=BENCH_TIMEOUT_SECONDS, after=_bench_wrote(results))
            return run_case(case, folder)

        cases.append(Case(1, f"floors cache: {name}", custom=run,
                          argv=("XDG_CACHE_HOME=<cache>", *_bench_argv(results))))
    return cases


# --- 2: special files --------------------------------------------------------------------


def special_files(folder: Path) -> dict[str, Path]:
    """Every kind of path a reader must refuse, by the name of the case."""
    place = folder / "special"
    place.mkdir()
    fifo = place / "fifo.csv"
    os.mkfifo(fifo)
    link = place / "link-to-fifo.csv"
    link.symlink_to(fifo)
    directory = place / "a-folder.csv"
    directory.mkdir()
    sock = place / "socket.csv"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
    huge = place / "huge.csv"
    with huge.open("wb") as handle:
        handle.truncate(600 << 20)  # sparse, above the readers' 512 MiB bound
    binary = place / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 1000)
    return {"a FIFO": fifo, "a link to a FIFO": link, "/dev/zero": Path("/dev/zero"),
            "/dev/full": Path("/dev/full"), "/dev/null": Path("/dev/null"),
            "a folder": directory, "a socket": sock, "a missing file": place / "missing.csv",
            "a sparse 600 MiB file": huge, "binary, not UTF-8": binary}


NOT_REGULAR = ("a FIFO", "a link to a FIFO", "/dev/zero", "/dev/full", "/dev/null", "a folder",
               "a socket")


def special_cases(folder: Path) -> list[Case]:
    files = special_files(folder)
    out = folder / "special-out"
    out.mkdir()
    # Folders for `history`, each holding one special file under a results file's name.
    traps = {}
    for name, make in (("a FIFO named run.csv", lambda p: os.mkfifo(p / "run.csv")),
                       ("a link to /dev/zero named z.csv",
                        lambda p: (p / "z.csv").symlink_to("/dev/zero")),
                       ("a link to /dev/full named s-ab.csv",
                        lambda p: (p / "s-ab.csv").symlink_to("/dev/full"))):
        trap = folder / f"history-trap-{len(traps)}"
        trap.mkdir()
        make(trap)
        traps[name] = trap

    def commands(path: Path, number: int) -> dict[str, tuple[str, ...]]:
        return {"plot": ("plot", str(path), "-o", str(out / f"plot-{number}")),
                "recover": ("recover", str(path), "-o", str(out)),
                "floors --cache": ("floors", "--backend", "tensorflow", "--cache", str(path)),
                "check": ("check", str(path)),
                "compare": ("compare", str(FIXTURE), str(path)),
                "report": ("report", str(path), "-o", str(out / f"r-{number}.md")),
                "ab --from": ("ab", "--from", str(path)),
                "export": ("export", str(path), "--format", "bmf"),
                "history": ("history", str(path), "-o", str(out / f"site-{number}"))}

    cases = []
    for number, (kind, path) in enumerate(files.items()):
        for command, argv in commands(path, number).items():
            if command == "floors --cache" and kind == "a missing file":
                continue  # a cache to create: floors measures, as documented
            needles: tuple[str, ...] = (str(path),)
            if command != "history" and kind in NOT_REGULAR:
                needles += ("not a regular file",)
            if command != "history" and kind == "a missing file":
                needles += ("no such file",)
            if command == "history" and kind == "a folder":
                continue  # a folder is what history reads: the cases below
            cases.append(Case(2, f"{command} <{kind}>", argv, needles=needles,
                              memory_cap=True,
                              timeout=START_UP_TIMEOUT_SECONDS if command == "floors --cache"
                              else READ_TIMEOUT_SECONDS))
    for number, (what, trap) in enumerate(traps.items()):
        # Skipped with a warning or refused in one line, but never a hang or a traceback.
        cases.append(Case(2, f"history <a folder holding {what}>",
                          ("history", str(trap), "-o", str(out / f"site-trap-{number}")),
                          (0, 2), memory_cap=True))
    return cases


# --- 3: pairs files ----------------------------------------------------------------------


def pairs_cases(folder: Path) -> list[Case]:
    header, *data = _rows(PAIRS)

    def col(name: str) -> int:
        return header.index(name)

    def at(row: int, name: str, value: str) -> Callable[[list[list[str]]], None]:
        def edit(rows: list[list[str]]) -> None:
            rows[row][col(name)] = value
        return edit

    def calls(row: int, transform: Callable[[list[str]], list[str]]
              ) -> Callable[[list[list[str]]], None]:
        def edit(rows: list[list[str]]) -> None:
            rows[row][col("call_ns")] = " ".join(transform(rows[row][col("call_ns")].split()))
        return edit

    def every_row_twice(rows: list[list[str]]) -> None:
        rows[1:] = [row for row in rows[1:] for _ in range(2)]

    def one_row_again(rows: list[list[str]]) -> None:
        rows.append(rows[10][:])

    def fields_dropped(rows: list[list[str]]) -> None:
        rows[50] = rows[50][:12]

    def extra_field(rows: list[list[str]]) -> None:
        rows[5].append("surprise")

    other_side = next(i for i, row in enumerate(data, 1) if row[col("side_index")] == "0")
    # (name, edit, file line it is on, column it is in)
    mutations: list[tuple[str, Callable[[list[list[str]]], None], int | None, str]] = [
        ("a side index that invents a third side", at(1, "side_index", "2"), 2, "side_index"),
        ("side index -1", at(3, "side_index", "-1"), 4, "side_index"),
        ("side index 'x'", at(3, "side_index", "x"), 4, "side_index"),
        ("a negative round", at(7, "round", "-2"), 8, "round"),
        ("round 1.5", at(7, "round", "1.5"), 8, "round"),
        ("an unknown status", at(9, "status", "flaky"), 10, "status"),
        ("an empty status", at(9, "status", ""), 10, "status"),
        ("a negative time in call_ns", calls(4, lambda v: ["-5", *v[1:]]), 5, "call_ns"),
        ("zero times in call_ns", calls(4, lambda v: ["0"] * len(v)), 5, "call_ns"),
        ("nan in call_ns", calls(4, lambda v: ["nan", *v[1:]]), 5, "call_ns"),
        ("zero calls per sample", at(6, "calls_per_sample", "0"), 7, "calls_per_sample"),
        ("calls per sample -10", at(6, "calls_per_sample", "-10"), 7, "calls_per_sample"),
        ("every row twice", every_row_twice, 3, ""),
        ("one row again at the end", one_row_again, len(data) + 2, ""),
        ("a row with fields dropped", fields_dropped, 51, ""),
        ("an extra field", extra_field, 6, ""),
        ("another session_id in one row", at(8, "session_id", "other-ab"), 9, "session_id"),
        # Either column may be named: the two disagree.
        ("a side label that contradicts the side index",
         at(other_side, "side_label", "A2"), other_side + 1, "side_"),
        ("n_examples 'lots'", at(2, "n_examples", "lots"), 3, "n_examples"),
    ]
    cases = []
    original_from = _baseline(("ab", "--from", str(PAIRS)))

    def add(name: str, path: Path, line: int | None, column: str, good: bool) -> None:
        needles = () if good else tuple(
            n for n in (path.name, f"line {line}" if line else "line", column) if n)
        for command, argv in (("ab --from", ("ab", "--from", str(path))),
                              ("plot", ("plot", str(path), "-o", str(path.parent / "figs")))):
            after = None
            if good and command == "ab --from":
                def after(done: subprocess.CompletedProcess[str], path: Path = path) -> str:
                    rc, stdout = original_from()
                    same = done.stdout.replace(str(path), str(PAIRS)) == stdout
                    return "" if same and done.returncode == rc else "reads unlike the original"
            cases.append(Case(3, f"{command}: {name}", argv, (0,) if good else (2,),
                              needles=needles, after=after,
                              timeout=START_UP_TIMEOUT_SECONDS if good and command == "plot"
                              else READ_TIMEOUT_SECONDS))

    for number, (name, edit, line, column) in enumerate(mutations):
        rows = [header[:], *(row[:] for row in data)]
        edit(rows)
        place = folder / f"pairs-{number}"
        place.mkdir()
        add(name, _write(place / PAIRS.name, rows), line, column, good=False)
    text = PAIRS.read_bytes()
    cut = folder / "pairs-cut"
    cut.mkdir()
    kept = text[: len(text) - 3000]  # the last rows lost, the one then last cut mid-way
    (cut / PAIRS.name).write_bytes(kept)
    add("the last row cut in the middle", cut / PAIRS.name, kept.count(b"\n") + 1, "",
        good=False)
    for name, data_bytes in (("a UTF-8 BOM", b"\xef\xbb\xbf" + text),
                             ("CRLF line ends", text.replace(b"\n", b"\r\n")),
                             ("a BOM and CRLF", b"\xef\xbb\xbf" + text.replace(b"\n", b"\r\n"))):
        place = folder / f"pairs-{name.replace(' ', '-')}"
        place.mkdir()
        (place / PAIRS.name).write_bytes(data_bytes)
        add(name, place / PAIRS.name, None, "", good=True)
    return cases


def _baseline(argv: tuple[str, ...]) -> Callable[[], tuple[int, str]]:
    """The exit status and stdout of a command on an original file, run once when needed."""
    memo: list[tuple[int, str]] = []

    def get() -> tuple[int, str]:
        if not memo:
            done = subprocess.run([sys.executable, "-m", "linfit", *argv], cwd=ROOT,
                                  capture_output=True, text=True, timeout=READ_TIMEOUT_SECONDS,
                                  stdin=subprocess.DEVNULL)
            memo.append((done.returncode, done.stdout))
        return memo[0]
    return get


# --- 4: options that cannot make sense ---------------------------------------------------


def option_cases(folder: Path) -> list[Case]:
    results = ("--results", str(folder / "ab-options"))
    aa = ("ab", "--aa", *results)
    sides = ("ab", *results)
    argvs = {
        "an empty side spec": (*sides, "--side", "", "--side", "B:"),
        "a blank side spec": (*sides, "--side", "A:", "--side", "   "),
        "a side with an empty label": (*sides, "--side", "A:", "--side", ":"),
        "--min-pairs above --max-pairs": (*aa, "--min-pairs", "20", "--max-pairs", "10"),
        "--min-pairs 0": (*aa, "--min-pairs", "0"),
        "--max-pairs 0": (*aa, "--max-pairs", "0"),
        "--pairs 0": (*aa, "--pairs", "0"),
        "--pairs with --min-pairs": (*aa, "--pairs", "8", "--min-pairs", "8"),
        "a 100,000-character label": (*sides, "--side", "a" * 100_000 + ":", "--side", "B:"),
        "a 41-character label": (*sides, "--side", "a" * 41 + ":", "--side", "B:"),
        "a non-ASCII label (Latin)": (*sides, "--side", "données:", "--side", "B:"),
        "a non-ASCII label (CJK)": (*sides, "--side", "標準:", "--side", "B:"),
        "a duplicate label": (*sides, "--side", "A:", "--side", "A:"),
        "a label with a space": (*sides, "--side", "my side:", "--side", "B:"),
        "--max-seconds 0": (*aa, "--max-seconds", "0"),
        "--max-seconds -1": (*aa, "--max-seconds", "-1"),
        "--max-seconds inf": (*aa, "--max-seconds", "inf"),
        "--max-seconds nan": (*aa, "--max-seconds", "nan"),
        "--max-seconds abc": (*aa, "--max-seconds", "abc"),
        "--threshold 0": (*aa, "--threshold", "0"),
        "--threshold 2": (*aa, "--threshold", "2"),
        "--threshold -5%": (*aa, "--threshold=-5%"),
        "--threshold nan": (*aa, "--threshold", "nan"),
        "--alpha 0.9": (*aa, "--alpha", "0.9"),
        "--alpha 0": (*aa, "--alpha", "0"),
        "--alpha 1": (*aa, "--alpha", "1"),
        "--alpha nan": (*aa, "--alpha", "nan"),
        "--seed -1": (*aa, "--seed", "-1"),
        "--seed 1.5": (*aa, "--seed", "1.5"),
        "--sizes ''": (*aa, "--sizes", ""),
        "--sizes 0": (*aa, "--sizes", "0"),
        "an unknown backend": (*aa, "--backends", "nosuch"),
        "an unknown variant": (*aa, "--variants", "nosuch"),
        "an unknown dtype": (*aa, "--dtypes", "int8"),
        "--steps-per-call 7 (not a divisor of 100)": (*aa, "--steps-per-call", "7"),
        "--aa with --side": (*aa, "--side", "A:"),
        "--from with a session option": ("ab", "--from", str(PAIRS), "--max-seconds", "5"),
        "LINFIT_BACKENDS=nosuch": aa,
    }
    return [Case(4, name, argv, watch_workers=True, max_seconds=OPTION_SECONDS,
                 timeout=OPTION_SECONDS + 5,
                 env={"LINFIT_BACKENDS": "nosuch"} if name.startswith("LINFIT_") else {})
            for name, argv in argvs.items()]


# --- 5: sessions started in the same second ----------------------------------------------

# One session with the tests' fake worker (tests/ab_fake_worker.py: no framework), the clock
# frozen to one second, as tests/test_ab_coordinator.py does: `linfit ab` has no option for
# the worker's command.
SAME_SECOND_SESSION = """\
import sys
from datetime import UTC, datetime
from pathlib import Path

import linfit.ab.coordinator as coordinator
from linfit.ab.spec import Side


class Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 4, 2, 0, 0, tzinfo=UTC)


coordinator.datetime = Frozen
sides = tuple(Side(label, sys.executable, (("FAKE_AB_LABEL", label),)) for label in "AB")
config = coordinator.SessionConfig(
    sides=sides, results_dir=Path(sys.argv[1]), min_pairs=4, max_pairs=4, max_seconds=60.0,
    target_burst_seconds=0.005, worker_argv=lambda side: [sys.executable, sys.argv[2]])
result = coordinator.run_session(config, lambda line: None)
print("RESULT", result.path, result.failures)
sys.exit(1 if result.failures or result.path is None else 0)
"""
SAME_SECOND_STEM = "20261204T020000Z-fakehost-fake-ab"


def _same_second(folder: Path, sessions: int, taken: bool) -> tuple[bool, str]:
    results = folder
    results.mkdir()
    earlier = results / f"{SAME_SECOND_STEM}.csv"
    if taken:
        earlier.write_text("an earlier session's file\n")
    processes = [subprocess.Popen([sys.executable, "-c", SAME_SECOND_SESSION, str(results),
                                   str(FAKE_WORKER)], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
                 for _ in range(sessions)]
    problems, paths = [], []
    for process in processes:
        try:
            out, err = process.communicate(timeout=SESSION_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            problems.append("a session hung")
            continue
        if process.returncode != 0:
            problems.append(f"a session exited {process.returncode}: "
                            f"{(_lines(err) or [''])[-1][:120]}")
        paths += [line.split()[1] for line in out.splitlines() if line.startswith("RESULT")]
    if len(set(paths)) != len(paths):
        problems.append(f"shared files: {paths}")
    for path in map(Path, set(paths) - {"None"}):
        ids = {row[1] for row in _rows(path)[1:]}
        if ids != {path.stem}:
            problems.append(f"{path.name} holds session ids {sorted(ids)}")
    if list(results.glob("*.partial")):
        problems.append(".partial files left")
    if taken and earlier.read_text() != "an earlier session's file\n":
        problems.append("the earlier file changed")
    names = sorted(Path(path).name for path in paths)
    return not problems, "; ".join(problems) or f"distinct files {names}"


def session_cases(folder: Path) -> list[Case]:
    return [Case(5, "two sessions in one second",
                 custom=lambda: _same_second(folder / "same-2", 2, taken=False)),
            Case(5, "three sessions in one second",
                 custom=lambda: _same_second(folder / "same-3", 3, taken=False)),
            Case(5, "two sessions in one second whose name a finished file holds",
                 custom=lambda: _same_second(folder / "same-taken", 2, taken=True))]


# --- 6: a worker that crashes is exit 1 --------------------------------------------------

PLUGINS = {
    "killed_at_hello": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "sigterm_at_plan": "import os, signal\nimport linfit.harness\n"
                       "def _die(*a, **k):\n    os.kill(os.getpid(), signal.SIGTERM)\n"
                       "linfit.harness.resolve_options = _die\n",
    "segv_at_plan": "import os, signal\nimport linfit.harness\n"
                    "def _die(*a, **k):\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
                    "linfit.harness.resolve_options = _die\n",
    "exit3_at_plan": "import os\nimport linfit.harness\n"
                     "def _die(*a, **k):\n    os._exit(3)\n"
                     "linfit.harness.resolve_options = _die\n",
    "raises_at_plan": "import linfit.harness\n"
                      "def _die(*a, **k):\n    raise RuntimeError('a bug in the plan')\n"
                      "linfit.harness.resolve_options = _die\n",
}


def crash_cases(folder: Path) -> list[Case]:
    plugins = folder / "plugins"
    plugins.mkdir()
    for name, text in PLUGINS.items():
        (plugins / f"{name}.py").write_text(text)
    cells = ("--backends", "tensorflow", "--sizes", "1e3", "--variants", "xla")
    specs = {"side A killed (SIGKILL) at plan (tests/ab_killed_at_plan.py)":
             (f"A: LINFIT_WORKER_PLUGINS=ab_killed_at_plan PYTHONPATH={TESTS}", "B:"),
             "side B killed (SIGKILL) at plan": (
                 "A:", f"B: LINFIT_WORKER_PLUGINS=ab_killed_at_plan PYTHONPATH={TESTS}")}
    for name in PLUGINS:
        specs[f"side B {name.replace('_', ' ')}"] = (
            "A:", f"B: LINFIT_WORKER_PLUGINS={name} PYTHONPATH={plugins}")
    cases = []
    for number, (name, (a, b)) in enumerate(specs.items()):
        results = folder / f"crash-{number}"

        def nothing_written(done: subprocess.CompletedProcess[str],
                            results: Path = results) -> str:
            left = list(results.iterdir()) if results.exists() else []
            return f"wrote {[p.name for p in left]}" if left else ""

        cases.append(Case(6, name, ("ab", "--results", str(results), *cells, "--side", a,
                                    "--side", b), (1,), one_line=False, allow_traceback=True,
                          needles=(), absent=("error:",), watch_workers=False,
                          timeout=SESSION_TIMEOUT_SECONDS, after=nothing_written))
    return cases


# --- 7: recover a journal the results reader refuses -------------------------------------


def _journal(path: Path, rows: list[dict[str, str]]) -> Path:
    lines = [json.dumps({"linfit_journal": 1, "run_id": path.name.split(".")[0]})]
    path.write_text("\n".join([*lines, *map(json.dumps, rows)]) + "\n")
    return path


def _fixture_dicts() -> list[dict[str, str]]:
    header, *data = _rows(FIXTURE)
    return [dict(zip(header, row, strict=True)) for row in data]


def _check_reads(path: Path) -> str:
    """'' when `linfit check` reads ``path`` (exit 0 or 1), else what it said."""
    check = subprocess.run([sys.executable, "-m", "linfit", "check", str(path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=READ_TIMEOUT_SECONDS)
    if check.returncode in (0, 1):
        return ""
    return f"check refuses it (exit {check.returncode}): {(_lines(check.stderr) or [''])[0][:120]}"


def _recovered_well(place: Path, where: tuple[str, ...]
                    ) -> Callable[[subprocess.CompletedProcess[str]], str]:
    """Refused naming the cell or the line, with nothing written; or a CSV the reader takes."""
    before = sorted(place.iterdir())

    def check(done: subprocess.CompletedProcess[str]) -> str:
        written = sorted(set(place.iterdir()) - set(before))
        if done.returncode == 2:
            if written:
                return f"refused, but wrote {[p.name for p in written]}"
            first = (_lines(done.stderr) or [""])[0]
            return "" if any(w in first for w in where) else f"the line names none of {where}"
        csvs = [p for p in written if p.suffix == ".csv"]
        return _check_reads(csvs[0]) if len(csvs) == 1 else f"wrote {written}"
    return check


def recover_cases(folder: Path) -> list[Case]:
    def drop(row: int, name: str) -> Callable[[list[dict[str, str]]], None]:
        def edit(rows: list[dict[str, str]]) -> None:
            del rows[row][name]
        return edit

    def put(row: int, name: str, value: str) -> Callable[[list[dict[str, str]]], None]:
        def edit(rows: list[dict[str, str]]) -> None:
            rows[row][name] = value
        return edit

    edits = {"a row without final_w": (0, drop(0, "final_w")),
             "a row without final_b (the third)": (2, drop(2, "final_b")),
             "final_w empty": (1, put(1, "final_w", "")),
             "final_w nan": (1, put(1, "final_w", "nan")),
             "a negative median": (0, put(0, "median_seconds", "-1")),
             "no call samples": (3, put(3, "call_samples_seconds", "")),
             "an unknown status": (1, put(1, "status", "flaky")),
             "steps_per_call 0": (2, put(2, "steps_per_call", "0")),
             "a row without rounds": (3, drop(3, "rounds"))}
    # A row without final_w is issue 20's own case: refused. A derived column (the median,
    # rounds) or an untimed cell may instead be recovered, if the reader then takes the file.
    strict = ("a row without final_w", "a row without final_b (the third)")
    cases = []
    for number, (name, (row, edit)) in enumerate(edits.items()):
        place = folder / f"recover-{number}"
        place.mkdir()
        rows = _fixture_dicts()
        cell = rows[row]
        edit(rows)
        journal = _journal(place / f"run{number}.journal.jsonl", rows)
        where = (f"{cell['backend']} {cell['device']} {cell['variant']} n={cell['n_examples']}",
                 f"line {row + 2}")
        cases.append(Case(7, f"recover: {name}", ("recover", str(journal)),
                          (2,) if name in strict else (0, 2), needles=(str(journal),),
                          after=_recovered_well(place, where)))
    place = folder / "recover-intact"
    place.mkdir()
    journal = _journal(place / "intact.journal.jsonl", _fixture_dicts())

    cases.append(Case(7, "recover: an intact journal (control)", ("recover", str(journal)),
                      (0,), after=_recovered_well(place, ())))
    return cases


# --- 8: judgement calls ------------------------------------------------------------------

READ_BACK = """\
import json, sys
from linfit.results import read_results
print(json.dumps([{k: str(v) for k, v in r.to_row().items()} for r in read_results(sys.argv[1])]))
"""


def _same_as(original: Callable[[], tuple[int, str]], path: Path, base: Path, *,
             stdout: bool) -> Callable[[subprocess.CompletedProcess[str]], str]:
    def check(done: subprocess.CompletedProcess[str]) -> str:
        rc, out = original()
        if done.returncode != rc:
            return f"exit {done.returncode}, the original gives {rc}"
        if stdout and done.stdout.replace(str(path), str(base)) != out:
            return "prints unlike the original"
        return ""
    return check


def judgement_cases(folder: Path) -> list[Case]:
    cases = []
    text = FIXTURE.read_bytes()
    for label, data in (("a BOM", b"\xef\xbb\xbf" + text),
                        ("a BOM and CRLF", b"\xef\xbb\xbf" + text.replace(b"\n", b"\r\n"))):
        place = folder / f"results-{label.replace(' ', '-')}"
        place.mkdir()
        bom = place / FIXTURE.name
        bom.write_bytes(data)
        commands = {
            "compare BASE NEW=it": (("compare", str(FIXTURE), str(bom)),
                                    ("compare", str(FIXTURE), str(FIXTURE)), True),
            "compare BASE=it NEW": (("compare", str(bom), str(FIXTURE)),
                                    ("compare", str(FIXTURE), str(FIXTURE)), True),
            "check": (("check", str(bom)), ("check", str(FIXTURE)), True),
            "plot": (("plot", str(bom), "--no-convergence", "-o", str(place / "figs")),
                     ("plot", str(FIXTURE), "--no-convergence", "-o",
                      str(place / "figs-original")), False),
            "report": (("report", str(bom), "--no-convergence", "-o", str(place / "r.md")),
                       ("report", str(FIXTURE), "--no-convergence", "-o",
                        str(place / "r-original.md")), False),
            "export": (("export", str(bom), "--format", "bmf"),
                       ("export", str(FIXTURE), "--format", "bmf"), True),
        }
        for name, (argv, original, stdout) in commands.items():
            cases.append(Case(8, f"results CSV with {label}: {name}", argv, (0, 1),
                              after=_same_as(_baseline(original), bom, FIXTURE,
                                             stdout=stdout)))
    formulas = {"host": "=1+2", "device_name": "@SUM(A1)", "cpu_model": "+cmd|' /C calc'!A0",
                "backend_build": "-2+3", "xla_flags": "--xla_cpu_use_thunk_runtime=false",
                "tf_xla_flags": "'=already quoted", "os": "\t=1"}
    for number, (column, value) in enumerate(formulas.items()):
        place = folder / f"formula-{number}"
        place.mkdir()
        rows = _fixture_dicts()
        rows[0][column] = value
        journal = _journal(place / f"f{number}.journal.jsonl", rows)

        def escaped(done: subprocess.CompletedProcess[str], place: Path = place,
                    column: str = column, value: str = value) -> str:
            [written] = place.glob("*.csv")
            header, first, *_ = _rows(written)
            raw = first[header.index(column)]
            if raw.lstrip("'").startswith(("=", "+", "-", "@", "\t", "\r")) and \
                    not raw.startswith("'"):
                return f"written unescaped: {raw!r}"
            back = subprocess.run([sys.executable, "-c", READ_BACK, str(written)], cwd=ROOT,
                                  capture_output=True, text=True, timeout=READ_TIMEOUT_SECONDS)
            if back.returncode != 0:
                return f"does not read back: {(_lines(back.stderr) or [''])[-1][:120]}"
            read = json.loads(back.stdout)[0][column]
            return "" if read == value else f"reads back as {read!r}, not {value!r}"

        cases.append(Case(8, f"a results file with {column} {value!r}: escaped, read back",
                          ("recover", str(journal)), (0,), after=escaped))
    for value in ("abc", "9", "-1", "1.5", "04x"):
        def one_warning(done: subprocess.CompletedProcess[str]) -> str:
            lines = _lines(done.stderr)
            if len(lines) != 1 or "TF_CPP_MIN_LOG_LEVEL" not in lines[0]:
                return f"{len(lines)} stderr lines, expected the one warning: {lines[:3]}"
            return ""
        cases.append(Case(8, f"TF_CPP_MIN_LOG_LEVEL={value}: linfit devices",
                          ("devices", "--backend", "tensorflow"), (0,), one_line=False,
                          env={"TF_CPP_MIN_LOG_LEVEL": value}, timeout=60, after=one_warning))

    def quiet(done: subprocess.CompletedProcess[str]) -> str:
        return "warned" if "TF_CPP_MIN_LOG_LEVEL" in done.stderr else ""
    cases.append(Case(8, "TF_CPP_MIN_LOG_LEVEL=2 (control: no warning)",
                      ("devices", "--backend", "tensorflow"), (0,), one_line=False,
                      env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=60, after=quiet))
    return cases


CLASSES: dict[int, Callable[[Path], list[Case]]] = {
    1: floors_cases, 2: special_cases, 3: pairs_cases, 4: option_cases, 5: session_cases,
    6: crash_cases, 7: recover_cases, 8: judgement_cases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", default=",".join(map(str, CLASSES)),
                        help="comma-separated classes to run (default: all)")
    args = parser.parse_args()
    chosen = [int(word) for word in args.classes.split(",") if word.strip()]
    totals: dict[int, list[int]] = {}
    bad: list[tuple[Case, str]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="linfit-cases-20-") as scratch:
        for klass in chosen:
            place = Path(scratch) / f"class-{klass}"
            place.mkdir()
            for case in CLASSES[klass](place):
                inputs = [PAIRS, FIXTURE]
                before = _digest(inputs)
                ok, seen = run_case(case, place)
                if _digest(inputs) != before:
                    ok, seen = False, f"an input file changed; {seen}"
                totals.setdefault(klass, [0, 0])
                totals[klass][0] += ok
                totals[klass][1] += 1
                if not ok:
                    bad.append((case, seen))
                print(f"{klass}  {'yes' if ok else 'NO '}  {case.name[:90]}: {seen}",
                      flush=True)
            shutil.rmtree(place, ignore_errors=True)
    print()
    for klass, (good, count) in totals.items():
        print(f"class {klass}: {good} of {count} handled well")
    good = sum(g for g, _ in totals.values())
    count = sum(c for _, c in totals.values())
    print(f"all: {good} of {count} handled well ({time.monotonic() - started:.0f} s)")
    for case, seen in bad:
        command = " ".join(case.argv)[:300] if case.argv else "(in-process)"
        print(f"\nNOT HANDLED WELL: class {case.klass}, {case.name}\n  command: "
              f"{' '.join(f'{k}={v}' for k, v in case.env.items())} {command}\n  {seen}")
    return 0 if good == count else 1


if __name__ == "__main__":
    sys.exit(main())
