"""The markdown report of a run: environment, results, speed-ups, break-even steps, the HLO
account of the compiled cells, figures.

:func:`render_report` turns finished tables and drawn figures into markdown text and
computes nothing; :func:`write_report` computes the summaries, draws the figures into a
folder beside the report and writes the page atomically, never over an existing report
unless asked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from linfit import summary
from linfit._errors import LinfitError
from linfit._format import format_seconds, markdown_table
from linfit._paths import atomic_write_text, output_dir_problem
from linfit.plots import TIMES, DrawnFigure, draw_run_figures
from linfit.results import KEY_COLUMNS
from linfit.retrain import ConvergenceRuns

__all__ = [
    "FIGURES_SUFFIX",
    "SECTIONS",
    "check_report_path",
    "figures_folder",
    "render_report",
    "write_report",
]

# The report's sections, in order; the tests check every one is there.
SECTIONS = ("Environment", "Results", "Speed-up over eager", "Break-even steps",
            "HLO account", "Figures")
FIGURES_SUFFIX = "-figures"  # report.md keeps its figures in report-figures/

# Environment columns, with the name the table gives them; one value per run usually.
_ENVIRONMENT = (
    ("run_id", "run"),
    ("timestamp_utc", "started (UTC)"),
    ("host", "host"),
    ("os", "OS"),
    ("python_version", "Python"),
    ("numpy_version", "NumPy"),
    ("cpu_model", "CPU"),
    ("intra_op_threads", "intra-op threads (0 = default)"),
    ("inter_op_threads", "inter-op threads (0 = default)"),
    ("tf_enable_onednn_opts", "TF_ENABLE_ONEDNN_OPTS"),
    ("xla_flags", "XLA_FLAGS"),
    ("tf_xla_flags", "TF_XLA_FLAGS"),
    ("omp_num_threads", "OMP_NUM_THREADS"),
)
# The machine's text columns (schema 5): '' is "not recorded or not readable".
_MACHINE_TEXT = (
    ("keras_version", "Keras"),
    ("cpu_affinity", "CPUs the run could use"),
    ("cpu_governor", "CPU governor"),
    ("virtual_machine", "virtual machine"),
    ("container", "container"),
)
# The machine's numbers (schema 5), with the name the table gives them and how each reads.
_GIB = 2**30
_MACHINE_NUMBERS = (
    ("logical_cores", "logical cores", lambda v: f"{v:.0f}"),
    ("physical_cores", "physical cores", lambda v: f"{v:.0f}"),
    ("memory_bytes", "memory", lambda v: f"{v / _GIB:.1f} GiB"),
    ("cpu_frequency_mhz", "CPU frequency at the start", lambda v: f"{v:.0f} MHz"),
    ("load_average_start", "load average at the start (1 min)", lambda v: f"{v:.2f}"),
    ("load_average_end", "load average at the end (1 min)", lambda v: f"{v:.2f}"),
)

_SPEEDUP_TEXT = (
    f"Speed-up = eager's median time per step / the variant's, on the same backend, device, "
    f"n_examples and dtype: 2{TIMES} means a step takes half of eager's time. Loop variants "
    f"(k = steps per call) share one call's dispatch among k steps."
)
_MEMORY_TEXT = (
    "Peak RSS added: the most resident memory the cell (its data, build, first call, "
    "warm-up, timing and convergence run) added to the benchmark process at its peak, over "
    "what the process held when the cell started (linfit.memory: the kernel's high-water "
    "mark, reset before each cell). Memory earlier cells left behind is the baseline, not "
    "the cell's: a fresh process per cell (bench/peak_memory.py) isolates more."
)
_BREAK_EVEN_TEXT = (
    "Running N steps costs about overhead + N x step, where step is the median time per step "
    "and overhead = first call - k x step is what the first call costs beyond its k "
    "steady-state steps (tracing, compiling, first-use set-up). The compile cost is the "
    "variant's overhead minus eager's, the saving per step is eager's step minus the "
    "variant's, and the variant breaks even after compile cost / saving steps, rounded up "
    "to whole calls of k steps (at least one call). A variant whose step is not faster than "
    "eager's never breaks even."
)


def _distinct(frame: pd.DataFrame, column: str, empty: str = "(unset)") -> str:
    values = [str(v) for v in pd.unique(frame[column])]
    return ", ".join(v if v else empty for v in values)


def _numbers(frame: pd.DataFrame, column: str, text: Callable[[float], str]) -> str:
    """A numeric column's distinct values as text; ``unknown`` where not recorded."""
    if column not in frame.columns:
        return "unknown"
    values = [text(float(v)) if pd.notna(v) else "unknown" for v in pd.unique(frame[column])]
    return ", ".join(dict.fromkeys(values))


