"""linfit.memory: the peak memory a stretch of work adds, on the host (this process's resident
set, its high-water mark reset first) and on a GPU (each framework's allocator statistics,
here through fakes: the lent GPU machines are checked by hand, see the skipped test)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from linfit import memory
from linfit.memory import (
    HostMeter,
    JaxDeviceMeter,
    Mark,
    PeakMemory,
    PeakWatch,
    TensorFlowDeviceMeter,
    TorchDeviceMeter,
    device_meter,
)

MIB = 2**20
HAS_PROC = Path("/proc/self/status").is_file()


# --- the rule ----------------------------------------------------------------------------

@pytest.mark.parametrize(("mark", "peak_after", "added"), [
    (Mark(100, 100, reset=True), 150, 50),
    (Mark(100, 100, reset=True), 90, 0),  # stayed below what it started with
    (Mark(100, 500, reset=False), 700, 600),  # not reset, but the work raised the peak
    (Mark(100, 500, reset=False), 500, None),  # not reset and not raised: its peak unknown
    (Mark(None, 100, reset=True), 150, None),
    (Mark(100, 100, reset=True), None, None),
    (Mark(100, None, reset=False), 150, None),
])
def test_the_peak_added_is_known_only_where_it_can_be(mark, peak_after, added):
    assert mark.added(peak_after) == added


# --- the host ----------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_PROC, reason="the resident set is read from Linux's /proc")
def test_the_host_peak_counts_memory_touched_and_freed_within_the_stretch():
    watch = PeakWatch()
    block = bytearray(b"\x01") * (64 * MIB)  # every page touched
    del block
    peak = watch.read()
    assert peak.device_bytes is None
    assert peak.host_bytes is not None and peak.host_bytes >= 60 * MIB
    # The mark is reset per watch: the next stretch does not inherit the 64 MiB.
    assert PeakWatch().read().host_bytes < 32 * MIB


def test_an_unreadable_status_leaves_the_host_peak_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "STATUS_PATH", tmp_path)  # a folder: reading it fails
    assert PeakWatch().read() == PeakMemory(None, None)


def test_a_refused_reset_falls_back_to_the_lifetime_peak(tmp_path, monkeypatch):
    status = tmp_path / "status"
    monkeypatch.setattr(memory, "STATUS_PATH", status)
    monkeypatch.setattr(memory, "CLEAR_REFS_PATH", tmp_path / "no" / "clear_refs")
    status.write_text("VmHWM:\t  500 kB\nVmRSS:\t  100 kB\n")
    mark = HostMeter().start()
    assert mark == Mark(100 * 1024, 500 * 1024, reset=False)
    status.write_text("VmHWM:\t  500 kB\nVmRSS:\t  120 kB\n")
    assert mark.added(HostMeter().peak()) is None  # below the lifetime peak: unknown
    status.write_text("VmHWM:\t  900 kB\nVmRSS:\t  120 kB\n")
    assert mark.added(HostMeter().peak()) == 800 * 1024


def test_the_host_is_not_measured_when_the_work_runs_elsewhere():
    assert PeakWatch(host=False).read() == PeakMemory(None, None)


# --- devices, through fakes --------------------------------------------------------------

class FakeTensorFlow:
    """tf.config.experimental's memory calls on one GPU, as TensorFlow 2.21 has them."""

    def __init__(self, current: int, peak: int, refuse: bool = False) -> None:
        self.current, self.peak, self.refuse = current, peak, refuse
        self.asked: list[str] = []
        self.config = SimpleNamespace(experimental=SimpleNamespace(
            get_memory_info=self.get_memory_info, reset_memory_stats=self.reset_memory_stats))

    def get_memory_info(self, device: str) -> dict[str, int]:
        self.asked.append(device)
        if self.refuse:
            raise ValueError(f"memory info is not supported for {device}")
        return {"current": self.current, "peak": self.peak}

    def reset_memory_stats(self, device: str) -> None:
        if self.refuse:
            raise ValueError(f"memory stats are not supported for {device}")
        self.peak = self.current


def test_tensorflow_resets_the_peak_and_reads_what_the_cell_added():
    tf = FakeTensorFlow(current=10 * MIB, peak=900 * MIB)  # an earlier cell's peak
    watch = PeakWatch(TensorFlowDeviceMeter(tf, "GPU:1"), host=False)
    tf.peak = 50 * MIB  # the cell's own peak, after the reset
    assert watch.read() == PeakMemory(None, 40 * MIB)
    assert set(tf.asked) == {"GPU:1"}


