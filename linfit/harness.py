"""The benchmark harness behind ``pytest bench/``: options, the matrix, one cell, the file.

Nothing here knows pytest. ``bench/conftest.py`` registers :data:`OPTIONS`, parametrises the
benchmark with :func:`build_matrix`, and hands each cell to :meth:`Harness.run_cell` together
with a function that times a callable with pytest-benchmark. The harness builds the trainer,
times the first call, warms up, checks placement, has the calls timed, trains the convergence
steps from the start, checks traces and weights, and keeps one result row per cell; at the end
of the session :meth:`Harness.write` writes them to ``<results>/<run_id>.csv``.

Times from pytest-benchmark are per call; :func:`per_step_samples` is the one place they
become per-step times, and :func:`step_statistics` the one place statistics are derived.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linfit import summary
from linfit._errors import LinfitError
from linfit.backends import (
    BACKENDS,
    DEFAULT_STEPS_PER_CALL,
    Backend,
    Variant,
    get_backend,
    installed_backends,
)
from linfit.compare import format_seconds
from linfit.convergence import CONVERGENCE_STEPS, convergence_problems
from linfit.data import DEFAULT_LEARNING_RATE, DEFAULT_SEED, DTYPES, make_dataset, numpy_dtype
from linfit.environment import env_flags, git_state, machine_facts
from linfit.fit import fit, train
from linfit.floors import Floors, floor_columns, load_or_measure
from linfit.results import Cell, write_results

__all__ = [
    "DEFAULT_DTYPES",
    "DEFAULT_RESULTS_DIR",
    "DEFAULT_SIZES",
    "FULL_PROFILE_EXTRA_SIZES",
    "MEMORY_HEADROOM",
    "OPTIONS",
    "PROFILES",
    "WARMUP_CALLS",
    "Harness",
    "HarnessOptions",
    "MatrixCell",
    "Option",
    "RawTiming",
    "available_backends",
    "build_matrix",
    "cell_group",
    "cell_id",
    "format_speedups",
    "make_run_id",
    "parse_sizes",
    "per_step_samples",
    "resolve_options",
    "step_statistics",
    "trace_problems",
]

# The default sizes: 1e3 is bound by dispatch, 1e6 by memory traffic on a CPU,
# 1e5 lies between.
DEFAULT_SIZES = (1_000, 100_000, 1_000_000)
# What --linfit-profile full adds (where memory allows): at 1e8, x and y in float32 are 800 MB.
FULL_PROFILE_EXTRA_SIZES = (10_000_000, 100_000_000)
PROFILES = ("default", "full")
# float32 only by default, to keep the default matrix within the 3 minutes on 2 cores.
DEFAULT_DTYPES = ("float32",)
DEFAULT_RESULTS_DIR = "results"
# Calls after the first one (which traces and compiles) and before timing starts: the second
# call of a compiled function can still pay one-off costs (allocator growth, XLA's
# executable cache warming), and pytest-benchmark's own warm-up is off by default on CPython.
WARMUP_CALLS = 3
# Memory a CPU cell needs, in multiples of its x and y bytes: NumPy's arrays, their copy in
# the framework, and the step's elementwise temporaries (x*W + b - y, its square and the
# gradient terms: about two more arrays of x's size).
MEMORY_HEADROOM = 4
# A failed cell's message is one line of at most this many characters (framework errors can
# run to pages; the row keeps their start).
MESSAGE_MAX_CHARS = 1000
# The reference weights come from this variant on this device (every backend has an eager),
# of the first installed backend in this order: TensorFlow, the default, then PyTorch, whose
# eager CPU kernels are multi-threaded, then JAX, whose op-by-op dispatch is the slowest
# (1.7 ms a step at n=1e3 against torch's 0.23 ms here), which counts at n=1e8 (100 steps).
REFERENCE_VARIANT = "eager"
REFERENCE_DEVICE = "CPU:0"
REFERENCE_BACKENDS = ("tensorflow", "torch", "jax")


@dataclass(frozen=True)
class Option:
    """One harness option: pytest's dest name, its flag, its environment variable, its help."""

    dest: str
    flag: str
    env: str
    metavar: str
    help: str

    @property
    def label(self) -> str:
        """How error messages name the option: both spellings."""
        return f"{self.flag}/{self.env}"


