"""``linfit history``: a static site of every cell's step time across runs, with the steps
asv's method finds in each series and the paired verdicts that confirm them.

- :mod:`linfit.history.collect`: the runs, points and verdicts under some folders, and the
  steps of each series (the statistics are :mod:`linfit.steps`);
- :mod:`linfit.history.site`: the site (plain HTML and matplotlib SVGs), written atomically.
"""

from linfit.history.collect import (
    DetectedStep,
    History,
    PairedVerdict,
    Point,
    Run,
    build_key,
    collect_history,
    find_steps,
)
from linfit.history.site import MARKER_FILE, write_site

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
