"""Figures of a pairs file (``linfit plot PAIRS.csv -o DIR``).

Two figures, one panel per cell, against minutes since the session started:

- ``<stem>-ratios``: every pair's ratio B/A (one colour per compared side), the cell's
  estimate with its interval as a band, 1 and the threshold as lines;
- ``<stem>-bursts``: every burst's median time per step, one line per side: the drift the
  pairing cancels is there to see, the same in both lines;
- ``<stem>-sides``: each cell's median time per step on every side, sides along x (for a
  session of every TensorFlow release: what each release did to the tutorial step).

Drawing computes nothing beyond what is shown: the pairs and estimates come from
:mod:`linfit.ab.analysis`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter

from linfit._format import format_seconds
from linfit.ab.analysis import CELL_COLUMNS, DEFAULT_AB_THRESHOLD, cell_pairs, estimate_cell
from linfit.backends import VARIANTS_BY_BACKEND
from linfit.plots import (
    PANEL_HEIGHT_INCHES,
    PANEL_WIDTH_INCHES,
    save_figure,
    variant_color,
)
from linfit.results import Cell
from linfit.stats import DEFAULT_ALPHA

__all__ = ["draw_pairs_figures"]

# Side colours, by side index (matplotlib's default cycle).
_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")
# Panels per row at most.
_MAX_COLUMNS = 5
_RATIO = FuncFormatter(lambda value, _: f"{value:.2f}")
_SECONDS = FuncFormatter(lambda value, _: format_seconds(value))


def _panel_title(cell: tuple) -> str:
    key = Cell(*cell)
    loop = f" k={key.steps_per_call}" if key.steps_per_call > 1 else ""
    qualifiers = f" {key.qualifiers}" if key.qualifiers else ""
    return (f"{key.backend} {key.variant}{loop}{qualifiers}\n{key.device} "
            f"n={key.n_examples:g} {key.dtype}")


def _over_time(ax: plt.Axes, cell: tuple, formatter: FuncFormatter) -> None:
    """A cell's panel against the session's minutes, on a log axis labelled by
    ``formatter``."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(formatter)
    ax.yaxis.set_minor_formatter(formatter)
    ax.set_title(_panel_title(cell), fontsize=9)
    ax.set_xlabel("minutes", fontsize=8)
    ax.tick_params(labelsize=7)


def _grid(cells: int) -> tuple[plt.Figure, list[plt.Axes]]:
    columns = min(_MAX_COLUMNS, cells)
    rows = math.ceil(cells / columns)
    figure, axes = plt.subplots(rows, columns, squeeze=False,
                                figsize=(0.75 * PANEL_WIDTH_INCHES * columns,
                                         0.75 * PANEL_HEIGHT_INCHES * rows))
    flat = list(axes.flat)
    for unused in flat[cells:]:
        unused.set_visible(False)
    return figure, flat[:cells]