def _option(name: str, metavar: str, help_text: str) -> Option:
    return Option(f"linfit_{name}", f"--linfit-{name.replace('_', '-')}",
                  f"LINFIT_{name.upper()}", metavar, help_text)


OPTIONS: tuple[Option, ...] = (
    _option("backends", "NAMES", "comma-separated backends (default: every installed backend)"),
    _option("variants", "NAMES", "comma-separated variants; 'eager' selects every backend's "
            "eager, 'tensorflow:xla' one backend's (default: all)"),
    _option("devices", "IDS", "comma-separated device ids such as CPU:0,GPU:0, or a kind "
            "(CPU, GPU) for all of that kind (default: every visible device)"),
    _option("sizes", "SIZES", "comma-separated data set sizes (default: "
            + ",".join(f"{n:.0e}".replace("+0", "") for n in DEFAULT_SIZES) + ")"),
    _option("profile", "PROFILE", "default, or full: also 1e7 and 1e8 examples where memory "
            "allows (default: default)"),
    _option("dtypes", "DTYPES", f"comma-separated dtypes from {', '.join(DTYPES)} "
            f"(default: {','.join(DEFAULT_DTYPES)})"),
    _option("steps_per_call", "K", "steps per call of the loop variants, a divisor of "
            f"{CONVERGENCE_STEPS} (default: {DEFAULT_STEPS_PER_CALL})"),
    _option("results", "DIR", f"folder for the results CSV (default: {DEFAULT_RESULTS_DIR}/ "
            "in pytest's rootdir)"),
    _option("floors", "MODE", "hardware floors for the efficiency columns: cache (measure once "
            "per machine, then reuse the cache in ~/.cache/linfit), measure (every run), or off "
            "(default: cache)"),
    _option("baseline", "CSV", "a results CSV to gate on: after the run, linfit check's rules "
            "compare this run with it and a regression fails the session"),
)
FLOORS_MODES = ("cache", "measure", "off")
_BY_DEST = {option.dest: option for option in OPTIONS}


@dataclass(frozen=True)
class HarnessOptions:
    """The resolved options of one benchmark session.

    ``variants`` and ``devices`` are None when every one is selected. ``reference_backend``
    is the backend whose CPU eager run gives the reference weights.
    """

    backends: tuple[str, ...]
    variants: tuple[str, ...] | None
    devices: tuple[str, ...] | None
    sizes: tuple[int, ...]
    profile: str
    dtypes: tuple[str, ...]
    steps_per_call: int
    results_dir: Path
    reference_backend: str
    floors: str = "cache"
    baseline: Path | None = None
    learning_rate: float = DEFAULT_LEARNING_RATE
    seed: int = DEFAULT_SEED


def available_backends() -> list[str]:
    """Backends whose framework is installed and whose linfit module exists, without
    importing either."""
    return [name for name in installed_backends()
            if importlib.util.find_spec(BACKENDS[name][0]) is not None]


def _items(option: Option, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise LinfitError(f"{option.label}: {text!r} names nothing; give a comma-separated list")
    return items


def parse_sizes(text: str, option: Option = _BY_DEST["linfit_sizes"]) -> tuple[int, ...]:
    """Data set sizes from ``"1e3,1e5"``: sorted, without repeats.

    Raises:
        LinfitError: naming the option, for an entry that is not an integer >= 2.
    """
    sizes = set()
    for item in _items(option, text):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value.is_integer() and value >= 2):
            raise LinfitError(f"{option.label}: {item!r} is not a data set size; give integers "
                              ">= 2 such as 1e3,1e5,1e6")
        sizes.add(int(value))
    return tuple(sorted(sizes))


def _choose(option: Option, text: str, valid: Sequence[str]) -> tuple[str, ...]:
    chosen = []
    for item in _items(option, text):
        if item not in valid:
            raise LinfitError(f"{option.label}: unknown {item!r}; valid: {', '.join(valid)}")
        if item not in chosen:
            chosen.append(item)
    return tuple(chosen)


