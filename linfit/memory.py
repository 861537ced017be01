"""The peak memory a benchmark cell adds: on the host (resident set) and on its device.

**Host.** Linux keeps each process's high-water mark of resident memory (``VmHWM`` in
/proc/self/status). Writing ``5`` to /proc/self/clear_refs (Linux >= 4.0, proc(5)) sets the
mark back to the resident set now. So before a cell: reset the mark and read the resident
set (``VmRSS``); after it: read the mark. The difference is the most resident memory the
cell added at its peak, over what the process held when it started. What this isolates and
what not:

- it is this process only: work in other processes (the distributed variants' workers) is
  not in it;
- memory the process held before the cell is the baseline, not the cell's: what earlier
  cells left behind (framework caches, compiled programs, allocator pools that were not
  given back to the system) is not counted, and a cell that reuses such freed memory adds
  less than it would in a fresh process. A fresh process per cell isolates more
  (``bench/peak_memory.py`` does that);
- pages are counted when touched, not when allocated.

Where the reset is refused (an older kernel, /proc read-only, not Linux), the mark is the
process's lifetime peak, and a cell's peak is known only where it raised that mark; else
it is unknown (None), never a guess.

**Device.** The framework's own allocator statistics, on a GPU only:
TensorFlow ``tf.config.experimental.reset_memory_stats`` / ``get_memory_info`` (``current``,
``peak``), PyTorch ``torch.cuda.reset_peak_memory_stats`` / ``memory_allocated`` /
``max_memory_allocated``, JAX ``Device.memory_stats()`` (``bytes_in_use``,
``peak_bytes_in_use``; JAX has no reset, so the lifetime rule above applies). These count
what the framework's allocator handed out, not what it reserved from the driver.

Nothing here imports a framework: a device meter uses the one the backend already imported
(``sys.modules``), and the tests hand in fakes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CLEAR_REFS_PATH",
    "RESET_PEAK_RSS",
    "STATUS_PATH",
    "DeviceMeter",
    "HostMeter",
    "JaxDeviceMeter",
    "Mark",
    "Meter",
    "PeakMemory",
    "PeakWatch",
    "TensorFlowDeviceMeter",
    "TorchDeviceMeter",
    "device_meter",
    "resident_bytes",
]

STATUS_PATH = Path("/proc/self/status")
CLEAR_REFS_PATH = Path("/proc/self/clear_refs")
# proc(5), /proc/pid/clear_refs: "5" resets the peak resident set size ("hiwater RSS").
RESET_PEAK_RSS = "5"
# What the frameworks' memory statistics raise where a device has none, by version: a
# missing statistic is an unknown figure, never a failed cell.
_FRAMEWORK_ERRORS: tuple[type[Exception], ...] = (ValueError, RuntimeError, KeyError,
                                                  AttributeError, TypeError)


@dataclass(frozen=True)
class Mark:
    """Memory when a cell started: in use, the peak then, and whether that peak was just
    reset to the memory in use (else it is the lifetime peak)."""

    current_bytes: int | None
    peak_bytes: int | None
    reset: bool

    def added(self, peak_after: int | None) -> int | None:
        """The most memory the cell added at its peak: ``peak_after`` - memory in use at the
        start (0 where it stayed below). None where either is unknown, or where the peak
        was not reset and the cell did not raise it (its own peak is then unknown)."""
        if self.current_bytes is None or peak_after is None:
            return None
        if not self.reset and (self.peak_bytes is None or peak_after <= self.peak_bytes):
            return None
        return max(0, peak_after - self.current_bytes)


class Meter(Protocol):
    """Something whose memory in use and peak can be read (and the peak perhaps reset)."""

    def start(self) -> Mark:
        """Reset the peak where possible; the memory in use and the peak now."""
        ...

    def peak(self) -> int | None:
        """The peak since :meth:`start` (or the lifetime peak, where it was not reset)."""
        ...


def _status_bytes(field: str) -> int | None:
    """``VmRSS`` or ``VmHWM`` of /proc/self/status, bytes; None where unreadable."""
    try:
        text = STATUS_PATH.read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s*([0-9]+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def resident_bytes() -> int | None:
    """This process's resident memory now (``VmRSS``), bytes; None where unreadable."""
    return _status_bytes("VmRSS")


class HostMeter:
    """This process's resident set and its high-water mark (see the module docstring)."""

    def start(self) -> Mark:
        try:
            CLEAR_REFS_PATH.write_text(RESET_PEAK_RSS)
            reset = True
        except OSError:
            reset = False
        return Mark(resident_bytes(), _status_bytes("VmHWM"), reset)

    def peak(self) -> int | None:
        return _status_bytes("VmHWM")


