"""Reproduce the tables and the figure of docs/distributed.md from a results CSV.

    python docs/distributed_figures.py results/cpu-2core-distributed/<run>.csv -o DIR

Prints, as Markdown: every distributed cell's convergence (W and b against the
single-device reference), the median step time per n at each replica count beside the
one-device variant, the time beyond a perfect split (all-reduce, coordination, competition
for cores) and its share of the step, and the n from which r replicas win. Draws
``<run>-scaling.png`` into DIR. Reads the file only; computes with linfit.scaling.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from linfit import summary
from linfit._format import format_seconds
from linfit.distributed import distributed_variant
from linfit.plots import plot_scaling
from linfit.results import read_frame
from linfit.scaling import crossovers, scaling_table


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _n(value: float) -> str:
    return "never" if math.isnan(value) else f"{value:.0e}".replace("+0", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    frame = read_frame(args.csv)
    distributed = frame[[distributed_variant(b, v) is not None
                         for b, v in zip(frame["backend"], frame["variant"], strict=True)]]
    print("## Convergence of every distributed cell\n")
    print(_markdown(
        ["backend", "variant", "n", "r", "status", "W", "reference W", "|W - ref| / ref",
         "message"],
        [[row.backend, row.variant, _n(row.n_examples), str(row.replicas), row.status,
          f"{row.final_w:.9g}", f"{row.reference_w:.9g}",
          f"{abs(row.final_w - row.reference_w) / abs(row.reference_w):.1e}",
          row.message[:90]] if row.status == "ok" else
         [row.backend, row.variant, _n(row.n_examples), str(row.replicas), row.status, "-",
          "-", "-", row.message[:140]]
         for row in distributed.sort_values(["backend", "variant", "replicas",
                                             "n_examples"]).itertuples()]))
    table = scaling_table(frame)
    print("\n## Step time (median per step) at 1 and 2 replicas, and the time beyond a "
          "perfect split\n")
    print(_markdown(
        ["backend", "variant", "n", "one device", "1 replica", "2 replicas",
         "2 vs 1 replica", "beyond a perfect split", "share of the 2-replica step"],
        [[row.backend, row.variant, _n(row.n_examples),
          f"{format_seconds(row.single_device_seconds)} ({row.single_device_variant})",
          format_seconds(row.one_replica_seconds), format_seconds(row.median_seconds),
          f"{row.speedup:.2f}x", format_seconds(row.overhead_seconds),
          f"{row.overhead_share:.0%}"] for row in table.itertuples()]))
    print("\n## From which n two replicas win\n")
    print(_markdown(
        ["backend", "variant", "r", "beats 1 replica from n", "beats one device from n"],
        [[row.backend, row.variant, str(row.replicas), _n(row.beats_one_from_n),
          _n(row.beats_single_device_from_n)]
         for row in crossovers(table).itertuples()]))
    path = plot_scaling(summary.step_times(frame), args.output / f"{args.csv.stem}-scaling.png")
    print(f"\nfigure: {path}")


if __name__ == "__main__":
    main()