def _steps_per_call(option: Option, text: str) -> int:
    divisors = [k for k in range(1, CONVERGENCE_STEPS + 1) if CONVERGENCE_STEPS % k == 0]
    if not (text.strip().isdigit() and int(text) in divisors):
        # The convergence check runs CONVERGENCE_STEPS steps in whole calls.
        raise LinfitError(f"{option.label}: {text!r} must divide the {CONVERGENCE_STEPS} "
                          f"convergence steps: one of {', '.join(map(str, divisors))}")
    return int(text)


def resolve_options(values: Mapping[str, str | None], environ: Mapping[str, str],
                    rootdir: Path, invocation_dir: Path) -> HarnessOptions:
    """The session's options: a flag wins over its environment variable, which wins over
    the default. An empty environment variable counts as unset.

    Args:
        values: flag values by :attr:`Option.dest`, None where the flag was not given.
        environ: the environment (``os.environ``).
        rootdir: pytest's rootdir; the default results folder is ``results/`` in it.
        invocation_dir: where pytest was started; relative ``--linfit-results`` paths
            start there.

    Raises:
        LinfitError: naming the option and what would be valid.
    """
    given = {}
    for option in OPTIONS:
        text = values.get(option.dest)
        given[option.dest] = text if text is not None else (environ.get(option.env) or None)

    def get(name: str) -> str | None:
        return given[f"linfit_{name}"]

    available = available_backends()
    if not available:
        raise LinfitError(f"no backend is installed; install one of: {', '.join(BACKENDS)}")
    text = get("backends")
    backends = (_choose(_BY_DEST["linfit_backends"], text, available) if text
                else tuple(available))
    text = get("variants")
    variants = tuple(dict.fromkeys(_items(_BY_DEST["linfit_variants"], text))) if text else None
    text = get("devices")
    devices = (tuple(dict.fromkeys(_normalise_device(d)
                                   for d in _items(_BY_DEST["linfit_devices"], text)))
               if text else None)
    text = get("profile")
    profile = _choose(_BY_DEST["linfit_profile"], text, PROFILES)[0] if text else "default"
    text = get("sizes")
    sizes = parse_sizes(text) if text else DEFAULT_SIZES
    if profile == "full":
        sizes = tuple(sorted(set(sizes) | set(FULL_PROFILE_EXTRA_SIZES)))
    text = get("dtypes")
    dtypes = _choose(_BY_DEST["linfit_dtypes"], text, DTYPES) if text else DEFAULT_DTYPES
    text = get("steps_per_call")
    steps_per_call = (_steps_per_call(_BY_DEST["linfit_steps_per_call"], text) if text
                      else DEFAULT_STEPS_PER_CALL)
    text = get("results")
    results_dir = (invocation_dir / Path(text).expanduser() if text
                   else rootdir / DEFAULT_RESULTS_DIR)
    text = get("floors")
    floors = _choose(_BY_DEST["linfit_floors"], text, FLOORS_MODES)[0] if text else "cache"
    text = get("baseline")
    baseline = invocation_dir / Path(text).expanduser() if text else None
    reference = next(name for name in (*REFERENCE_BACKENDS, *available) if name in available)
    return HarnessOptions(backends=backends, variants=variants, devices=devices, sizes=sizes,
                          profile=profile, dtypes=dtypes, steps_per_call=steps_per_call,
                          results_dir=results_dir, reference_backend=reference, floors=floors,
                          baseline=baseline)


def _normalise_device(text: str) -> str:
    # The spellings Backend.device() accepts: cpu:0, /device:CPU:0.
    return text.strip().upper().removeprefix("/DEVICE:")


@dataclass(frozen=True)
class MatrixCell:
    """A cell of the matrix and, when it cannot run here, why (else '')."""

    cell: Cell
    skip_reason: str = ""


