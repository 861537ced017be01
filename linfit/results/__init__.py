"""linfit's data layer: the key of a cell, the results file, the pairs file and the journal.

- :mod:`~linfit.results.cell`: :class:`Cell`, the key every measurement hangs off (imports
  nothing of linfit);
- :mod:`~linfit.results.columns`: the :class:`Column` type and the results column table;
- :mod:`~linfit.results.record`: :class:`CellResult`, one cell's record (no pandas);
- :mod:`~linfit.results.csv`: the results CSV's one writer and one reader;
- :mod:`~linfit.results.pairs`: the A/B pairs file, declared with the same :class:`Column`;
- :mod:`~linfit.results.journal`: the journal of finished cells, and ``recover``.

Every public name of these modules is here too (``from linfit.results import Cell``).
Importing this package imports no pandas; the readers import it to build frames.
"""

from linfit._paths import atomic_write_bytes, atomic_write_text
from linfit.results.cell import (
    ARGS_CONVENTION,
    KEY_COLUMNS,
    KEY_DEFAULTS,
    NO_STRATEGY,
    Cell,
    duplicate_cells,
    is_missing,
    legacy_convention,
)
from linfit.results.columns import (
    ALL_COLUMNS,
    COLUMN_NAMES,
    COLUMNS,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    Column,
    columns_of,
)
from linfit.results.csv import (
    STATISTIC_RTOL,
    ResultSet,
    format_samples,
    read_frame,
    read_results,
    record_problem,
    records_frame,
    render_results,
    write_results,
)
from linfit.results.journal import (
    JOURNAL_FORMAT_VERSION,
    JOURNAL_SUFFIX,
    Journal,
    JournalContents,
    JournalError,
    leftover_journals,
    read_journal,
    recover,
    write_run,
)
from linfit.results.pairs import (
    PAIRS_COLUMNS,
    PAIRS_SCHEMA_VERSION,
    PARTIAL_SUFFIX,
    PairsWriter,
    burst_seconds_per_step,
    is_pairs_file,
    read_pairs,
)
from linfit.results.record import (
    CHECK_OUTCOMES,
    FACT_COLUMNS,
    STATISTIC_COLUMNS,
    STATUSES,
    CellResult,
    Reference,
    step_statistics,
)

__all__ = [
    "ALL_COLUMNS",
    "ARGS_CONVENTION",
    "CHECK_OUTCOMES",
    "COLUMNS",
    "COLUMN_NAMES",
    "FACT_COLUMNS",
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_SUFFIX",
    "KEY_COLUMNS",
    "KEY_DEFAULTS",
    "NO_STRATEGY",
    "PAIRS_COLUMNS",
    "PAIRS_SCHEMA_VERSION",
    "PARTIAL_SUFFIX",
    "READABLE_SCHEMA_VERSIONS",
    "SCHEMA_VERSION",
    "STATISTIC_COLUMNS",
    "STATISTIC_RTOL",
    "STATUSES",
    "Cell",
    "CellResult",
    "Column",
    "Journal",
    "JournalContents",
    "JournalError",
    "PairsWriter",
    "Reference",
    "ResultSet",
    "atomic_write_bytes",
    "atomic_write_text",
    "burst_seconds_per_step",
    "columns_of",
    "duplicate_cells",
    "format_samples",
    "is_missing",
    "is_pairs_file",
    "leftover_journals",
    "legacy_convention",
    "read_frame",
    "read_journal",
    "read_pairs",
    "read_results",
    "record_problem",
    "records_frame",
    "recover",
    "render_results",
    "step_statistics",
    "write_results",
    "write_run",
]