def draw_pairs_figures(frame: pd.DataFrame, directory: Path, stem: str,
                       formats: Sequence[str] = ("png",),
                       threshold: float = DEFAULT_AB_THRESHOLD,
                       alpha: float = DEFAULT_ALPHA) -> list[Path]:
    """Draw the ratio and burst figures of a pairs frame (:func:`linfit.ab.pairs.read_pairs`).

    Returns:
        The files written: ``<stem>-ratios``, ``-bursts`` and ``-sides`` in each format.
    """
    ok = frame[frame["status"] == "ok"]
    order = {(backend, name): index for backend, names in VARIANTS_BY_BACKEND.items()
             for index, name in enumerate(names)}
    # The table's order: device, n, dtype, backend, the backend's variant order.
    cells = sorted(ok.groupby(list(CELL_COLUMNS), sort=False), key=lambda item: (
        item[0][1], item[0][3], item[0][4], item[0][0], order.get((item[0][0], item[0][2]), 99),
        item[0][2]))
    labels = dict(zip(frame["side_index"], frame["side_label"], strict=True))
    sides = sorted(labels)
    start_ns = int(ok["start_unix_ns"].min()) if len(ok) else 0
    written: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        if not cells:
            break
        figure, axes = _grid(len(cells))
        for ax, (cell, rows) in zip(axes, cells, strict=True):
            for side in sides[1:]:
                pairs = cell_pairs(rows, side)
                if pairs.empty:
                    continue
                minutes = (pairs["start_unix_ns"] - start_ns) / 60e9
                ax.plot(minutes, pairs["new_seconds"] / pairs["base_seconds"], "o",
                        markersize=3, color=_COLOURS[side % len(_COLOURS)],
                        label=f"{labels[side]}/{labels[0]}")
                estimate = estimate_cell(pairs, alpha)
                if estimate is not None and not math.isnan(estimate.low):
                    ax.axhspan(estimate.low, estimate.high, alpha=0.2,
                               color=_COLOURS[side % len(_COLOURS)])
                    ax.axhline(estimate.ratio, color=_COLOURS[side % len(_COLOURS)],
                               linewidth=1)
            ax.axhline(1, color="black", linewidth=0.8)
            for limit in (1 + threshold, 1 / (1 + threshold)):
                ax.axhline(limit, color="grey", linewidth=0.8, linestyle="--")
            _over_time(ax, cell, _RATIO)
        axes[0].set_ylabel("paired ratio")
        axes[0].legend(fontsize=7)
        figure.suptitle(f"paired ratios per cell: estimate, {1 - alpha:.0%} interval (band), "
                        f"1 and the ±{threshold:.0%} threshold (dashed)", fontsize=10)
        figure.tight_layout()
        written.append(save_figure(figure, directory / f"{stem}-ratios.{fmt}"))

        figure, axes = _grid(len(cells))
        for ax, (cell, rows) in zip(axes, cells, strict=True):
            for side in sides:
                mine = rows[rows["side_index"] == side].sort_values("start_unix_ns")
                ax.plot((mine["start_unix_ns"] - start_ns) / 60e9, mine["seconds_per_step"],
                        ".-", markersize=3, linewidth=0.7,
                        color=_COLOURS[side % len(_COLOURS)], label=labels[side])
            _over_time(ax, cell, _SECONDS)
        axes[0].set_ylabel("burst median, s/step")
        axes[0].legend(fontsize=7)
        figure.suptitle("every burst's median time per step, per side: the drift pairing "
                        "cancels", fontsize=10)
        figure.tight_layout()
        written.append(save_figure(figure, directory / f"{stem}-bursts.{fmt}"))
        written.append(_draw_sides(ok, labels, directory / f"{stem}-sides.{fmt}"))
    return written


def _draw_sides(ok: pd.DataFrame, labels: dict[int, str], path: Path) -> Path:
    """Each cell's median burst time per step on every side, sides along x: what each
    environment (a TensorFlow release, a flag) does to each variant."""
    groups = list(ok.groupby(["device", "n_examples", "dtype"], sort=True))
    figure, axes = _grid(len(groups))
    sides = sorted(labels)
    for ax, ((device, n_examples, dtype), rows) in zip(axes, groups, strict=True):
        medians = rows.groupby(["backend", "variant", "steps_per_call", "side_index"],
                               sort=False)["seconds_per_step"].median()
        for (backend, variant, steps_per_call), per_side in medians.groupby(
                level=[0, 1, 2], sort=True):
            values = per_side.droplevel([0, 1, 2]).reindex(sides)
            loop = f" k={steps_per_call}" if steps_per_call > 1 else ""
            # One colour per variant in every panel and figure, so one legend serves all.
            ax.plot(range(len(sides)), values.to_numpy(), "o-", markersize=4,
                    color=variant_color(backend, variant), label=f"{backend} {variant}{loop}")
        ax.set_xticks(range(len(sides)), [labels[i] for i in sides], fontsize=8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_SECONDS)
        ax.set_title(f"{device} n={n_examples:g} {dtype}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("median burst, s/step")
    handles = {label: handle for ax in axes for handle, label in zip(
        *ax.get_legend_handles_labels(), strict=True)}
    axes[-1].legend(handles.values(), handles.keys(), fontsize=7)
    figure.suptitle("step time per side (median of its bursts)", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)
