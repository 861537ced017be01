"""Paired, interleaved A/B sessions of two or more environments (``linfit ab``, issue 11).

- :mod:`linfit.ab.spec`: the sides (label, interpreter, environment settings);
- :mod:`linfit.ab.worker`: one side's long-lived process, spoken to in JSON lines;
- :mod:`linfit.ab.coordinator`: starts the workers and alternates their bursts;
- :mod:`linfit.ab.pairs`: the pairs file, one row per burst;
- :mod:`linfit.ab.analysis`: verdicts per cell from a pairs file;
- :mod:`linfit.ab.projection`: what the undecided cells need, pairs and seconds;
- :mod:`linfit.ab.resume`: continuing a session (``--resume``);
- :mod:`linfit.ab.plots`: the figures of a pairs file.

Importing this package imports no framework.
"""

from linfit.ab.analysis import DEFAULT_AB_THRESHOLD, ABComparison, analyse
from linfit.ab.coordinator import (
    SessionCell,
    SessionConfig,
    SessionResult,
    WorkerFailed,
    check_config,
    run_session,
)
from linfit.ab.spec import Side, aa_sides, parse_side, parse_sides
from linfit.results.pairs import PAIRS_COLUMNS, PAIRS_SCHEMA_VERSION, read_pairs

__all__ = [
    "DEFAULT_AB_THRESHOLD",
    "PAIRS_COLUMNS",
    "PAIRS_SCHEMA_VERSION",
    "ABComparison",
    "SessionCell",
    "SessionConfig",
    "SessionResult",
    "Side",
    "WorkerFailed",
    "aa_sides",
    "analyse",
    "check_config",
    "parse_side",
    "parse_sides",
    "read_pairs",
    "run_session",
]
