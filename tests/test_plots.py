"""linfit.plots and ``linfit plot``: every figure draws, at its size, from small fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from linfit import plots, retrain, summary
from linfit._errors import LinfitError
from linfit.backends import VARIANTS_BY_BACKEND
from linfit.cli import main
from linfit.commands import plot as plot_command
from linfit.results import read_frame

DATA = Path(__file__).parent / "data" / "plots"
VERDICTS = ("faster", "slower", "unchanged", "noise", "only-in-base", "only-in-new", "failed")


@pytest.fixture(scope="module")
def multi() -> pd.DataFrame:
    return read_frame(DATA / "multi.csv")


def assert_png(path: Path, size_inches: tuple[float, float]) -> None:
    """The file is a PNG of exactly ``size_inches`` at the figure DPI, with something drawn."""
    image = imread(path)
    width, height = size_inches
    assert image.shape[:2] == (round(height * plots.FIGURE_DPI), round(width * plots.FIGURE_DPI))
    ink = (image[..., :3] < 0.9).any(axis=-1).mean()
    assert ink > 0.01, f"{path} is nearly blank ({ink:.2%} of pixels drawn)"


def test_every_known_variant_has_its_own_colour():
    colours = list(plots.VARIANT_COLORS.values())
    assert len(set(colours)) == len(colours)
    assert plots.variant_color("jax", "jit") == plots.VARIANT_COLORS[("jax", "jit")]


def test_the_colours_come_from_the_backend_registries():
    registered = {(backend, variant) for backend, variants in VARIANTS_BY_BACKEND.items()
                  for variant in variants}
    assert set(plots.VARIANT_COLORS) == registered
    # A variant added to a registry gets its backend's next colour, in registry order.
    colours = plots.registry_colors({"jax": ["eager", "jit", "jit-loop"],
                                     "torch": ["eager", "new-one"]})
    assert colours[("torch", "new-one")] == plots.BACKEND_PALETTES["torch"][1]
    assert list(colours) == [("jax", "eager"), ("jax", "jit"), ("jax", "jit-loop"),
                             ("torch", "eager"), ("torch", "new-one")]


def test_unknown_variants_get_a_stable_fallback_colour():
    colour = plots.variant_color("torch", "something-new")
    assert colour in plots.FALLBACK_COLORS
    assert plots.variant_color("torch", "something-new") == colour


def test_labels_mark_loop_variants_and_name_the_backend_when_asked():
    assert plots.variant_label("tensorflow", "xla-loop", 100, True, False) == "xla-loop (k=100)"
    assert plots.variant_label("jax", "jit", 1, False, True) == "jax jit"


def test_step_times_one_panel_per_device(multi, tmp_path):
    path = plots.plot_step_times(summary.step_times(multi), tmp_path / "steps.png")
    assert_png(path, plots.grid_figure_size(2, 1))


def test_step_times_draw_the_floor_only_where_measured(multi, tmp_path):
    times = summary.step_times(multi)
    with_floor = plots.plot_step_times(times, tmp_path / "floor.png")
    without = plots.plot_step_times(times.assign(floor_seconds=np.nan), tmp_path / "none.png")
    assert_png(without, plots.grid_figure_size(2, 1))
    assert not np.array_equal(imread(with_floor), imread(without))


def test_speedups(multi, tmp_path):
    path = plots.plot_speedups(summary.speedups(multi), tmp_path / "speedup.png")
    assert_png(path, plots.grid_figure_size(2, 1))


def test_first_call_one_row_per_device(multi, tmp_path):
    path = plots.plot_first_call(summary.step_times(multi), summary.break_even(multi),
                                 tmp_path / "first.png", n_examples=1_000_000)
    assert_png(path, plots.grid_figure_size(2, 2))


def test_first_call_refuses_a_size_not_in_the_results(multi, tmp_path):
    with pytest.raises(LinfitError,
                       match=r"^no cell with n_examples=5 to draw; sizes: 100, 10000, 1000000$"):
        plots.plot_first_call(summary.step_times(multi), summary.break_even(multi),
                              tmp_path / "first.png", n_examples=5)


def _runs(frame: pd.DataFrame) -> retrain.ConvergenceRuns:
    return retrain.convergence_runs(frame, steps=10, max_n_examples=50)


def test_convergence(tf_backend, tmp_path):
    frame = read_frame(DATA / "single_size.csv")
    extra = frame.iloc[:1].assign(device="GPU:99")  # not run: listed in the notes strip
    runs = _runs(pd.concat([frame, extra], ignore_index=True))
    assert len(runs.results) == len(frame) and len(runs.skipped) == 1
    path = plots.plot_convergence(runs, tmp_path / "convergence.png")
    width, height = plots.grid_figure_size(1, 1)
    assert_png(path, (width + plots.PANEL_WIDTH_INCHES / 2, height + plots.NOTES_HEIGHT_INCHES))


def test_convergence_with_nothing_run_still_draws(tf_backend, tmp_path):
    frame = read_frame(DATA / "single_variant.csv").assign(device="GPU:99")
    runs = _runs(frame)
    assert runs.results == ()
    width, height = plots.grid_figure_size(1, 1)
    assert_png(plots.plot_convergence(runs, tmp_path / "c.png"),
               (width + plots.PANEL_WIDTH_INCHES / 2, height + plots.NOTES_HEIGHT_INCHES))


def _comparison() -> pd.DataFrame:
    """What linfit.compare returns, by hand: one row per verdict, no ratio where none."""
    rows = []
    for index, verdict in enumerate(VERDICTS):
        ratio = {"faster": 0.5, "slower": 1.6, "unchanged": 1.01, "noise": 0.9}.get(verdict,
                                                                                 np.nan)
        rows.append({
            "backend": "tensorflow", "device": "CPU:0", "variant": "xla",
            "n_examples": 10 ** (index + 2), "dtype": "float32", "steps_per_call": 1,
            "device_name": "cpu", "base_median_seconds": 1e-4,
            "new_median_seconds": 1e-4 * ratio, "ratio": ratio, "ratio_low": ratio * 0.9,
            "ratio_high": ratio * 1.1, "p_value": 0.01, "verdict": verdict,
        })
    return pd.DataFrame(rows)


def test_comparison_grows_with_its_cells(tmp_path):
    comparison = _comparison()
    path = plots.plot_comparison(comparison, tmp_path / "compare.png")
    assert_png(path, plots.comparison_figure_size(len(comparison)))


def test_comparison_without_any_ratio(tmp_path):
    comparison = _comparison().iloc[4:]
    path = plots.plot_comparison(comparison, tmp_path / "compare.png")
    assert_png(path, plots.comparison_figure_size(3))


def test_run_plots_in_every_format(tmp_path):
    frame = read_frame(DATA / "single_size.csv")
    written = plots.write_run_plots(frame, tmp_path, "run", ("png", "svg"))
    names = [p.name for p in written]
    assert names == ["run-step-time.png", "run-step-time.svg", "run-speedup.png",
                     "run-speedup.svg", "run-first-call.png", "run-first-call.svg"]
    assert all(p.parent == tmp_path for p in written)
    assert b"<svg" in (tmp_path / "run-speedup.svg").read_bytes()[:1000]


def test_a_single_size_still_plots(tmp_path):
    frame = read_frame(DATA / "single_size.csv")
    written = plots.write_run_plots(frame, tmp_path, "one")
    assert [p.name for p in written] == ["one-step-time.png", "one-speedup.png",
                                         "one-first-call.png"]
    assert_png(written[0], plots.grid_figure_size(1, 1))
    assert_png(written[1], plots.grid_figure_size(2, 1))
    assert_png(written[2], plots.grid_figure_size(2, 1))


def test_a_single_variant_still_plots(tf_backend, tmp_path):
    frame = read_frame(DATA / "single_variant.csv")
    figures = plots.draw_run_figures(frame, tmp_path, "xla", convergence=_runs(frame))
    # No eager cell: no speed-up figure, but the rest.
    assert [f.name for f in figures] == ["step-time", "first-call", "convergence"]
    assert_png(figures[0].paths[0], plots.grid_figure_size(1, 1))
    assert_png(figures[1].paths[0], plots.grid_figure_size(2, 1))


def test_unknown_formats_and_failed_runs_are_refused(multi, tmp_path):
    with pytest.raises(LinfitError, match=r"^figure format jpg is not one linfit draws; "
                                          r"valid: png, svg$"):
        plots.write_run_plots(multi, tmp_path, "x", ("png", "jpg"))
    failed = multi.assign(status="failed")
    with pytest.raises(LinfitError, match=r"^no cell in the results ran"):
        plots.write_run_plots(failed, tmp_path, "x")


def test_plot_command_draws_several_files_as_one_run(tmp_path, capsys):
    assert main(["plot", str(DATA / "single_size.csv"), str(DATA / "single_variant.csv"),
                 "-o", str(tmp_path), "--format", "svg", "--no-convergence"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / f"combined-{name}.svg")
                       for name in ("step-time", "speedup", "first-call")]
    assert all(Path(p).stat().st_size > 0 for p in printed)


def test_plot_command_refuses_a_cell_in_two_files(tmp_path, capsys):
    copy = tmp_path / "copy.csv"
    copy.write_bytes((DATA / "single_size.csv").read_bytes())
    status = main(["plot", str(DATA / "single_size.csv"), str(copy), "-o", str(tmp_path),
                   "--no-convergence"])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("linfit plot: error: cell tensorflow CPU:0 eager n=1000 float32 k=1 "
                            "appears twice:")
    assert f"both {DATA / 'single_size.csv'} and {copy} hold it" in error
    assert "\n" not in error


def test_plot_command_refuses_an_unknown_format(tmp_path, capsys):
    assert main(["plot", str(DATA / "single_size.csv"), "-o", str(tmp_path), "--format", "gif",
                 "--no-convergence"]) == 2
    assert "figure format gif is not one linfit draws" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("a-file", "cannot write figures into {tmp}/a-file: {tmp}/a-file is not a directory"),
        ("a-file/figures", "cannot write figures into {tmp}/a-file/figures: {tmp}/a-file is "
                           "not a directory (in the path of {tmp}/a-file/figures)"),
    ],
)
def test_plot_command_refuses_an_output_that_is_not_a_folder(output, message, tmp_path,
                                                             monkeypatch, capsys):
    (tmp_path / "a-file").write_text("keep me")
    monkeypatch.setattr(plot_command, "convergence_runs",
                        lambda frame: pytest.fail("trained before the output was checked"))
    assert main(["plot", str(DATA / "single_size.csv"), "-o", str(tmp_path / output)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"linfit plot: error: {message.format(tmp=tmp_path)}\n"
    assert captured.out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_plot_command_refuses_an_unwritable_output(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: try a folder that is no folder
        locked = Path("/proc/linfit-figures")
    assert main(["plot", str(DATA / "single_size.csv"), "-o", str(locked / "figures"),
                 "--no-convergence"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"linfit plot: error: cannot write figures into {locked}/figures: ")
    assert error.count("\n") == 1


@pytest.mark.parametrize(("name", "problem"), [
    ("fig.gif", "cannot tell the figure format of {path}: its name must end in one of .png, "
                ".svg, .pdf"),
    ("fig", "cannot tell the figure format of {path}"),
    ("folder", "{path} is a directory; give a file name ending in one of .png, .svg, .pdf"),
    ("file/fig.png", "cannot write {path}: {tmp}/file is not a directory"),
])
def test_figure_paths_are_checked_before_drawing(name, problem, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    path = tmp_path / name
    with pytest.raises(LinfitError) as raised:
        plots.check_figure_path(path)
    assert problem.format(path=path, tmp=tmp_path) in str(raised.value)
    assert plots.check_figure_path(tmp_path / "fine.svg") == tmp_path / "fine.svg"


def test_comparison_of_two_runs_from_linfit_compare(multi, tmp_path):
    from linfit.compare import compare_frames

    slower = multi["variant"] == "xla"
    new = multi.copy()
    new.loc[slower, "median_seconds"] *= 1.5
    new["samples_seconds"] = [tuple(1.5 * s for s in samples) if slow else samples
                              for samples, slow in zip(new["samples_seconds"], slower,
                                                       strict=True)]
    new = new[new["variant"] != "function"]  # only in base
    table = compare_frames(multi, new).table
    assert "slower" in set(table["verdict"]) and "only-in-base" in set(table["verdict"])
    path = plots.plot_comparison(table, tmp_path / "compare.png")
    assert_png(path, plots.comparison_figure_size(len(table)))


def _with_peaks(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a peak memory per cell: host figures everywhere (0 for the smallest
    size: a cell can add nothing), device figures on the GPU."""
    gpu = frame["device"].str.startswith("GPU")
    return frame.assign(
        peak_rss_bytes=np.where(frame["n_examples"] == frame["n_examples"].min(), 0,
                                frame["n_examples"] * 16),
        device_peak_bytes=np.where(gpu, frame["n_examples"] * 8, np.nan))


def test_peak_memory_has_a_row_for_the_host_and_one_for_the_device(multi, tmp_path):
    frame = _with_peaks(multi)
    panels = len(plots.memory_rows(frame)[["device", "dtype"]].drop_duplicates())
    path = plots.plot_peak_memory(frame, tmp_path / "memory.png")
    assert_png(path, plots.grid_figure_size(panels, 2))
    host_only = frame.assign(device_peak_bytes=np.nan)
    assert_png(plots.plot_peak_memory(host_only, tmp_path / "host.png"),
               plots.grid_figure_size(panels, 1))


def test_the_peak_memory_figure_is_drawn_only_where_a_run_measured_it(multi, tmp_path):
    names = [f.name for f in plots.draw_run_figures(_with_peaks(multi), tmp_path, "m")]
    assert names == ["step-time", "speedup", "first-call", "peak-memory"]
    # A file before schema 5 (or a run where nothing could be read): no figure.
    assert "peak-memory" not in [f.name for f in plots.draw_run_figures(multi, tmp_path, "o")]
    assert plots.memory_rows(multi.drop(columns=["peak_rss_bytes", "device_peak_bytes"])).empty
