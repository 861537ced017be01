"""The history site: plain HTML and matplotlib SVGs in one folder that opens from disk.

Pages (all relative links, no script, no CDN, no server):

- ``index.html``: the detected steps, newest first, each linked to its two runs, its cell's
  graph and, where one exists, the A/B session that confirms it; then every cell's graph
  with the x axis by build (the backend's version, then run date);
- ``by-date.html``: the same graphs with the x axis by run date (each page links the other);
- ``runs.html``: every run (anchor per run): file, machine, date, commit, builds;
- ``sessions.html``: every A/B session (anchor per session) with its paired verdicts.

Two SVGs per cell (by build, by date), whatever the number of runs: one series per machine,
each run's median with its interval, and the detected steps marked.

The site is built in a temporary folder beside ``SITE`` and renamed into place. An existing
``SITE`` that is not empty is replaced only with ``force`` and only when an earlier build
wrote it (it holds :data:`MARKER_FILE`); anything else is refused.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from linfit._errors import LinfitError
from linfit.history import MARKER_FILE
from linfit.history.collect import DetectedStep, History, PairedVerdict, Point, build_key
from linfit.results import Cell

__all__ = ["write_site"]

# Graph size: wide enough for a dozen build labels, small enough for a page of cells.
GRAPH_WIDTH_INCHES = 7.0
GRAPH_HEIGHT_INCHES = 3.2
# One colour per machine, in host order (matplotlib's default cycle).
HOST_COLORS = tuple(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"])
STEP_COLOR = "#d62728"
# Room around the axes, as fractions of the figure (fixed, see _graph).
_MARGINS = {"left": 0.09, "right": 0.98, "top": 0.9, "bottom": 0.28}
# Time units of the y axis.
_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
# The most build labels on an x axis.
MAX_BUILD_TICKS = 14
# A build label longer than this is cut on the axis (nightlies carry a date suffix).
MAX_BUILD_LABEL = 18
_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:80em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;text-align:left}
th{background:#eee}.slower{color:#b00}.faster{color:#060}
section{margin-bottom:2em}img{max-width:100%}nav a{margin-right:1em}"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", text).strip("-")


def cell_slug(cell: Cell) -> str:
    """The cell's name in file names and anchors."""
    return _slug(str(cell))


def run_anchor(run_id: str) -> str:
    """The anchor of a run on ``runs.html``."""
    return "run-" + _slug(run_id)


def session_anchor(session_id: str) -> str:
    """The anchor of an A/B session on ``sessions.html``."""
    return "session-" + _slug(session_id)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float) -> str:
    unit, scale = _unit(abs(value))
    return f"{value / scale:.3g} {unit}"


def _ratio(verdict: PairedVerdict) -> str:
    if math.isnan(verdict.low):
        return f"{verdict.ratio:.2f}"
    return f"{verdict.ratio:.2f} [{verdict.low:.2f}, {verdict.high:.2f}]"


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n"
            f"<nav><a href=\"index.html\">graphs by build</a><a href=\"by-date.html\">graphs "
            f"by date</a><a href=\"runs.html\">runs</a><a href=\"sessions.html\">A/B "
            f"sessions</a></nav>\n<h1>{_e(title)}</h1>\n{body}</body></html>\n")


def _run_link(point: Point) -> str:
    return (f"<a href=\"runs.html#{run_anchor(point.run.run_id)}\">{_e(point.run.run_id)}</a>"
            f" ({_e(point.build)}, {point.run.started:%Y-%m-%d %H:%M})")


