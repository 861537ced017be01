"""Hardware floors: how fast a step could be at best on a device, and how close each row gets.

A step of the tutorial does a few flops per example but must read x and y at least once, and
every call pays the framework's dispatch. So a step's time has two floors:

* the **read floor**: ``bytes_min / read bandwidth``, the time to read x and y once from the
  device's memory, where the bandwidth is the best any probe reached on that device (a
  streaming sum over an array much larger than the last-level cache);
* the **dispatch floor**: the cost of the backend's cheapest compiled call (a scalar in, a
  scalar out), shared by the ``steps_per_call`` steps of one call.

A measurement is made of **rounds**: each round runs every probe once (the median of
``repeats`` samples). One probe on a shared machine moves by tens of per cent from minute to
minute (issue 12: a read floor of 2.95 ms, then 4.45 ms three minutes later), so a row's
floor is the best of several rounds spread through time, and the spread of those rounds is
kept beside it. A round's floor for a cell is ``max(bytes_min / the round's best read
bandwidth, the round's dispatch floor / steps_per_call)``; the cell's ``floor_seconds`` is
the smallest round floor, ``floor_spread`` = largest / smallest, and ``efficiency =
floor_seconds / median_seconds`` (1.0 = at the floor).

:func:`measure_floors` measures rounds; :func:`merge_rounds` and :func:`latest_rounds`
combine them; :func:`floor_columns` turns floors into a results row's columns (pure);
:func:`load_or_measure` reads a JSON cache that names the machine and keeps its most recent
rounds (:data:`MAX_CACHED_ROUNDS`), or measures and writes one. Every figure keeps its raw
samples; medians and bandwidths are derived from them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from linfit._errors import DeviceError, LinfitError
from linfit._paths import atomic_write_text, open_input, output_dir_problem
from linfit.backends.base import Backend, Device
from linfit.data import numpy_dtype
from linfit.environment import machine_facts
from linfit.timing import time_calls

__all__ = [
    "COPY_BYTES_PER_ELEMENT",
    "DEFAULT_PROBE_ELEMENTS",
    "DEFAULT_REPEATS",
    "DISPATCH_CALLS_PER_SAMPLE",
    "FLOORS_FORMAT_VERSION",
    "MAX_CACHED_ROUNDS",
    "READABLE_FLOORS_FORMAT_VERSIONS",
    "DeviceFloors",
    "Floors",
    "FloorsFileError",
    "ProbeMeasurement",
    "RoundFloor",
    "cache_dir_problem",
    "cache_file_name",
    "cell_round_floors",
    "default_cache_dir",
    "floor_columns",
    "floors_json",
    "floors_key",
    "latest_rounds",
    "load_or_measure",
    "measure_floors",
    "merge_rounds",
    "read_floors",
    "rounds_summary",
    "spread",
    "update_cache",
    "write_floors",
]

# Bump when a field changes meaning or is removed; read_floors refuses other versions.
# 2: probe rounds: each measurement has its round_index and measured_utc (issue 12). A
# version-1 file is read as one round, round 0, taken at its measured_utc.
FLOORS_FORMAT_VERSION = 2
READABLE_FLOORS_FORMAT_VERSIONS = (1, 2)

# The cache keeps this machine's most recent rounds, from earlier sessions: each session adds
# one, so the floors of two sessions minutes apart are the best of nearly the same rounds and
# hold still. 8: on the shared 2-core VM the read probes of 5 back-to-back rounds stayed
# within 1.05x of each other in one minute and 2.2x apart in another (a busy neighbour, then
# a quiet one), so rounds must span many minutes to hold a quiet moment's figure; and after
# 8 sessions a round ages out, so a machine that changed for good is followed soon.
MAX_CACHED_ROUNDS = 8

# 2**26 float32 = 256 MiB per probe array. It must be much larger than the last-level cache, or
# the "read floor" would be a cache bandwidth: 32 MiB L3 on this 2-core EPYC, 50-60 MiB L2 on
# an H100/H200, so >= 4x. Not larger: filling 1 GiB arrays with random numbers on a CPU took
# minutes on a GPU host with three backends' probes, which a benchmark session cannot afford.
DEFAULT_PROBE_ELEMENTS = 1 << 26

# Median of 11 timed runs per probe (odd, so the median is one run): on the 2 shared cores a
# single large read varies by tens of per cent between runs; 11 keeps the whole CPU
# measurement at a few seconds per backend.
DEFAULT_REPEATS = 11

# One dispatch sample is the mean of this many back-to-back calls: a call takes microseconds,
# close to the clock's and the scheduler's noise, and 100 calls take about a millisecond.
DISPATCH_CALLS_PER_SAMPLE = 100

# Bump when a probe changes what it measures, so that no cache of the old probe is used
# (part of floors_key). 2: TensorFlow's dispatch probe calls a ConcreteFunction with its
# input captured, the cheapest call, as the default calling convention does (issue 12).
PROBES_VERSION = 2

# Untimed calls before timing: the first compiles (XLA) and faults the output buffers in.
WARMUP_CALLS = 2

# A copy reads and writes every element: bytes moved per float32 element, the convention of
# the STREAM benchmark's "copy" figure.
COPY_BYTES_PER_ELEMENT = 2 * 4
READ_BYTES_PER_ELEMENT = 4

# The probe that reads with NumPy, on CPU devices only (host memory is the CPU's memory).
NUMPY_PROBE = "numpy"

# The cache lives outside the source tree; XDG_CACHE_HOME moves it as for other tools.
CACHE_SUBDIR = "linfit"


class FloorsFileError(LinfitError):
    """Raised when a floors cache file cannot be used: unreadable, not JSON, not linfit's
    floors, a format_version this linfit does not know, or fields missing. The message names
    the file.
    """


@dataclass(frozen=True)
class ProbeMeasurement:
    """One probe's raw timings on one device.

    Attributes:
        kind: ``read``, ``copy`` or ``dispatch``.
        probe: who ran it: a backend name, or ``numpy``.
        bytes_per_call: bytes one call moves (read: the array; copy: read plus write;
            dispatch: 0).
        calls_per_sample: calls timed together for one sample (1 for read and copy).
        samples_seconds: every sample's time per call.
        round_index: the probe round it belongs to (0, 1, ... in the order taken).
        measured_utc: when the probe started (ISO 8601, UTC).
    """

    kind: str
    probe: str
    bytes_per_call: int
    calls_per_sample: int
    samples_seconds: tuple[float, ...]
    round_index: int = 0
    measured_utc: str = ""

    @property
    def median_seconds(self) -> float:
        """Median time per call."""
        return float(np.median(self.samples_seconds))

    @property
    def bytes_per_second(self) -> float:
        """``bytes_per_call`` / median time per call (0 for a dispatch probe; NaN where the
        measurement is not :attr:`usable`)."""
        if not self.usable:
            return math.nan
        return self.bytes_per_call / self.median_seconds

    @property
    def usable(self) -> bool:
        """Whether every sample is a finite time > 0 and, for a read or copy probe, the
        bandwidth is a finite number > 0. A figure that is not (a cache edited by hand, a
        clock that stood still) is unknown: every floor derived from the measurements
        leaves it out, rather than dividing by it."""
        if not self.samples_seconds or not all(
                math.isfinite(s) and s > 0 for s in self.samples_seconds):
            return False
        if self.kind == "dispatch":
            return True
        bandwidth = self.bytes_per_call / self.median_seconds
        return math.isfinite(bandwidth) and bandwidth > 0


@dataclass(frozen=True)
class DeviceFloors:
    """Everything measured about one device's floors, in every round; the figures derive
    from the samples.

    Attributes:
        device: the device id, ``CPU:0``.
        device_kind: ``CPU`` or ``GPU``.
        device_name: the CPU model or GPU name.
        probe_elements: float32 elements of each read/copy probe's array.
        repeats: timed samples per probe.
        measurements: every probe run on the device, in every round, with its raw samples.
    """

    device: str
    device_kind: str
    device_name: str
    probe_elements: int
    repeats: int
    measurements: tuple[ProbeMeasurement, ...]

    @property
    def rounds(self) -> tuple[int, ...]:
        """The round indices the device was measured in, in order."""
        return tuple(sorted({m.round_index for m in self.measurements}))

    @property
    def usable_measurements(self) -> tuple[ProbeMeasurement, ...]:
        """The measurements every figure below derives from: the :attr:`usable
        <ProbeMeasurement.usable>` ones."""
        return tuple(m for m in self.measurements if m.usable)

    @property
    def unusable_measurements(self) -> tuple[ProbeMeasurement, ...]:
        """The measurements left out as unknown (not finite times > 0)."""
        return tuple(m for m in self.measurements if not m.usable)

    def _best(self, kind: str, round_index: int | None = None) -> ProbeMeasurement:
        candidates = [m for m in self.usable_measurements if m.kind == kind
                      and (round_index is None or m.round_index == round_index)]
        if not candidates:
            in_round = "" if round_index is None else f" in round {round_index}"
            raise LinfitError(f"no {kind} probe was measured on {self.device}{in_round}")
        # The honest floor is the fastest anyone reads (or copies) that memory.
        return max(candidates, key=lambda m: m.bytes_per_second)

    @property
    def read_bandwidth_bytes_per_second(self) -> float:
        """The best sustained read bandwidth any probe reached on the device, in any round."""
        return self._best("read").bytes_per_second

    @property
    def read_probe(self) -> str:
        """The probe that reached :attr:`read_bandwidth_bytes_per_second`."""
        return self._best("read").probe

    @property
    def copy_bandwidth_bytes_per_second(self) -> float:
        """The best copy bandwidth (bytes read plus written per second), in any round."""
        return self._best("copy").bytes_per_second

    @property
    def copy_probe(self) -> str:
        """The probe that reached :attr:`copy_bandwidth_bytes_per_second`."""
        return self._best("copy").probe

    @property
    def dispatch_floor_seconds(self) -> dict[str, float]:
        """Backend name -> median cost of its cheapest compiled call on the device, in its
        best round."""
        best: dict[str, float] = {}
        for m in self.usable_measurements:
            if m.kind == "dispatch":
                best[m.probe] = min(best.get(m.probe, math.inf), m.median_seconds)
        return best

    def round_bandwidths(self, kind: str) -> dict[int, float]:
        """Round index -> the best bandwidth any probe of ``kind`` (read or copy) reached in
        that round; rounds without such a probe are left out."""
        by_round: dict[int, float] = {}
        for m in self.usable_measurements:
            if m.kind == kind:
                by_round[m.round_index] = max(by_round.get(m.round_index, 0.0),
                                              m.bytes_per_second)
        return by_round

    def round_dispatch_seconds(self, backend: str) -> dict[int, float]:
        """Round index -> ``backend``'s dispatch floor in that round."""
        return {m.round_index: m.median_seconds for m in self.usable_measurements
                if m.kind == "dispatch" and m.probe == backend}

    @property
    def read_spread(self) -> float:
        """Best round's read bandwidth / worst round's (1.0 for one round)."""
        return spread(self.round_bandwidths("read").values())

    @property
    def dispatch_spread(self) -> dict[str, float]:
        """Backend name -> its worst round's dispatch floor / its best round's."""
        backends = dict.fromkeys(m.probe for m in self.usable_measurements
                                 if m.kind == "dispatch")
        return {name: spread(self.round_dispatch_seconds(name).values())
                for name in backends}


