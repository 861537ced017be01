"""The figure of a bisect: each bisected cell's step time across the builds tried.

One panel per bisected cell: builds along x in their order (only those measured, at their
positions in the range), each build's median burst time per step with its interquartile
range, coloured by what the bisect found it to be (good, bad, ambiguous; GOOD and BAD
themselves). Skipped builds are marked on the axis; a dashed line falls between every last
good and first bad build. Times from different sessions are not paired, so the figure shows
the shape; the ratios with their intervals are in the table.

Drawing computes nothing beyond medians and quartiles of what is shown.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from linfit._format import format_seconds
from linfit.bisect.runner import BisectResult, side_label
from linfit.plots import PANEL_HEIGHT_INCHES, PANEL_WIDTH_INCHES, save_figure

__all__ = ["draw_bisect_figure"]

# Colours by what a build was found to be (matplotlib's default cycle).
_COLOURS = {"good": "C0", "bad": "C3", "ambiguous": "C1", "undecided": "C7"}
_SECONDS = FuncFormatter(lambda value, _: format_seconds(value))
# Widest figure, inches: a range of 170 builds with a few dozen tried stays readable.
_MAX_WIDTH_INCHES = 16.0


def _verdicts(result: BisectResult, cell: str) -> dict[str, str]:
    """What each build measured in ``cell`` was found to be: GOOD good, BAD bad, each
    MID by its step."""
    verdicts = {result.good: "good", result.bad: "bad"}
    for step in result.steps:
        if step.cell == cell and step.outcome in _COLOURS:
            verdicts[step.mid] = step.outcome
    return verdicts


def draw_bisect_figure(result: BisectResult, path: Path) -> Path | None:
    """Draw the step times of the bisected cells (module docstring) into ``path``.

    Args:
        result: a bisect's result; its ``step_times`` hold the bursts.
        path: the figure file; its suffix is the format (png, svg, pdf). Written
            atomically, replacing an older one.

    Returns:
        ``path``, or None when no cell was bisected (nothing to draw).
    """
    times = result.step_times
    cells = list(dict.fromkeys(times["cell"])) if len(times) else []
    if not cells:
        return None
    width = min(_MAX_WIDTH_INCHES, max(PANEL_WIDTH_INCHES, 0.35 * len(result.builds)))
    figure, axes = plt.subplots(len(cells), 1, squeeze=False,
                                figsize=(width, PANEL_HEIGHT_INCHES * len(cells)))
    skipped = {build for build, _ in result.skipped}
    for ax, cell in zip(axes[:, 0], cells, strict=True):
        rows = times[times["cell"] == cell]
        verdicts = _verdicts(result, cell)
        by_build = rows.groupby("position")["seconds_per_step"]
        medians = by_build.median()
        low, high = by_build.quantile(0.25), by_build.quantile(0.75)
        for verdict, colour in _COLOURS.items():
            shown = [p for p in medians.index if verdicts.get(result.builds[p]) == verdict]
            if not shown:
                continue
            ax.errorbar(shown, medians[shown],
                        yerr=[medians[shown] - low[shown], high[shown] - medians[shown]],
                        fmt="o", color=colour, markersize=5, capsize=3, label=verdict)
        skipped_at = [result.builds.index(build) for build in skipped]
        for position in skipped_at:
            ax.axvline(position, color="grey", linewidth=0.8, linestyle=":")
        tried = sorted(set(medians.index) | set(skipped_at))
        for change in result.changes:
            if change.cell == cell:
                boundary = (result.builds.index(change.last_good)
                            + result.builds.index(change.first_bad)) / 2
                ax.axvline(boundary, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks(tried, [side_label(result.builds[position])
                              + (" (skipped)" if position in skipped_at else "")
                              for position in tried], rotation=60, ha="right", fontsize=7)
        ax.set_xlim(-0.5, len(result.builds) - 0.5)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_SECONDS)
        ax.yaxis.set_minor_formatter(_SECONDS)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(cell, fontsize=9)
        ax.set_ylabel("burst median, s/step", fontsize=8)
        ax.legend(fontsize=7)
    figure.suptitle(f"{result.good} .. {result.bad}\nstep time of each build tried (median, "
                    "quartiles); dashed: last good | first bad; dotted: skipped", fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)