def _available_memory_bytes() -> int | None:
    """Memory the system can give without swapping: MemAvailable, else free pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _memory_skip_reason(n_examples: int, dtype: str, available_bytes: int | None) -> str:
    if available_bytes is None:
        return ""
    needed = MEMORY_HEADROOM * 2 * n_examples * numpy_dtype(dtype).itemsize
    if needed <= available_bytes:
        return ""
    return (f"n={n_examples:g} {dtype} needs about {needed / 2**30:.1f} GiB on the CPU, "
            f"{available_bytes / 2**30:.1f} GiB is available")


def _variant_selected(backend: Backend, variant: Variant, wanted: tuple[str, ...] | None) -> bool:
    return wanted is None or variant.name in wanted or f"{backend.name}:{variant.name}" in wanted


def _device_selected(device_id: str, kind: str, wanted: tuple[str, ...] | None) -> bool:
    return wanted is None or device_id in wanted or kind in wanted


def build_matrix(options: HarnessOptions,
                 free_memory_bytes: Callable[[], int | None] = _available_memory_bytes,
                 ) -> list[MatrixCell]:
    """Every cell the options select, ordered by (n, dtype) so that each data set is made
    once, then by backend, device and the backend's variant order.

    Variants that do not run on a device's kind are left out. Cells whose dtype the device
    does not support, and CPU cells whose data would not fit in memory, carry a skip reason.
    Imports the selected backends.

    Args:
        options: the resolved options.
        free_memory_bytes: returns the CPU memory free for the data (None: unknown, then
            nothing is skipped for memory).

    Raises:
        LinfitError: for a variant or device that no selected backend has, listing those
            that exist.
    """
    backends = [get_backend(name) for name in options.backends]
    variants_option, devices_option = _BY_DEST["linfit_variants"], _BY_DEST["linfit_devices"]
    valid_variants = list(dict.fromkeys(
        name for backend in backends for v in backend.variants.values()
        for name in (v.name, f"{backend.name}:{v.name}")))
    for name in options.variants or ():
        if name not in valid_variants:
            raise LinfitError(f"{variants_option.label}: no selected backend has variant "
                              f"{name!r}; valid: {', '.join(valid_variants)}")
    devices = {backend.name: backend.devices() for backend in backends}
    valid_devices = list(dict.fromkeys(
        name for listed in devices.values() for d in listed for name in (d.id, d.kind)))
    for name in options.devices or ():
        if name not in valid_devices:
            raise LinfitError(f"{devices_option.label}: no selected backend has device "
                              f"{name!r}; valid: {', '.join(valid_devices)}")
    free = free_memory_bytes()
    matrix = []
    for n_examples in options.sizes:
        for dtype in options.dtypes:
            for backend in backends:
                for device in devices[backend.name]:
                    if not _device_selected(device.id, device.kind, options.devices):
                        continue
                    for variant in backend.variants.values():
                        if (not _variant_selected(backend, variant, options.variants)
                                or device.kind not in variant.device_kinds):
                            continue
                        steps_per_call = options.steps_per_call if variant.loop else 1
                        cell = Cell(backend.name, device.id, variant.name, n_examples, dtype,
                                    steps_per_call)
                        if not backend.supports_dtype(device, dtype):
                            reason = f"{backend.name} on {device.id} does not support {dtype}"
                        elif device.kind == "CPU":
                            reason = _memory_skip_reason(n_examples, dtype, free)
                        else:
                            # No portable way to ask a GPU's free memory: the cell is tried
                            # and an out-of-memory error is recorded as its failure.
                            reason = ""
                        matrix.append(MatrixCell(cell, reason))
    return matrix


def cell_id(cell: Cell) -> str:
    """The cell's pytest id, e.g. ``tensorflow-xla-loop-CPU:0-n=1e+06-float32-k=100``."""
    return (f"{cell.backend}-{cell.variant}-{cell.device}-n={cell.n_examples:g}-{cell.dtype}"
            f"-k={cell.steps_per_call}")


def cell_group(cell: Cell) -> str:
    """pytest-benchmark's group of a cell: one per (device, n, dtype), so the table shows
    every backend's and variant's time side by side. Its times are per call of k steps."""
    return f"{cell.device} n={cell.n_examples:g} {cell.dtype}, time per call of k steps"