@dataclass(frozen=True)
class Floors:
    """The floors of the devices measured together, in one or more rounds, and the key
    that names the machine.

    Attributes:
        key: machine identity and probe settings as sorted (name, value) pairs; a cache is
            used only where its key equals :func:`floors_key` of the run that wants it.
        measured_utc: when the first of its rounds started (ISO 8601).
        devices: one entry per device, in the order measured.
    """

    key: tuple[tuple[str, str], ...]
    measured_utc: str
    devices: tuple[DeviceFloors, ...]

    @property
    def rounds(self) -> int:
        """How many probe rounds the floors are the best of."""
        return len({index for device in self.devices for index in device.rounds})

    def device(self, device_id: str) -> DeviceFloors:
        """The floors of ``device_id``.

        Raises:
            LinfitError: naming the devices these floors cover.
        """
        for floors in self.devices:
            if floors.device == device_id:
                return floors
        covered = ", ".join(f.device for f in self.devices) or "none"
        raise LinfitError(f"no floors were measured for {device_id}; measured: {covered}")


@dataclass(frozen=True)
class RoundFloor:
    """One round's floor for one cell.

    Attributes:
        round_index: the round.
        read_bandwidth_bytes_per_second: the best read bandwidth of that round.
        dispatch_floor_seconds: the backend's dispatch floor in that round, per call.
        floor_seconds: max(bytes_min / that bandwidth, that dispatch / steps_per_call).
    """

    round_index: int
    read_bandwidth_bytes_per_second: float
    dispatch_floor_seconds: float
    floor_seconds: float


