"""The benchmark matrix: every cell the options select, and why a cell cannot run here."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from linfit._errors import LinfitError
from linfit.backends import Backend, Device, Variant, get_backend
from linfit.data import available_memory_bytes, memory_problem
from linfit.distributed.variants import DISTRIBUTED_VARIANTS, DistributedVariant, convention_of
from linfit.harness._options import BY_DEST, PROFILES, HarnessOptions
from linfit.results import Cell

# pytest-benchmark's default --benchmark-max-time (5.x): a run that did not change it gets
# the profile's time per cell instead.
PYTEST_BENCHMARK_MAX_TIME_SECONDS = 1.0


@dataclass(frozen=True)
class MatrixCell:
    """A cell of the matrix and, when it cannot run here, why (else '')."""

    cell: Cell
    skip_reason: str = ""


def _variant_selected(backend: Backend, variant: Variant, wanted: tuple[str, ...] | None) -> bool:
    return wanted is None or variant.name in wanted or f"{backend.name}:{variant.name}" in wanted


def _conventions(backend: Backend, variant: Variant,
                 wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    """The calling conventions to run ``variant`` with: its default where none is asked
    for, else those asked for that it has; ``('',)`` where none applies."""
    own = backend.conventions(variant)
    if wanted is None or own == ("",):
        return own[:1]
    return tuple(name for name in wanted if name in own)


def _distributed_variants(backend: Backend, options: HarnessOptions) -> list[DistributedVariant]:
    """The backend's distributed variants the options select: every one when a replica count
    above 1 is asked for, else those named in --linfit-variants."""
    named = options.variants is not None
    return [variant for variant in DISTRIBUTED_VARIANTS[backend.name].values()
            if (named or options.replicas != (1,))
            and _variant_selected(backend, variant, options.variants)]


def _distributed_cells(backend: Backend, device: Device, devices: list[Device],
                       n_examples: int, dtype: str, options: HarnessOptions,
                       memory_reason: str) -> list[MatrixCell]:
    """The distributed cells of one backend on the first device of a kind (``CPU:0``,
    ``GPU:0``: its replicas use the next devices of that kind), at every replica count.

    Raises:
        LinfitError: for more CPU replicas than the machine has cores (logical CPU devices
            beyond the cores would only time-share them).
    """
    variants = _distributed_variants(backend, options)
    if not variants or not device.id.endswith(":0"):
        return []
    cores = os.cpu_count() or 1
    if device.kind == "CPU" and max(options.replicas) > cores:
        raise LinfitError(f"{BY_DEST['linfit_replicas'].label}: {max(options.replicas)} "
                          f"replicas, but this machine has {cores} CPU cores; give at most "
                          f"{cores}")
    of_kind = sum(d.kind == device.kind for d in devices)
    cells = []
    for variant in variants:
        for replicas in options.replicas:
            if replicas > of_kind and device.kind != "CPU":
                reason = f"{replicas} replicas, but {backend.name} sees {of_kind} {device.kind}s"
            elif n_examples % replicas:
                reason = f"n={n_examples} does not split into {replicas} equal shares"
            elif not backend.supports_dtype(device, dtype):
                reason = f"{backend.name} on {device.id} does not support {dtype}"
            else:
                reason = memory_reason
            cells.append(MatrixCell(Cell(backend.name, device.id, variant.name, n_examples,
                                         dtype, 1, replicas=replicas,
                                         convention=convention_of(backend.name, variant)),
                                    reason))
    return cells


def _device_selected(device_id: str, kind: str, wanted: tuple[str, ...] | None) -> bool:
    return wanted is None or device_id in wanted or kind in wanted


def _profile_leaves_out(backend: Backend, variant: Variant, n_examples: int,
                        options: HarnessOptions) -> bool:
    """Whether the profile runs ``variant`` at a smaller size only (and not at this one):
    never when --linfit-variants names variants."""
    return (options.variants is None and n_examples != min(options.sizes)
            and f"{backend.name}:{variant.name}" in PROFILES[options.profile].smallest_size_only)


def build_matrix(options: HarnessOptions,
                 free_memory_bytes: Callable[[], int | None] = available_memory_bytes,
                 ) -> list[MatrixCell]:
    """Every cell the options select, ordered by (n, dtype) so that each data set is made
    once, then by backend, device and the backend's variant order.

    Variants that do not run on a device's kind are left out, and so are those the profile
    runs at the smallest size only (:attr:`Profile.smallest_size_only`) at the other sizes,
    unless --linfit-variants names variants. Cells whose dtype the device does not support,
    and CPU cells whose data would not fit in memory, carry a skip reason. Imports the
    selected backends.

    Args:
        options: the resolved options.
        free_memory_bytes: returns the CPU memory free for the data (None: unknown, then
            nothing is skipped for memory).

    Raises:
        LinfitError: for a variant or device that no selected backend has, listing those
            that exist.
    """
    backends = [get_backend(name) for name in options.backends]
    variants_option, devices_option = BY_DEST["linfit_variants"], BY_DEST["linfit_devices"]
    valid_variants = list(dict.fromkeys(
        name for backend in backends
        for v in (*backend.variants.values(), *DISTRIBUTED_VARIANTS[backend.name].values())
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
                                or device.kind not in variant.device_kinds
                                or _profile_leaves_out(backend, variant, n_examples, options)):
                            continue
                        steps_per_call = options.steps_per_call if variant.loop else 1
                        if not backend.supports_dtype(device, dtype):
                            reason = f"{backend.name} on {device.id} does not support {dtype}"
                        elif device.kind == "CPU":
                            reason = memory_problem(n_examples, dtype, free)
                        else:
                            # No portable way to ask a GPU's free memory: the cell is tried
                            # and an out-of-memory error is recorded as its failure.
                            reason = ""
                        matrix.extend(
                            MatrixCell(Cell(backend.name, device.id, variant.name, n_examples,
                                            dtype, steps_per_call, convention=convention),
                                       reason)
                            for convention in _conventions(backend, variant,
                                                           options.conventions))
                    matrix.extend(_distributed_cells(
                        backend, device, devices[backend.name], n_examples, dtype, options,
                        memory_problem(n_examples, dtype, free) if device.kind == "CPU" else ""))
    return matrix


def cell_id(cell: Cell) -> str:
    """The cell's pytest id, e.g. ``tensorflow-xla-loop-CPU:0-n=1e+06-float32-k=100``; the
    replicas and convention follow where they are not the default
    (:attr:`linfit.results.Cell.qualifiers`: ``...-k=1-r=2-captured``)."""
    qualifiers = "".join(f"-{part}" for part in cell.qualifiers.split())
    return (f"{cell.backend}-{cell.variant}-{cell.device}-n={cell.n_examples:g}-{cell.dtype}"
            f"-k={cell.steps_per_call}{qualifiers}")


def cell_group(cell: Cell) -> str:
    """pytest-benchmark's group of a cell: one per (device, n, dtype), so the table shows
    every backend's and variant's time side by side. Its times are per call of k steps."""
    return f"{cell.device} n={cell.n_examples:g} {cell.dtype}, time per call of k steps"


def benchmark_settings(options: HarnessOptions,
                       max_time_seconds: float = PYTEST_BENCHMARK_MAX_TIME_SECONDS,
                       ) -> dict[str, bool | float]:
    """pytest-benchmark's settings for each cell of the session: the keyword arguments of
    the ``benchmark`` mark ``bench/conftest.py`` gives every cell.

    The garbage collector is off during each round (and back on after it). The profile's
    time per cell (:attr:`Profile.max_time_seconds`) is pytest-benchmark's max_time where
    the run left ``--benchmark-max-time`` at its default; pytest-benchmark still runs at
    least ``--benchmark-min-rounds`` rounds (default 5, what :mod:`linfit.stats` needs for
    an interval), however long a call takes.

    Args:
        options: the session's options.
        max_time_seconds: the session's ``--benchmark-max-time``.
    """
    settings: dict[str, bool | float] = {"disable_gc": True}
    budget = PROFILES[options.profile].max_time_seconds
    if budget is not None and max_time_seconds == PYTEST_BENCHMARK_MAX_TIME_SECONDS:
        settings["max_time"] = budget
    return settings