def _environment(frame: pd.DataFrame, sources: Sequence[str]) -> str:
    rows: list[tuple[str, str]] = [("results file", ", ".join(sources))]
    commits = frame[["git_commit", "git_dirty"]].drop_duplicates()
    rows.append(("linfit commit", ", ".join(
        f"{commit} (with local changes)" if dirty else str(commit)
        for commit, dirty in commits.itertuples(index=False))))
    rows += [(name, _distinct(frame, column)) for column, name in _ENVIRONMENT]
    rows += [(name, _distinct(frame, column, "unknown")) for column, name in _MACHINE_TEXT]
    rows += [(name, _numbers(frame, column, text)) for column, name, text in _MACHINE_NUMBERS]
    for backend, rows_of_backend in frame.groupby("backend", sort=True):
        builds = [b for b in pd.unique(rows_of_backend["backend_build"]) if b]
        rows.append((f"backend {backend}", _distinct(rows_of_backend, "backend_version")
                     + (f" (built with {', '.join(builds)})" if builds else "")))
    devices = frame[["device", "device_name", "device_details"]].drop_duplicates()
    for device, name, details in devices.sort_values("device").itertuples(index=False):
        rows.append((f"device {device}", f"{name}" + (f" ({details})" if details else "")))
    return markdown_table(["", "value"], rows)


def _bytes(value: float) -> str:
    """``12.6 MB`` (decimal, as the figure's axis); ``-`` where not measured."""
    return f"{value / 1e6:.3g} MB" if pd.notna(value) else "-"


