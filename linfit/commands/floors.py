"""``linfit floors``: measure (or read from the cache) each device's read, copy and dispatch
floors, in probe rounds, and print the best and the worst round of each."""

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
    MAX_CACHED_ROUNDS,
    DeviceFloors,
    Floors,
    floors_json,
    load_or_measure,
    spread,
)

HEADER = ("device", "kind", "probe", "best", "worst", "spread", "rate (best)", "")

# Rounds `linfit floors` measures when it measures: enough to see how far one probe moves
# from round to round (issue 12), at a few seconds a round on a CPU.
DEFAULT_ROUNDS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "floors", help="measure each device's read bandwidth and dispatch floors",
        description="Measure, on each device, the sustained read bandwidth (a streaming sum "
                    "over a large array), the copy bandwidth, and each backend's cheapest "
                    "compiled call, in probe rounds: each round runs every probe once (the "
                    "median of repeated runs), and the floors are the best round's, with "
                    "the spread between the best and the worst round. The rounds are cached "
                    "in a file named after the machine (its "
                    f"{MAX_CACHED_ROUNDS} most recent), reused while the machine, the "
                    "versions and the settings match; `pytest bench/` adds one at the end "
                    "of each session.")
    parser.add_argument("--device", action="append", metavar="D",
                        help="only this device, e.g. CPU:0 (repeatable; default: every device)")
    parser.add_argument("--backend", choices=list(BACKENDS), action="append",
                        help="only this backend's probes (repeatable; default: every installed "
                             "one); NumPy's probes run on CPU devices in any case")
    parser.add_argument("--json", action="store_true",
                        help="print the floors as JSON (every round's raw samples)")
    parser.add_argument("--rounds", type=int_at_least(1), metavar="R",
                        help="measure R probe rounds, back to back. Without --rounds, a "
                             "matching cache is only read, and where there is none "
                             f"{DEFAULT_ROUNDS} rounds are measured; with it, the R rounds "
                             "are measured in any case and added to the cache (which keeps "
                             f"the {MAX_CACHED_ROUNDS} most recent)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cache", type=Path, metavar="FILE",
                       help="the cache file (default: named after the machine, under "
                            "$XDG_CACHE_HOME/linfit or ~/.cache/linfit)")
    where.add_argument("--no-cache", action="store_true",
                       help="measure, and neither read nor write a cache")
    parser.add_argument("--probe-elements", type=int_at_least(1),
                        default=DEFAULT_PROBE_ELEMENTS, metavar="N",
                        help="float32 elements per read/copy probe array; it must dwarf the "
                             f"last-level cache (default: {DEFAULT_PROBE_ELEMENTS}, 256 MiB)")
    parser.add_argument("--repeats", type=int_at_least(1), default=DEFAULT_REPEATS,
                        help=f"timed runs per probe in a round (default: {DEFAULT_REPEATS})")
    parser.add_argument("--dispatch-calls", type=int_at_least(1),
                        default=DISPATCH_CALLS_PER_SAMPLE, metavar="N",
                        help="calls averaged into one dispatch sample "
                             f"(default: {DISPATCH_CALLS_PER_SAMPLE})")
    parser.set_defaults(func=run)


def _rate(kind: str, seconds: float, bytes_per_call: int) -> str:
    if kind == "dispatch":
        return format_seconds(seconds) + "/call"
    return f"{bytes_per_call / seconds / 1e9:.2f} GB/s"


def floors_table(floors: Floors) -> list[tuple[str, ...]]:
    """One row per probe: device, kind, probe, its median in the best and in the worst
    round, their spread, the best round's GB/s or time per call, and a star on the probe
    that gave the device's read or copy floor."""
    rows = [HEADER]
    for device in floors.devices:
        best_probe = {"read": device.read_probe, "copy": device.copy_probe}
        probes = dict.fromkeys((m.kind, m.probe) for m in device.measurements)
        for kind, probe in probes:
            runs = [m for m in device.measurements if (m.kind, m.probe) == (kind, probe)]
            medians = [m.median_seconds for m in runs]
            best, worst = min(medians), max(medians)
            star = "*" if best_probe.get(kind) == probe else ""
            rows.append((device.device, kind, probe, format_seconds(best), format_seconds(worst),
                         f"{spread(medians):.2f}x", _rate(kind, best, runs[0].bytes_per_call),
                         star))
    return rows


def device_lines(device: DeviceFloors) -> list[str]:
    """Per kind, the device's floor in its best and its worst round, and their spread."""
    lines = []
    for kind, probe in (("read", device.read_probe), ("copy", device.copy_probe)):
        bandwidths = device.round_bandwidths(kind).values()
        label = "read floor" if kind == "read" else "copy"
        lines.append(f"{device.device}: {label} {max(bandwidths) / 1e9:.2f} GB/s in the best "
                     f"round ({probe}), {min(bandwidths) / 1e9:.2f} GB/s in the worst: spread "
                     f"{spread(bandwidths):.2f}x")
    for backend in device.dispatch_floor_seconds:
        seconds = device.round_dispatch_seconds(backend).values()
        lines.append(f"{device.device}: {backend} dispatch floor {format_seconds(min(seconds))} "
                     f"in the best round, {format_seconds(max(seconds))} in the worst: spread "
                     f"{spread(seconds):.2f}x")
    return lines


def run(args: argparse.Namespace) -> int:
    names = args.backend or installed_backends()
    backends = [get_backend(name) for name in dict.fromkeys(names)]
    floors, path, cached = load_or_measure(
        backends, args.device, cache=args.cache, use_cache=not args.no_cache,
        rounds=args.rounds or DEFAULT_ROUNDS, measure_when_cached=args.rounds is not None,
        probe_elements=args.probe_elements, repeats=args.repeats,
        dispatch_calls=args.dispatch_calls)
    if args.json:
        print(json.dumps(floors_json(floors), indent=1))
        return 0
    print("\n".join(text_table(floors_table(floors))))
    for device in floors.devices:
        print("\n".join(device_lines(device)))
    measured = floors.rounds - cached
    print(f"* = the best probe. {floors.rounds} round(s) since {floors.measured_utc}: "
          f"{cached} from the cache, {measured} measured now")
    if path is not None:
        how = "read from" if not measured else "written to"
        print(f"floors {how} {path}")
    return 0