def test_tensorflow_statistics_a_device_does_not_have_are_unknown():
    tf = FakeTensorFlow(current=10, peak=20, refuse=True)
    assert PeakWatch(TensorFlowDeviceMeter(tf, "GPU:0"), host=False).read() == PeakMemory()


class FakeCuda:
    def __init__(self, allocated: int, peak: int) -> None:
        self.allocated, self.peak = allocated, peak
        self.devices: set[int] = set()

    def memory_allocated(self, index: int) -> int:
        self.devices.add(index)
        return self.allocated

    def max_memory_allocated(self, index: int) -> int:
        return self.peak

    def reset_peak_memory_stats(self, index: int) -> None:
        self.peak = self.allocated


def test_torch_resets_the_peak_and_reads_what_the_cell_added():
    cuda = FakeCuda(allocated=8 * MIB, peak=2000 * MIB)
    watch = PeakWatch(TorchDeviceMeter(SimpleNamespace(cuda=cuda), 0), host=False)
    cuda.peak = 24 * MIB
    assert watch.read().device_bytes == 16 * MIB and cuda.devices == {0}


class FakeJaxDevice:
    def __init__(self, stats: dict[str, int] | None) -> None:
        self.stats = stats

    def memory_stats(self) -> dict[str, int] | None:
        return self.stats


def _fake_jax(device: FakeJaxDevice) -> Any:
    def devices(platform: str) -> list[FakeJaxDevice]:
        if platform != "gpu":
            raise RuntimeError(f"no {platform} backend")
        return [FakeJaxDevice(None), device]
    return SimpleNamespace(devices=devices)


def test_jax_cannot_reset_so_a_peak_below_the_lifetime_one_is_unknown():
    device = FakeJaxDevice({"bytes_in_use": 5 * MIB, "peak_bytes_in_use": 100 * MIB})
    watch = PeakWatch(JaxDeviceMeter(_fake_jax(device), 1), host=False)
    device.stats = {"bytes_in_use": 5 * MIB, "peak_bytes_in_use": 100 * MIB}
    assert watch.read().device_bytes is None
    watch = PeakWatch(JaxDeviceMeter(_fake_jax(device), 1), host=False)
    device.stats = {"bytes_in_use": 5 * MIB, "peak_bytes_in_use": 300 * MIB}
    assert watch.read().device_bytes == 295 * MIB


def test_jax_without_statistics_or_the_device_is_unknown():
    no_stats = JaxDeviceMeter(_fake_jax(FakeJaxDevice(None)), 1)
    assert PeakWatch(no_stats, host=False).read() == PeakMemory()
    def no_gpu_backend(platform: str) -> list[FakeJaxDevice]:
        raise RuntimeError("Unknown backend: 'gpu' requested, but no platforms are 'gpu'")

    no_gpu = JaxDeviceMeter(SimpleNamespace(devices=no_gpu_backend), 0)
    assert PeakWatch(no_gpu, host=False).read() == PeakMemory()
    with pytest.raises(IndexError):  # a device the backend does not have is a bug
        JaxDeviceMeter(_fake_jax(FakeJaxDevice(None)), 7)


def test_a_device_meter_only_for_a_gpu_of_an_imported_framework(monkeypatch):
    tf = FakeTensorFlow(0, 0)
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=FakeCuda(0, 0)))
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    assert device_meter("tensorflow", "CPU:0", "CPU") is None
    assert isinstance(device_meter("tensorflow", "GPU:2", "GPU"), TensorFlowDeviceMeter)
    assert isinstance(device_meter("torch", "GPU:0", "GPU"), TorchDeviceMeter)
    assert device_meter("jax", "GPU:0", "GPU") is None  # never imported here: not measured


def test_real_gpu_statistics_with_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here: the device paths are checked with fakes above, and "
                    "this test on a lent GPU machine")
    watch = PeakWatch(TorchDeviceMeter(torch, 0), host=False)
    block = torch.ones(64 * MIB // 4, device="cuda:0")
    del block
    assert watch.read().device_bytes >= 64 * MIB


def test_real_gpu_statistics_with_jax():
    jax = pytest.importorskip("jax")
    try:
        jax.devices("gpu")
    except RuntimeError:
        pytest.skip("no GPU for JAX here: the device paths are checked with fakes above, "
                    "and this test on a lent GPU machine")
    import jax.numpy as jnp

    watch = PeakWatch(JaxDeviceMeter(jax, 0), host=False)
    block = jnp.ones(256 * MIB // 4, device=jax.devices("gpu")[0]).block_until_ready()
    del block
    added = watch.read().device_bytes
    assert added is None or added >= 256 * MIB  # None: an earlier peak was higher
