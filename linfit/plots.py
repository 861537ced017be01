"""Figures, drawn with matplotlib's Agg backend (no display needed).

Plot functions take finished data (frames from :mod:`linfit.summary` or
:mod:`linfit.compare`, fits from :mod:`linfit.fit`) and a path, draw, save and return the
path. They compute nothing beyond what the figure shows and never train: the convergence
figure takes the fits of :func:`linfit.retrain.convergence_runs`, made by the caller.
:func:`write_run_plots` is the one call that computes a run's summaries and draws all of
its figures. Every file is written atomically, and a path is checked
(:func:`check_figure_path`, :func:`check_figure_dir`) before anything is drawn.

Every figure gives each (backend, variant) the same colour (:func:`variant_color`), marks
loop variants the same way (dashed line and square marker, hatched bars, "(k=...)" in the
label) and puts its legend outside the axes, so that it hides no data.
"""

from __future__ import annotations

import io
import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import (
    EngFormatter,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from linfit import summary
from linfit._errors import LinfitError
from linfit._paths import atomic_write_bytes, output_dir_problem
from linfit.backends import VARIANTS_BY_BACKEND
from linfit.data import TRUE_B, TRUE_W
from linfit.fit import FitResult
from linfit.results import Cell
from linfit.retrain import ConvergenceRuns

__all__ = [
    "FIGURE_DPI",
    "FIGURE_FORMATS",
    "FILE_FORMATS",
    "TIMES",
    "DrawnFigure",
    "check_figure_dir",
    "check_figure_path",
    "check_formats",
    "comparison_figure_size",
    "draw_run_figures",
    "grid_figure_size",
    "memory_rows",
    "plot_comparison",
    "plot_convergence",
    "plot_first_call",
    "plot_fit_history",
    "plot_peak_memory",
    "plot_speedups",
    "plot_step_times",
    "registry_colors",
    "save_figure",
    "variant_color",
    "variant_label",
    "write_run_plots",
]

FIGURE_DPI = 100
FIGURE_FORMATS = ("png", "svg")
# A single figure (fit --plot, compare --plot) takes its format from its file name's suffix.
FILE_FORMATS = ("png", "svg", "pdf")

# Sizes in inches; at FIGURE_DPI every one is a whole number of pixels.
PANEL_WIDTH_INCHES = 5.5
PANEL_HEIGHT_INCHES = 4.0
LEGEND_WIDTH_INCHES = 3.0  # room right of the panels for the figure legend
NOTES_HEIGHT_INCHES = 1.0  # strip under the convergence axes for what was not run
COMPARISON_WIDTH_INCHES = 11.0
COMPARISON_BASE_INCHES = 1.5  # title, x axis and legend of the comparison plot
COMPARISON_ROW_INCHES = 0.25  # one compared cell

# One colour per (backend, variant), the same in every figure, given to each backend's
# variants in the order of its registry (linfit.backends.variants): related variants get
# related hues where tab10 allows, and every backend's first variant, eager, the muted one.
BACKEND_PALETTES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("#7f7f7f", "#1f77b4", "#ff7f0e", "#17becf", "#d62728",
                   # the keras-* variants: pale and dark of eager's, function's, xla's colours
                   "#c7c7c7", "#525252", "#aec7e8", "#08519c", "#ffbb78", "#a63603"),
    "jax": ("#bcbd22", "#2ca02c", "#005a32"),
    "torch": ("#e377c2", "#9467bd", "#8c564b", "#393b79"),
}
# Variants beyond their backend's palette get one of these, chosen by a checksum of the
# label (stable across runs and machines, unlike hash()).
FALLBACK_COLORS = tuple(matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab20b"].colors)


def registry_colors(registries: Mapping[str, Iterable[str]]) -> dict[tuple[str, str], str]:
    """The colour of every registered (backend, variant): its backend's palette, in registry
    order; the variants beyond the palette, and a backend without one, get none here (they
    take :data:`FALLBACK_COLORS` in :func:`variant_color`).

    Args:
        registries: backend name -> its variant names (a registry maps names to variants).
    """
    return {(backend, variant): color
            for backend, variants in registries.items()
            for variant, color in zip(variants, BACKEND_PALETTES.get(backend, ()),
                                      strict=False)}


VARIANT_COLORS = registry_colors(VARIANTS_BY_BACKEND)

# Loop variants: dashed lines, square markers, hatched bars.
LOOP_STYLE = {"linestyle": "--", "marker": "s"}
STEP_STYLE = {"linestyle": "-", "marker": "o"}
LOOP_HATCH = "//"
FIRST_CALL_ALPHA = 0.4  # first-call bars are pale beside the full-colour step bars

FLOOR_LABEL = "floor (read bandwidth / dispatch)"
FLOOR_COLOR = "black"
FLOOR_STYLES = {False: "--", True: ":"}  # floor of one step per call, of a loop's call
TRUE_COLOR = "black"
OLS_COLOR = "#8c564b"

# Colours of the linfit.compare verdicts that come with a ratio; the others (failed,
# only-in-base, only-in-new) are written in words.
VERDICT_COLORS = {
    "slower": "#d62728",
    "faster": "#2ca02c",
    "unchanged": "#7f7f7f",
    "noise": "#bcbd22",
}
REGRESSION_VERDICT = "slower"
REGRESSION_SHADE = "#fbe3e3"
COMPARISON_X_MARGIN = 1.15  # room beyond the widest interval, as a factor
# Log axes that span fewer decades than this get ticks at 1, 2 and 5 of each decade.
FEW_DECADES = 2.5
MAX_MINOR_DECADES = 4  # log axes over more decades than this get no minor ticks
MAX_NOTE_LINES = 4  # lines in the convergence figure's notes strip
MIN_BAR_SLOTS = 4  # the first-call bars are never wider than a quarter of their panel
MIN_SPEEDUP_GROUPS = 3  # nor a group of speed-up bars wider than a third

TIMES = "\N{MULTIPLICATION SIGN}"  # the "x" of "2x faster"
# The peak-memory figure's y axis is logarithmic above this many bytes and linear below,
# so that a cell that added nothing (0 bytes) is drawn, at 0. 100 kB is a few dozen pages:
# below it a figure is mostly which allocator arena a cell happened to reuse.
MEMORY_LINEAR_BYTES = 100_000
# The peak memory columns (linfit.memory), the figure's rows: host first.
MEMORY_COLUMNS = (("peak_rss_bytes", "host: resident memory added"),
                  ("device_peak_bytes", "device: allocator memory added"))

_SECONDS = EngFormatter(unit="s")
_BYTES = EngFormatter(unit="B")
_COUNT = EngFormatter(sep="")
_TIMES = FuncFormatter(lambda value, _: f"{value:g}{TIMES}")


@dataclass(frozen=True)
class DrawnFigure:
    """One figure of a run, saved in one or more formats.

    Attributes:
        name: short name, also the end of the file names: ``step-time``, ``speedup``,
            ``first-call``, ``peak-memory``, ``scaling``, ``convergence``.
        title: one line that says what the figure shows (the report's caption).
        paths: the saved files, one per format, in the order asked.
    """

    name: str
    title: str
    paths: tuple[Path, ...]


def variant_color(backend: str, variant: str) -> str:
    """The colour of a (backend, variant) in every figure, as ``#rrggbb``."""
    known = VARIANT_COLORS.get((backend, variant))
    if known is not None:
        return known
    return FALLBACK_COLORS[zlib.crc32(f"{backend}/{variant}".encode()) % len(FALLBACK_COLORS)]


def variant_label(backend: str, variant: str, steps_per_call: int, loop: bool,
                  with_backend: bool) -> str:
    """A legend label: ``xla-loop (k=100)``; prefixed by the backend when several are shown."""
    label = f"{backend} {variant}" if with_backend else variant
    return f"{label} (k={steps_per_call})" if loop else label


def grid_figure_size(columns: int, rows: int) -> tuple[float, float]:
    """Size in inches of a figure of ``columns`` x ``rows`` panels and a legend on the right."""
    return (PANEL_WIDTH_INCHES * columns + LEGEND_WIDTH_INCHES, PANEL_HEIGHT_INCHES * rows)


def comparison_figure_size(cells: int) -> tuple[float, float]:
    """Size in inches of the comparison plot of ``cells`` rows."""
    return (COMPARISON_WIDTH_INCHES, COMPARISON_BASE_INCHES + COMPARISON_ROW_INCHES * cells)


def check_figure_path(path: str | os.PathLike[str],
                      formats: Sequence[str] = FILE_FORMATS) -> Path:
    """Check, before anything is drawn or trained, that a figure can be written to ``path``.

    The format is the file name's suffix. The path must not be a directory, and its folder
    must be one, or creatable, and writable (:func:`linfit._paths.output_dir_problem`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        LinfitError: naming the path, what is wrong and what would be valid.
    """
    target = Path(path)
    valid = ", ".join(f".{fmt}" for fmt in formats)
    if target.is_dir():
        raise LinfitError(f"{target} is a directory; give a file name ending in one of {valid}")
    if target.suffix.lower().removeprefix(".") not in formats:
        raise LinfitError(f"cannot tell the figure format of {target}: its name must end in "
                          f"one of {valid}")
    problem = output_dir_problem(target.parent)
    if problem:
        raise LinfitError(f"cannot write {target}: {problem}")
    return target


def check_figure_dir(directory: str | os.PathLike[str]) -> Path:
    """Check, before anything is drawn or trained, that figures can be written into
    ``directory`` (a directory, or creatable; writable).

    Raises:
        LinfitError: naming the folder and what is wrong.
    """
    problem = output_dir_problem(directory)
    if problem:
        raise LinfitError(f"cannot write figures into {directory}: {problem}")
    return Path(directory)


def save_figure(figure: plt.Figure, path: str | os.PathLike[str]) -> Path:
    """Save and close ``figure`` atomically, in the format of ``path``'s suffix (a figure of
    the same name is replaced, never left half-written); linfit's one way to write a figure."""
    target = Path(path)
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, dpi=FIGURE_DPI, format=target.suffix.lower().removeprefix("."))
    finally:
        plt.close(figure)
    return atomic_write_bytes(target, buffer.getvalue(), overwrite=True)