def spread(values: Iterable[float]) -> float:
    """Largest / smallest of positive figures, one per round: worst / best for times,
    best / worst for bandwidths (>= 1.0; 1.0 for one figure).

    Args:
        values: one figure per round, finite and > 0; at least one.

    Raises:
        ValueError: for no values, a value that is not a finite number > 0 (a spread of it
            would be a division by zero or NaN, not a figure), or a spread too large for a
            float.
    """
    figures = list(values)
    if not figures:
        raise ValueError("spread() needs at least one value")
    if not all(math.isfinite(figure) and figure > 0 for figure in figures):
        raise ValueError(f"spread() needs finite figures > 0, got {figures}")
    ratio = max(figures) / min(figures)
    if not math.isfinite(ratio):
        raise ValueError(f"spread() of {figures} is too large for a float")
    return ratio


def _known_spread(values: Iterable[float]) -> float | None:
    """:func:`spread`, or None where it is unknown (a summary line never fails on it)."""
    try:
        return spread(values)
    except ValueError:
        return None


def cell_round_floors(floors: Floors, backend: str, device: str, n_examples: int, dtype: str,
                      steps_per_call: int) -> tuple[RoundFloor, ...]:
    """Each round's floor for one cell, in round order.

    A round counts where it measured both a read probe on ``device`` and ``backend``'s
    dispatch there.

    Args:
        floors: measured floors covering ``device`` and ``backend``'s dispatch on it.
        backend: the cell's backend (its dispatch floor is used).
        device: the cell's device id.
        n_examples: examples in x (and in y).
        dtype: the cell's dtype; x and y each take ``n_examples`` items of its size.
        steps_per_call: steps per call; the dispatch floor is shared by them.

    Returns:
        At least one round's floor.

    Raises:
        LinfitError: when the floors lack the device, or no round has both its read
            bandwidth and the backend's dispatch floor; for n_examples or steps_per_call
            below 1.
    """
    if n_examples < 1 or steps_per_call < 1:
        raise LinfitError(f"n_examples and steps_per_call must be >= 1, got {n_examples} and "
                          f"{steps_per_call}")
    device_floors = floors.device(device)
    dispatch = device_floors.round_dispatch_seconds(backend)
    if not dispatch:
        raise LinfitError(f"no {backend} dispatch floor was measured on {device}; measured: "
                          f"{', '.join(sorted(device_floors.dispatch_floor_seconds)) or 'none'}")
    bandwidths = device_floors.round_bandwidths("read")
    bytes_min = 2 * n_examples * numpy_dtype(dtype).itemsize
    rounds = tuple(
        RoundFloor(index, bandwidths[index], dispatch[index],
                   max(bytes_min / bandwidths[index], dispatch[index] / steps_per_call))
        for index in sorted(set(bandwidths) & set(dispatch)))
    if not rounds:
        raise LinfitError(f"no round measured both the read bandwidth and the {backend} "
                          f"dispatch floor on {device}")
    return rounds


