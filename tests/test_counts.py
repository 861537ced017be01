"""Tests of linfit/counts.py: the count-file parser on committed Callgrind and Cachegrind files,
the counted region on a Python loop of known relative cost, the runner and its skip."""

from __future__ import annotations

import functools
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import background
import pytest

from linfit.counts import (
    CountFile,
    CountsError,
    callgrind_command,
    counted_region,
    parse_count_text,
    read_count_file,
    region_counts,
    region_dump_paths,
    run_counted,
    running_on_valgrind,
    start_instrumentation,
    sum_counts,
    toggled_region,
    valgrind_missing_reason,
)

DATA = Path(__file__).parent / "data" / "counts"
REPO = Path(__file__).resolve().parent.parent

needs_valgrind = pytest.mark.skipif(valgrind_missing_reason() is not None,
                                    reason=str(valgrind_missing_reason()))


def test_parses_a_callgrind_dump_with_cache_simulation() -> None:
    record = read_count_file(DATA / "callgrind_cachesim_thread.out")
    assert record.tool == "callgrind"
    assert record.valgrind_version == "3.19.0"
    assert record.command == "python loop.py 1000"
    assert record.part == 5
    assert record.thread == 1
    assert record.trigger == "--dump-after=qsort_r"
    assert record.events == ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
    assert record.instructions == 392832
    assert record.count("D1mr") == 236
    assert record.count("DLmw") == 3
    assert record.as_dict()["Dw"] == 62815
    assert record.cache_model == ("I1 cache: 32768 B, 64 B, 8-way associative; "
                                  "D1 cache: 32768 B, 64 B, 8-way associative; "
                                  "LL cache: 268435456 B, 64 B, direct-mapped")


def test_parses_a_cachegrind_file() -> None:
    record = read_count_file(DATA / "cachegrind.out")
    assert record.tool == "cachegrind"
    assert record.valgrind_version == ""  # Cachegrind 3.19 does not write it
    assert record.command == "python -c pass"
    assert record.part is None and record.thread is None
    assert record.instructions == 88315838
    assert record.count("D1mr") == 1290079
    assert record.count("DLmw") == 59076
    assert record.cache_model.startswith("I1 cache: 32768 B, 64 B, 8-way associative; ")


def test_parses_an_instruction_only_callgrind_dump() -> None:
    # A TensorFlow region's dump (xla at n=1e5, 10 steps), cost lines trimmed.
    record = read_count_file(DATA / "callgrind_ir_region.out")
    assert record.events == ("Ir",)
    assert record.cache_model == ""
    assert record.instructions == 10301397  # the totals, not the summary (10284414)
    assert record.trigger == "Client Request: xla_n100000_steps10"
    assert record.part == 15 and record.thread is None


def test_totals_win_over_summary_and_short_totals_are_padded() -> None:
    assert parse_count_text("events: Ir Dr\nsummary: 5 6\n0 1\ntotals: 7 8\n").totals == (7, 8)
    assert parse_count_text("events: Ir Dr\nsummary: 5 6\n").totals == (5, 6)
    assert parse_count_text("events: Ir Dr\n0 1\ntotals: 7\n").totals == (7, 0)


@pytest.mark.parametrize(("text", "message"), [
    ("cmd: x\nsummary: 1\n", "no 'events:' line"),
    ("events: Ir\n0 5\n", "no 'totals:' or 'summary:' line"),
    ("events: Ir\nsummary: 1 2\n", "2 totals for 1 events"),
    ("events: Ir\nsummary: lots\n", "not integers"),
])
def test_malformed_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(CountsError, match=message) as caught:
        parse_count_text(text, "bad.out")
    assert str(caught.value).startswith("bad.out: ")


def test_unknown_event_lists_the_known_ones() -> None:
    record = parse_count_text("events: Ir\nsummary: 3\n", "f")
    with pytest.raises(CountsError, match="no event 'D1mr'; it has Ir"):
        record.count("D1mr")


def test_read_refuses_missing_and_non_regular_files(tmp_path: Path) -> None:
    with pytest.raises(CountsError, match="cannot read the count file"):
        read_count_file(tmp_path / "absent.out")
    with pytest.raises(CountsError, match="not a regular file"):
        read_count_file(tmp_path)


