"""The results CSV's columns, declared once: the :class:`Column` type and the column table.

The results writer and reader (:mod:`linfit.results.csv`) and the pairs file
(:mod:`linfit.results.pairs`) declare their columns with the same :class:`Column` type.
This module also holds what both readers share about a column's values: the vocabularies
of its domain (:func:`vocabulary`) and the escaping of text a spreadsheet would run as a
formula (:func:`escape_text`, :func:`unescape_text`).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL_COLUMNS",
    "BACKEND",
    "CHECK_OUTCOMES",
    "COLUMNS",
    "COLUMN_NAMES",
    "DTYPE",
    "FORMULA_PREFIXES",
    "NON_NEGATIVE",
    "OUTCOME",
    "POSITIVE",
    "RATIO",
    "READABLE_SCHEMA_VERSIONS",
    "ROUND",
    "SCHEMA_VERSION",
    "STATUS",
    "STATUSES",
    "Column",
    "columns_of",
    "csv_line",
    "csv_records",
    "domain_problem",
    "escape_text",
    "unescape_text",
    "vocabulary",
]

# Bump when a column changes meaning or is removed; the reader refuses versions it does
# not know. 2: per-call samples (call_samples_seconds) replace per-step samples_seconds;
# reference, reference_w/b, check_placement/traces/convergence and run_interrupted added.
# 3: the cell key gains replicas and convention (issues 12 and 13); strategy added.
# 4: floor_rounds and floor_spread (issue 12: the floor is the best of several probe rounds).
# 5: tensorflow_git_version and tensorflow_commit (issue 17: the build a TensorFlow row ran);
# the machine's state (cores, memory, affinity, load, frequency, governor, VM, container),
# keras_version, and the peak memory a cell adds (issue 18).
# 5 also: the HLO account of a compiled cell (issue 17): hlo_kernels_per_step, hlo_loops,
# hlo_bytes_per_step, hlo_bytes_ratio.
SCHEMA_VERSION = 5
READABLE_SCHEMA_VERSIONS = (1, 2, 3, 4, 5)

# A cell's status: it passed every check, or not (the reason is in ``message``).
STATUSES = ("ok", "failed")

# Outcome of one check (placement, traces, convergence). "unknown": the file predates the
# per-check columns (schema 1), so only the overall status is known.
CHECK_OUTCOMES = ("ok", "failed", "not-run", "unknown")

# Column domains the readers enforce, beyond the type.
POSITIVE = "positive"  # strictly > 0 (times, sizes, bandwidths)
NON_NEGATIVE = "non-negative"
ROUND = "round"  # >= -1: a pairs file's round, -1 in a failed row
RATIO = "ratio"  # >= 1 (worst / best)
STATUS = "status"
OUTCOME = "outcome"
BACKEND = "backend"
DTYPE = "dtype"


@dataclass(frozen=True)
class Column:
    """One column of a results CSV or a pairs file.

    Attributes:
        name, type, unit, doc: the column; type is int, float, bool, str, samples (floats,
            space-separated) or ints (integers, space-separated).
        required: False: may be empty in an ok row (e.g. floors not measured).
        domain: the values allowed beyond the type ("positive", "non-negative", "round"
            (>= -1), "ratio" (>= 1), "status", "outcome", "backend", "dtype"; '' = any).
        versions: the schema versions that have this column (of the file it belongs to).
    """

    name: str
    type: str
    unit: str
    doc: str
    required: bool = True
    domain: str = ""
    versions: tuple[int, ...] = (1, 2, 3, 4, 5)


def _c(name: str, type_: str, unit: str, doc: str, required: bool = True, domain: str = "",
       versions: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Column:
    return Column(name, type_, unit, doc, required, domain, versions)


_V2 = (2, 3, 4, 5)
_V3 = (3, 4, 5)
_V4 = (4, 5)
_V5 = (5,)

# Every column of every readable version, in file order; columns_of() picks a version's.
ALL_COLUMNS: tuple[Column, ...] = (
    # run
    _c("schema_version", "int", "", "version of this column layout"),
    _c("run_id", "str", "", "UTC time, host and short commit of the run; also the file name"),
    _c("timestamp_utc", "str", "ISO 8601", "when the run started"),
    _c("git_commit", "str", "", "short commit of the linfit checkout ('unknown' outside git)"),
    _c("git_dirty", "bool", "", "whether tracked files differed from that commit"),
    _c("run_interrupted", "bool", "", "the session was interrupted (Ctrl-C, SIGTERM) or the "
       "file was recovered from a journal: cells may be missing", versions=_V2),
    # machine
    _c("host", "str", "", "host name"),
    _c("os", "str", "", "system, kernel release and architecture"),
    _c("python_version", "str", "", "Python version"),
    _c("numpy_version", "str", "", "NumPy version"),
    _c("cpu_model", "str", "", "CPU model name"),
    _c("keras_version", "str", "", "the installed Keras' version ('' = not installed)",
       required=False, versions=_V5),
    _c("logical_cores", "int", "CPUs", "logical CPUs of the machine (os.cpu_count)",
       required=False, domain=POSITIVE, versions=_V5),
    _c("physical_cores", "int", "cores", "physical cores (/proc/cpuinfo or sysfs topology)",
       required=False, domain=POSITIVE, versions=_V5),
    _c("memory_bytes", "int", "bytes", "physical memory (MemTotal)", required=False,
       domain=POSITIVE, versions=_V5),
    _c("cpu_affinity", "str", "", "the CPUs the run could use, as a CPU list (0-1)",
       required=False, versions=_V5),
    _c("cpu_frequency_mhz", "float", "MHz", "mean current frequency of those CPUs at the "
       "start (cpufreq, else /proc/cpuinfo)", required=False, domain=POSITIVE, versions=_V5),
    _c("cpu_governor", "str", "", "their cpufreq scaling governor(s), '' where not readable",
       required=False, versions=_V5),
    _c("virtual_machine", "str", "", "hypervisor (kvm, ...), none, or '' where unknown",
       required=False, versions=_V5),
    _c("container", "str", "", "container (docker, ...), none, or '' where unknown",
       required=False, versions=_V5),
    _c("load_average_start", "float", "", "1-minute load average when the run started",
       required=False, domain=NON_NEGATIVE, versions=_V5),
    _c("load_average_end", "float", "", "1-minute load average when the run ended ('' in a "
       "run recovered from its journal)", required=False,
       domain=NON_NEGATIVE, versions=_V5),
    _c("backend", "str", "", "framework: tensorflow, jax or torch", domain=BACKEND),
    _c("backend_version", "str", "", "the framework's version"),
    _c("backend_build", "str", "", "CUDA/cuDNN versions the framework was built with, if any",
       required=False),
    _c("tensorflow_git_version", "str", "", "tf.version.GIT_VERSION of the TensorFlow build "
       "(git describe: v1.12.1-148158-gef696751006); '' in rows of other backends",
       required=False, versions=_V5),
    _c("tensorflow_commit", "str", "", "the short commit in tensorflow_git_version ('' where "
       "it has none, e.g. a release built at its tag)", required=False, versions=_V5),
    # device
    _c("device", "str", "", "device id as asked for: CPU:0, GPU:0, ..."),
    _c("device_kind", "str", "", "CPU or GPU"),
    _c("device_name", "str", "", "CPU model or GPU name"),
    _c("device_details", "str", "", "driver, CUDA, compute capability where known",
       required=False),
    _c("placement", "str", "", "device that held the step's result, as the framework reported"),
    # environment
    _c("tf_enable_onednn_opts", "str", "", "TF_ENABLE_ONEDNN_OPTS as set ('' = unset)",
       required=False),
    _c("xla_flags", "str", "", "XLA_FLAGS as set", required=False),
    _c("tf_xla_flags", "str", "", "TF_XLA_FLAGS as set", required=False),
    _c("omp_num_threads", "str", "", "OMP_NUM_THREADS as set", required=False),
    _c("intra_op_threads", "int", "threads", "intra-op threads reported (0 = default)",
       domain=NON_NEGATIVE),
    _c("inter_op_threads", "int", "threads", "inter-op threads reported (0 = default)",
       domain=NON_NEGATIVE),
    # cell
    _c("variant", "str", "", "how the step runs: eager, function, xla, xla-loop, jit, ..."),
    _c("compiled", "bool", "", "whether the step is traced/compiled"),
    _c("xla", "bool", "", "whether XLA compiles the step"),
    _c("loop", "bool", "", "whether one call runs steps_per_call steps in a device-side loop"),
    _c("n_examples", "int", "examples", "data set size", domain=POSITIVE),
    _c("dtype", "str", "", "float32, float64, bfloat16 or float16", domain=DTYPE),
    _c("steps_per_call", "int", "steps", "training steps per timed call", domain=POSITIVE),
    _c("replicas", "int", "replicas", "replicas the step's data are split across (1: one "
       "device, no strategy)", domain=POSITIVE, versions=_V3),
    _c("convention", "str", "", "how a TensorFlow compiled step is called: args, captured, "
       "concrete, ... ('' where it does not apply)", required=False, versions=_V3),
    _c("strategy", "str", "", "how replicas share the step: none, mirrored, multi-worker, "
       "jax-sharding", versions=_V3),
    _c("learning_rate", "float", "", "gradient-descent step size", domain=POSITIVE),
    _c("seed", "int", "", "NumPy seed of the data", domain=NON_NEGATIVE),
    # timing: every time is per training step, derived from the samples
    _c("rounds", "int", "", "timed rounds: the number of samples", domain=POSITIVE),
    _c("iterations", "int", "calls", "calls per round", domain=POSITIVE),
    _c("min_seconds", "float", "s/step", "fastest round", domain=POSITIVE),
    _c("median_seconds", "float", "s/step", "median round", domain=POSITIVE),
    _c("mean_seconds", "float", "s/step", "mean of rounds", domain=POSITIVE),
    _c("stddev_seconds", "float", "s/step", "standard deviation of rounds",
       domain=NON_NEGATIVE),
    _c("iqr_seconds", "float", "s/step", "interquartile range of rounds", domain=NON_NEGATIVE),
    _c("max_seconds", "float", "s/step", "slowest round", domain=POSITIVE),
    _c("first_call_seconds", "float", "s", "first call, whole (trace + compile + its steps)",
       domain=POSITIVE),
    _c("traces", "int", "", "times the step was traced/compiled during the cell (1 when compiled)",
       domain=NON_NEGATIVE),
    _c("peak_rss_bytes", "int", "bytes", "the most resident memory the cell added to the "
       "harness process at its peak, over what the process held before it (linfit.memory: "
       "'' where unknown or the work ran in other processes)", required=False,
       domain=NON_NEGATIVE, versions=_V5),
    _c("device_peak_bytes", "int", "bytes", "the most device memory the framework's "
       "allocator handed out beyond what it held before the cell ('' on a CPU or unknown)",
       required=False, domain=NON_NEGATIVE, versions=_V5),
    _c("samples_seconds", "samples", "s/step", "every round's time per step, space-separated",
       domain=POSITIVE, versions=(1,)),
    _c("call_samples_seconds", "samples", "s/call",
       "every round's time per call (k steps), space-separated, exact (repr)",
       domain=POSITIVE, versions=_V2),
    # result
    _c("convergence_steps", "int", "steps", "steps from W=5, b=0 before final_w/final_b",
       domain=POSITIVE),
    _c("final_w", "float", "", "W after convergence_steps"),
    _c("final_b", "float", "", "b after convergence_steps"),
    _c("final_loss", "float", "", "loss at the start of the last convergence call"),
    _c("w_ols", "float", "", "float64 least-squares W of the same data"),
    _c("b_ols", "float", "", "float64 least-squares b of the same data"),
    _c("reference", "str", "", "the run W and b were checked against: 'backend variant "
       "device' (linfit.convergence.reference_for), 'unknown' in schema-1 files",
       versions=_V2),
    _c("reference_w", "float", "", "that run's W", required=False, versions=_V2),
    _c("reference_b", "float", "", "that run's b", required=False, versions=_V2),
    _c("check_placement", "str", "", "placement check: ok, failed, not-run (unknown: a "
       "converted schema-1 row, as in the next two)", domain=OUTCOME, versions=_V2),
    _c("check_traces", "str", "", "trace-count check: ok, failed, not-run", domain=OUTCOME,
       versions=_V2),
    _c("check_convergence", "str", "", "W and b check: ok, failed, not-run", domain=OUTCOME,
       versions=_V2),
    _c("status", "str", "", "ok, or failed (see message)", domain=STATUS),
    _c("message", "str", "", "why the cell failed ('' when ok)", required=False),
    # floors (issue 7): empty when floors were not measured
    _c("bytes_min", "int", "bytes", "bytes of x and y, read once per step", required=False,
       domain=POSITIVE),
    _c("read_bandwidth_bytes_per_second", "float", "B/s",
       "measured sustained read bandwidth of the device (in the round that gave "
       "floor_seconds)", required=False, domain=POSITIVE),
    _c("dispatch_floor_seconds", "float", "s/call",
       "measured cost of the backend's cheapest compiled call on the device (in the round "
       "that gave floor_seconds)", required=False, domain=POSITIVE),
    _c("floor_seconds", "float", "s/step",
       "max(bytes_min / read bandwidth, dispatch floor / steps_per_call), in the probe round "
       "where it is lowest", required=False, domain=POSITIVE),
    _c("floor_rounds", "int", "rounds", "probe rounds floor_seconds is the best of",
       required=False, domain=POSITIVE, versions=_V4),
    _c("floor_spread", "float", "", "the worst round's floor / the best round's (>= 1)",
       required=False, domain=RATIO, versions=_V4),
    _c("efficiency", "float", "", "floor_seconds / median_seconds (1.0 = at the floor)",
       required=False, domain=POSITIVE),
    # the HLO account (issue 17, linfit.hlo): empty where XLA does not compile the step, or
    # where the account could not be made
    _c("hlo_kernels_per_step", "float", "kernels/step", "kernel launches (fusions and unfused "
       "ops) per training step in the optimized HLO", required=False, domain=NON_NEGATIVE,
       versions=_V5),
    _c("hlo_loops", "str", "", "the HLO's while loops: none, or while\N{MULTIPLICATION SIGN}"
       "COUNT(trip N) ('trip ?' where the count is unknown)", required=False, versions=_V5),
    _c("hlo_bytes_per_step", "float", "bytes/step", "bytes the HLO's kernels read and write "
       "per training step (each reads its operands, writes its output)", required=False,
       domain=NON_NEGATIVE, versions=_V5),
    _c("hlo_bytes_ratio", "float", "", "hlo_bytes_per_step / the read floor (x and y read "
       "once: 2 * n * itemsize)", required=False, domain=NON_NEGATIVE, versions=_V5),
)


def columns_of(version: int) -> tuple[Column, ...]:
    """The columns of schema ``version``, in file order.

    Raises:
        ValueError: for a version this linfit does not read.
    """
    if version not in READABLE_SCHEMA_VERSIONS:
        raise ValueError(f"schema version {version} is not one of {READABLE_SCHEMA_VERSIONS}")
    return tuple(column for column in ALL_COLUMNS if version in column.versions)


COLUMNS: tuple[Column, ...] = columns_of(SCHEMA_VERSION)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)


@functools.cache
def vocabulary(domain: str) -> tuple[str, ...] | None:
    """The values a column of ``domain`` may hold, or None for a domain that is not a
    vocabulary (a range such as "positive", or any value). Cached: the readers ask once
    per field, millions of times for the committed results."""
    # Imported here: the framework vocabularies live with the backends and the data.
    from linfit.backends import BACKENDS
    from linfit.data import DTYPES

    return {STATUS: STATUSES, OUTCOME: CHECK_OUTCOMES, BACKEND: tuple(BACKENDS),
            DTYPE: DTYPES}.get(domain)


def domain_problem(column: Column, value: Any) -> str | None:
    """What is wrong with a typed, non-empty ``value`` of ``column`` for its domain; None
    when nothing is. Samples and ints (space-separated) are checked value by value."""
    if not column.domain:
        return None
    several = column.type in ("samples", "ints")
    values = value if several else (value,)
    if column.type == "ints" and value:
        # Integers have no NaN, so their smallest decides a lower bound, found at C speed
        # (a pairs file's call_ns holds thousands a row).
        values = (min(value),)
    if column.domain == POSITIVE and not all(v > 0 for v in values):
        return ("holds a time that is not strictly positive" if several
                else f"{value!r} is not strictly positive")
    if column.domain == NON_NEGATIVE and not all(v >= 0 for v in values):
        return "holds a negative value" if several else f"{value!r} is negative"
    if column.domain == ROUND and not value >= -1:
        return f"{value!r} is below -1 (a round is 0, 1, ..., or -1 in a failed row)"
    if column.domain == RATIO and not value >= 1:
        return f"{value!r} is below 1 (it is the worst of several figures over the best)"
    allowed = vocabulary(column.domain)
    if allowed is not None and value not in allowed:
        return f"{value!r} is not one of {', '.join(allowed)}"
    return None


# --- text a spreadsheet would run --------------------------------------------------------

# OWASP's CSV-injection advice: a cell that starts with one of these is run as a formula by
# Excel, LibreOffice and Google Sheets; a leading single quote makes it text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def _runs_as_formula(text: str) -> bool:
    """Whether ``text``, after any leading single quotes, starts like a formula."""
    return text.lstrip(_QUOTE).startswith(FORMULA_PREFIXES)


def escape_text(text: str) -> str:
    """A text cell as the writers put it in a CSV: with one more leading single quote where
    it starts like a formula (after any single quotes it already has); otherwise as it is.
    :func:`unescape_text` undoes it exactly. Only for text columns, never for numbers."""
    return _QUOTE + text if _runs_as_formula(text) else text


def unescape_text(text: str) -> str:
    """A text cell as read from a CSV: one leading single quote less where the rest starts
    like a formula (:func:`escape_text`); otherwise as it is."""
    return text[1:] if text.startswith(_QUOTE) and _runs_as_formula(text) else text


def csv_line(fields: Sequence[str]) -> str:
    """One CSV record as both writers write it: quoted where needed, ended by ``\\n``.

    csv.writer (Python 3.11) quotes a field with a line-end character only when that
    character is in its line terminator; with ``\\n`` alone, a ``\\r`` in a text field would be
    written bare and read back as the end of the row. The record is written with ``\\r\\n``
    (every field with either character quoted) and its own terminator made ``\\n``.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(fields)
    return buffer.getvalue()[:-2] + "\n"


def csv_records(text: str, fail: Callable[[int, str], Exception]) -> list[tuple[int, list[str]]]:
    """(first physical line, fields) of every non-blank CSV record of ``text``; a quoted
    field may span lines, so a record's line is where it starts.

    Raises:
        The error ``fail(line, what)`` makes, for text that is not a readable CSV.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    previous = 0
    # A samples field of thousands of rounds exceeds csv's default limit of 128 KiB; no
    # field can be longer than the whole text. The limit is global: restored in finally.
    limit = csv.field_size_limit(max(len(text) + 1, csv.field_size_limit()))
    try:
        for fields in reader:
            if fields:
                records.append((previous + 1, fields))
            previous = reader.line_num
    except csv.Error as error:
        raise fail(previous + 1, f"not a readable CSV ({error})") from None
    finally:
        csv.field_size_limit(limit)
    return records
