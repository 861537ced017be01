"""``linfit history``: a static site of every cell's step time across runs, with the steps
asv's method finds in each series and the paired verdicts that confirm them.

- :mod:`linfit.history.collect`: the runs, points and verdicts under some folders, and the
  steps of each series (the statistics are :mod:`linfit.steps`);
- :mod:`linfit.history.site`: the site (plain HTML and matplotlib SVGs), written atomically.
"""

from typing import Any

# The file that tells a folder `linfit history` wrote (and may replace with --force).
MARKER_FILE = "linfit-history.json"

from linfit.history.collect import (  # noqa: E402 (MARKER_FILE first: site.py imports it)
    DetectedStep,
    History,
    PairedVerdict,
    Point,
    Run,
    build_key,
    collect_history,
    find_steps,
)


def __getattr__(name: str) -> Any:
    """``write_site`` on first use: it imports matplotlib, which the command line's start
    (every subcommand registered) should not pay for."""
    if name == "write_site":
        from linfit.history.site import write_site

        return write_site
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "MARKER_FILE",
    "DetectedStep",
    "History",
    "PairedVerdict",
    "Point",
    "Run",
    "build_key",
    "collect_history",
    "find_steps",
    "write_site",
]