def _steps_table(steps: Sequence[DetectedStep]) -> str:
    if not steps:
        return "<p>No steps detected.</p>\n"
    rows = []
    for step in steps:
        confirmation = step.confirmation
        if confirmation is None:
            paired = "none"
        else:
            paired = (f"<span class=\"{_e(confirmation.verdict)}\">{_e(confirmation.verdict)}"
                      f"</span> {_ratio(confirmation)} ({_e(confirmation.base_label)} vs "
                      f"{_e(confirmation.new_label)}) <a href=\"sessions.html#"
                      f"{session_anchor(confirmation.session_id)}\">"
                      f"{_e(confirmation.session_id)}</a>")
        rows.append(
            f"<tr><td>{step.after.run.started:%Y-%m-%d %H:%M}</td>"
            f"<td><a href=\"#{cell_slug(step.cell)}\">{_e(step.cell)}</a></td>"
            f"<td>{_e(step.host)}</td><td class=\"{'slower' if step.ratio > 1 else 'faster'}\">"
            f"{step.ratio:.2f}x ({_seconds(step.level_before)} &rarr; "
            f"{_seconds(step.level_after)})</td><td>{_run_link(step.before)}</td>"
            f"<td>{_run_link(step.after)}</td><td>{paired}</td></tr>")
    return ("<table><tr><th>first run after</th><th>cell</th><th>machine</th>"
            "<th>after / before</th><th>last run before</th><th>first run after</th>"
            "<th>paired A/B verdict</th></tr>\n" + "\n".join(rows) + "</table>\n")


def _unit(seconds: float) -> tuple[str, float]:
    """The time unit a graph's axis reads in: the largest that keeps the values >= 1."""
    for unit, scale in _UNITS:
        if seconds >= scale:
            return unit, scale
    return _UNITS[-1]


def _graph(history: History, cell: Cell, steps: Sequence[DetectedStep], by_date: bool,
           path: Path) -> None:
    """One cell's SVG: a series per machine, intervals as error bars, steps as lines."""
    series = history.series(cell)
    ordered = sorted((p for points in series.values() for p in points),
                     key=lambda p: (build_key(p.build), p.run.started, p.run.run_id))
    position = {id(point): index for index, point in enumerate(ordered)}
    unit, scale = _unit(min(p.median_seconds for p in ordered))
    figure = Figure(figsize=(GRAPH_WIDTH_INCHES, GRAPH_HEIGHT_INCHES))
    # Fixed margins: tight_layout measures every label and took most of a graph's time.
    figure.subplots_adjust(**_MARGINS)
    axes = figure.add_subplot()
    for index, (host, points) in enumerate(series.items()):
        points = sorted(points, key=lambda p: p.run.started) if by_date else points
        xs: list[float | datetime] = ([p.run.started for p in points] if by_date
                                      else [position[id(p)] for p in points])
        ys = [p.median_seconds / scale for p in points]
        errors = [[(p.median_seconds - p.low_seconds) / scale for p in points],
                  [(p.high_seconds - p.median_seconds) / scale for p in points]]
        axes.errorbar(xs, ys, yerr=errors, marker="o", markersize=3, linewidth=0.8,
                      capsize=2, color=HOST_COLORS[index % len(HOST_COLORS)], label=host)
    for step in steps:
        x = step.after.run.started if by_date else position[id(step.after)] - 0.5
        axes.axvline(x, color=STEP_COLOR, linestyle="--", linewidth=0.8)
    if by_date:
        for label in axes.get_xticklabels():
            label.set(rotation=30, ha="right", fontsize=8)
        axes.set_xlabel("run date (UTC)")
    else:
        firsts: dict[str, int] = {}
        for index, point in enumerate(ordered):
            firsts.setdefault(point.build, index)
        # At most MAX_BUILD_TICKS labels, evenly among the builds: a year of nightlies
        # would otherwise print hundreds (and laying them out is most of a graph's time).
        shown = list(firsts.items())[::max(1, math.ceil(len(firsts) / MAX_BUILD_TICKS))]
        axes.set_xticks([index for _, index in shown])
        axes.set_xticklabels([build[:MAX_BUILD_LABEL] for build, _ in shown], rotation=30,
                             ha="right", fontsize=8)
        axes.set_xlim(-0.5, len(ordered) - 0.5)
        axes.set_xlabel(f"{cell.backend} build (then run date)", fontsize=8)
    axes.set_ylabel(f"time per step ({unit})", fontsize=8)
    axes.tick_params(labelsize=8)
    axes.set_title(str(cell), fontsize=9)
    axes.legend(fontsize=7, loc="upper left")
    # Text as <text>, not glyph paths: smaller files, and no glyph layout at save time.
    # No date in the metadata and fixed ids: the same history gives the same SVG.
    with matplotlib.rc_context({"svg.hashsalt": "linfit-history", "svg.fonttype": "none"}):
        figure.savefig(path, format="svg", metadata={"Date": None})