def _number(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else "-"


def _efficiency(low: float, high: float) -> str:
    """``0.31``, or ``0.31 to 0.42`` where the worst floor round gives another figure."""
    text = _number(low, 3)
    upper = _number(high, 3)
    return text if upper == text or not math.isfinite(high) else f"{text} to {upper}"


def _floors_text(rounds: tuple[int, int, float] | None) -> str:
    """The line under the results table that says what the floors are the best of."""
    text = ("Floor: the larger of reading x and y once at the device's measured read "
            "bandwidth and one dispatch of the backend's cheapest compiled call shared by the "
            "k steps of a call; efficiency = floor / median step.")
    if rounds is None:
        return text + (" Each floor is one probe measurement, of unknown spread (results "
                       "before schema 4).")
    fewest, most, spread = rounds
    count = f"{fewest}" if fewest == most else f"{fewest} to {most}"
    return text + (f" Each floor is the best of {count} probe rounds; across the rounds a "
                   f"cell's floor varied by up to {spread:.2f}x (worst / best round). Where "
                   "the efficiency is a range, its upper end is the efficiency against the "
                   "worst round's floor.")


def _results(frame: pd.DataFrame, speedups: pd.DataFrame,
             efficiencies: pd.DataFrame | None = None,
             rounds: tuple[int, int, float] | None = None) -> str:
    keys = list(KEY_COLUMNS)
    speed = {tuple(row[:-1]): row[-1] for row in
             speedups[[*keys, "speedup"]].itertuples(index=False, name=None)}
    floors = frame["floor_seconds"].notna().any()
    memory = "peak_rss_bytes" in frame.columns and frame["peak_rss_bytes"].notna().any()
    headers = ["backend", "device", "variant", "n", "dtype", "k", "median / step", "IQR",
               "min", "first call", "traces", "speed-up", *(["floor", "efficiency"] if floors
                                                            else []),
               *(["peak RSS added"] if memory else []), "W", "b", "status"]
    rows = []
    # Rows and their efficiency ranges by position: an index need not be unique.
    frame = frame.reset_index(drop=True)
    if efficiencies is not None:
        efficiencies = efficiencies.reset_index(drop=True)
    for index, row in frame.sort_values(keys, kind="stable").iterrows():
        key = tuple(row[keys])
        if efficiencies is not None:
            efficiency = _efficiency(efficiencies.at[index, "efficiency_low"],
                                     efficiencies.at[index, "efficiency_high"])
        else:
            efficiency = _number(row["efficiency"], 3)
        ratio = speed.get(key, math.nan)
        status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row['message']}"
        rows.append([
            row["backend"], row["device"], row["variant"], f"{row['n_examples']:,}",
            row["dtype"], row["steps_per_call"], format_seconds(row["median_seconds"]),
            format_seconds(row["iqr_seconds"]), format_seconds(row["min_seconds"]),
            format_seconds(row["first_call_seconds"]),
            _number(row["traces"]), f"{ratio:.3g}{TIMES}" if math.isfinite(ratio) else "-",
            *([format_seconds(row["floor_seconds"]), efficiency] if floors else []),
            *([_bytes(row["peak_rss_bytes"])] if memory else []),
            _number(row["final_w"], 7), _number(row["final_b"], 7), status,
        ])
    steps = sorted({int(s) for s in summary.ok_rows(frame)["convergence_steps"]})
    text = ("Times are per training step (a loop call's time / k), medians of the rounds; IQR "
            "is the interquartile range of the rounds; first call is the whole first call "
            "(trace + compile + its k steps). W and b are the weights after "
            f"{' or '.join(map(str, steps))} steps from W=5, b=0.\n\n")
    table = markdown_table(headers, rows)
    return (text + table + (f"\n\n{_floors_text(rounds)}" if floors else "")
            + (f"\n\n{_MEMORY_TEXT}" if memory else ""))


def _speedup_section(speedups: pd.DataFrame) -> str:
    if speedups.empty:
        return ("No speed-ups: the results hold no eager cell to compare the other variants "
                "with.")
    labels = [f"{b} {v}" + (f" (k={k})" if lp else "") for b, v, k, lp in
              speedups[["backend", "variant", "steps_per_call", "loop"]].itertuples(index=False)]
    table = speedups.assign(label=labels)
    columns = list(dict.fromkeys(labels))
    pivot = table.pivot_table(index=["device", "dtype", "n_examples"], columns="label",
                              values="speedup", aggfunc="first")
    rows = [[device, dtype, f"{n:,}", *(
        f"{pivot.at[(device, dtype, n), c]:.3g}{TIMES}"
        if math.isfinite(pivot.at[(device, dtype, n), c]) else "-" for c in columns)]
        for device, dtype, n in pivot.index]
    best = table.loc[table.groupby(["backend", "device", "dtype", "n_examples"])["speedup"]
                     .idxmax()]
    lines = [f"- {row.backend} on {row.device}, n={row.n_examples:,} ({row.dtype}): fastest is "
             f"{row.label.removeprefix(row.backend + ' ')}, {row.speedup:.3g}{TIMES} eager"
             + ("" if row.speedup >= 1 else " (slower than eager)")
             for row in best.itertuples(index=False)]
    return "\n\n".join([_SPEEDUP_TEXT, markdown_table(["device", "dtype", "n", *columns], rows),
                        "\n".join(lines)])


_HLO_TEXT = (
    "What XLA compiled, by its optimized HLO (linfit.hlo, docs/hlo.md): kernel launches "
    "(fusions and unfused ops) per training step, the while loops with their trip counts, "
    "and the bytes the kernels read and write per step (each kernel reads its operands and "
    "writes its output; a loop body counts once per step), also over the read floor (x and "
    "y read once: 8n bytes in float32). The HLO is deterministic for a version and its "
    "flags: these are not timings."
)