def floor_columns(floors: Floors, backend: str, device: str, n_examples: int, dtype: str,
                  steps_per_call: int, median_seconds: float) -> dict[str, float | int]:
    """The floor columns of one results row: those of the round whose floor is the lowest,
    and the spread of the rounds.

    Args:
        floors: measured floors covering ``device`` and ``backend``'s dispatch on it.
        backend, device, n_examples, dtype, steps_per_call: the row's cell, as
            :func:`cell_round_floors` takes them.
        median_seconds: the row's median time per step, > 0.

    Returns:
        ``bytes_min``; ``read_bandwidth_bytes_per_second``, ``dispatch_floor_seconds`` and
        ``floor_seconds`` of the best round (so that floor = max(bytes_min / bandwidth,
        dispatch / steps_per_call) holds within the row); ``floor_rounds``, the rounds the
        floor is the best of; ``floor_spread``, the worst round's floor / the best's; and
        ``efficiency``; as :data:`linfit.results.COLUMNS` declares them.

    Raises:
        LinfitError: as :func:`cell_round_floors`, and for a median_seconds that is not
            positive.
    """
    if not (math.isfinite(median_seconds) and median_seconds > 0):
        raise LinfitError(f"median_seconds must be a finite number > 0, got {median_seconds}")
    rounds = cell_round_floors(floors, backend, device, n_examples, dtype, steps_per_call)
    # The first of equal floors: the earliest round.
    best = min(rounds, key=lambda r: r.floor_seconds)
    return {
        "bytes_min": 2 * n_examples * numpy_dtype(dtype).itemsize,
        "read_bandwidth_bytes_per_second": best.read_bandwidth_bytes_per_second,
        "dispatch_floor_seconds": best.dispatch_floor_seconds,
        "floor_seconds": best.floor_seconds,
        "floor_rounds": len(rounds),
        "floor_spread": spread(r.floor_seconds for r in rounds),
        "efficiency": best.floor_seconds / median_seconds,
    }


