"""linfit._native_log: TensorFlow's Abseil start-up lines held back by TF_CPP_MIN_LOG_LEVEL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from linfit._native_log import (
    FALLBACK_LOG_LEVEL,
    LineFilter,
    _filtered,
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


GUARD = (b"I0000 00:00:1796361572.688621   25322 cpu_feature_guard.cc:227] This TensorFlow "
         b"binary is optimized to use available CPU instructions in performance-critical "
         b"operations.")
GUARD_CONTINUATION = (b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI "
                      b"AVX512_BF16 FMA, in other operations, rebuild TensorFlow with the "
                      b"appropriate compiler flags.")


def _kept(lines: list[bytes], level: int) -> list[bytes]:
    lines_filter = LineFilter(level, nvidia_driver=False)
    return [line for line in lines if lines_filter.keep(line)]


def test_the_cpu_feature_notice_goes_with_both_its_lines():
    """Issue 20, class 8: at an invalid level the notice's second line got through alone."""
    assert _kept([GUARD, GUARD_CONTINUATION, b"keep me"], 2) == [b"keep me"]
    # Shown whole where the record is shown.
    assert _kept([GUARD, GUARD_CONTINUATION], 0) == [GUARD, GUARD_CONTINUATION]


@pytest.mark.parametrize("lines", [
    # Ordinary lines after dropped records, the notice's included, are kept.
    [GUARD, b"an ordinary line"],
    [ONEDNN, b"an ordinary line"],
    [GUARD, PREAMBLE, b"an ordinary line"],
    # The known text is held back only directly after a dropped notice: not after another
    # dropped record, not one line later, not on its own.
    [ONEDNN, GUARD_CONTINUATION],
    [GUARD, b"an ordinary line", GUARD_CONTINUATION],
    [GUARD, GUARD_CONTINUATION, GUARD_CONTINUATION],
    [GUARD_CONTINUATION],
    # A line that only starts like the notice's second line is not it.
    [GUARD, b"To enable the following instructions: AVX2, and something else."],
])
def test_only_the_notices_own_second_line_is_held_back(lines):
    dropped = {ONEDNN, PREAMBLE}
    expected = [line for line in lines if line not in dropped and line != GUARD]
    if lines[:2] == [GUARD, GUARD_CONTINUATION]:
        expected.remove(GUARD_CONTINUATION)
    assert _kept(lines, 2) == expected


@pytest.mark.parametrize("cut", [10, len(GUARD), len(GUARD) + 1, len(GUARD) + 5])
def test_the_notice_is_held_back_when_the_reads_cut_it(cut):
    """The record and its second line may reach the filter in separate reads."""
    written = GUARD + b"\n" + GUARD_CONTINUATION + b"\nkeep me\n"
    chunks = [written[:cut], written[cut:]]
    assert b"".join(_filtered(chunks, 2, nvidia_driver=False)) == b"keep me\n"
    assert b"".join(_filtered(chunks, 0, nvidia_driver=False)) == written


def test_an_invalid_level_holds_back_the_whole_cpu_feature_notice():
    written = (PREAMBLE + b"\n" + GUARD + b"\n" + GUARD_CONTINUATION + b"\nkeep me\n").decode()
    done = subprocess.run([sys.executable, "-c", NATIVE_WRITER,
                           written.encode("unicode_escape").decode(), "abc"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 3 and "linfit: warning: TF_CPP_MIN_LOG_LEVEL='abc'" in lines[0]
    assert lines[1:] == ["keep me", "after"]