def _hlo_section(frame: pd.DataFrame) -> str:
    accounted = frame[frame["hlo_bytes_per_step"].notna()]
    if accounted.empty:
        return ("No HLO account: no cell of these results is compiled by XLA, or the results "
                "predate it (schema 5).")
    rows = [[row.backend, row.device, row.variant, f"{row.n_examples:,}", row.dtype,
             row.steps_per_call, _number(row.hlo_kernels_per_step, 4), row.hlo_loops,
             _number(row.hlo_bytes_per_step, 4), f"{_number(row.hlo_bytes_ratio, 3)}{TIMES}",
             format_seconds(row.median_seconds)]
            for row in accounted.sort_values(list(KEY_COLUMNS), kind="stable")
            .itertuples(index=False)]
    headers = ["backend", "device", "variant", "n", "dtype", "k", "kernels / step", "loops",
               "bytes / step", "over the read floor", "median / step"]
    return _HLO_TEXT + "\n\n" + markdown_table(headers, rows)


def _break_even_cell(steps: float) -> str:
    return "never (not faster than eager)" if math.isinf(steps) else f"{steps:,.0f}"


def _break_even_section(break_even: pd.DataFrame) -> str:
    if break_even.empty:
        return ("No break-even steps: the results hold no eager cell to compare the other "
                "variants with.")
    rows = [[row.backend, row.device, row.variant, f"{row.n_examples:,}", row.dtype,
             row.steps_per_call, format_seconds(row.first_call_seconds),
             format_seconds(row.eager_first_call_seconds), format_seconds(row.compile_seconds),
             format_seconds(row.saving_per_step_seconds), _break_even_cell(row.break_even_steps)]
            for row in break_even.itertuples(index=False)]
    headers = ["backend", "device", "variant", "n", "dtype", "k", "first call",
               "eager first call", "compile cost", "saving / step", "break-even steps"]
    return _BREAK_EVEN_TEXT + "\n\n" + markdown_table(headers, rows)


def _figures_section(figures: Sequence[DrawnFigure], report_folder: Path,
                     convergence: ConvergenceRuns | None) -> str:
    parts = []
    for figure in figures:
        link = Path(os.path.relpath(figure.paths[0], report_folder)).as_posix()
        parts.append(f"### {figure.title}\n\n![{figure.title}]({link})")
        if figure.name == "convergence" and convergence is not None:
            parts.append(f"Re-run here at n={convergence.n_examples:,}, {convergence.dtype}, "
                         f"seed {convergence.seed}, lr={convergence.learning_rate:g}, for "
                         f"{convergence.steps} steps from W=5, b=0; loop variants ran one "
                         "step per call so that every step is recorded.")
            if convergence.skipped:
                parts.append("Not run here:\n\n" + "\n".join(f"- {cell}"
                                                             for cell in convergence.skipped))
    if convergence is None:
        parts.append("The convergence figure was not drawn (--no-convergence).")
    return "\n\n".join(parts)