def rounds_summary(floors: Floors, cached_rounds: int = 0) -> str:
    """``4 rounds (2 cached), read floor spread 1.12x, dispatch spread 1.30x``: how many
    rounds the floors are the best of, and the largest spread between them of any device's
    read bandwidth and of any backend's dispatch floor.

    Args:
        floors: the floors.
        cached_rounds: how many of the rounds came from a cache (not said when 0).
    """
    count = floors.rounds
    text = f"{count} round{'s' if count != 1 else ''}" + (
        f" ({cached_rounds} cached)" if cached_rounds else "")
    known = [_known_spread(d.round_bandwidths("read").values()) for d in floors.devices]
    reads = [figure for figure in known if figure is not None]
    known = [_known_spread(d.round_dispatch_seconds(name).values()) for d in floors.devices
             for name in dict.fromkeys(m.probe for m in d.usable_measurements
                                       if m.kind == "dispatch")]
    dispatches = [figure for figure in known if figure is not None]
    if reads:
        text += f", read floor spread {max(reads):.2f}x"
    if dispatches:
        text += f", dispatch spread {max(dispatches):.2f}x"
    return text


def merge_rounds(*parts: Floors) -> Floors:
    """One set of floors holding every round of ``parts``, renumbered 0, 1, ... in the
    order given (each part's rounds in their order).

    Args:
        parts: floors of the same key (the same machine and probe settings), at least one.

    Returns:
        The floors; ``measured_utc`` is the first part's.

    Raises:
        ValueError: for no parts, or parts of different keys.
    """
    if not parts:
        raise ValueError("merge_rounds() needs at least one Floors")
    if any(part.key != parts[0].key for part in parts):
        raise ValueError("merge_rounds() needs floors of one key (machine and settings)")
    renumbered: dict[tuple[int, int], int] = {}
    for number, part in enumerate(parts):
        for index in sorted({i for device in part.devices for i in device.rounds}):
            renumbered[number, index] = len(renumbered)
    devices: dict[str, DeviceFloors] = {}
    for number, part in enumerate(parts):
        for device in part.devices:
            measurements = tuple(replace(m, round_index=renumbered[number, m.round_index])
                                 for m in device.measurements)
            earlier = devices.get(device.device)
            devices[device.device] = replace(
                earlier or device,
                measurements=(earlier.measurements if earlier else ()) + measurements)
    return Floors(parts[0].key, parts[0].measured_utc, tuple(devices.values()))


def latest_rounds(floors: Floors, count: int) -> Floors:
    """The ``count`` most recent rounds of ``floors`` (all of them where there are no more),
    renumbered from 0.

    Raises:
        ValueError: for a count below 1.
    """
    if count < 1:
        raise ValueError(f"latest_rounds() keeps at least one round, got {count}")
    indices = sorted({i for device in floors.devices for i in device.rounds})
    kept = {old: new for new, old in enumerate(indices[-count:])}
    devices = tuple(
        replace(device, measurements=tuple(replace(m, round_index=kept[m.round_index])
                                           for m in device.measurements
                                           if m.round_index in kept))
        for device in floors.devices)
    times = [m.measured_utc for device in devices for m in device.measurements
             if m.measured_utc]
    # ISO 8601 times in UTC sort as text.
    return Floors(floors.key, min(times) if times else floors.measured_utc, devices)


# --- measuring ------------------------------------------------------------------------------


def _time_calls(call: Callable[[], object], repeats: int, calls_per_sample: int,
                clock: Callable[[], float]) -> tuple[float, ...]:
    """``repeats`` samples of the mean time of ``calls_per_sample`` calls, after warm-up
    (garbage collection off while timing; each probe synchronises itself)."""
    return tuple(seconds / calls_per_sample for seconds in time_calls(
        call, repeats, calls_per_sample, warmup=WARMUP_CALLS, clock=clock))


def _numpy_read_probe(n_elements: int) -> Callable[[], object]:
    data = np.random.default_rng(1).random(n_elements, dtype=np.float32)
    return data.sum


def _numpy_copy_probe(n_elements: int) -> Callable[[], object]:
    source = np.random.default_rng(2).random(n_elements, dtype=np.float32)
    target = np.empty_like(source)
    return lambda: np.copyto(target, source)


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _measure(kind: str, probe: str, make: Callable[[], Callable[[], object]],
             bytes_per_call: int, repeats: int, calls_per_sample: int,
             clock: Callable[[], float], round_index: int) -> ProbeMeasurement:
    started = _utc_now()
    # The probe (and its arrays) is dropped on return, before the next one allocates.
    samples = _time_calls(make(), repeats, calls_per_sample, clock)
    return ProbeMeasurement(kind, probe, bytes_per_call, calls_per_sample, samples, round_index,
                            started)


