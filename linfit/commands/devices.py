"""``linfit devices``: the devices each installed backend sees."""

from __future__ import annotations

import argparse

from linfit.backends import BACKENDS, get_backend, installed_backends


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices", help="list the devices each backend sees",
        description="List the CPU and GPU devices of each installed backend, with their names.")
    parser.add_argument("--backend", choices=list(BACKENDS),
                        help="only this backend (default: every installed one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [args.backend] if args.backend else installed_backends()
    for name in names:
        backend = get_backend(name)
        for device in backend.devices():
            details = f"  ({device.details})" if device.details else ""
            print(f"{backend.name:<11} {device.id:<7} {device.name}{details}")
    return 0
