"""The benchmark matrix: every cell the options select, and why a cell cannot run here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from linfit._errors import LinfitError
from linfit.backends import Backend, Variant, get_backend
from linfit.data import available_memory_bytes, memory_problem
from linfit.harness._options import BY_DEST, HarnessOptions
from linfit.results import Cell


@dataclass(frozen=True)
class MatrixCell:
    """A cell of the matrix and, when it cannot run here, why (else '')."""

    cell: Cell
    skip_reason: str = ""


def _variant_selected(backend: Backend, variant: Variant, wanted: tuple[str, ...] | None) -> bool:
    return wanted is None or variant.name in wanted or f"{backend.name}:{variant.name}" in wanted


def _device_selected(device_id: str, kind: str, wanted: tuple[str, ...] | None) -> bool:
    return wanted is None or device_id in wanted or kind in wanted


def build_matrix(options: HarnessOptions,
                 free_memory_bytes: Callable[[], int | None] = available_memory_bytes,
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
    variants_option, devices_option = BY_DEST["linfit_variants"], BY_DEST["linfit_devices"]
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
                            reason = memory_problem(n_examples, dtype, free)
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
