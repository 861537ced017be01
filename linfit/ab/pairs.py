"""The pairs file of an A/B session now lives in :mod:`linfit.results.pairs` (the data
layer, beside the results file it shares its :class:`~linfit.results.columns.Column` type
with). This module keeps ``from linfit.ab.pairs import PairsWriter`` working."""

from linfit.results.pairs import (
    PAIRS_COLUMN_NAMES,
    PAIRS_COLUMNS,
    PAIRS_SCHEMA_VERSION,
    PARTIAL_SUFFIX,
    READABLE_PAIRS_SCHEMA_VERSIONS,
    PairsWriter,
    burst_seconds_per_step,
    is_pairs_file,
    read_pairs,
)

__all__ = [
    "PAIRS_COLUMNS",
    "PAIRS_COLUMN_NAMES",
    "PAIRS_SCHEMA_VERSION",
    "PARTIAL_SUFFIX",
    "READABLE_PAIRS_SCHEMA_VERSIONS",
    "PairsWriter",
    "burst_seconds_per_step",
    "is_pairs_file",
    "read_pairs",
]