def _palette_rank(backend: str, variant: str) -> tuple[int, str, str]:
    """Sort key: known variants in palette order (each backend's eager first), then others."""
    palette = list(VARIANT_COLORS)
    known = (backend, variant)
    return (palette.index(known) if known in palette else len(palette), backend, variant)


def _series_order(table: pd.DataFrame) -> list[tuple[str, str, int, bool]]:
    """(backend, variant, steps_per_call, loop) of a table, in palette order."""
    series = table[["backend", "variant", "steps_per_call", "loop"]].drop_duplicates()
    keys = [(str(b), str(v), int(k), bool(lp)) for b, v, k, lp in series.itertuples(index=False)]
    return sorted(keys, key=lambda key: (*_palette_rank(key[0], key[1]), key[2]))


def _panels(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(device, dtype, panel title) per panel: one per device, and per dtype when several."""
    several_dtypes = table["dtype"].nunique() > 1
    panels = table[["device", "dtype", "device_name"]].drop_duplicates(["device", "dtype"])
    result = []
    for device, dtype, device_name in panels.sort_values(["device", "dtype"]).itertuples(
            index=False):
        title = f"{device}: {device_name}" + (f", {dtype}" if several_dtypes else "")
        result.append((str(device), str(dtype), title))
    return result


def _log_axis(axis: Axis, formatter: FuncFormatter | EngFormatter) -> None:
    """Log ticks that read well: labelled decades; 1-2-5 or every digit when the range is short."""
    low, high = sorted(axis.get_view_interval())
    decades = math.log10(high / low) if low > 0 else math.inf
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(NullFormatter())
    if decades < 1:
        # Within one decade a log axis is nearly linear: evenly spaced round numbers read
        # best, where decade-based ticks would leave one label or none.
        axis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
        axis.set_minor_locator(NullLocator())
        return
    subs = (1.0, 2.0, 5.0) if decades < FEW_DECADES else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    # Minor ticks help only over a few decades; over many they clutter (and are slow).
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)))
                           if decades <= MAX_MINOR_DECADES else NullLocator())


def _figure_legend(figure: plt.Figure, handles: Sequence[Line2D | Patch]) -> None:
    # Outside the axes, right of them: a legend never hides data.
    figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)


def _series_handle(backend: str, variant: str, steps_per_call: int, loop: bool,
                   with_backend: bool) -> Line2D:
    style = LOOP_STYLE if loop else STEP_STYLE
    return Line2D([], [], color=variant_color(backend, variant), markersize=5, **style,
                  label=variant_label(backend, variant, steps_per_call, loop, with_backend))


def plot_step_times(step_times: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Figure 1: time per step against n_examples, log-log, one panel per device.

    One line per variant with its IQR as a band; loop variants dashed with square markers.
    Where ``floor_seconds`` holds numbers for a panel, the floor is a black line: dashed for
    one step per call, dotted for loop calls (their dispatch cost is shared by k steps).

    Args:
        step_times: the frame :func:`linfit.summary.step_times` returns.
        path: where to save; the suffix picks the format.
    """
    panels = _panels(step_times)
    with_backend = step_times["backend"].nunique() > 1
    series = _series_order(step_times)
    figure, axes = plt.subplots(1, len(panels), figsize=grid_figure_size(len(panels), 1),
                                layout="constrained", sharey=True, squeeze=False)
    floors_drawn: set[int] = set()
    for ax, (device, dtype, title) in zip(axes[0], panels, strict=True):
        panel = step_times[(step_times["device"] == device) & (step_times["dtype"] == dtype)]
        for backend, variant, steps_per_call, loop in series:
            line = panel[(panel["backend"] == backend) & (panel["variant"] == variant)
                         & (panel["steps_per_call"] == steps_per_call)].sort_values("n_examples")
            if line.empty:
                continue
            color = variant_color(backend, variant)
            ax.plot(line["n_examples"], line["median_seconds"], color=color, markersize=5,
                    **(LOOP_STYLE if loop else STEP_STYLE))
            if len(line) > 1:
                ax.fill_between(line["n_examples"], line["q1_seconds"], line["q3_seconds"],
                                color=color, alpha=0.2, linewidth=0)
            else:
                # A single size has no band to fill: show the IQR as an error bar.
                ax.errorbar(line["n_examples"], line["median_seconds"],
                            yerr=[line["median_seconds"] - line["q1_seconds"],
                                  line["q3_seconds"] - line["median_seconds"]],
                            color=color, capsize=3, linestyle="none")
        measured = panel.dropna(subset=["floor_seconds"])
        # The dispatch part of a floor is per call, so each steps_per_call has its own floor.
        for steps_per_call, rows in measured.groupby("steps_per_call"):
            floor = rows.groupby("n_examples")["floor_seconds"].min().sort_index()
            ax.plot(floor.index, floor.to_numpy(), color=FLOOR_COLOR, linewidth=1,
                    linestyle=FLOOR_STYLES[steps_per_call > 1])
            floors_drawn.add(int(steps_per_call))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("n_examples (examples per step)")
        ax.grid(which="major", alpha=0.3)
    axes[0][0].set_ylabel("time per step (s), median")
    for ax in axes[0]:
        _log_axis(ax.xaxis, _COUNT)
        _log_axis(ax.yaxis, _SECONDS)
    handles: list[Line2D | Patch] = [_series_handle(*key, with_backend) for key in series]
    handles.append(Patch(color="#7f7f7f", alpha=0.2, label="band: IQR of rounds"))
    for steps_per_call in sorted(floors_drawn):
        suffix = f", k={steps_per_call}" if len(floors_drawn) > 1 else ""
        handles.append(Line2D([], [], color=FLOOR_COLOR, linewidth=1, label=FLOOR_LABEL + suffix,
                              linestyle=FLOOR_STYLES[steps_per_call > 1]))
    _figure_legend(figure, handles)
    figure.suptitle("Time per training step against data size")
    return save_figure(figure, path)


def _group_label(device: str, dtype: str, n_examples: int, with_dtype: bool) -> str:
    return f"{device}\nn={_COUNT(n_examples)}" + (f"\n{dtype}" if with_dtype else "")


def plot_speedups(speedups: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Figure 2: speed-up of each variant over its backend's eager, grouped by device and n.

    Args:
        speedups: the frame :func:`linfit.summary.speedups` returns, not empty.
        path: where to save; the suffix picks the format.
    """
    with_backend = speedups["backend"].nunique() > 1
    with_dtype = speedups["dtype"].nunique() > 1
    series = _series_order(speedups)
    groups = (speedups[["device", "dtype", "n_examples"]].drop_duplicates()
              .sort_values(["device", "dtype", "n_examples"]))
    figure, ax = plt.subplots(figsize=grid_figure_size(2, 1), layout="constrained")
    width = 0.8 / len(series)
    for index, (backend, variant, steps_per_call, loop) in enumerate(series):
        mine = speedups[(speedups["backend"] == backend) & (speedups["variant"] == variant)
                        & (speedups["steps_per_call"] == steps_per_call)]
        positions, values = [], []
        for group_index, (device, dtype, n_examples) in enumerate(groups.itertuples(index=False)):
            match = mine[(mine["device"] == device) & (mine["dtype"] == dtype)
                         & (mine["n_examples"] == n_examples)]
            if not match.empty:
                positions.append(group_index - 0.4 + width * (index + 0.5))
                values.append(float(match["speedup"].iloc[0]))
        bars = ax.bar(positions, values, width=width, color=variant_color(backend, variant),
                      hatch=LOOP_HATCH if loop else None, edgecolor="white", linewidth=0.5)
        ax.bar_label(bars, [f"{v:.3g}{TIMES}" for v in values], rotation=90, padding=2,
                     fontsize="x-small")
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xticks(range(len(groups)),
                  [_group_label(d, t, n, with_dtype) for d, t, n in groups.itertuples(index=False)])
    padding = max(0, MIN_SPEEDUP_GROUPS - len(groups)) / 2
    ax.set_xlim(-0.5 - padding, len(groups) - 0.5 + padding)
    ax.set_yscale("log")
    # Room above the tallest bar for its label: a third of the axis' log range again.
    low = min(1.0, float(speedups["speedup"].min()))
    high = max(1.0, float(speedups["speedup"].max()))
    ax.set_ylim(low / 1.5, high * 1.5 * (high / low * 2.25) ** (1 / 3))
    _log_axis(ax.yaxis, _TIMES)
    ax.set_ylabel("speed-up over eager (eager step time / step time)")
    ax.set_xlabel("device and n_examples")
    ax.grid(axis="y", which="major", alpha=0.3)
    handles: list[Line2D | Patch] = [
        Patch(facecolor=variant_color(b, v), hatch=LOOP_HATCH if lp else None,
              edgecolor="white", label=variant_label(b, v, k, lp, with_backend))
        for b, v, k, lp in series
    ]
    handles.append(Line2D([], [], color="black", linewidth=1, label=f"eager (1{TIMES})"))
    _figure_legend(figure, handles)
    ax.set_title("Speed-up of each variant over its backend's eager step (higher is faster)")
    return save_figure(figure, path)


def _break_even_text(steps: float) -> str:
    return "never breaks even" if math.isinf(steps) else f"breaks even: {steps:,.0f} steps"


def plot_first_call(step_times: pd.DataFrame, break_even: pd.DataFrame,
                    path: str | os.PathLike[str], n_examples: int | None = None) -> Path:
    """Figure 3: first-call time beside the steady-state step time, and the break-even.

    Per device, at one n_examples: on the left, bars of each variant's first call (trace +
    compile + its steps) and of one steady-state step, with the break-even steps printed
    above; on the right, the total time of N steps, ``overhead + N * step``, whose crossing
    with eager's line is the break-even point (marked).

    Args:
        step_times: the frame :func:`linfit.summary.step_times` returns.
        break_even: the frame :func:`linfit.summary.break_even` returns (may be empty).
        path: where to save; the suffix picks the format.
        n_examples: the data size shown; default the smallest in ``step_times``.
    """
    n_shown = int(step_times["n_examples"].min()) if n_examples is None else n_examples
    shown = step_times[step_times["n_examples"] == n_shown]
    if shown.empty:
        raise LinfitError(f"no cell with n_examples={n_shown} to draw; sizes: "
                          f"{', '.join(map(str, sorted(step_times['n_examples'].unique())))}")
    even = break_even[break_even["n_examples"] == n_shown]
    panels = _panels(shown)
    with_backend = shown["backend"].nunique() > 1
    series = _series_order(shown)
    figure, axes = plt.subplots(len(panels), 2, figsize=grid_figure_size(2, len(panels)),
                                layout="constrained", squeeze=False)
    for (bars, totals), (device, dtype, title) in zip(axes, panels, strict=True):
        panel = shown[(shown["device"] == device) & (shown["dtype"] == dtype)]
        panel_even = even[(even["device"] == device) & (even["dtype"] == dtype)]
        present = [key for key in series
                   if not panel[(panel["backend"] == key[0]) & (panel["variant"] == key[1])
                                & (panel["steps_per_call"] == key[2])].empty]
        _first_call_bars(bars, panel, panel_even, present, with_backend)
        _total_time_lines(totals, panel, panel_even, present)
        bars.set_title(f"{title}, n={_COUNT(n_shown)}: first call and one step",
                       fontsize="medium")
        totals.set_title(f"{title}, n={_COUNT(n_shown)}: total time of N steps",
                         fontsize="medium")
    handles: list[Line2D | Patch] = [_series_handle(*key, with_backend) for key in series]
    handles += [
        Patch(facecolor="#7f7f7f", alpha=FIRST_CALL_ALPHA, edgecolor="#7f7f7f",
              label="pale bar: first call\n(trace + compile + its steps)"),
        Patch(facecolor="#7f7f7f", label="full bar: one steady-state step"),
    ]
    if np.isfinite(even["break_even_steps"]).any():
        handles.append(Line2D([], [], color="black", marker="o", linestyle="none",
                              markerfacecolor="white", label="break-even with eager"))
    _figure_legend(figure, handles)
    figure.suptitle("What compiling costs up front, and after how many steps it pays off")
    return save_figure(figure, path)


def _first_call_bars(ax: Axes, panel: pd.DataFrame, even: pd.DataFrame,
                     series: Sequence[tuple[str, str, int, bool]], with_backend: bool) -> None:
    for index, (backend, variant, steps_per_call, loop) in enumerate(series):
        row = panel[(panel["backend"] == backend) & (panel["variant"] == variant)
                    & (panel["steps_per_call"] == steps_per_call)].iloc[0]
        color = variant_color(backend, variant)
        ax.bar(index - 0.2, row["first_call_seconds"], width=0.4, color=color,
               alpha=FIRST_CALL_ALPHA, edgecolor=color)
        ax.bar(index + 0.2, row["median_seconds"], width=0.4, color=color,
               hatch=LOOP_HATCH if loop else None, edgecolor="white")
        match = even[(even["backend"] == backend) & (even["variant"] == variant)
                     & (even["steps_per_call"] == steps_per_call)]
        if not match.empty:
            # Written down the first-call bar, which is always the tall one.
            ax.annotate(_break_even_text(match["break_even_steps"].iloc[0]),
                        (index - 0.2, row["first_call_seconds"]), xytext=(0, -4),
                        textcoords="offset points", ha="center", va="top", rotation=90,
                        fontsize="x-small")
    # At least MIN_BAR_SLOTS slots wide, so that one variant does not fill the panel.
    padding = max(0, MIN_BAR_SLOTS - len(series)) / 2
    ax.set_xlim(-0.6 - padding, len(series) - 0.4 + padding)
    ax.set_xticks(range(len(series)),
                  [variant_label(*key, with_backend) for key in series],
                  rotation=30, ha="right", fontsize="small")
    ax.set_yscale("log")
    _log_axis(ax.yaxis, _SECONDS)
    ax.set_ylabel("time (s)")
    ax.grid(axis="y", which="major", alpha=0.3)


def _total_time_lines(ax: Axes, panel: pd.DataFrame, even: pd.DataFrame,
                      series: Sequence[tuple[str, str, int, bool]]) -> None:
    finite = even["break_even_steps"][np.isfinite(even["break_even_steps"])]
    # Show a decade past the last break-even, so every crossing lies inside the axes.
    last_step = 10 ** math.ceil(math.log10(max([1e4, *(10 * finite)])))
    for backend, variant, steps_per_call, loop in series:
        row = panel[(panel["backend"] == backend) & (panel["variant"] == variant)
                    & (panel["steps_per_call"] == steps_per_call)].iloc[0]
        overhead = row["first_call_seconds"] - steps_per_call * row["median_seconds"]
        steps = np.geomspace(steps_per_call, last_step, 200)
        style = LOOP_STYLE if loop else STEP_STYLE
        ax.plot(steps, overhead + steps * row["median_seconds"],
                color=variant_color(backend, variant), linestyle=style["linestyle"])
        match = even[(even["backend"] == backend) & (even["variant"] == variant)
                     & (even["steps_per_call"] == steps_per_call)]
        if not match.empty and math.isfinite(match["break_even_steps"].iloc[0]):
            at = float(match["break_even_steps"].iloc[0])
            ax.plot([at], [overhead + at * row["median_seconds"]], marker="o",
                    color=variant_color(backend, variant), markerfacecolor="white",
                    markeredgewidth=1.5, linestyle="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, _COUNT)
    _log_axis(ax.yaxis, _SECONDS)
    ax.set_xlabel("training steps N")
    ax.set_ylabel("total time of N steps (s)")
    ax.grid(which="major", alpha=0.3)


def _note_lines(runs: ConvergenceRuns) -> list[str]:
    """The convergence figure's notes: how it was run, and what could not be, by reason."""
    lines = [f"Trained on this machine: n={_COUNT(runs.n_examples)}, {runs.dtype}, "
             f"seed {runs.seed}, lr={runs.learning_rate:g}, {runs.steps} steps; loop variants "
             f"ran one step per call (k=1) so that every step is recorded."]
    reasons: dict[str, int] = {}
    for cell in runs.skipped:
        reasons[cell.reason] = reasons.get(cell.reason, 0) + 1
    notes = [f"Not run: {reason} ({count} variant{'s' if count > 1 else ''})"
             for reason, count in reasons.items()]
    if len(notes) > MAX_NOTE_LINES - 1:
        hidden = len(notes) - (MAX_NOTE_LINES - 2)
        notes = [*notes[:MAX_NOTE_LINES - 2], f"... and {hidden} more reasons (see the report)"]
    return lines + notes


def _convergence_label(result: FitResult, loop: bool, with_backend: bool,
                       with_device: bool) -> str:
    label = f"{result.backend} {result.variant}" if with_backend else result.variant
    return label + (" (k=1 here)" if loop else "") + (f" on {result.device}"
                                                      if with_device else "")


def plot_convergence(runs: ConvergenceRuns, path: str | os.PathLike[str]) -> Path:
    """Figure 4, the tutorial's figure: W and b per step of every variant, on one axis.

    The true W and b are dashed black, the least-squares W and b of the same data dashed
    brown. Each variant is drawn thinner than the one before, so variants that agree show as
    one curve with every colour in it. A strip below lists how the fits were run and which
    variants could not be run here.

    Args:
        runs: what :func:`linfit.retrain.convergence_runs` returns.
        path: where to save; the suffix picks the format.
    """
    width, height = grid_figure_size(1, 1)
    figure, (ax, notes) = plt.subplots(
        2, 1, figsize=(width + PANEL_WIDTH_INCHES / 2, height + NOTES_HEIGHT_INCHES),
        height_ratios=[PANEL_HEIGHT_INCHES, NOTES_HEIGHT_INCHES], layout="constrained")
    with_backend = len({r.backend for r in runs.results}) > 1
    with_device = len({r.device for r in runs.results}) > 1
    handles: list[Line2D | Patch] = []
    ordered = sorted(runs.results, key=lambda r: (*_palette_rank(r.backend, r.variant),
                                                  r.device))
    widths = np.linspace(5.0, 1.0, max(len(ordered), 2))
    for result, linewidth in zip(ordered, widths, strict=False):
        steps = [r.step for r in result.history] + [runs.steps]
        color = variant_color(result.backend, result.variant)
        loop = (result.backend, result.variant) in runs.loop_variants
        style = LOOP_STYLE if loop else STEP_STYLE
        for values in ([r.w for r in result.history] + [result.final_w],
                       [r.b for r in result.history] + [result.final_b]):
            ax.plot(steps, values, color=color, linewidth=linewidth,
                    linestyle=style["linestyle"], solid_capstyle="butt")
        handles.append(Line2D([], [], color=color, linewidth=linewidth,
                              linestyle=style["linestyle"],
                              label=_convergence_label(result, loop, with_backend, with_device)))
    ax.axhline(TRUE_W, color=TRUE_COLOR, linestyle="--", linewidth=1)
    ax.axhline(TRUE_B, color=TRUE_COLOR, linestyle="--", linewidth=1)
    handles.append(Line2D([], [], color=TRUE_COLOR, linestyle="--", linewidth=1,
                          label=f"true W = {TRUE_W:g}, b = {TRUE_B:g}"))
    if runs.results:
        w_ols, b_ols = runs.results[0].w_ols, runs.results[0].b_ols
        ax.axhline(w_ols, color=OLS_COLOR, linestyle=(0, (2, 2)), linewidth=1)
        ax.axhline(b_ols, color=OLS_COLOR, linestyle=(0, (2, 2)), linewidth=1)
        handles.append(Line2D([], [], color=OLS_COLOR, linestyle=(0, (2, 2)), linewidth=1,
                              label=f"least squares W = {w_ols:.3f}, b = {b_ols:.3f}"))
        ax.annotate("W", (runs.steps, w_ols), xytext=(4, 4), textcoords="offset points")
        ax.annotate("b", (runs.steps, b_ols), xytext=(4, -12), textcoords="offset points")
    else:
        ax.text(0.5, 0.5, "no variant could be run here", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xlim(0, runs.steps * 1.05)
    ax.set_xlabel("training step")
    ax.set_ylabel("weight value (W, b)")
    ax.grid(alpha=0.3)
    ax.set_title(f"W and b per step, every variant (n={_COUNT(runs.n_examples)}, "
                 f"{runs.dtype}, lr={runs.learning_rate:g}): variants that agree draw one curve")
    notes.axis("off")
    notes.text(0, 1, "\n".join(_note_lines(runs)), va="top", ha="left", fontsize="small",
               transform=notes.transAxes, wrap=True)
    _figure_legend(figure, handles)
    return save_figure(figure, path)


def memory_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ok, one-replica rows of a results frame with a peak memory figure: what
    :func:`plot_peak_memory` draws (empty for files before schema 5, or none measured)."""
    columns = [name for name, _ in MEMORY_COLUMNS if name in frame.columns]
    if not columns:
        return frame.iloc[0:0]
    rows = frame[(frame["status"] == "ok") & (frame["replicas"] == 1)]
    return rows[rows[columns].notna().any(axis=1)]


def plot_peak_memory(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """The peak memory each cell added against n_examples: one panel per device (and dtype),
    a row for the host's resident memory and, where any was measured, one for the device's.

    One line per variant, coloured and styled as in the step-time figure. The y axis is
    logarithmic above :data:`MEMORY_LINEAR_BYTES` and linear below, so that a cell that
    added nothing is at 0.
    What a figure isolates is :mod:`linfit.memory`'s to say.

    Args:
        frame: a results frame with at least one row of :func:`memory_rows`.
        path: where to save; the suffix picks the format.
    """
    table = memory_rows(frame)
    panels = _panels(table)
    measures = [(name, what) for name, what in MEMORY_COLUMNS
                if name in table.columns and table[name].notna().any()]
    with_backend = table["backend"].nunique() > 1
    series = _series_order(table)
    figure, axes = plt.subplots(len(measures), len(panels),
                                figsize=grid_figure_size(len(panels), len(measures)),
                                layout="constrained", sharex=True, squeeze=False)
    for row_axes, (column, what) in zip(axes, measures, strict=True):
        for ax, (device, dtype, title) in zip(row_axes, panels, strict=True):
            panel = table[(table["device"] == device) & (table["dtype"] == dtype)
                          & table[column].notna()]
            if panel.empty:
                ax.text(0.5, 0.5, "not measured here (a CPU has no device figure)",
                        transform=ax.transAxes, ha="center", va="center", color="gray")
            for backend, variant, steps_per_call, loop in series:
                line = panel[(panel["backend"] == backend) & (panel["variant"] == variant)
                             & (panel["steps_per_call"] == steps_per_call)]
                line = line.sort_values("n_examples")
                if not line.empty:
                    ax.plot(line["n_examples"], line[column].astype(float),
                            color=variant_color(backend, variant), markersize=5,
                            **(LOOP_STYLE if loop else STEP_STYLE))
            ax.set_xscale("log")
            ax.set_yscale("symlog", linthresh=MEMORY_LINEAR_BYTES)
            ax.yaxis.set_major_formatter(_BYTES)
            if panel.empty:
                ax.set_yticks([])
            else:
                ax.set_ylim(bottom=0)  # memory added is never negative
            ax.set_title(f"{title}\n{what}", fontsize="medium")
            ax.grid(which="major", alpha=0.3)
        row_axes[0].set_ylabel("peak memory added (decimal prefixes)")
    for ax in axes[-1]:
        ax.set_xlabel("n_examples (examples per step)")
        _log_axis(ax.xaxis, _COUNT)
    _figure_legend(figure, [_series_handle(*key, with_backend) for key in series])
    figure.suptitle("Peak memory each cell added, over what the process held before it")
    return save_figure(figure, path)


def _cell_label(row: pd.Series) -> str:
    return str(Cell.from_row(row))


def plot_comparison(comparison: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Figure 5, for ``linfit compare --plot``: new/base time per step for every cell.

    Each cell is one row: its ratio with its confidence interval on a log axis, coloured by
    verdict (without an interval where it is NaN); regressions (``slower``) are shaded red
    with a bold label. Cells without a ratio (only in one file, or failed) show their verdict
    in words at 1.

    Args:
        comparison: the frame :mod:`linfit.compare` returns: the cell key, ``ratio``,
            ``ratio_low``, ``ratio_high`` and ``verdict`` columns among others.
        path: where to save; the suffix picks the format.

    Raises:
        LinfitError: for a path :func:`check_figure_path` refuses.
    """
    check_figure_path(path)
    figure, ax = plt.subplots(figsize=comparison_figure_size(len(comparison)),
                              layout="constrained")
    rows = comparison.reset_index(drop=True)
    positions = np.arange(len(rows))[::-1]  # first cell at the top
    for position, (_, row) in zip(positions, rows.iterrows(), strict=True):
        verdict = str(row["verdict"])
        if verdict == REGRESSION_VERDICT:
            ax.axhspan(position - 0.5, position + 0.5, color=REGRESSION_SHADE, zorder=0)
        if verdict in VERDICT_COLORS and np.isfinite(row["ratio"]):
            low, high = row["ratio_low"], row["ratio_high"]
            interval = ([[row["ratio"] - low], [high - row["ratio"]]]
                        if np.isfinite(low) and np.isfinite(high) else None)
            ax.errorbar([row["ratio"]], [position], xerr=interval,
                        color=VERDICT_COLORS[verdict], marker="o", markersize=5, capsize=3,
                        markerfacecolor="white" if verdict == "noise" else None)
        else:
            ax.text(1.0, position, verdict, ha="center", va="center", fontsize="small",
                    style="italic", color="#555555", backgroundcolor="white")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(positions, [_cell_label(row) for _, row in rows.iterrows()],
                  fontsize="small")
    for label, verdict in zip(ax.get_yticklabels(), rows["verdict"], strict=True):
        if verdict == REGRESSION_VERDICT:
            label.set_color(VERDICT_COLORS[REGRESSION_VERDICT])
            label.set_fontweight("bold")
    ax.set_ylim(-0.5, len(rows) - 0.5)
    ax.set_xscale("log")
    # Symmetric about 1x in log space: 2x slower sits as far right as 2x faster sits left.
    ends = rows[["ratio", "ratio_low", "ratio_high"]].to_numpy(dtype=float)
    ends = ends[np.isfinite(ends) & (ends > 0)]
    reach = float(np.max(np.abs(np.log(ends)))) if ends.size else 0.0
    ax.set_xlim(math.exp(-reach) / COMPARISON_X_MARGIN, math.exp(reach) * COMPARISON_X_MARGIN)
    _log_axis(ax.xaxis, _TIMES)
    ax.set_xlabel(f"new / base time per step, with its confidence interval (below 1{TIMES} "
                  "is faster, above is slower)")
    ax.grid(axis="x", which="major", alpha=0.3)
    counts = rows["verdict"].value_counts()
    figure.suptitle(f"New against base: {counts.get('slower', 0)} slower and "
                    f"{counts.get('faster', 0)} faster of {len(rows)} cells")
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=color, marker="o", markersize=5, label=verdict,
               markerfacecolor="white" if verdict == "noise" else None)
        for verdict, color in VERDICT_COLORS.items() if verdict in set(rows["verdict"])
    ]
    handles.append(Patch(color=REGRESSION_SHADE, label="regression"))
    handles.append(Line2D([], [], color="black", linewidth=1, label=f"no change (1{TIMES})"))
    _figure_legend(figure, handles)
    return save_figure(figure, path)


