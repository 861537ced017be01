"""The ``linfit`` command line: one subcommand per module in :mod:`linfit.commands`.

Every subcommand returns its exit code. Bad input raises :class:`LinfitError`, caught here
once: one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from linfit._errors import LinfitError

__all__ = ["EXIT_INPUT_ERROR", "build_parser", "main"]

EXIT_INPUT_ERROR = 2

# Subcommand modules, in the order --help lists them. Each has register(subparsers).
COMMANDS = ("devices", "fit", "floors", "compare", "check", "plot", "report")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = _Parser(
        prog="linfit",
        description="What tf.function and XLA buy a training step: the linear-fit trainer of "
                    "TensorFlow's custom-training tutorial, timed and checked on every device.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"linfit.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LinfitError as error:
        print(f"linfit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
