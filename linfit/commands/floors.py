"""``linfit floors``: measure (or read from the cache) each device's read, copy and dispatch
floors, and print them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from linfit._format import format_seconds, text_table
from linfit.backends import BACKENDS, get_backend, installed_backends
from linfit.commands._args import int_at_least
from linfit.floors import (
    DEFAULT_PROBE_ELEMENTS,
    DEFAULT_REPEATS,
    DISPATCH_CALLS_PER_SAMPLE,
    Floors,
    floors_json,
    load_or_measure,
)

HEADER = ("device", "kind", "probe", "median", "rate", "")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "floors", help="measure each device's read bandwidth and dispatch floors",
        description="Measure, on each device, the sustained read bandwidth (a streaming sum "
                    "over a large array), the copy bandwidth, and each backend's cheapest "
                    "compiled call; each figure is the median of repeated runs. The results "
                    "are cached in a file named after the machine and reused while the "
                    "machine, the versions and the settings match.")
    parser.add_argument("--device", action="append", metavar="D",
                        help="only this device, e.g. CPU:0 (repeatable; default: every device)")
    parser.add_argument("--backend", choices=list(BACKENDS), action="append",
                        help="only this backend's probes (repeatable; default: every installed "
                             "one); NumPy's probes run on CPU devices in any case")
    parser.add_argument("--json", action="store_true", help="print the floors as JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cache", type=Path, metavar="FILE",
                       help="the cache file (default: named after the machine, under "
                            "$XDG_CACHE_HOME/linfit or ~/.cache/linfit)")
    where.add_argument("--no-cache", action="store_true",
                       help="measure, and neither read nor write a cache")
    parser.add_argument("--probe-elements", type=int_at_least(1),
                        default=DEFAULT_PROBE_ELEMENTS, metavar="N",
                        help="float32 elements per read/copy probe array; it must dwarf the "
                             f"last-level cache (default: {DEFAULT_PROBE_ELEMENTS}, 1 GiB)")
    parser.add_argument("--repeats", type=int_at_least(1), default=DEFAULT_REPEATS,
                        help=f"timed runs per probe (default: {DEFAULT_REPEATS})")
    parser.add_argument("--dispatch-calls", type=int_at_least(1),
                        default=DISPATCH_CALLS_PER_SAMPLE, metavar="N",
                        help="calls averaged into one dispatch sample "
                             f"(default: {DISPATCH_CALLS_PER_SAMPLE})")
    parser.set_defaults(func=run)


def floors_table(floors: Floors) -> list[tuple[str, ...]]:
    """One row per probe: device, kind, probe, median, GB/s or us per call, and a star on
    the probe that gave the device's read or copy floor."""
    rows = [HEADER]
    for device in floors.devices:
        best = {"read": device.read_probe, "copy": device.copy_probe}
        for m in device.measurements:
            rate = (format_seconds(m.median_seconds) + "/call" if m.kind == "dispatch"
                    else f"{m.bytes_per_second / 1e9:.2f} GB/s")
            star = "*" if best.get(m.kind) == m.probe else ""
            rows.append((device.device, m.kind, m.probe, format_seconds(m.median_seconds), rate,
                         star))
    return rows


def run(args: argparse.Namespace) -> int:
    names = args.backend or installed_backends()
    backends = [get_backend(name) for name in dict.fromkeys(names)]
    floors, path, cached = load_or_measure(
        backends, args.device, cache=args.cache, use_cache=not args.no_cache,
        probe_elements=args.probe_elements, repeats=args.repeats,
        dispatch_calls=args.dispatch_calls)
    if args.json:
        print(json.dumps(floors_json(floors), indent=1))
        return 0
    print("\n".join(text_table(floors_table(floors))))
    for device in floors.devices:
        print(f"{device.device}: read floor {device.read_bandwidth_bytes_per_second / 1e9:.2f} "
              f"GB/s ({device.read_probe}), copy {device.copy_bandwidth_bytes_per_second / 1e9:.2f}"
              f" GB/s ({device.copy_probe}); * = the best probe")
    if path is not None:
        how = "read from" if cached else "written to"
        print(f"floors measured {floors.measured_utc}, {how} {path}")
    return 0