def render_report(frame: pd.DataFrame, speedups: pd.DataFrame, break_even: pd.DataFrame,
                  figures: Sequence[DrawnFigure], report_folder: Path, sources: Sequence[str],
                  convergence: ConvergenceRuns | None = None, *,
                  efficiencies: pd.DataFrame | None = None,
                  floor_rounds: tuple[int, int, float] | None = None) -> str:
    """The report's markdown text.

    Args:
        frame: the results frame the report is about.
        speedups: :func:`linfit.summary.speedups` of ``frame``.
        break_even: :func:`linfit.summary.break_even` of ``frame``.
        figures: the drawn figures; each is embedded by its first path, relative to
            ``report_folder``.
        report_folder: the folder the report will be written to.
        sources: the results files, as the report should name them.
        convergence: the fits behind the convergence figure (for its notes), or None when
            it was not drawn.
        efficiencies: :func:`linfit.summary.efficiency_ranges` of ``frame``, to show each
            efficiency as a range; None: the efficiency alone.
        floor_rounds: :func:`linfit.summary.floor_rounds` of ``frame``.
    """
    sections = {
        "Environment": _environment(frame, sources),
        "Results": _results(frame, speedups, efficiencies, floor_rounds),
        "Speed-up over eager": _speedup_section(speedups),
        "Break-even steps": _break_even_section(break_even),
        "HLO account": _hlo_section(frame),
        "Figures": _figures_section(figures, report_folder, convergence),
    }
    runs = ", ".join(pd.unique(frame["run_id"]))
    parts = [f"# linfit report: {runs}"]
    parts += [f"## {name}\n\n{sections[name]}" for name in SECTIONS]
    return "\n\n".join(parts) + "\n"


def figures_folder(path: str | os.PathLike[str]) -> Path:
    """The folder of a report's figures: ``report.md`` -> ``report-figures/`` beside it."""
    target = Path(path)
    return target.parent / f"{target.stem}{FIGURES_SUFFIX}"


def check_report_path(path: str | os.PathLike[str], *, force: bool = False,
                      inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Check, before anything is drawn or trained, that the report can be written to ``path``.

    Args:
        path: the report's file.
        force: whether an existing report may be replaced.
        inputs: files the report is made from; the report may never replace one of them.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        LinfitError: when ``path`` is a directory (with or without ``force``), exists and
            ``force`` is not set, is one of ``inputs``, or when its folder or its figures'
            folder cannot be written; the message names the path and what would do.
    """
    target = Path(path)
    if target.is_dir():
        raise LinfitError(f"{target} is a directory; give the report's file name, such as "
                          f"{target / 'report.md'}")
    if any(target.exists() and target.samefile(source) for source in inputs
           if Path(source).exists()):
        raise LinfitError(f"{target} is one of the results files the report is made from; "
                          "give the report another name")
    if target.exists() and not force:
        raise LinfitError(f"{target} exists already; use --force to replace it")
    problem = output_dir_problem(target.parent)
    if problem:
        raise LinfitError(f"cannot write the report {target}: {problem}")
    problem = output_dir_problem(figures_folder(target))
    if problem:
        raise LinfitError(f"cannot write the report's figures into {figures_folder(target)}: "
                          f"{problem}")
    return target


def _write_atomically(text: str, target: Path, force: bool) -> None:
    try:
        # Without force, link() fails if the report appeared meanwhile: never overwritten.
        atomic_write_text(target, text, overwrite=force)
    except FileExistsError:
        raise LinfitError(f"{target} exists already; use --force to replace it") from None


def write_report(frame: pd.DataFrame, path: str | os.PathLike[str], sources: Sequence[str],
                 *, force: bool = False, convergence: ConvergenceRuns | None = None) -> Path:
    """Draw the figures and write the markdown report of ``frame`` to ``path``.

    The figures go in a folder beside the report, named after it (``report.md`` ->
    ``report-figures/``), and are embedded by relative path. The report is written to a
    temporary file and moved into place.

    Args:
        frame: the results frame.
        path: the report's path.
        sources: the results files, as the report should name them.
        force: replace an existing report (and its figures).
        convergence: the fits behind the convergence figure, from
            :func:`linfit.retrain.convergence_runs` (the report never trains), or None to
            leave the figure out.

    Raises:
        LinfitError: when the report exists and ``force`` is not set, or when no cell ran.
    """
    target = check_report_path(path, force=force)
    runs = convergence
    figures = draw_run_figures(frame, figures_folder(target),
                               target.stem, ("png",), runs)
    text = render_report(frame, summary.speedups(frame), summary.break_even(frame), figures,
                         target.parent, sources, runs,
                         efficiencies=summary.efficiency_ranges(frame),
                         floor_rounds=summary.floor_rounds(frame))
    _write_atomically(text, target, force)
    return target