def _devices_by_id(backends: Sequence[Backend]) -> dict[str, list[tuple[Backend, Device]]]:
    by_id: dict[str, list[tuple[Backend, Device]]] = {}
    for backend in backends:
        for device in backend.devices():
            by_id.setdefault(device.id, []).append((backend, device))
    return by_id


def _wanted_devices(backends: Sequence[Backend],
                    device_ids: Sequence[str] | None) -> dict[str, list[tuple[Backend, Device]]]:
    by_id = _devices_by_id(backends)
    if device_ids is None:
        return by_id
    wanted = {}
    for text in device_ids:
        device_id = text.strip().upper().removeprefix("/DEVICE:")
        if device_id not in by_id:
            raise DeviceError(f"no backend has device {text!r}; devices: {', '.join(by_id)}")
        wanted[device_id] = by_id[device_id]
    return wanted


def _check_settings(probe_elements: int, repeats: int, dispatch_calls: int) -> None:
    for name, value in (("probe_elements", probe_elements), ("repeats", repeats),
                        ("dispatch_calls", dispatch_calls)):
        if value < 1:
            raise LinfitError(f"{name} must be an integer >= 1, got {value}")


def floors_key(backends: Sequence[Backend], device_ids: Sequence[str] | None = None, *,
               probe_elements: int = DEFAULT_PROBE_ELEMENTS, repeats: int = DEFAULT_REPEATS,
               dispatch_calls: int = DISPATCH_CALLS_PER_SAMPLE) -> dict[str, str]:
    """What names a floors measurement: this machine (host, OS, CPU model, NumPy and backend
    versions, the devices' names and details) and the probe settings.

    Raises:
        DeviceError: for a device no backend has.
    """
    facts = machine_facts()
    key = {name: facts[name] for name in ("host", "os", "cpu_model", "numpy_version")}
    for backend in backends:
        key[f"{backend.name} version"] = backend.version
    for device_id, pairs in _wanted_devices(backends, device_ids).items():
        for backend, device in pairs:
            key[f"{backend.name} {device_id}"] = " ".join(filter(None, (device.name,
                                                                        device.details)))
    key.update(probe_elements=str(probe_elements), repeats=str(repeats),
               dispatch_calls=str(dispatch_calls), probes_version=str(PROBES_VERSION))
    return dict(sorted(key.items()))


def measure_floors(backends: Sequence[Backend], device_ids: Sequence[str] | None = None, *,
                   probe_elements: int = DEFAULT_PROBE_ELEMENTS,
                   repeats: int = DEFAULT_REPEATS,
                   dispatch_calls: int = DISPATCH_CALLS_PER_SAMPLE,
                   rounds: int = 1,
                   clock: Callable[[], float] = time.perf_counter) -> Floors:
    """Measure read and copy bandwidth and each backend's dispatch floor on each device, in
    ``rounds`` rounds back to back.

    In each round, each backend's probes run on each device it has (NumPy's too on CPU
    devices), one probe at a time so that only one probe's arrays are alive. Every figure is
    the median of ``repeats`` timed samples after :data:`WARMUP_CALLS` untimed calls.

    Args:
        backends: the backends whose probes run.
        device_ids: the devices (default: every device of any of the backends).
        probe_elements: float32 elements of each read/copy array (see
            :data:`DEFAULT_PROBE_ELEMENTS` for why it is large).
        repeats: timed samples per probe.
        dispatch_calls: calls averaged into one dispatch sample.
        rounds: probe rounds, numbered 0, 1, ...
        clock: the clock (seconds); tests pass a fake one.

    Raises:
        LinfitError: for settings < 1; DeviceError for a device no backend has.
    """
    _check_settings(probe_elements, repeats, dispatch_calls)
    if rounds < 1:
        raise LinfitError(f"rounds must be an integer >= 1, got {rounds}")
    key = floors_key(backends, device_ids, probe_elements=probe_elements, repeats=repeats,
                     dispatch_calls=dispatch_calls)
    started = _utc_now()
    read_bytes = READ_BYTES_PER_ELEMENT * probe_elements
    copy_bytes = COPY_BYTES_PER_ELEMENT * probe_elements
    wanted = _wanted_devices(backends, device_ids)
    measurements: dict[str, list[ProbeMeasurement]] = {device_id: [] for device_id in wanted}
    for round_index in range(rounds):
        for device_id, pairs in wanted.items():
            for backend, device in pairs:
                with backend.session():
                    measurements[device_id] += [
                        _measure("read", backend.name,
                                 lambda b=backend, d=device: b.read_probe(d, probe_elements),
                                 read_bytes, repeats, 1, clock, round_index),
                        _measure("copy", backend.name,
                                 lambda b=backend, d=device: b.copy_probe(d, probe_elements),
                                 copy_bytes, repeats, 1, clock, round_index),
                        _measure("dispatch", backend.name,
                                 lambda b=backend, d=device: b.dispatch_probe(d),
                                 0, repeats, dispatch_calls, clock, round_index),
                    ]
            if pairs[0][1].kind == "CPU":
                measurements[device_id] += [
                    _measure("read", NUMPY_PROBE, lambda: _numpy_read_probe(probe_elements),
                             read_bytes, repeats, 1, clock, round_index),
                    _measure("copy", NUMPY_PROBE, lambda: _numpy_copy_probe(probe_elements),
                             copy_bytes, repeats, 1, clock, round_index),
                ]
    devices = tuple(DeviceFloors(device_id, pairs[0][1].kind, pairs[0][1].name, probe_elements,
                                 repeats, tuple(measurements[device_id]))
                    for device_id, pairs in wanted.items())
    return Floors(tuple(key.items()), started, devices)


