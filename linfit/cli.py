"""The ``linfit`` command line: one subcommand per module in :mod:`linfit.commands`.

Every subcommand returns its exit code. Bad input raises :class:`LinfitError`, caught here
once: one line on stderr and exit status 2. So is an operating-system error on a file
(a full disk, a permission), named with its file.

A reader that closes the output early (``linfit compare A B | head``) ends the command
quietly, as Unix tools end on SIGPIPE, with exit status 141 (128 + SIGPIPE, what a shell
reports for ``yes | head`` under ``set -o pipefail``): not 0, because the output was not
all delivered, and neither 1 (a regression) nor 2 (bad input), which mean something else.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from linfit._errors import LinfitError

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INPUT_ERROR", "build_parser", "main"]

EXIT_INPUT_ERROR = 2
# 128 + SIGPIPE (13): the status a shell gives a tool that SIGPIPE ended.
EXIT_BROKEN_PIPE = 128 + 13

# Subcommand modules, in the order --help lists them. Each has register(subparsers).
COMMANDS = ("devices", "fit", "floors", "compare", "ab", "bisect", "builds", "check", "plot",
            "report", "recover", "history", "export", "explain")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, never broken at a hyphen: a variant name (``keras-xla-spe``) stays
    whole, so it can be copied from the help."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, without the usage dump; help
    lines are not broken at hyphens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

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
    try:
        return _run(argv)
    except BrokenPipeError:
        return _end_quietly()


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:
        # --help and usage errors end here, with argparse's status (0 or 2). Their text is
        # flushed now, so that a reader gone away is noticed in main, not at exit.
        sys.stdout.flush()
        return done.code if isinstance(done.code, int) else EXIT_INPUT_ERROR
    try:
        status = int(args.func(args))
    except LinfitError as error:
        return _error(args.command, str(error))
    except BrokenPipeError:
        raise
    except OSError as error:
        # A file linfit had checked went away or filled up meanwhile: the environment's
        # fault, not linfit's, so one line, as for bad input.
        where = f": {error.filename}" if error.filename else ""
        return _error(args.command, f"{error.strerror or error}{where}")
    # Flushed here, so that a reader gone away is noticed in main, not at exit.
    sys.stdout.flush()
    return status


def _error(command: str, message: str) -> int:
    print(f"linfit {command}: error: {message}", file=sys.stderr)
    return EXIT_INPUT_ERROR


def _end_quietly() -> int:
    """After a broken pipe: point stdout at /dev/null, so that the interpreter's flush at
    exit does not fail again (and print "Exception ignored ..."), and say nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE
