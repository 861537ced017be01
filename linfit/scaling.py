"""How the distributed variants scale: computed from a results frame, no I/O (issue 13).

:func:`scaling_table` sets each distributed cell beside the same variant at one replica and
beside its one-device variant (:attr:`DistributedVariant.single_device`), and derives the
time beyond perfect scaling: ``overhead = t(r) - t(1) / r``. With r replicas sharing the
work, ``t(1) / r`` is what a perfect split would take; the rest is what splitting costs:
the all-reduce of the gradients, the replicas' coordination (threads or processes), and,
where the replicas share cores, their competition for them. :func:`crossovers` gives the
smallest n from which r replicas beat one, at that n and every larger one measured.
"""

from __future__ import annotations

import math

import pandas as pd

from linfit.distributed.variants import distributed_variant
from linfit.summary import ok_rows

__all__ = ["CROSSOVER_COLUMNS", "SCALING_COLUMNS", "crossovers", "scaling_table"]

SCALING_COLUMNS = ("backend", "device", "dtype", "variant", "strategy", "n_examples",
                   "replicas", "median_seconds", "one_replica_seconds",
                   "single_device_variant", "single_device_seconds", "floor_seconds",
                   "speedup", "overhead_seconds", "overhead_share")
CROSSOVER_COLUMNS = ("backend", "device", "dtype", "variant", "replicas", "beats_one_from_n",
                     "beats_single_device_from_n")


def scaling_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every ok distributed cell with more than one replica, beside its one-replica and
    one-device times.

    Args:
        frame: a results frame (:func:`linfit.results.read_frame`).

    Returns:
        :data:`SCALING_COLUMNS`: ``speedup`` = t(1 replica) / t(r); ``overhead_seconds`` =
        t(r) - t(1) / r, per step; ``overhead_share`` = overhead / t(r). NaN where the
        one-replica or one-device cell did not run.
    """
    rows = ok_rows(frame)
    medians = {(r.backend, r.device, r.dtype, r.variant, int(r.n_examples), int(r.replicas)):
               (float(r.median_seconds), r.floor_seconds)
               for r in rows.itertuples(index=False)}
    records = []
    for (backend, device, dtype, variant, n_examples, replicas), (median, _) in medians.items():
        spec = distributed_variant(backend, variant)
        if spec is None or replicas == 1:
            continue
        one = medians.get((backend, device, dtype, variant, n_examples, 1), (math.nan, None))[0]
        single, floor = medians.get((backend, device, dtype, spec.single_device, n_examples, 1),
                                    (math.nan, math.nan))
        overhead = median - one / replicas
        records.append({
            "backend": backend, "device": device, "dtype": dtype, "variant": variant,
            "strategy": spec.strategy, "n_examples": n_examples, "replicas": replicas,
            "median_seconds": median, "one_replica_seconds": one,
            "single_device_variant": spec.single_device, "single_device_seconds": single,
            "floor_seconds": float(floor) if floor is not None else math.nan,
            "speedup": one / median, "overhead_seconds": overhead,
            "overhead_share": overhead / median})
    table = pd.DataFrame.from_records(records, columns=list(SCALING_COLUMNS))
    return table.sort_values(["backend", "variant", "replicas", "n_examples"],
                             kind="stable").reset_index(drop=True)


def _beats_from(sizes: pd.Series, faster: pd.Series) -> float:
    """The smallest n from which ``faster`` holds at every larger n; NaN when it does not
    hold at the largest."""
    start = math.nan
    for n_examples, wins in sorted(zip(sizes, faster, strict=True), reverse=True):
        if not wins:
            break
        start = n_examples
    return start


def crossovers(table: pd.DataFrame) -> pd.DataFrame:
    """Per distributed variant and replica count: the n from which r replicas beat one
    replica of the same variant, and from which they beat the one-device variant.

    Args:
        table: :func:`scaling_table`'s.

    Returns:
        :data:`CROSSOVER_COLUMNS`; NaN where r replicas are not faster at the largest n.
    """
    records = []
    for key, rows in table.groupby(["backend", "device", "dtype", "variant", "replicas"],
                                   sort=True):
        records.append({
            **dict(zip(("backend", "device", "dtype", "variant", "replicas"), key, strict=True)),
            "beats_one_from_n": _beats_from(rows["n_examples"],
                                            rows["median_seconds"] < rows["one_replica_seconds"]),
            "beats_single_device_from_n": _beats_from(
                rows["n_examples"], rows["median_seconds"] < rows["single_device_seconds"])})
    return pd.DataFrame.from_records(records, columns=list(CROSSOVER_COLUMNS))