def _guarded(read: Callable[[], Any]) -> Any:
    """``read()``, or None where the framework raises one of :data:`_FRAMEWORK_ERRORS`."""
    try:
        return read()
    except _FRAMEWORK_ERRORS:
        return None


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


class TensorFlowDeviceMeter:
    """A TensorFlow device's allocator (``GPU:0``): reset, current and peak."""

    def __init__(self, tf: Any, device_id: str) -> None:
        self._config = tf.config.experimental
        self._device = device_id

    def _info(self) -> dict[str, Any]:
        return _guarded(lambda: self._config.get_memory_info(self._device)) or {}

    def start(self) -> Mark:
        reset = _guarded(lambda: self._config.reset_memory_stats(self._device) or True)
        info = self._info()
        return Mark(_as_int(info.get("current")), _as_int(info.get("peak")), bool(reset))

    def peak(self) -> int | None:
        return _as_int(self._info().get("peak"))


class TorchDeviceMeter:
    """A CUDA device's caching allocator in PyTorch (``GPU:i`` is ``cuda:i``)."""

    def __init__(self, torch: Any, index: int) -> None:
        self._cuda = torch.cuda
        self._index = index

    def start(self) -> Mark:
        reset = _guarded(lambda: self._cuda.reset_peak_memory_stats(self._index) or True)
        return Mark(_as_int(_guarded(lambda: self._cuda.memory_allocated(self._index))),
                    self.peak(), bool(reset))

    def peak(self) -> int | None:
        return _as_int(_guarded(lambda: self._cuda.max_memory_allocated(self._index)))


class JaxDeviceMeter:
    """A JAX device's allocator statistics; JAX cannot reset the peak."""

    def __init__(self, jax: Any, index: int) -> None:
        self._device = _guarded(lambda: jax.devices("gpu")[index])

    def _stats(self) -> dict[str, Any]:
        if self._device is None:
            return {}
        return _guarded(self._device.memory_stats) or {}

    def start(self) -> Mark:
        stats = self._stats()
        return Mark(_as_int(stats.get("bytes_in_use")), _as_int(stats.get("peak_bytes_in_use")),
                    reset=False)

    def peak(self) -> int | None:
        return _as_int(self._stats().get("peak_bytes_in_use"))


DeviceMeter = TensorFlowDeviceMeter | TorchDeviceMeter | JaxDeviceMeter


def device_meter(backend: str, device_id: str, kind: str) -> DeviceMeter | None:
    """The meter of a backend's GPU (``GPU:1``), with the framework the backend already
    imported; None for a CPU, a backend without a meter, or a framework not imported."""
    if kind != "GPU":
        return None
    module = sys.modules.get(backend)
    if module is None:
        return None
    index = int(device_id.rpartition(":")[2])
    if backend == "tensorflow":
        return TensorFlowDeviceMeter(module, f"GPU:{index}")
    if backend == "torch":
        return TorchDeviceMeter(module, index)
    if backend == "jax":
        return JaxDeviceMeter(module, index)
    return None


@dataclass(frozen=True)
class PeakMemory:
    """The peak memory a stretch of work added (:class:`PeakWatch`).

    Attributes:
        host_bytes: the resident memory it added at its peak (None: unknown, or not
            measured).
        device_bytes: the device memory it added at its peak (None: unknown, or no device
            meter).
    """

    host_bytes: int | None = None
    device_bytes: int | None = None


class PeakWatch:
    """Started before a stretch of work, read after it: the peak memory it added (see the
    module docstring). Reading it after a failed stretch is the caller's choice; the
    harness reads it only after a cell ran to its end."""

    def __init__(self, device: Meter | None = None, *, host: bool = True) -> None:
        """Reset the peaks where possible and note the memory in use now.

        Args:
            device: the device's meter (:func:`device_meter`), or None.
            host: whether to measure this process's resident set (False where the work
                runs in other processes).
        """
        self._host = HostMeter() if host else None
        self._device = device
        self._host_mark = self._host.start() if self._host is not None else None
        self._device_mark = device.start() if device is not None else None

    def read(self) -> PeakMemory:
        """The peaks added since the watch started (None where unknown)."""
        host = (self._host_mark.added(self._host.peak())
                if self._host is not None and self._host_mark is not None else None)
        device = (self._device_mark.added(self._device.peak())
                  if self._device is not None and self._device_mark is not None else None)
        return PeakMemory(host, device)