def _graphs_page(history: History, steps: Sequence[DetectedStep], by_date: bool,
                 svg_dir: Path) -> str:
    suffix = "date" if by_date else "build"
    other = ("index.html", "by build") if by_date else ("by-date.html", "by run date")
    parts = [f"<p>{len(history.runs)} runs, {len(history.cells())} cells. x axis: "
             f"{'run date' if by_date else 'build (the backend version), then run date'}"
             f" &middot; <a href=\"{other[0]}\">switch to {other[1]}</a></p>\n"]
    if not by_date:
        parts.append("<h2>Detected steps, newest first</h2>\n" + _steps_table(steps))
        parts.append(_method_note())
        if history.skipped:
            parts.append(f"<p>{len(history.skipped)} CSV files under the folders are "
                         f"neither results nor pairs files and were left out: "
                         + ", ".join(_e(path.name) for path, _ in history.skipped) + "</p>\n")
    parts.append("<h2>Cells</h2>\n")
    for cell in history.cells():
        slug = cell_slug(cell)
        cell_steps = [step for step in steps if step.cell == cell]
        name = f"svg/{slug}-{suffix}.svg"
        _graph(history, cell, cell_steps, by_date, svg_dir / f"{slug}-{suffix}.svg")
        verdicts = [v for v in history.verdicts if v.cell == cell
                    and v.verdict in ("slower", "faster")]
        paired = "".join(
            f"<li><span class=\"{_e(v.verdict)}\">{_e(v.verdict)}</span> {_ratio(v)}: "
            f"{_e(v.new_label)} ({_e(v.new_build)}) against {_e(v.base_label)} "
            f"({_e(v.base_build)}), <a href=\"sessions.html#{session_anchor(v.session_id)}\">"
            f"{_e(v.session_id)}</a></li>" for v in verdicts)
        parts.append(f"<section id=\"{slug}\"><h3>{_e(cell)}</h3>\n"
                     f"<img src=\"{name}\" alt=\"step time of {_e(cell)} by {suffix}\">\n"
                     + (f"<p>Paired A/B verdicts of this cell:</p><ul>{paired}</ul>\n"
                        if paired else "") + "</section>\n")
    title = "linfit history" + (" by run date" if by_date else "")
    return _page(title, "".join(parts))


def _method_note() -> str:
    return ("<p>Steps: asv's method (an L1 piecewise-constant fit whose number of levels "
            "minimises a Schwarz-type criterion; levels of at least two runs), over each "
            "machine's series in build order; a step is listed when it exceeds the noise "
            "of the levels on either side and 5% of the level before. Intervals: 95% "
            "block-bootstrap intervals of each run's median. See linfit/steps.py.</p>\n")


def _runs_page(history: History) -> str:
    builds: dict[str, set[str]] = {}
    for point in history.points:
        builds.setdefault(point.run.run_id, set()).add(f"{point.cell.backend} {point.build}")
    rows = [f"<tr id=\"{run_anchor(run.run_id)}\"><td>{_e(run.run_id)}</td><td>{_e(run.kind)}"
            f"</td><td>{_e(run.host)}</td><td>{run.started:%Y-%m-%d %H:%M:%S}</td>"
            f"<td>{_e(run.git_commit)}</td><td>{_e(', '.join(sorted(builds.get(run.run_id, ()))))}"
            f"</td><td>{_e(run.path)}</td><td>" + (
                f"<a href=\"sessions.html#{session_anchor(run.session_id)}\">"
                f"{_e(run.session_id)}</a>" if run.session_id else "") + "</td></tr>"
            for run in reversed(history.runs)]
    return _page("linfit history: runs", "<table><tr><th>run</th><th>kind</th><th>machine"
                 "</th><th>started (UTC)</th><th>commit</th><th>builds</th><th>file</th>"
                 "<th>A/B session</th></tr>\n" + "\n".join(rows) + "</table>\n")