def make_run_id(started: datetime, host: str, commit: str) -> str:
    """``20261127T013000Z-host-abc1234567``: UTC start time, host, short commit.

    Characters other than letters, digits, '.' and '-' in the host become '-', so the id
    is a safe file name.
    """
    safe_host = re.sub(r"[^A-Za-z0-9.-]+", "-", host).strip("-.") or "host"
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}-{safe_host}-{commit}"


@dataclass(frozen=True)
class RawTiming:
    """What the timer measured: each round's time per call, and calls per round."""

    per_call_seconds: tuple[float, ...]
    iterations: int


def per_step_samples(per_call_seconds: Iterable[float], steps_per_call: int) -> tuple[float, ...]:
    """Per-call times as per-step times: the one place a call time is divided by k."""
    return tuple(float(seconds) / steps_per_call for seconds in per_call_seconds)


def step_statistics(samples: Sequence[float]) -> dict[str, float]:
    """min, median, mean, stddev, IQR and max of per-step samples, as result columns.

    The standard deviation is the sample one (n - 1), 0 for a single sample; the IQR is
    q3 - q1 from :func:`linfit.summary.quartiles_seconds` (linear interpolation, NumPy's
    default), the quartiles the figures draw.

    Raises:
        ValueError: for no samples.
    """
    if not samples:
        raise ValueError("step_statistics() needs at least one sample")
    values = np.asarray(samples, dtype=np.float64)
    q1, q3 = summary.quartiles_seconds(samples)
    return {
        "min_seconds": float(values.min()),
        "median_seconds": float(np.median(values)),
        "mean_seconds": float(values.mean()),
        "stddev_seconds": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "iqr_seconds": float(q3 - q1),
        "max_seconds": float(values.max()),
    }


def trace_problems(variant: Variant, traces: int) -> list[str]:
    """What is wrong with a cell's trace count: a compiled variant traces once for one
    (device, n, dtype), an eager one never. Empty when nothing is."""
    if variant.compiled and traces > 1:
        return [f"{variant.name} retraced: {traces} traces for one (device, n, dtype); "
                "something passed to the step changes its signature"]
    if variant.compiled and traces < 1:
        return [f"{variant.name} is compiled but reported {traces} traces"]
    if not variant.compiled and traces:
        return [f"{variant.name} is not compiled but reported {traces} traces"]
    return []


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, LinfitError):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= MESSAGE_MAX_CHARS else text[:MESSAGE_MAX_CHARS - 3] + "..."


