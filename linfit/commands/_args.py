"""Argument types shared by subcommands: each rejects bad values with a one-line message."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive_float(text: str) -> float:
    """A finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


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