# --- the cache ------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/linfit``, else ``~/.cache/linfit``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / CACHE_SUBDIR


def cache_dir_problem(directory: Path | None = None) -> str:
    """Why the floors cache folder (default: :func:`default_cache_dir`) cannot hold the
    cache; '' when it can. See :func:`linfit._paths.output_dir_problem`."""
    return output_dir_problem(default_cache_dir() if directory is None else directory)


def cache_file_name(key: Mapping[str, str]) -> str:
    """``floors-<host>-<12 hex digits of the key's hash>.json``: the host in clear, and a
    hash of everything else that must match (CPU, devices, versions, probe settings)."""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", key.get("host", "unknown")) or "unknown"
    digest = hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:12]
    return f"floors-{host}-{digest}.json"


def floors_json(floors: Floors) -> dict[str, Any]:
    """The floors as the JSON document the cache holds (and `linfit floors --json` prints)."""
    return {
        "format_version": FLOORS_FORMAT_VERSION,
        "key": dict(floors.key),
        "measured_utc": floors.measured_utc,
        "devices": [asdict(device) for device in floors.devices],
    }


def _from_json(path: Path, document: Any) -> Floors:
    if not isinstance(document, dict) or "format_version" not in document:
        raise FloorsFileError(f"{path}: not a linfit floors file (no format_version)")
    version = document["format_version"]
    if version not in READABLE_FLOORS_FORMAT_VERSIONS or isinstance(version, bool):
        readable = " and ".join(map(str, READABLE_FLOORS_FORMAT_VERSIONS))
        raise FloorsFileError(f"{path}: format_version {version!r} is not one this linfit "
                              f"reads (it reads {readable})")
    try:
        measured_utc = str(document["measured_utc"])

        def measurement(m: Mapping[str, Any]) -> ProbeMeasurement:
            # Version 1 held one measurement: round 0, taken when the file says.
            round_index = int(m["round_index"]) if version >= 2 else 0
            if round_index < 0:
                raise ValueError(f"round_index {round_index} is negative")
            return ProbeMeasurement(
                str(m["kind"]), str(m["probe"]), int(m["bytes_per_call"]),
                int(m["calls_per_sample"]), tuple(float(s) for s in m["samples_seconds"]),
                round_index, str(m["measured_utc"]) if version >= 2 else measured_utc)

        devices = tuple(
            DeviceFloors(
                device=str(d["device"]), device_kind=str(d["device_kind"]),
                device_name=str(d["device_name"]), probe_elements=int(d["probe_elements"]),
                repeats=int(d["repeats"]),
                measurements=tuple(measurement(m) for m in d["measurements"]),
            )
            for d in document["devices"])
        key = tuple((str(k), str(v)) for k, v in document["key"].items())
        return Floors(key, measured_utc, devices)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise FloorsFileError(f"{path}: a field is missing or malformed ({error!r})") from None


def read_floors(path: str | os.PathLike[str]) -> Floors:
    """Read a floors file. It is only read, never changed.

    Raises:
        FloorsFileError: naming the file: missing, not JSON, not linfit's floors, a
            format_version this linfit does not know, or a missing field.
    """
    path = Path(path)
    try:
        document = json.loads(open_input(path, "a floors cache (JSON)", error=FloorsFileError))
    except json.JSONDecodeError as error:
        raise FloorsFileError(f"{path}: not JSON ({error})") from None
    return _from_json(path, document)