def plot_fit_history(result: FitResult, path: str | os.PathLike[str]) -> Path:
    """The tutorial's figure: W and b per step, with the true values dashed.

    Raises:
        LinfitError: for a path :func:`check_figure_path` refuses.
    """
    check_figure_path(path)
    steps = [r.step for r in result.history] + [len(result.history) * result.steps_per_call]
    ws = [r.w for r in result.history] + [result.final_w]
    bs = [r.b for r in result.history] + [result.final_b]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(steps, ws, "C0", marker="o", markersize=3, label="W")
    axes.plot(steps, bs, "C3", marker="o", markersize=3, label="b")
    axes.axhline(TRUE_W, color="C0", linestyle="--", label=f"true W = {TRUE_W:g}")
    axes.axhline(TRUE_B, color="C3", linestyle="--", label=f"true b = {TRUE_B:g}")
    axes.set_xlabel("training step")
    axes.set_ylabel("weight value")
    axes.set_title(f"{result.backend} {result.variant} on {result.device}: "
                   f"n={result.n_examples:g}, {result.dtype}, lr={result.learning_rate:g}")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats of a run's figures, checked against :data:`FIGURE_FORMATS`.

    Raises:
        LinfitError: for an unknown format, or none.
    """
    chosen = tuple(formats)
    unknown = [f for f in chosen if f not in FIGURE_FORMATS]
    if unknown or not chosen:
        raise LinfitError(f"figure format {', '.join(unknown) or '(none)'} is not one linfit "
                          f"draws; valid: {', '.join(FIGURE_FORMATS)}")
    return chosen


def draw_run_figures(frame: pd.DataFrame, directory: str | os.PathLike[str], stem: str,
                     formats: Sequence[str] = ("png",),
                     convergence: ConvergenceRuns | None = None) -> list[DrawnFigure]:
    """Compute a run's summaries and draw its figures into ``directory``.

    Files are named ``{stem}-{figure}.{format}`` and replace figures of the same name (they
    are derived from the results, which are never touched). The speed-up figure is left out
    when no cell has an eager cell to compare with, the first-call figure when no cell ran,
    the peak-memory figure when no cell has a peak memory figure (files before schema 5),
    the convergence figure when ``convergence`` is None. Cells of more than one replica are
    left out of these and drawn in the scaling figure (:func:`plot_scaling`), the only one
    when no one-replica cell ran.

    Args:
        frame: a results frame (one file's, or several concatenated).
        directory: the folder for the figures; created if missing.
        stem: the start of every file name.
        formats: ``png`` and/or ``svg``.
        convergence: the fits from :func:`linfit.retrain.convergence_runs`, or None.

    Raises:
        LinfitError: for a format not in :data:`FIGURE_FORMATS`, or a frame with no ok cell.
    """
    chosen = check_formats(formats)
    check_figure_dir(directory)
    # The standard figures draw one line per variant: the one-replica cells. The cells of
    # more replicas get the scaling figure.
    replicated = frame[frame["replicas"] > 1]
    frame = frame[frame["replicas"] == 1]
    times = summary.step_times(frame)
    scaled = (replicated["status"] == "ok").any()
    if times.empty and not scaled:
        raise LinfitError("no cell in the results ran (every status is failed): nothing to "
                          "plot")
    folder = Path(directory)

    def draw(name: str, title: str, plot: Callable[..., Path], *data: object) -> DrawnFigure:
        paths = tuple(plot(*data, folder / f"{stem}-{name}.{fmt}") for fmt in chosen)
        return DrawnFigure(name, title, paths)

    figures = []
    if not times.empty:
        speeds = summary.speedups(frame)
        even = summary.break_even(frame)
        figures.append(draw("step-time", "Time per training step against data size",
                            plot_step_times, times))
        if not speeds.empty:
            figures.append(draw("speedup", "Speed-up of each variant over its backend's "
                                "eager step", plot_speedups, speeds))
        figures.append(draw("first-call", "First-call time, step time and break-even steps "
                            f"(n={_COUNT(int(times['n_examples'].min()))})",
                            plot_first_call, times, even))
        if not memory_rows(frame).empty:
            figures.append(draw("peak-memory", "Peak memory each cell added (host resident "
                                "memory; device memory where measured)", plot_peak_memory,
                                frame))
    if scaled:
        figures.append(draw("scaling", "Data-parallel step time per replica count, beside the "
                            "one-device step", plot_scaling,
                            summary.step_times(pd.concat([frame, replicated]))))
    if convergence is not None:
        figures.append(draw("convergence", "W and b per step for every variant (re-run here)",
                            plot_convergence, convergence))
    return figures


def write_run_plots(frame: pd.DataFrame, directory: Path, stem: str,
                    formats: Sequence[str] = ("png",), *,
                    convergence: ConvergenceRuns | None = None) -> list[Path]:
    """Draw every figure of a run beside its results; the harness calls this after a run.

    Args:
        frame: the run's results frame.
        directory: the folder to write into (the results CSV's folder).
        stem: the start of every file name (the results CSV's stem).
        formats: ``png`` and/or ``svg``.
        convergence: the fits behind the convergence figure, from
            :func:`linfit.retrain.convergence_runs` (called by the caller: drawing never
            trains), or None to leave the figure out.

    Returns:
        The files written, figure by figure, format by format.

    Raises:
        LinfitError: see :func:`draw_run_figures`.
    """
    figures = draw_run_figures(frame, directory, stem, formats, convergence)
    return [path for figure in figures for path in figure.paths]


# The scaling figure (issue 13): line style per replica count; the one-device line dotted.
SCALING_SINGLE_DEVICE_STYLE = {"linestyle": ":", "marker": "."}
SCALING_REPLICA_STYLES = ({"linestyle": "--", "marker": "^"}, {"linestyle": "-", "marker": "o"},
                          {"linestyle": "-.", "marker": "D"})


def plot_scaling(step_times: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Time per step against n of the distributed variants, per replica count, beside the
    one-device variant each wraps and the floors; one panel per (backend, strategy, device).

    Args:
        step_times: :func:`linfit.summary.step_times` of a frame with distributed cells
            (``replicas``; each distributed variant's ``single_device`` variant, where it
            ran, is drawn as the one-device line).
        path: where to save; the suffix picks the format.

    Raises:
        LinfitError: when the frame has no distributed cell that ran.
    """
    from linfit.distributed.variants import distributed_variant

    specs = {(b, v): distributed_variant(b, v)
             for b, v in step_times[["backend", "variant"]].drop_duplicates().itertuples(
                 index=False)}
    specs = {key: spec for key, spec in specs.items() if spec is not None}
    if not specs:
        raise LinfitError("no distributed cell in the results ran: no scaling figure")
    panels = sorted({(b, spec.strategy, d) for (b, v), spec in specs.items()
                     for d in step_times[(step_times["backend"] == b)
                                         & (step_times["variant"] == v)]["device"].unique()})
    figure, axes = plt.subplots(1, len(panels), figsize=grid_figure_size(len(panels), 1),
                                layout="constrained", sharey=True, squeeze=False)
    handles: dict[str, Line2D] = {}
    replica_counts = sorted(int(r) for r in step_times["replicas"].unique())
    for ax, (backend, strategy, device) in zip(axes[0], panels, strict=True):
        here = step_times[(step_times["backend"] == backend) & (step_times["device"] == device)]
        singles = set()
        for (spec_backend, variant), spec in specs.items():
            if spec.strategy != strategy or spec_backend != backend:
                continue
            color = variant_color(backend, spec.single_device)
            singles.add(spec.single_device)
            for index, replicas in enumerate(replica_counts):
                line = here[(here["variant"] == variant) & (here["replicas"] == replicas)]
                if line.empty:
                    continue
                line = line.sort_values("n_examples")
                style = SCALING_REPLICA_STYLES[min(index, len(SCALING_REPLICA_STYLES) - 1)]
                label = f"{backend} {variant}, {replicas} replica{'s' * (replicas > 1)}"
                ax.plot(line["n_examples"], line["median_seconds"], color=color,
                        markersize=5, **style)
                handles.setdefault(label, Line2D([], [], color=color, label=label, **style))
        for single in sorted(singles):
            line = here[(here["variant"] == single) & (here["replicas"] == 1)].sort_values(
                "n_examples")
            if line.empty:
                continue
            color = variant_color(backend, single)
            label = f"{backend} {single}, one device"
            ax.plot(line["n_examples"], line["median_seconds"], color=color, linewidth=1,
                    **SCALING_SINGLE_DEVICE_STYLE)
            handles.setdefault(label, Line2D([], [], color=color, linewidth=1, label=label,
                                             **SCALING_SINGLE_DEVICE_STYLE))
        floor = here[here["replicas"] == 1].dropna(subset=["floor_seconds"])
        if not floor.empty:
            floor = floor.groupby("n_examples")["floor_seconds"].min().sort_index()
            ax.plot(floor.index, floor.to_numpy(), color=FLOOR_COLOR, linewidth=1,
                    linestyle=FLOOR_STYLES[False])
            handles.setdefault(FLOOR_LABEL, Line2D([], [], color=FLOOR_COLOR, linewidth=1,
                                                   linestyle=FLOOR_STYLES[False],
                                                   label=FLOOR_LABEL + ", one device"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{backend} {strategy}, from {device}", fontsize="medium")
        ax.set_xlabel("n_examples (whole batch, all replicas)")
        ax.grid(which="major", alpha=0.3)
    axes[0][0].set_ylabel("time per step (s), median")
    for ax in axes[0]:
        _log_axis(ax.xaxis, _COUNT)
        _log_axis(ax.yaxis, _SECONDS)
    _figure_legend(figure, list(handles.values()))
    figure.suptitle("Data-parallel step time against data size, per replica count")
    return save_figure(figure, path)
