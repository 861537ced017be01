"""linfit._native_log: TensorFlow's Abseil start-up lines held back by TF_CPP_MIN_LOG_LEVEL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from linfit._native_log import (
    FALLBACK_LOG_LEVEL,
    filter_level,
    keep_line,
    min_log_level,
    quiet_native_stderr,
)
from linfit.environment import QUIET_TF_LOG_LEVEL

PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = (b"I0000 00:00:1795804124.694710    5116 port.cc:153] oneDNN custom operations are on. "
          b"You may see slightly different numerical results")
CUDA = (b"I0000 00:00:1795804124.697005    5116 cudart_stub.cc:31] Could not find cuda drivers "
        b"on your machine, GPU will not be used.")
CUINIT = (b"E0000 00:00:1795804129.132720    5116 cuda_platform.cc:52] failed call to cuInit: "
          b"INTERNAL: CUDA error")
WARNING = b"W1127 18:37:57.200825   16893 some_file.cc:12] something to know"
ERROR = b"E1127 18:37:57.200825   16893 some_file.cc:12] something went wrong"


@pytest.mark.parametrize(("line", "shown_at"), [
    (PREAMBLE, 0), (ONEDNN, 0), (CUDA, 0), (WARNING, 1), (ERROR, 2),
    (b"Traceback (most recent call last):", 3), (b"an ordinary line", 3),
])
def test_a_line_is_shown_up_to_its_severity(line, shown_at):
    assert [keep_line(line, level, nvidia_driver=False) for level in range(4)] == [
        level <= shown_at for level in range(4)]


def test_a_failed_cuinit_is_noise_only_without_an_nvidia_driver():
    assert not keep_line(CUINIT, 2, nvidia_driver=False)
    assert keep_line(CUINIT, 2, nvidia_driver=True)
    assert keep_line(CUINIT, 0, nvidia_driver=False)


@pytest.mark.parametrize(("value", "level"), [(None, 0), ("2", 2), (" 3 ", 3), ("x", 0)])
def test_min_log_level_reads_like_tensorflow(value, level):
    assert min_log_level({} if value is None else {"TF_CPP_MIN_LOG_LEVEL": value}) == level


NATIVE_WRITER = r"""
import os, sys
from linfit._native_log import quiet_native_stderr
lines = sys.argv[1].encode().decode("unicode_escape").encode()
with quiet_native_stderr({"TF_CPP_MIN_LOG_LEVEL": sys.argv[2]}):
    os.write(2, lines)  # as native code writes: to descriptor 2, under Python's feet
print("after", file=sys.stderr)
"""


@pytest.mark.parametrize(("level", "expected"), [
    ("2", b"keep me\nafter\n"),
    ("0", PREAMBLE + b"\n" + ONEDNN + b"\nkeep me\nafter\n"),
])
def test_descriptor_2_is_filtered_inside_and_restored_after(level, expected):
    written = (PREAMBLE + b"\n" + ONEDNN + b"\nkeep me\n").decode()
    done = subprocess.run([sys.executable, "-c", NATIVE_WRITER,
                           written.encode("unicode_escape").decode(), level],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == expected


def test_nothing_changes_at_level_0():
    before = os.fstat(2)
    with quiet_native_stderr({"TF_CPP_MIN_LOG_LEVEL": "0"}):
        assert os.fstat(2) == before


@pytest.mark.parametrize(("value", "level"), [(None, 0), ("0", 0), ("2", 2), (" 3 ", 3)])
def test_a_valid_level_is_filtered_at_without_a_warning(value, level):
    assert filter_level({} if value is None else {"TF_CPP_MIN_LOG_LEVEL": value}) == (level,
                                                                                      None)


@pytest.mark.parametrize("value", ["abc", "9", "-1", "", "2.5", "x" * 1000])
def test_an_invalid_level_is_filtered_at_linfits_default_with_one_warning(value):
    level, warning = filter_level({"TF_CPP_MIN_LOG_LEVEL": value})
    assert level == FALLBACK_LOG_LEVEL == int(QUIET_TF_LOG_LEVEL)
    assert warning is not None and "\n" not in warning and len(warning) < 300
    assert "TF_CPP_MIN_LOG_LEVEL=" in warning and "is not one of TensorFlow's levels" in warning


def test_an_invalid_level_warns_once_a_process_and_holds_the_noise_back():
    """Issue 20, class 8: "abc" passed every line silently; now one warning, once, and the
    start-up lines are held back at linfit's level."""
    written = (PREAMBLE + b"\n" + ONEDNN + b"\nkeep me\n").decode()
    script = NATIVE_WRITER.replace('print("after"', 'with quiet_native_stderr('
                                   '{"TF_CPP_MIN_LOG_LEVEL": sys.argv[2]}):\n    pass\n'
                                   'print("after"')
    done = subprocess.run([sys.executable, "-c", script,
                           written.encode("unicode_escape").decode(), "abc"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len([line for line in lines if "linfit: warning: TF_CPP_MIN_LOG_LEVEL" in line]) == 1
    assert lines[1:] == ["keep me", "after"]
