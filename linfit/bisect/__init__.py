"""``linfit bisect``: from two TensorFlow builds that differ to the first build that
changed (issue 17).

- :mod:`linfit.bisect.decide`: the rules, pure: a step's outcome, the MDE guard, which
  cells are one change, the midpoint and the steps left;
- :mod:`linfit.bisect.state`: the state folder, so that a rerun measures nothing twice;
- :mod:`linfit.bisect.runner`: the confirming session and the steps, paired sessions of
  :mod:`linfit.ab`;
- :mod:`linfit.bisect.plots`: the figure of a cell's step time across the builds tried.

The builds come from an :class:`Environments` object, so that this package installs
nothing itself and imports no framework; :mod:`linfit.commands.bisect` gives the one over
the build cache (:mod:`linfit.builds`).
"""

from linfit.bisect.decide import Ratio
from linfit.bisect.runner import (
    COMPARE_URL,
    FOUND,
    INTERRUPTED,
    NO_CHANGE,
    UNRESOLVED,
    BisectConfig,
    BisectResult,
    Change,
    Environments,
    Step,
    Unavailable,
    default_state_dir,
    run_bisect,
)

__all__ = [
    "COMPARE_URL",
    "FOUND",
    "INTERRUPTED",
    "NO_CHANGE",
    "UNRESOLVED",
    "BisectConfig",
    "BisectResult",
    "Change",
    "Environments",
    "Ratio",
    "Step",
    "Unavailable",
    "default_state_dir",
    "run_bisect",
]