def _sessions_page(history: History) -> str:
    sessions: dict[str, list[PairedVerdict]] = {}
    for verdict in history.verdicts:
        sessions.setdefault(verdict.session_id, []).append(verdict)
    parts = []
    for session_id in sorted(sessions, reverse=True):
        verdicts = sessions[session_id]
        rows = "\n".join(
            f"<tr><td><a href=\"index.html#{cell_slug(v.cell)}\">{_e(v.cell)}</a></td>"
            f"<td>{_e(v.base_label)} ({_e(v.base_build)})</td><td>{_e(v.new_label)} "
            f"({_e(v.new_build)})</td><td>{_ratio(v)}</td>"
            f"<td class=\"{_e(v.verdict)}\">{_e(v.verdict)}</td></tr>" for v in verdicts)
        parts.append(f"<section id=\"{session_anchor(session_id)}\"><h2>{_e(session_id)}</h2>"
                     f"<p>{_e(verdicts[0].path)}, machine {_e(verdicts[0].host)}</p>"
                     f"<table><tr><th>cell</th><th>base</th><th>new</th><th>new / base"
                     f"</th><th>verdict</th></tr>\n{rows}</table></section>\n")
    return _page("linfit history: A/B sessions",
                 "".join(parts) if parts else "<p>No A/B sessions.</p>\n")


def _check_target(site: Path, folders: Sequence[str | os.PathLike[str]], force: bool) -> None:
    resolved = site.resolve()
    for folder in folders:
        source = Path(folder).resolve()
        if resolved == source or resolved in source.parents:
            raise LinfitError(f"{site}: the site folder would hold the input folder "
                              f"{folder}; give another -o")
    if site.exists() and not site.is_dir():
        raise LinfitError(f"{site}: exists and is not a folder")
    if site.is_dir() and any(site.iterdir()):
        if not force:
            raise LinfitError(f"{site}: exists and is not empty; give --force to replace a "
                              f"site linfit history wrote, or another -o")
        if not (site / MARKER_FILE).is_file():
            raise LinfitError(f"{site}: not a site linfit history wrote (no {MARKER_FILE}); "
                              f"--force replaces only those")


def write_site(history: History, steps: Sequence[DetectedStep], site: str | os.PathLike[str],
               folders: Sequence[str | os.PathLike[str]] = (), force: bool = False) -> Path:
    """Write the site into ``site``, atomically (built beside it, then renamed).

    Args:
        history: what :func:`linfit.history.collect_history` found.
        steps: :func:`linfit.history.find_steps` of it.
        site: the folder to write (created; see the module notes on replacing one).
        folders: the input folders, which the site may not hold or replace.
        force: replace a site an earlier build wrote.

    Returns:
        The site's folder.

    Raises:
        LinfitError: a target that exists and is not empty (without ``force``), is not a
            site this command wrote, is a file, or holds an input folder.
    """
    site = Path(site)
    _check_target(site, folders, force)
    parent = site.absolute().parent
    if not parent.is_dir():
        raise LinfitError(f"{site}: its parent folder {parent} does not exist")
    building = Path(tempfile.mkdtemp(prefix=f".{site.name}.building-", dir=parent))
    try:
        (building / "svg").mkdir()
        (building / "index.html").write_text(
            _graphs_page(history, steps, False, building / "svg"), encoding="utf-8")
        (building / "by-date.html").write_text(
            _graphs_page(history, steps, True, building / "svg"), encoding="utf-8")
        (building / "runs.html").write_text(_runs_page(history), encoding="utf-8")
        (building / "sessions.html").write_text(_sessions_page(history), encoding="utf-8")
        (building / MARKER_FILE).write_text(json.dumps({
            "linfit_history": 1, "runs": len(history.runs), "cells": len(history.cells()),
            "steps": len(steps)}) + "\n", encoding="utf-8")
        building.chmod(0o755)
        if site.is_dir() and any(site.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{site.name}.old-", dir=parent))
            os.replace(site, old / "site")
            os.replace(building, site)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(building, site)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return site