def test_sum_counts_adds_threads_and_refuses_mixed_events() -> None:
    one = CountFile("a", "callgrind", "3.19.0", "", ("Ir", "D1mr"), (10, 1), thread=1)
    two = CountFile("b", "callgrind", "3.19.0", "", ("Ir", "D1mr"), (5, 2), thread=2)
    assert sum_counts([one, two]) == {"Ir": 15, "D1mr": 3}
    other = CountFile("c", "callgrind", "3.19.0", "", ("Ir",), (5,))
    with pytest.raises(CountsError, match="c: events Ir differ"):
        sum_counts([one, other])


def test_region_dump_paths_groups_threads_and_leaves_out_the_final_dump(
        tmp_path: Path) -> None:
    base = tmp_path / "cg.out"
    for name in ("cg.out", "cg.out-01", "cg.out.1-01", "cg.out.1-02", "cg.out.10-01",
                 "cg.out.2", "cg.out.json", "other.1"):
        (tmp_path / name).write_text("")
    dumps = region_dump_paths(base)
    assert list(dumps) == [1, 2, 10]
    assert [p.name for p in dumps[1]] == ["cg.out.1-01", "cg.out.1-02"]
    assert [p.name for p in dumps[2]] == ["cg.out.2"]


def test_regions_run_their_body_once_outside_valgrind() -> None:
    assert not running_on_valgrind()
    start_instrumentation()  # a no-op on the CPU
    calls: list[int] = []
    counted_region(lambda: calls.append(1), "one")
    assert toggled_region(lambda: calls.append(2)) == ()
    assert calls == [1, 2]


def test_toggled_region_raises_the_error_of_its_body() -> None:
    def fail() -> None:
        raise ValueError("inside the region")

    with pytest.raises(ValueError, match="inside the region"):
        toggled_region(fail)


def test_region_labels_must_be_identifiers() -> None:
    with pytest.raises(CountsError, match="region label 'a b'"):
        counted_region(lambda: None, "a b")


def test_region_counts_finds_dumps_by_label(tmp_path: Path) -> None:
    base = tmp_path / "cg.out"
    header = "creator: callgrind-3.19.0\nthread: {thread}\ndesc: Trigger: {trigger}\n"
    for name, trigger, thread, ir in (
            ("cg.out.1-01", "Client Request: first", 1, 10),
            ("cg.out.1-02", "Client Request: first", 2, 3),
            ("cg.out.2-01", "--dump-after=qsort_r", 1, 99),
            ("cg.out.3-01", "Client Request: second", 1, 20)):
        (tmp_path / name).write_text(header.format(thread=thread, trigger=trigger)
                                     + f"events: Ir\ntotals: {ir}\n")
    regions = region_counts(base)
    assert list(regions) == ["first", "second"]
    assert sum_counts(regions["first"]) == {"Ir": 13}
    assert [f.thread for f in regions["first"]] == [1, 2]
    (tmp_path / "cg.out.4-01").write_text(header.format(thread=1, trigger="Client Request: first")
                                          + "events: Ir\ntotals: 1\n")
    with pytest.raises(CountsError, match="region 'first' dumped twice"):
        region_counts(base)


def test_callgrind_command_routes() -> None:
    requested = callgrind_command(["python", "x.py"], "out", cache_sim=True,
                                  separate_threads=True)
    assert requested[:3] == ["valgrind", "--tool=callgrind", "--callgrind-out-file=out"]
    assert requested[-2:] == ["python", "x.py"]
    assert "--instr-atstart=no" in requested
    assert "--cache-sim=yes" in requested and "--separate-threads=yes" in requested
    assert "--D1=32768,8,64" in requested
    toggled = callgrind_command(["python"], "out", route="toggle")
    assert "--collect-atstart=no" in toggled and "--toggle-collect=qsort_r" in toggled
    assert "--dump-after=qsort_r" in toggled
    assert "--instr-atstart=no" not in toggled and "--cache-sim=yes" not in toggled
    with pytest.raises(CountsError, match="route 'fast'"):
        callgrind_command(["python"], "out", route="fast")


