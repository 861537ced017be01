"""linfit/timing.py: the one timing loop, on a fake clock."""

from __future__ import annotations

import gc

import pytest

from linfit.timing import time_calls


class _Fake:
    """A call that advances a fake clock by 5 units, a sync that advances it by 1, and a log
    of what happened in order (with whether GC was on)."""

    def __init__(self) -> None:
        self.now = 0
        self.log: list[str] = []

    def call(self) -> None:
        self.now += 5
        self.log.append(f"call gc={gc.isenabled()}")

    def sync(self) -> None:
        self.now += 1
        self.log.append("sync")

    def clock(self) -> int:
        self.log.append("clock")
        return self.now


def test_samples_are_the_clock_intervals_of_their_calls():
    fake = _Fake()
    assert time_calls(fake.call, 3, 2, clock=fake.clock) == [10, 10, 10]
    assert fake.log.count("call gc=False") == 6


def test_warm_up_calls_are_untimed_and_sync_comes_before_the_clock():
    fake = _Fake()
    assert time_calls(fake.call, 2, 1, warmup=2, sync=fake.sync, clock=fake.clock) == [6, 6]
    assert fake.log == ["call gc=True"] * 2 + ["clock", "call gc=False", "sync", "clock"] * 2


def test_garbage_collection_is_restored_also_on_an_error():
    def broken() -> None:
        assert not gc.isenabled()
        raise RuntimeError("step failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        time_calls(broken, 1)
    assert gc.isenabled()
    gc.disable()
    try:
        time_calls(lambda: None, 1)
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_garbage_collection_may_stay_on():
    fake = _Fake()
    time_calls(fake.call, 1, disable_gc=False, clock=fake.clock)
    assert fake.log == ["clock", "call gc=True", "clock"]


def test_the_default_clock_is_integer_nanoseconds():
    [sample] = time_calls(lambda: None, 1)
    assert isinstance(sample, int) and sample >= 0
