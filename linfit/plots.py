"""Figures, drawn with matplotlib's Agg backend (no display needed).

Plot functions take finished data and a path, draw, save and return the path. They compute
nothing beyond what the figure shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from linfit.data import TRUE_B, TRUE_W
from linfit.fit import FitResult

__all__ = ["plot_fit_history"]

FIGURE_DPI = 100


def _save(figure: plt.Figure, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=FIGURE_DPI)
    plt.close(figure)
    return target


def plot_fit_history(result: FitResult, path: str | os.PathLike[str]) -> Path:
    """The tutorial's figure: W and b per step, with the true values dashed."""
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
    return _save(figure, path)
