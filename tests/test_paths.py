"""linfit/_paths.py: the one door for input files (issue 20 class 2) and atomic writes.

A special file given where a file is read must be refused in one line, never waited on
(a FIFO) nor read without end (/dev/zero): the command-line cases run in a child process
(one for them all, tests/cli_helpers.py) under a time limit, so that a hang fails the test
instead of the suite.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import background
import pytest
from cli_helpers import linfit_each

from linfit._errors import LinfitError
from linfit._paths import atomic_write_text, link_unique, open_input

# Seconds the refusals of every command line below may take in all, start-up included (the
# three frameworks load once): a hang ends the child.
CLI_SECONDS = 240
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


EVERY_COMMAND = [["plot", "-o", "{out}"], ["recover"], ["floors", "--cache"], ["check"],
                 ["report", "-o", "{out}/report.md"], ["ab", "--from"]]
DEVICES = ["/dev/zero", "/dev/full"]
HISTORY_SPECIALS = ["fifo", "/dev/zero"]


def _make_specials(folder: Path) -> None:
    """In ``folder``: ``pipe``, a FIFO, and a folder of runs per HISTORY_SPECIALS entry
    (``history-0``, ...) that holds that special file among its runs."""
    os.mkfifo(folder / "pipe")
    for index, special in enumerate(HISTORY_SPECIALS):
        runs = folder / f"history-{index}" / "runs"
        runs.mkdir(parents=True)
        if special == "fifo":
            os.mkfifo(runs / "run.csv")
        elif os.path.exists(special):
            (runs / "z.csv").symlink_to(special)


def _refusals() -> tuple[Path, dict[str, subprocess.CompletedProcess]]:
    """Every command line of the tests below, by name, run in one interpreter beside the
    session (`linfit floors` alone loads TensorFlow, JAX and PyTorch before it reads its
    cache), and the folder of special files they were given."""
    specials = background.folder("specials")
    _make_specials(specials)
    fifo = str(specials / "pipe")
    cases = {" ".join(command): [*[arg.format(out=specials / command[0] / "out")
                                   for arg in command], fifo] for command in EVERY_COMMAND}
    cases["compare"] = ["compare", fifo, fifo]
    cases.update({f"floors {device}": ["floors", "--cache", device] for device in DEVICES
                  if os.path.exists(device)})
    for index, special in enumerate(HISTORY_SPECIALS):
        runs = specials / f"history-{index}" / "runs"
        if any(runs.iterdir()):
            cases[f"history {special}"] = ["history", str(runs), "-o",
                                           str(runs.with_name("site"))]
    done = linfit_each(list(cases.values()), timeout=CLI_SECONDS)
    return specials, dict(zip(cases, done, strict=True))


def start_refusals() -> None:
    background.queue("refusals of special files", _refusals)


beside_refusals = pytest.mark.background.with_args(start_refusals)


@pytest.fixture(scope="module")
def specials() -> Path:
    return background.result("refusals of special files", start_refusals)[0]


@pytest.fixture(scope="module")
def refused() -> dict[str, subprocess.CompletedProcess]:
    return background.result("refusals of special files", start_refusals)[1]


@beside_refusals
@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_every_command_refuses_a_fifo_in_one_line(specials, refused, command):
    done = refused[" ".join(command)]
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"linfit {command[0]}: error: {specials / 'pipe'}: not a regular file (a FIFO); give "
        + done.stderr.split("give ", 1)[1].strip()]


@beside_refusals
def test_compare_refuses_a_fifo_in_one_line(refused):
    done = refused["compare"]
    assert done.returncode == 2 and "not a regular file (a FIFO)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@beside_refusals
@pytest.mark.parametrize("device", DEVICES)
def test_a_device_as_floors_cache_is_refused_in_one_line(refused, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    done = refused[f"floors {device}"]
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"linfit floors: error: {device}: not a regular file (a "
                                   "character device); give a floors cache (JSON)")


@beside_refusals
@pytest.mark.parametrize("special", HISTORY_SPECIALS)
def test_history_refuses_a_special_file_among_the_runs_in_one_line(specials, refused, special):
    if f"history {special}" not in refused:
        pytest.skip(f"{special} does not exist here")
    done = refused[f"history {special}"]
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "not a regular file" in done.stderr
    site = specials / f"history-{HISTORY_SPECIALS.index(special)}" / "site"
    assert not site.exists()
