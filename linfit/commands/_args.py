"""Argument types shared by subcommands: each rejects bad values with a one-line message.

Commands import each other never: what two of them share lives here (argument types) or in
:mod:`linfit._format` (tables, times).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from linfit.harness import BY_DEST
from linfit.stats import MIN_ALPHA

__all__ = ["CELL_OPTIONS", "MAX_ALPHA", "add_cell_options", "alpha_level", "fraction",
           "int_at_least", "non_negative_float", "positive_float"]

# Largest significance level: a "confidence" interval below 50% is no interval anyone wants.
MAX_ALPHA = 0.5
# The options of `pytest bench/` that choose cells, from the harness's option table, as
# `linfit ab` and `linfit bisect` take them; the others (results folder, floors, baseline)
# do not apply to a session.
CELL_OPTIONS = tuple(BY_DEST[dest] for dest in (
    "linfit_backends", "linfit_variants", "linfit_devices", "linfit_sizes", "linfit_profile",
    "linfit_dtypes", "linfit_steps_per_call"))


def add_cell_options(parser: argparse.ArgumentParser) -> None:
    """Add :data:`CELL_OPTIONS` to ``parser`` as sessions spell them (``--sizes`` for
    ``--linfit-sizes``), each defaulting to None (not given: its environment variable, then
    the harness's default)."""
    from linfit.ab.coordinator import cli_flag

    for option in CELL_OPTIONS:
        parser.add_argument(cli_flag(option), dest=option.dest, default=None,
                            metavar=option.metavar, help=f"{option.help} [env {option.env}]")


def _finite_float(text: str, minimum: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and (value >= minimum if inclusive else value > minimum)):
        bound = f"{'>=' if inclusive else '>'} {minimum:g}"
        raise argparse.ArgumentTypeError(f"{text} must be a finite number {bound}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    return _finite_float(text, 0, inclusive=False)


def non_negative_float(text: str) -> float:
    """A finite float >= 0."""
    return _finite_float(text, 0, inclusive=True)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for integers >= ``minimum`` (``1e6`` style accepted)."""

    def parse(text: str) -> int:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not value.is_integer() or value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be an integer >= {minimum}")
        return int(value)

    parse.__name__ = f"integer >= {minimum}"
    return parse


def fraction(text: str) -> float:
    """A threshold: ``10%`` or ``0.1``; without ``%`` it must be below 1, so that ``10``
    is not silently read as 1000%."""
    percent = text.strip().endswith("%")
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.1 or 10%") from None
    if percent:
        value /= 100
    if not (math.isfinite(value) and value > 0) or (not percent and value >= 1):
        raise argparse.ArgumentTypeError(
            f"{text} is not a threshold: give a fraction like 0.1 (< 1) or a percentage "
            "like 10% (> 0)")
    return value


def alpha_level(text: str) -> float:
    """A significance level between :data:`~linfit.stats.MIN_ALPHA` and :data:`MAX_ALPHA`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not MIN_ALPHA <= value <= MAX_ALPHA:
        raise argparse.ArgumentTypeError(
            f"{text} must be between {MIN_ALPHA:g} (the bootstrap's resolution) and "
            f"{MAX_ALPHA:g}")
    return value