class Harness:
    """One benchmark session: its run facts, the reference weights, and a row per cell.

    Rows are kept in the order cells ran; a cell that runs again replaces its row.
    """

    def __init__(self, options: HarnessOptions, started: datetime | None = None) -> None:
        self.options = options
        self.started = started or datetime.now(UTC)
        self.git_commit, self.git_dirty = git_state()
        self.machine = machine_facts()
        self.run_id = make_run_id(self.started, self.machine["host"], self.git_commit)
        self.written: Path | None = None
        self.floors_note = ""
        self._floors: Floors | None = None
        self._rows: dict[Cell, dict[str, Any]] = {}
        self._references: dict[tuple[int, str], tuple[float, float]] = {}

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Copies of the rows recorded so far."""
        return [dict(row) for row in self._rows.values()]

    @property
    def timed(self) -> bool:
        """Whether any cell has timings (false when pytest-benchmark was disabled)."""
        return any(row.get("samples_seconds") for row in self._rows.values())

    def reference_weights(self, n_examples: int, dtype: str) -> tuple[float, float]:
        """(W, b) of the reference run, CPU:0 eager of the reference backend after
        CONVERGENCE_STEPS steps from W=5, b=0; computed once per (n, dtype).

        Raises:
            LinfitError: when the reference cannot run (an unsupported dtype) or diverges.
        """
        key = (n_examples, dtype)
        if key not in self._references:
            data = make_dataset(n_examples, dtype, self.options.seed)
            result = fit(get_backend(self.options.reference_backend), REFERENCE_VARIANT,
                         REFERENCE_DEVICE, data, CONVERGENCE_STEPS, self.options.learning_rate)
            self._references[key] = (result.final_w, result.final_b)
        return self._references[key]

    def run_cell(self, cell: Cell,
                 time_calls: Callable[[Callable[[], None]], RawTiming | None]) -> dict[str, Any]:
        """Measure and check one cell, record its row and return a copy of it.

        Args:
            cell: the cell to run.
            time_calls: times the callable it is given (pytest-benchmark) and returns the
                raw per-call times, or None when timing is disabled (it still calls it once).

        Returns:
            The row: status "ok", or "failed" with the retrace or convergence problems in
            ``message``.

        Raises:
            Whatever the cell raised (a LinfitError, a framework error), after its row was
            recorded with status "failed" and the error's message.
        """
        row: dict[str, Any] = {
            "backend": cell.backend, "device": cell.device, "variant": cell.variant,
            "n_examples": cell.n_examples, "dtype": cell.dtype,
            "steps_per_call": cell.steps_per_call, "learning_rate": self.options.learning_rate,
            "seed": self.options.seed, "timestamp_utc": self.started.isoformat(timespec="seconds"),
            "git_commit": self.git_commit, "git_dirty": self.git_dirty,
            **self.machine, **env_flags(),
        }
        try:
            problems = self._measure(cell, row, time_calls)
        except Exception as error:
            # Never lose a result: the row is kept, then the error fails the test as usual.
            row.update(status="failed", message=_one_line(error))
            self._rows[cell] = row
            raise
        row.update(status="failed" if problems else "ok", message="; ".join(problems))
        self._rows[cell] = row
        return dict(row)

    def _measure(self, cell: Cell, row: dict[str, Any],
                 time_calls: Callable[[Callable[[], None]], RawTiming | None]) -> list[str]:
        """Fill ``row`` step by step (so a failure keeps what was measured); return the
        problems found."""
        backend = get_backend(cell.backend)
        device = backend.device(cell.device)
        variant = backend.variant(cell.variant)
        row.update(backend_version=backend.version, backend_build=backend.build_info(),
                   device_kind=device.kind, device_name=device.name,
                   device_details=device.details, compiled=variant.compiled, xla=variant.xla,
                   loop=variant.loop, **backend.thread_settings())
        data = make_dataset(cell.n_examples, cell.dtype, self.options.seed)
        row.update(w_ols=data.w_ols, b_ols=data.b_ols)
        with backend.session():
            trainer = backend.make_trainer(cell.variant, device, data, self.options.learning_rate,
                                           cell.steps_per_call)
            start = time.perf_counter()
            trainer.call()
            row["first_call_seconds"] = time.perf_counter() - start
            for _ in range(WARMUP_CALLS):
                trainer.call()
            row["placement"] = trainer.check_placement()
            timing = time_calls(trainer.call)
            if timing is not None:
                samples = per_step_samples(timing.per_call_seconds, cell.steps_per_call)
                row.update(rounds=len(samples), iterations=timing.iterations,
                           samples_seconds=samples, **step_statistics(samples))
            # The weights to check come from a fixed number of steps from the start, not from
            # however many rounds pytest-benchmark ran.
            trainer.reset()
            history = train(trainer, CONVERGENCE_STEPS)
            final_w, final_b = trainer.weights()
            row.update(convergence_steps=CONVERGENCE_STEPS, final_w=final_w, final_b=final_b,
                       final_loss=history[-1].loss, traces=trainer.traces)
        problems = trace_problems(variant, trainer.traces)
        reference_w, reference_b = self.reference_weights(cell.n_examples, cell.dtype)
        problems += convergence_problems(final_w, final_b, reference_w, reference_b,
                                         data.w_ols, data.b_ols, cell.dtype)
        return problems

    def measure_floors(self) -> None:
        """Measure the hardware floors (issue 7), or read them from the machine's cache,
        before any cell runs: an interrupted measurement then costs no result.

        Every device of the selected backends is measured, not only this run's: the cache
        key then stays the same from run to run on this machine (and matches
        ``linfit floors``). A floor that cannot be had (a cache of another machine, a
        probe that fails) leaves the floor columns empty; :attr:`floors_note` says why.
        """
        if self.options.floors == "off":
            self.floors_note = "floors: off"
            return
        backends = [get_backend(name) for name in self.options.backends]
        try:
            self._floors, path, cached = load_or_measure(
                backends, use_cache=self.options.floors == "cache")
        except LinfitError as error:
            self.floors_note = f"floors not recorded: {error}"
            return
        self.floors_note = ("floors read from the cache" if cached else "floors measured") + (
            f" ({path})" if path else "")

    def _with_floors(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows with the floor columns filled in where the floors cover them."""
        if self._floors is None:
            return rows
        completed = []
        for row in rows:
            if row.get("status") == "ok" and row.get("samples_seconds"):
                try:
                    row = {**row, **floor_columns(self._floors, row["backend"], row["device"],
                                                  row["n_examples"], row["dtype"],
                                                  row["steps_per_call"], row["median_seconds"])}
                except LinfitError as error:
                    self.floors_note += f"; {Cell.from_row(row)}: {error}"
            completed.append(row)
        return completed

    def write(self) -> Path | None:
        """Write the rows to ``<results_dir>/<run_id>.csv`` if any cell was timed.

        Never overwrites: when the file exists (two runs in the same second) the name gets
        ``-2``, ``-3``, ... and the rows' run_id says the same.

        Returns:
            The file written, or None when no cell was timed (nothing is written).
        """
        if not self.timed:
            return None
        rows = self._with_floors(list(self._rows.values()))
        suffix = 1
        while True:
            run_id = self.run_id if suffix == 1 else f"{self.run_id}-{suffix}"
            try:
                self.written = write_results([{**row, "run_id": run_id} for row in rows],
                                             self.options.results_dir / f"{run_id}.csv")
            except FileExistsError:
                suffix += 1
                continue
            return self.written


def format_speedups(frame: pd.DataFrame) -> list[str]:
    """The speed-up of every variant over its backend's eager, per (device, n, dtype), as
    aligned text lines: one block per backend, its variants as columns.

    The numbers are :func:`linfit.summary.speedups` (eager's median step time / the
    variant's); this only lays them out, with ``failed`` for a cell that failed and ``-``
    where there is no number (no ok eager cell to compare with, or the cell did not run).

    Args:
        frame: a results file as :func:`linfit.results.read_results` returns it.
    """
    ratios = {Cell.from_row(row): row["speedup"]
              for row in summary.speedups(frame).to_dict("records")}
    cells = [(Cell.from_row(row), row["status"], row["median_seconds"])
             for row in frame.to_dict("records")]
    lines: list[str] = []
    for backend in dict.fromkeys(cell.backend for cell, _, _ in cells):
        mine = [entry for entry in cells if entry[0].backend == backend]
        variants = list(dict.fromkeys(cell.variant for cell, _, _ in mine
                                      if cell.variant != summary.BASELINE_VARIANT))
        groups = sorted({(cell.device, cell.n_examples, cell.dtype) for cell, _, _ in mine})
        block = [["backend", "device", "n", "dtype", "eager/step", *variants]]
        for device, n_examples, dtype in groups:
            texts = {}
            for cell, status, median in mine:
                if (cell.device, cell.n_examples, cell.dtype) != (device, n_examples, dtype):
                    continue
                if status != "ok":
                    texts[cell.variant] = "failed"
                elif cell.variant == summary.BASELINE_VARIANT:
                    texts[cell.variant] = format_seconds(median)
                elif cell in ratios:
                    texts[cell.variant] = f"{ratios[cell]:.2f}x"
            block.append([backend, device, f"{n_examples:,}", dtype,
                          *(texts.get(name, "-")
                            for name in (summary.BASELINE_VARIANT, *variants))])
        widths = [max(len(row[i]) for row in block) for i in range(len(block[0]))]
        lines += ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
                  .rstrip() for row in block]
    return lines