def write_floors(floors: Floors, path: str | os.PathLike[str]) -> Path:
    """Write ``floors`` as JSON to a new file at ``path``, atomically, never over a file.

    Raises:
        FileExistsError: when ``path`` exists already.
    """
    # link() fails if the target exists: no check-then-write race.
    return atomic_write_text(path, json.dumps(floors_json(floors), indent=1) + "\n")


def update_cache(path: str | os.PathLike[str], floors: Floors) -> Path | None:
    """Replace the cache at ``path`` with the :data:`MAX_CACHED_ROUNDS` most recent rounds
    of ``floors``, atomically (a temporary file in the same folder, renamed over it).

    Only for a cache that was read and matched, or that this run wrote: a cache file of
    another machine or that cannot be read is never replaced (:func:`load_or_measure`
    refuses it first).

    Returns:
        The path, or None when the cache could not be written (the floors are kept for this
        run all the same).
    """
    text = json.dumps(floors_json(latest_rounds(floors, MAX_CACHED_ROUNDS)), indent=1) + "\n"
    try:
        # It is a cache, not a result: replacing it is its purpose.
        return atomic_write_text(path, text, overwrite=True)
    except OSError:
        return None


def load_or_measure(backends: Sequence[Backend], device_ids: Sequence[str] | None = None, *,
                    cache: str | os.PathLike[str] | None = None, use_cache: bool = True,
                    rounds: int = 1, measure_when_cached: bool = False,
                    probe_elements: int = DEFAULT_PROBE_ELEMENTS,
                    repeats: int = DEFAULT_REPEATS,
                    dispatch_calls: int = DISPATCH_CALLS_PER_SAMPLE,
                    clock: Callable[[], float] = time.perf_counter,
                    ) -> tuple[Floors, Path | None, int]:
    """The floors of this machine: the cached rounds where the cache matches, else
    ``rounds`` rounds measured and cached.

    Args:
        backends, device_ids, probe_elements, repeats, dispatch_calls, clock: as
            :func:`measure_floors`.
        cache: the cache file; default: :func:`cache_file_name` in :func:`default_cache_dir`.
        use_cache: False: measure, and neither read nor write a cache.
        rounds: probe rounds to measure (back to back) when the floors are measured.
        measure_when_cached: also measure ``rounds`` rounds where the cache matches, and add
            them to it (it keeps the :data:`MAX_CACHED_ROUNDS` most recent).

    Returns:
        (floors, the cache file or None, how many of the floors' rounds came from the
        cache). The floors hold every cached round and every round measured. The file is
        None when no cache was used: the default cache folder cannot be written (see
        :func:`cache_dir_problem`) or the cache could not be written; the floors are then
        for this call only.

    Raises:
        FloorsFileError: when the cache file exists but is unreadable or of an unknown
            format_version, or holds the floors of another machine or other settings (it is
            not overwritten: name another file, or remove it).
    """
    key = floors_key(backends, device_ids, probe_elements=probe_elements, repeats=repeats,
                     dispatch_calls=dispatch_calls)

    def measure() -> Floors:
        return measure_floors(backends, device_ids, probe_elements=probe_elements,
                              repeats=repeats, dispatch_calls=dispatch_calls, rounds=rounds,
                              clock=clock)

    if not use_cache:
        return measure(), None, 0
    if cache is None and cache_dir_problem():
        # An unusable default folder (HOME or XDG_CACHE_HOME naming a file, read-only):
        # measure without a cache rather than fail; callers say so with cache_dir_problem().
        return measure(), None, 0
    path = Path(cache) if cache is not None else default_cache_dir() / cache_file_name(key)
    if path.exists():
        cached = read_floors(path)
        if dict(cached.key) != key:
            differs = sorted(name for name in set(key) | set(dict(cached.key))
                             if dict(cached.key).get(name) != key.get(name))
            raise FloorsFileError(f"{path}: holds floors of another machine or other settings "
                                  f"(differs in: {', '.join(differs)}); it is not overwritten: "
                                  f"remove it, or name another cache file")
        if not measure_when_cached:
            return cached, path, cached.rounds
        floors = merge_rounds(cached, measure())
        return floors, update_cache(path, floors), cached.rounds
    floors = measure()
    try:
        return floors, write_floors(latest_rounds(floors, MAX_CACHED_ROUNDS), path), 0
    except OSError:
        # A cache that cannot be written (a folder under a file, a full disk, another run
        # that wrote it first) costs no measurement: the path None says it was not cached.
        return floors, None, 0