def test_skips_with_a_reason_where_valgrind_is_absent(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = valgrind_missing_reason()
    assert reason is not None and "valgrind is not on PATH" in reason
    with pytest.raises(CountsError, match="valgrind is not on PATH"):
        run_counted(["valgrind", "true"], timeout_seconds=5,
                    stderr_path=tmp_path / "stderr.txt")


@needs_valgrind
def test_a_run_past_its_limit_is_killed(tmp_path: Path) -> None:
    with pytest.raises(CountsError, match=r"exceeded its 0.5 s limit \(killed\)"):
        run_counted(["sleep", "30"], timeout_seconds=0.5, stderr_path=tmp_path / "e.txt")


@needs_valgrind
def test_a_failed_run_carries_its_stderr(tmp_path: Path) -> None:
    with pytest.raises(CountsError, match=r"status 3.*went wrong"):
        run_counted([sys.executable, "-c",
                     "import sys; print('went wrong', file=sys.stderr); sys.exit(3)"],
                    timeout_seconds=30, stderr_path=tmp_path / "e.txt")


@needs_valgrind
def test_a_killed_run_leaves_no_process_and_keeps_its_stderr(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with pytest.raises(CountsError, match="said this"):
        run_counted(["sh", "-c", f"echo said this >&2; sleep 30 & echo $! > {pid_file}; wait"],
                    timeout_seconds=1, stderr_path=tmp_path / "stderr.txt")
    grandchild = int(pid_file.read_text())
    for _ in range(50):  # killed with its group; init reaps it within moments
        if not Path(f"/proc/{grandchild}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{grandchild}").exists()


# A loop whose every iteration costs the same (a small int flipped: no allocation, no growth),
# run for N and for 2N iterations, each in its own counted region, by either route.
_LOOP = textwrap.dedent("""
    import json
    import sys
    from linfit.counts import counted_region, start_instrumentation, toggled_region

    def loop(iterations):
        flag = 0
        for _ in range(iterations):
            flag ^= 1

    n, route, out_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    start_instrumentation()
    loop(n)  # warm-up: the interpreter specialises the loop's instructions on first runs
    if route == "request":
        counted_region(lambda: loop(n), "short")
        counted_region(lambda: loop(2 * n), "long")
    else:
        print(json.dumps([toggled_region(lambda: loop(n), out_file),
                          toggled_region(lambda: loop(2 * n), out_file)]))
""")
# Iterations of the short region: about 7 M instructions, seconds under Callgrind.
_LOOP_ITERATIONS = 100_000


def _count_the_loop(route: str) -> Path:
    """Run _LOOP under Callgrind by ``route``, from a job beside the session (seconds of
    Valgrind, tests/background.py); the folder of its count files and stdout. The run is
    run_counted's own child, with its time limit."""
    folder = background.folder(f"counts-{route}")
    script = folder / "loop.py"
    script.write_text(_LOOP)
    out_file = folder / "cg.out"
    command = callgrind_command(
        [sys.executable, str(script), str(_LOOP_ITERATIONS), route, str(out_file)], out_file,
        route=route)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0"}
    run_counted(command, timeout_seconds=120, stderr_path=folder / "stderr.txt", env=env,
                stdout_path=folder / "stdout.txt")
    return folder


def start_counting(route: str) -> None:
    if valgrind_missing_reason() is None:
        background.queue(f"counts by {route}", functools.partial(_count_the_loop, route))


@needs_valgrind
@pytest.mark.parametrize("route", [
    pytest.param(route, marks=pytest.mark.background.with_args(
        functools.partial(start_counting, route))) for route in ("request", "toggle")])
def test_counts_of_n_and_2n_iterations_are_in_ratio_2(route: str) -> None:
    folder = background.result(f"counts by {route}", functools.partial(start_counting, route))
    out_file = folder / "cg.out"
    if route == "request":
        regions = region_counts(out_file)
        short, long = regions["short"][0].instructions, regions["long"][0].instructions
    else:
        parts = json.loads((folder / "stdout.txt").read_text())
        assert [len(region) for region in parts] == [1, 1]  # one dump after each region
        dumps = region_dump_paths(out_file)
        short, long = (read_count_file(dumps[region[0]][0]).instructions for region in parts)
    assert short > _LOOP_ITERATIONS * 10  # the loop itself was counted, not only the call
    assert long / short == pytest.approx(2.0, rel=0.03)
