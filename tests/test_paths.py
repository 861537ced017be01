"""linfit/_paths.py: the one door for input files (issue 20 class 2) and atomic writes.

A special file given where a file is read must be refused in one line, never waited on
(a FIFO) nor read without end (/dev/zero): the command-line cases run in a child process
under a time limit, so that a hang fails the test instead of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linfit._errors import LinfitError
from linfit._paths import atomic_write_text, link_unique, open_input

ROOT = Path(__file__).parents[1]
# Seconds a refused special file may take, start-up included: a hang ends the child.
CLI_SECONDS = 120
# Seconds an in-process open may take before SIGALRM calls it a hang.
OPEN_SECONDS = 10


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _open_with_alarm(path: Path, **options: object) -> str:
    import signal

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"open_input({path}) blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(OPEN_SECONDS)
    try:
        return open_input(path, "a results CSV", **options)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_is_refused_without_waiting_for_a_writer(fifo):
    with pytest.raises(LinfitError, match=r"pipe: not a regular file \(a FIFO\); give a "
                                          r"results CSV$"):
        _open_with_alarm(fifo)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"),
                                            ("/dev/full", "a character device")])
def test_a_device_is_refused_before_a_byte_is_read(path, kind):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(LinfitError, match=f"{path}: not a regular file \\({kind}\\)"):
        _open_with_alarm(Path(path))


def test_a_folder_and_a_missing_file_are_told_apart(tmp_path):
    with pytest.raises(LinfitError, match=r"not a regular file \(a directory\)"):
        open_input(tmp_path, "a results CSV")
    with pytest.raises(LinfitError, match=r"missing.csv: no such file$"):
        open_input(tmp_path / "missing.csv", "a results CSV")
    with pytest.raises(LinfitError, match=r"no such file$"):
        open_input(tmp_path / "missing.csv" / "below", "a results CSV")


def test_a_link_to_a_special_file_is_refused_as_what_it_points_to(tmp_path, fifo):
    link = tmp_path / "link.csv"
    link.symlink_to(fifo)
    with pytest.raises(LinfitError, match=r"not a regular file \(a FIFO\)"):
        _open_with_alarm(link)


def test_what_is_read_is_bounded(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 101)
    with pytest.raises(LinfitError, match="101 bytes, more than the 100"):
        open_input(path, "a results CSV", max_bytes=100)
    assert open_input(path, "a results CSV", max_bytes=101) == "x" * 101
    assert open_input(path, "a results CSV", max_bytes=10, head=True) == "x" * 10


def test_a_byte_order_mark_is_dropped_and_other_encodings_refused(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n")
    assert open_input(path, "a results CSV") == "a,b\n"
    path.write_bytes("a,b\n".encode("utf-16"))
    with pytest.raises(LinfitError, match="not UTF-8 text"):
        open_input(path, "a results CSV")


def test_the_error_is_the_readers_own_type(tmp_path):
    class ReaderError(LinfitError):
        pass

    with pytest.raises(ReaderError):
        open_input(tmp_path / "missing", "a results CSV", error=ReaderError)


def test_atomic_writes_never_overwrite_unless_asked(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "one")
    with pytest.raises(FileExistsError):
        atomic_write_text(path, "two")
    assert path.read_text() == "one"
    atomic_write_text(path, "three", overwrite=True)
    assert path.read_text() == "three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_link_unique_takes_the_next_free_name(tmp_path):
    (tmp_path / "s.csv").write_text("taken")
    source = tmp_path / "s.csv.partial"
    source.write_text("new")
    assert link_unique(source, tmp_path / "s.csv") == tmp_path / "s-2.csv"
    assert not source.exists() and (tmp_path / "s.csv").read_text() == "taken"


def _linfit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "linfit", *args], capture_output=True,
                          text=True, timeout=CLI_SECONDS, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


# `linfit floors --cache` is checked below, with the devices, in one interpreter.
@pytest.mark.parametrize("command", [
    ["plot", "-o", "{out}"], ["recover"], ["check"], ["report", "-o", "{out}/report.md"],
    ["ab", "--from"],
])
def test_every_command_refuses_a_fifo_in_one_line(fifo, tmp_path, command):
    done = _linfit(*[arg.format(out=tmp_path / "out") for arg in command], str(fifo))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"linfit {command[0]}: error: {fifo}: not a regular file (a FIFO); give "
        + done.stderr.split("give ", 1)[1].strip()]


def test_compare_refuses_a_fifo_in_one_line(fifo):
    done = _linfit("compare", str(fifo), str(fifo))
    assert done.returncode == 2 and "not a regular file (a FIFO)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# `linfit floors` refuses its cache only once it has the key, which lists every backend's
# devices: TensorFlow, JAX and PyTorch load first (seconds). So one interpreter runs the
# command on each special file in turn, as `python -m linfit` would: one line each.
FLOORS_ON_EACH = textwrap.dedent("""
    import sys
    from linfit.cli import main

    for path in sys.argv[1:]:
        print(main(["floors", "--cache", path]), flush=True)
        print("end of", path, file=sys.stderr, flush=True)
""")


def test_floors_refuses_a_fifo_or_a_device_as_its_cache_in_one_line(fifo):
    paths = [str(fifo)] + [device for device in ("/dev/zero", "/dev/full")
                           if os.path.exists(device)]
    done = subprocess.run([sys.executable, "-c", FLOORS_ON_EACH, *paths], capture_output=True,
                          text=True, timeout=CLI_SECONDS, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["2"] * len(paths), done.stderr
    kinds = {str(fifo): "a FIFO", "/dev/zero": "a character device",
             "/dev/full": "a character device"}
    assert done.stderr.splitlines() == [
        line for path in paths for line in (
            f"linfit floors: error: {path}: not a regular file ({kinds[path]}); give a "
            "floors cache (JSON)", f"end of {path}")]


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_history_refuses_a_special_file_among_the_runs_in_one_line(tmp_path, special):
    runs = tmp_path / "runs"
    runs.mkdir()
    if special == "fifo":
        os.mkfifo(runs / "run.csv")
    elif os.path.exists(special):
        (runs / "z.csv").symlink_to(special)
    else:
        pytest.skip(f"{special} does not exist here")
    done = _linfit("history", str(runs), "-o", str(tmp_path / "site"))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "not a regular file" in done.stderr
    assert not (tmp_path / "site").exists()
