"""The benchmark harness: options, matrix, statistics, the results file, the journal, and
whole ``pytest bench/`` runs on a tiny matrix (n=100 or 1000) in a subprocess: results paths
that cannot be written, SIGTERM and SIGKILL, a session that times nothing."""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

import background
import pandas as pd
import pytest

from linfit import floors, machine, memory
from linfit._errors import LinfitError
from linfit.backends import get_backend
from linfit.backends.base import Backend, Device, Trainer
from linfit.backends.variants import DEFAULT_TENSORFLOW_CONVENTION, KERAS_VARIANTS
from linfit.builds import git_commit
from linfit.cli import main
from linfit.convergence import CONVERGENCE_STEPS
from linfit.harness import (
    DEFAULT_SIZES,
    FULL_PROFILE_EXTRA_SIZES,
    OPTIONS,
    PROFILES,
    QUICK_MAX_TIME_SECONDS,
    Harness,
    HarnessOptions,
    RawTiming,
    available_backends,
    benchmark_settings,
    build_matrix,
    cell_id,
    format_speedups,
    make_run_id,
    parse_sizes,
    per_step_samples,
    resolve_options,
    sigterm_as_interrupt,
    step_statistics,
    trace_problems,
)
from linfit.machine import MACHINE_COLUMNS
from linfit.results import COLUMN_NAMES, COLUMNS, Cell, read_frame, read_results, write_results
from linfit.results.record import CellResult

ROOT = Path(__file__).resolve().parents[1]
STARTED = datetime(2026, 11, 27, 1, 30, 0, tzinfo=UTC)


def _resolve(values: dict[str, str] | None = None, environ: dict[str, str] | None = None,
             root: Path = Path("/project"), here: Path = Path("/elsewhere")) -> HarnessOptions:
    return resolve_options(values or {}, environ or {}, root, here)


# options


def test_parse_sizes_accepts_exponents_sorts_and_drops_repeats():
    assert parse_sizes("1e5, 1e3,1000") == (1000, 100_000)


@pytest.mark.parametrize("text", ["abc", "1.5", "1", "1e400", " , "])
def test_parse_sizes_rejects_what_is_not_a_size(text):
    with pytest.raises(LinfitError, match="--linfit-sizes/LINFIT_SIZES"):
        parse_sizes(text)


def test_defaults():
    options = _resolve()
    assert options.sizes == DEFAULT_SIZES == (1000, 100_000, 1_000_000)
    assert options.dtypes == ("float32",)
    assert options.steps_per_call == 100
    assert options.variants is None and options.devices is None
    assert options.backends == tuple(available_backends())
    assert options.results_dir == Path("/project/results")
    assert options.profile == "quick"


def test_a_flag_wins_over_its_environment_variable_and_an_empty_one_is_unset():
    environ = {"LINFIT_SIZES": "1e3", "LINFIT_DTYPES": "float64", "LINFIT_VARIANTS": ""}
    options = _resolve({"linfit_sizes": "100,200"}, environ)
    assert options.sizes == (100, 200)
    assert options.dtypes == ("float64",)
    assert options.variants is None


def test_lists_are_parsed_and_devices_normalised():
    options = _resolve({"linfit_variants": "eager, tensorflow:xla,eager",
                        "linfit_devices": "cpu:0,/device:GPU:1,gpu"})
    assert options.variants == ("eager", "tensorflow:xla")
    assert options.devices == ("CPU:0", "GPU:1", "GPU")


def test_full_profile_adds_the_large_sizes():
    assert _resolve({"linfit_profile": "full"}).sizes == DEFAULT_SIZES + FULL_PROFILE_EXTRA_SIZES
    assert _resolve({"linfit_profile": "full", "linfit_sizes": "100"}).sizes == (
        100, 10_000_000, 100_000_000)
    assert _resolve({"linfit_profile": "standard"}).sizes == DEFAULT_SIZES
    assert _resolve({}, {"LINFIT_PROFILE": "standard"}).profile == "standard"


def test_the_profiles_and_their_help():
    assert list(PROFILES) == ["quick", "standard", "full"]
    # Only the quick profile thins the matrix or shortens the timing.
    assert PROFILES["quick"].smallest_size_only == tuple(
        f"tensorflow:{name}" for name in KERAS_VARIANTS)
    assert PROFILES["quick"].max_time_seconds == QUICK_MAX_TIME_SECONDS == 0.25
    for name in ("standard", "full"):
        assert PROFILES[name].smallest_size_only == ()
        assert PROFILES[name].max_time_seconds is None
    help_text = next(o.help for o in OPTIONS if o.flag == "--linfit-profile")
    for name in PROFILES:
        assert f"{name}: " in help_text
    assert "model.fit ones (keras-*) at the smallest only" in help_text
    assert "(default: quick)" in help_text


def test_results_folder_given_relative_starts_where_pytest_was_started(tmp_path):
    assert _resolve({"linfit_results": "out"}).results_dir == Path("/elsewhere/out")
    assert _resolve({}, {"LINFIT_RESULTS": str(tmp_path)}).results_dir == tmp_path


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"linfit_profile": "huge"}, "--linfit-profile/LINFIT_PROFILE: unknown 'huge'; "
                                     "valid: quick, standard, full"),
        ({"linfit_dtypes": "float8"}, "--linfit-dtypes/LINFIT_DTYPES: unknown 'float8'"),
        ({"linfit_backends": "mxnet"}, "--linfit-backends/LINFIT_BACKENDS: unknown 'mxnet'"),
        ({"linfit_steps_per_call": "30"}, "must divide the 100 convergence steps: one of 1, "
                                          "2, 4, 5, 10, 20, 25, 50, 100"),
        ({"linfit_steps_per_call": "ten"}, "--linfit-steps-per-call/LINFIT_STEPS_PER_CALL"),
        ({"linfit_variants": ","}, "--linfit-variants/LINFIT_VARIANTS: ',' names nothing"),
    ],
)
def test_bad_option_values_name_the_option_and_what_is_valid(values, message):
    with pytest.raises(LinfitError) as raised:
        _resolve(values)
    assert message in str(raised.value)


# the matrix


def test_matrix_order_loop_steps_filters_and_memory_skips(tf_backend):
    options = _resolve({"linfit_sizes": "1000,100", "linfit_dtypes": "float32,float64",
                        "linfit_variants": "eager,tensorflow:xla-loop",
                        "linfit_backends": "tensorflow", "linfit_devices": "CPU:0",
                        "linfit_steps_per_call": "10"})
    # 40 kB free: n=1000 needs 4 * 8 kB of x and y in float32, 4 * 16 kB in float64.
    matrix = build_matrix(options, free_memory_bytes=lambda: 40_000)
    assert [entry.cell for entry in matrix] == [
        Cell("tensorflow", "CPU:0", variant, n, dtype, k, convention=convention)
        for n in (100, 1000) for dtype in ("float32", "float64")
        for variant, k, convention in (("eager", 1, ""),
                                       ("xla-loop", 10, DEFAULT_TENSORFLOW_CONVENTION))
    ]
    skipped = {(entry.cell.n_examples, entry.cell.dtype) for entry in matrix if entry.skip_reason}
    assert skipped == {(1000, "float64")}
    assert "GiB is available" in matrix[-1].skip_reason


def test_matrix_by_device_kind_and_unknown_memory(tf_backend):
    options = _resolve({"linfit_sizes": "100", "linfit_backends": "tensorflow",
                        "linfit_devices": "cpu"})
    matrix = build_matrix(options, free_memory_bytes=lambda: None)
    assert [entry.cell.variant for entry in matrix] == list(tf_backend.variants)
    assert not any(entry.skip_reason for entry in matrix)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"linfit_variants": "jit"}, "--linfit-variants/LINFIT_VARIANTS: no selected backend has "
                                     "variant 'jit'; valid: eager, tensorflow:eager, function"),
        ({"linfit_variants": "jax:eager"}, "no selected backend has variant 'jax:eager'"),
        ({"linfit_devices": "GPU:7"}, "--linfit-devices/LINFIT_DEVICES: no selected backend "
                                      "has device 'GPU:7'; valid: CPU:0, CPU"),
    ],
)
def test_matrix_rejects_unknown_variants_and_devices(tf_backend, values, message):
    if "GPU" in values.get("linfit_devices", "") and any(
            d.kind == "GPU" for d in tf_backend.devices()):
        pytest.skip("the message lists this machine's GPUs")
    with pytest.raises(LinfitError) as raised:
        build_matrix(_resolve({**values, "linfit_backends": "tensorflow"}))
    assert message in str(raised.value)


def _cells_by_variant(values: dict[str, str]) -> dict[str, list[int]]:
    """The sizes each TensorFlow variant runs at in the matrix ``values`` select."""
    matrix = build_matrix(_resolve({"linfit_backends": "tensorflow", "linfit_devices": "CPU:0",
                                    **values}), free_memory_bytes=lambda: None)
    sizes: dict[str, list[int]] = {}
    for entry in matrix:
        sizes.setdefault(entry.cell.variant, []).append(entry.cell.n_examples)
    return sizes


def test_quick_runs_keras_at_the_smallest_size_only(tf_backend):
    quick = _cells_by_variant({})
    standard = _cells_by_variant({"linfit_profile": "standard"})
    # Every variant family is in the quick profile, and every variant at some size.
    assert list(quick) == list(standard) == list(tf_backend.variants)
    for variant, sizes in quick.items():
        assert sizes == ([1000] if variant in KERAS_VARIANTS else list(DEFAULT_SIZES)), variant
    assert {"keras-eager", "keras-eager-spe"} < set(KERAS_VARIANTS)  # run_eagerly among them
    assert all(sizes == list(DEFAULT_SIZES) for sizes in standard.values())
    full = _cells_by_variant({"linfit_profile": "full"})
    assert all(sizes == list(DEFAULT_SIZES + FULL_PROFILE_EXTRA_SIZES)
               for sizes in full.values())
    # The smallest of the sizes asked for; and named variants run at every size.
    assert _cells_by_variant({"linfit_sizes": "1e6,1e4"})["keras-eager"] == [10_000]
    assert _cells_by_variant({"linfit_variants": "keras-eager,xla"}) == {
        "xla": list(DEFAULT_SIZES), "keras-eager": list(DEFAULT_SIZES)}


def test_the_quick_profile_times_each_cell_for_its_budget_unless_told_otherwise():
    quick, standard = _resolve(), _resolve({"linfit_profile": "standard"})
    # pytest-benchmark's default --benchmark-max-time (1 s): the profile's budget instead.
    assert benchmark_settings(quick) == {"disable_gc": True, "max_time": QUICK_MAX_TIME_SECONDS}
    assert benchmark_settings(quick, 1.0) == benchmark_settings(quick)
    # A --benchmark-max-time given wins; standard and full keep pytest-benchmark's own.
    assert benchmark_settings(quick, 0.05) == {"disable_gc": True}
    assert benchmark_settings(standard) == {"disable_gc": True}
    assert benchmark_settings(_resolve({"linfit_profile": "full"})) == {"disable_gc": True}


def test_cell_id_names_everything_and_the_steps_per_call():
    cell = Cell("tensorflow", "CPU:0", "xla-loop", 1_000_000, "float32", 100)
    assert cell_id(cell) == "tensorflow-xla-loop-CPU:0-n=1e+06-float32-k=100"


def test_run_id_holds_utc_time_host_and_commit():
    assert make_run_id(STARTED, "myhost", "abc1234567") == "20261127T013000Z-myhost-abc1234567"
    later_elsewhere = STARTED.astimezone(timezone(timedelta(hours=2)))
    assert make_run_id(later_elsewhere, "a b/c_d", "unknown") == "20261127T013000Z-a-b-c-d-unknown"


# statistics


def test_per_step_statistics_from_per_call_samples():
    samples = per_step_samples([2.0, 8.0, 4.0, 6.0], steps_per_call=2)
    assert samples == (1.0, 4.0, 2.0, 3.0)
    stats = step_statistics(samples)
    assert stats == pytest.approx({
        "rounds": 4, "min_seconds": 1.0, "median_seconds": 2.5, "mean_seconds": 2.5,
        "stddev_seconds": 1.2909944487358056, "iqr_seconds": 1.5, "max_seconds": 4.0,
    })
    assert step_statistics([0.5])["stddev_seconds"] == 0.0
    with pytest.raises(ValueError, match="at least one sample"):
        step_statistics([])


def test_trace_problems(tf_backend):
    xla, eager = tf_backend.variant("xla"), tf_backend.variant("eager")
    assert trace_problems(xla, 1) == [] and trace_problems(eager, 0) == []
    assert trace_problems(xla, 3) == ["xla retraced: 3 traces for one (device, n, dtype); "
                                      "something passed to the step changes its signature"]
    assert trace_problems(eager, 2) == ["eager is not compiled but reported 2 traces"]


def _row(variant: str, median: float | None, device: str = "CPU:0", n: int = 1000,
         backend: str = "tensorflow", convention: str = "") -> dict:
    return {"backend": backend, "device": device, "variant": variant, "n_examples": n,
            "dtype": "float32", "steps_per_call": 1, "replicas": 1, "convention": convention,
            "device_name": "a CPU", "loop": False,
            "status": "ok" if median else "failed", "median_seconds": median,
            "first_call_seconds": 0.1}


def test_speedup_table_lays_out_linfit_summary_speedups():
    frame = pd.DataFrame([
        _row("eager", 1e-3), _row("xla", 2.5e-4), _row("function", None),
        _row("xla", 1e-3, n=100), _row("eager", None, device="GPU:0"),
        _row("xla", 1e-4, device="GPU:0"),
        _row("eager", 5e-4, backend="jax"), _row("jit", 1e-5, backend="jax"),
    ])
    assert format_speedups(frame) == [
        "backend     device  n      dtype    eager/step  xla    function",
        "tensorflow  CPU:0   100    float32  -           -      -",
        "tensorflow  CPU:0   1,000  float32  1.00 ms     4.00x  failed",
        "tensorflow  GPU:0   1,000  float32  failed      -      -",
        "backend  device  n      dtype    eager/step  jit",
        "jax      CPU:0   1,000  float32  500 µs      50.00x",
    ]



def test_speedup_table_names_the_convention_of_a_variant_run_in_several():
    """--linfit-conventions all: one column per convention, not one column for all four."""
    frame = pd.DataFrame([
        _row("eager", 1e-3), _row("xla", 5e-4, convention="args"),
        _row("xla", 1e-4, convention="closure"), _row("function", 2e-4, convention="closure"),
    ])
    assert format_speedups(frame) == [
        "backend     device  n      dtype    eager/step  xla args  xla closure  function",
        "tensorflow  CPU:0   1,000  float32  1.00 ms     2.00x     10.00x       5.00x",
    ]


# one cell in this process, and the results file


def _options(tmp_path: Path) -> HarnessOptions:
    return _resolve({"linfit_backends": "tensorflow", "linfit_results": str(tmp_path)})


def _perf_counter_timer(rounds: int) -> Callable[[Trainer], RawTiming]:
    def time_calls(trainer: Trainer) -> RawTiming:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            trainer.call()
            times.append(time.perf_counter() - start)
        return RawTiming(tuple(times), iterations=1)

    return time_calls


def test_a_cell_record_and_the_file_never_overwrite(tf_backend, tmp_path):
    harness = Harness(_options(tmp_path), started=STARTED)
    result = harness.run_cell(Cell("tensorflow", "CPU:0", "xla-loop", 100, "float32", 10),
                              _perf_counter_timer(rounds=3))
    assert isinstance(result, CellResult)
    assert result.ok, result.message
    assert result.traces == 1 and result.placement == "CPU:0" and result.rounds == 3
    assert (result.check_placement, result.check_traces, result.check_convergence) == (
        "ok", "ok", "ok")
    assert str(result.reference) == "tensorflow eager CPU:0"
    assert result.final_w == pytest.approx(result.reference.w, rel=1e-5)
    assert result.final_w == pytest.approx(result.w_ols, abs=1e-3)
    assert result.median_seconds == sorted(result.per_step_seconds)[1]
    # The TensorFlow build it ran (issue 17).
    import tensorflow as tf

    assert result.facts["tensorflow_git_version"] == tf.version.GIT_VERSION != ""
    assert result.facts["tensorflow_commit"] == git_commit(tf.version.GIT_VERSION)

    taken = tmp_path / f"{harness.run_id}.csv"
    taken.write_text("someone else's results\n")
    first, second = harness.write(), harness.write()
    assert taken.read_text() == "someone else's results\n"
    assert (first.name, second.name) == (f"{harness.run_id}-2.csv", f"{harness.run_id}-3.csv")
    assert pd.read_csv(first).columns.tolist() == list(COLUMN_NAMES)
    frame = read_frame(first)
    assert frame.run_id.tolist() == [first.stem]
    assert frame.tensorflow_commit.tolist() == [git_commit(tf.version.GIT_VERSION)]
    assert frame.samples_seconds[0] == pytest.approx(result.per_step_seconds)
    assert frame.status.tolist() == ["ok"]
    assert frame.run_interrupted.tolist() == [False]


def test_cells_of_one_step_per_call_keep_their_convergence_run_for_the_figure(tf_backend,
                                                                               tmp_path):
    # The convergence figure reuses these instead of training again (bench/conftest.py);
    # a loop cell ran 10 steps a call, so its history is not every step, and is not kept.
    harness = Harness(_options(tmp_path), started=STARTED)
    eager = Cell("tensorflow", "CPU:0", "eager", 100, "float32", 1)
    for cell in (eager, Cell("tensorflow", "CPU:0", "xla-loop", 100, "float32", 10)):
        harness.run_cell(cell, _perf_counter_timer(rounds=2))
    (kept,) = harness.convergence_fits
    result = harness.results[0]
    assert (kept.variant, kept.device, kept.n_examples, kept.steps_per_call) == (
        "eager", "CPU:0", 100, 1)
    assert [record.step for record in kept.history] == list(range(CONVERGENCE_STEPS))
    assert (kept.final_w, kept.final_b) == (result.final_w, result.final_b)
    assert (kept.w_ols, kept.learning_rate) == (result.w_ols, harness.options.learning_rate)


def test_a_cell_records_the_machine_and_the_peak_memory_it_added(tf_backend, tmp_path):
    harness = Harness(_options(tmp_path), started=STARTED)
    result = harness.run_cell(Cell("tensorflow", "CPU:0", "eager", 100_000, "float32", 1),
                              _perf_counter_timer(rounds=2))
    assert result.ok, result.message
    facts = result.facts
    assert set(MACHINE_COLUMNS) <= set(facts)
    assert facts["logical_cores"] == os.cpu_count()
    assert facts["keras_version"] == importlib.metadata.version("keras")
    assert facts["device_peak_bytes"] is None  # a CPU cell
    if sys.platform.startswith("linux"):
        assert facts["load_average_start"] >= 0 and facts["memory_bytes"] > 0
        assert isinstance(facts["peak_rss_bytes"], int) and facts["peak_rss_bytes"] >= 0
    [written] = read_results(harness.write())
    assert {name: written.facts[name] for name in MACHINE_COLUMNS} == {
        name: facts[name] for name in MACHINE_COLUMNS}
    assert written.facts["peak_rss_bytes"] == facts["peak_rss_bytes"]
    if sys.platform.startswith("linux"):
        assert written.facts["load_average_end"] >= 0  # taken when the file was written


def test_a_machine_and_memory_that_cannot_be_read_leave_empty_columns(tf_backend, tmp_path,
                                                                     monkeypatch):
    unreadable = tmp_path / "a-folder"
    unreadable.mkdir()
    monkeypatch.setattr(memory, "STATUS_PATH", unreadable)
    monkeypatch.setattr(machine, "PROC_MEMINFO", unreadable)
    monkeypatch.setattr(machine, "DETECT_VIRT", str(tmp_path / "no-such-command"))
    monkeypatch.setattr(machine, "PROC_1_CGROUP", unreadable)
    monkeypatch.setattr(machine, "DOCKERENV", tmp_path / "none")
    monkeypatch.setattr(machine, "CONTAINERENV", tmp_path / "none")

    def no_load_average() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", no_load_average)
    harness = Harness(_options(tmp_path / "results"), started=STARTED)
    result = harness.run_cell(Cell("tensorflow", "CPU:0", "eager", 100, "float32", 1),
                              _perf_counter_timer(rounds=2))
    assert result.ok, result.message
    [written] = read_results(harness.write())
    assert (written.facts["peak_rss_bytes"], written.facts["memory_bytes"],
            written.facts["load_average_start"], written.facts["load_average_end"],
            written.facts["container"]) == (None, None, None, None, "")


def test_a_failing_cell_keeps_its_record_and_untimed_cells_write_nothing(tf_backend, tmp_path):
    harness = Harness(_options(tmp_path), started=STARTED)

    def broken_timer(trainer: Trainer) -> RawTiming:
        raise RuntimeError("the timer broke\nbadly")

    bad_k = Cell("tensorflow", "CPU:0", "eager", 100, "float32", 3)
    with pytest.raises(LinfitError, match="steps_per_call for tensorflow eager must be 1"):
        harness.run_cell(bad_k, _perf_counter_timer(rounds=1))
    with pytest.raises(RuntimeError):
        harness.run_cell(Cell("tensorflow", "CPU:0", "eager", 100, "float32", 1), broken_timer)
    harness.run_cell(Cell("tensorflow", "CPU:0", "function", 100, "float32", 1),
                     lambda trainer: trainer.call())  # timing disabled: called once, untimed
    statuses = [(result.cell.variant, result.status, result.message)
                for result in harness.results]
    assert statuses == [
        ("eager", "failed", "steps_per_call for tensorflow eager must be 1 (it is not a loop "
                            "variant), got 3"),
        ("eager", "failed", "RuntimeError: the timer broke badly"),
        ("function", "ok", ""),
    ]
    assert not harness.timed
    assert harness.write() is None and not list(tmp_path.iterdir())


def test_a_distributed_cell_is_timed_on_its_chiefs_own_clock(tf_backend, tmp_path):
    """The Trainer protocol: the harness asks every trainer for its own call times; a
    distributed one answers with its chief's, one sample per timed call, in place of the
    timer's (which would count the pipe). No isinstance on the trainer's kind."""
    harness = Harness(_options(tmp_path), started=STARTED)

    def time_calls(trainer: Trainer) -> RawTiming:
        for _ in range(3):
            trainer.call()
        return RawTiming((99.0,), iterations=7)  # the parent's clock: replaced

    cell = Cell("tensorflow", "CPU:0", "mirrored-function", 1000, "float32", 1, replicas=2)
    result = harness.run_cell(cell, time_calls)
    assert result.ok, result.message
    assert result.iterations == 1 and result.rounds == 3
    assert all(0 < seconds < 99.0 for seconds in result.per_call_seconds)


def test_every_finished_cell_is_in_the_journal_until_the_file_is_written(tf_backend, tmp_path):
    harness = Harness(_options(tmp_path / "results"), started=STARTED)
    harness.check_output()
    assert not (tmp_path / "results").exists()  # checked, not created
    harness.start_journal()
    journal = harness.journal.path
    cells = [Cell("tensorflow", "CPU:0", variant, 100, "float32", 1)
             for variant in ("eager", "function")]
    for count, cell in enumerate(cells, start=1):
        harness.run_cell(cell, _perf_counter_timer(rounds=2))
        # On disk before the next cell starts: header + one line per finished cell.
        assert len(journal.read_text().splitlines()) == 1 + count
    written = harness.write(interrupted=True)
    assert not journal.exists()
    results = read_results(written)
    assert [r.cell for r in results] == cells
    assert [r.facts["run_interrupted"] for r in results] == [True, True]


def test_left_over_journals_are_named_at_session_start(tmp_path):
    (tmp_path / "20261127T013000Z-h-abc.journal.jsonl").write_text("{}\n")
    harness = Harness(_options(tmp_path), started=STARTED)
    harness.check_output()
    assert harness.notes == [
        f"1 journal(s) of interrupted runs in {tmp_path}: turn each into a results file with "
        "`linfit recover JOURNAL`, then remove it (first: 20261127T013000Z-h-abc.journal.jsonl)"]


@pytest.mark.parametrize("kind", ["file", "under-a-file", "dangling-link"])
def test_an_unusable_results_folder_is_refused_before_anything_runs(tmp_path, kind):
    blocker = tmp_path / "taken"
    if kind == "dangling-link":
        blocker.symlink_to(tmp_path / "nowhere")
    else:
        blocker.write_text("")
    results = blocker / "sub" if kind == "under-a-file" else blocker
    harness = Harness(_options(results), started=STARTED)
    with pytest.raises(LinfitError, match=r"^--linfit-results/LINFIT_RESULTS: .*taken is "):
        harness.check_output()


class _FloorProbes(Backend):
    """TensorFlow's floor probes, faked: CPU:0 (of kind GPU, so that no NumPy probe runs)
    reads its 4000-byte probe in 10, 20 and 12.5 ms, round after round, and dispatches in
    20 us. Each probe call advances :attr:`now`, the clock the floors are measured with."""

    name = "tensorflow"
    variants = MappingProxyType({})

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = itertools.cycle((0.01, 0.02, 0.0125))
        self.rounds = 0
        self.broken = False

    @property
    def version(self) -> str:
        return "fake"

    def devices(self) -> list[Device]:
        return [Device(self.name, "CPU:0", "GPU", "Fake device", "")]

    def _make_trainer(self, variant, device, data, learning_rate, steps_per_call):
        raise NotImplementedError

    def _advance(self, seconds: float) -> Callable[[], None]:
        def call() -> None:
            self.now += seconds

        return call

    def read_probe(self, device, n_elements):
        if self.broken:
            raise RuntimeError("the probe broke")
        self.rounds += 1
        return self._advance(next(self.reads))

    def copy_probe(self, device, n_elements):
        return self._advance(0.04)

    def dispatch_probe(self, device):
        return self._advance(2e-5)

    def clock(self) -> float:
        return self.now


class _Clock:
    """The session's clock between floor rounds, set by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def probes(tmp_path, monkeypatch) -> _FloorProbes:
    """Fake floor probes measured on their own clock, and a floors cache under tmp_path."""
    fake = _FloorProbes()
    settings = {"probe_elements": 1000, "repeats": 3, "dispatch_calls": 2, "clock": fake.clock}
    monkeypatch.setattr("linfit.harness._floor_rounds.measure_floors",
                        functools.partial(floors.measure_floors, **settings))
    monkeypatch.setattr("linfit.harness._floor_rounds.load_or_measure",
                        functools.partial(floors.load_or_measure, **settings))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return fake


def _floors_session(tmp_path: Path, mode: str, probes: _FloorProbes, clock: _Clock,
                    interval: float = 60.0) -> Harness:
    options = _resolve({"linfit_backends": "tensorflow", "linfit_floors": mode,
                        "linfit_results": str(tmp_path / "results")})
    harness = Harness(options, started=STARTED, clock=clock, floor_backends=[probes],
                      floor_round_interval_seconds=interval)
    harness.check_output()
    harness.start_journal()
    harness.measure_floors()
    return harness


def _eager(n: int) -> Cell:
    return Cell("tensorflow", "CPU:0", "eager", n, "float32", 1)


def _journal_floor_rounds(harness: Harness) -> list[int]:
    lines = harness.journal.path.read_text().splitlines()[1:]
    return [json.loads(line)["floor_rounds"] for line in lines]


def test_measure_mode_takes_rounds_at_the_start_between_cells_and_at_the_end(
        tf_backend, tmp_path, probes):
    clock = _Clock()
    harness = _floors_session(tmp_path, "measure", probes, clock, interval=60.0)
    assert harness.floors.rounds == 1
    returned = []
    for now, n in ((0.0, 100), (59.0, 200), (61.0, 300), (100.0, 400)):
        clock.now = now
        returned.append(harness.run_cell(_eager(n), _perf_counter_timer(rounds=2)))
    # A round before the cell that started 61 s after the first round, and none before the
    # one 39 s after that. Each record has its floor as known when it finished; the journal
    # has the measurement only, written before any floor was computed (issue 20).
    assert harness.floors.rounds == 2
    assert [r.floor_rounds for r in returned] == [1, 1, 2, 2]
    assert _journal_floor_rounds(harness) == [None, None, None, None]
    results = read_results(harness.write())
    # The end round, and every row's floor computed again from all three rounds.
    assert probes.rounds == 3 and harness.floors.rounds == 3
    assert [r.floor_rounds for r in results] == [3, 3, 3, 3]
    # Read-bound: 8 n bytes at 4000 B per 10 ms (the best round), 20 ms in the worst.
    assert [r.floor_seconds for r in results] == pytest.approx([8 * n / 4e5 for n in
                                                                (100, 200, 300, 400)])
    assert [r.floor_spread for r in results] == pytest.approx([2.0] * 4)
    assert all(r.efficiency_high == pytest.approx(2 * r.efficiency) for r in results)
    assert harness.floors_note == "floors: 3 rounds, read floor spread 2.00x, dispatch spread 1.00x"
    assert not (tmp_path / "cache").exists()  # measure mode caches nothing


def test_measure_mode_rounds_stop_at_the_cap_and_keep_one_for_the_end(
        tf_backend, tmp_path, probes, monkeypatch):
    monkeypatch.setattr("linfit.harness._floor_rounds.MAX_SESSION_ROUNDS", 3)
    clock = _Clock()
    harness = _floors_session(tmp_path, "measure", probes, clock, interval=0.0)
    for n in (100, 200, 300):
        clock.now += 1000.0
        harness.run_cell(_eager(n), _perf_counter_timer(rounds=2))
    assert harness.floors.rounds == 2  # the start round, one between cells, then the cap
    harness.write()
    assert harness.floors.rounds == 3


def test_cache_mode_adds_a_round_per_session_to_the_machines_cache(tf_backend, tmp_path, probes):
    first = _floors_session(tmp_path, "cache", probes, _Clock())
    # No cache yet: a round now, cached at once, and one at the end.
    cache = next((tmp_path / "cache" / "linfit").iterdir())
    assert floors.read_floors(cache).rounds == 1
    first.run_cell(_eager(100), _perf_counter_timer(rounds=2))
    assert [r.floor_rounds for r in read_results(first.write())] == [2]
    assert floors.read_floors(cache).rounds == 2
    assert first.floors_note.startswith(f"floors: 2 rounds, read floor spread 2.00x, "
                                        f"dispatch spread 1.00x; cache {cache}")
    # The next session starts from the cache's rounds and adds one.
    second = _floors_session(tmp_path, "cache", probes, _Clock())
    assert second.floors.rounds == 2 and probes.rounds == 2
    second.run_cell(_eager(100), _perf_counter_timer(rounds=2))
    second.write()
    assert floors.read_floors(cache).rounds == 3
    assert second.floors_note.startswith("floors: 3 rounds (2 cached), read floor spread 2.00x")
    # An interrupted session measures no end round and leaves the cache as it was.
    third = _floors_session(tmp_path, "cache", probes, _Clock())
    third.run_cell(_eager(100), _perf_counter_timer(rounds=2))
    assert [r.floor_rounds for r in read_results(third.write(interrupted=True))] == [3]
    assert probes.rounds == 3 and floors.read_floors(cache).rounds == 3


def test_a_failing_floor_round_costs_no_result(tf_backend, tmp_path, probes):
    harness = _floors_session(tmp_path, "cache", probes, _Clock())
    harness.run_cell(_eager(100), _perf_counter_timer(rounds=2))
    probes.broken = True
    results = read_results(harness.write())
    assert [r.floor_rounds for r in results] == [1]
    assert "; the end floor round failed (RuntimeError: the probe broke)" in harness.floors_note


FLOOR_FIELDS = ("bytes_min", "read_bandwidth_bytes_per_second", "dispatch_floor_seconds",
                "floor_seconds", "floor_rounds", "floor_spread")


def _poison_cache(cache: Path) -> None:
    """Set the cache's figures to values that parse but are no times: NaN, inf, 0, < 0."""
    document = json.loads(cache.read_text())
    poison = itertools.cycle([float("nan"), float("inf"), 0.0, -1e-3])
    for device in document["devices"]:
        for measurement in device["measurements"]:
            measurement["samples_seconds"] = [next(poison)] * len(measurement["samples_seconds"])
    cache.write_text(json.dumps(document))


def test_a_cache_of_figures_that_are_not_times_costs_no_cell_and_warns_once(
        tf_backend, tmp_path, probes):
    """Issue 20, class 1: such a cache made every timed cell fail in the spread
    (ZeroDivisionError), and no CSV, journal or folder was written."""
    _floors_session(tmp_path / "first", "cache", probes, _Clock())  # caches one round
    cache = next((tmp_path / "cache" / "linfit").iterdir())
    _poison_cache(cache)
    harness = _floors_session(tmp_path, "cache", probes, _Clock())
    warnings = [note for note in harness.notes if "not a finite time" in note]
    assert warnings == [f"warning: 3 probe figures of the floors cache {cache} are not a "
                        "finite time > 0; left out of every floor (unknown)"]
    cells = [_eager(100), _eager(200)]
    for count, cell in enumerate(cells, start=1):
        result = harness.run_cell(cell, _perf_counter_timer(rounds=2))
        assert result.ok and result.timed, result.message
        assert all(getattr(result, name) is None for name in FLOOR_FIELDS)
        assert len(harness.journal.path.read_text().splitlines()) == 1 + count
    assert harness.floors_note.count("warning: floor columns unknown for 2 cells") == 1
    # Interrupted: no end round, so no usable floor at all; the CSV is written all the same.
    results = read_results(harness.write(interrupted=True))
    assert [(r.cell, r.status) for r in results] == [(cell, "ok") for cell in cells]
    assert all(getattr(r, name) is None for r in results for name in FLOOR_FIELDS)
    assert all(r.efficiency is None for r in results)
    assert read_frame(harness.written).efficiency.isna().all()


def test_a_failure_in_the_floor_columns_costs_no_cell_and_warns_once(
        tf_backend, tmp_path, probes, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("linfit.harness._floor_rounds.floor_columns", broken)
    harness = _floors_session(tmp_path, "measure", probes, _Clock())
    for n in (100, 200):
        assert harness.run_cell(_eager(n), _perf_counter_timer(rounds=2)).ok
    journal = harness.journal.path
    assert [json.loads(line)["status"] for line in journal.read_text().splitlines()[1:]] == [
        "ok", "ok"]
    results = read_results(harness.write())
    assert [r.status for r in results] == ["ok", "ok"]
    assert all(r.floor_seconds is None and r.efficiency is None for r in results)
    assert harness.floors_note.endswith(
        "; warning: floor columns unknown for 2 cells (tensorflow CPU:0 eager n=100 float32 "
        "k=1: ZeroDivisionError: float division by zero)")


def test_a_start_round_that_fails_leaves_the_floors_unknown_not_the_session(
        tf_backend, tmp_path, probes):
    probes.broken = True
    harness = _floors_session(tmp_path, "measure", probes, _Clock())
    assert harness.floors is None
    assert harness.floors_note == "floors not recorded: RuntimeError: the probe broke"
    assert harness.run_cell(_eager(100), _perf_counter_timer(rounds=2)).ok
    assert [r.floor_seconds for r in read_results(harness.write())] == [None]


def test_two_sessions_of_the_same_second_journal_and_write_under_their_own_names(tf_backend,
                                                                                   tmp_path):
    first, second = (Harness(_options(tmp_path), started=STARTED) for _ in range(2))
    for harness in (first, second):
        harness.start_journal()
        harness.run_cell(_eager(100), _perf_counter_timer(rounds=2))
    assert second.run_id == f"{first.run_id}-2"
    assert second.journal.path.name == f"{first.run_id}-2.journal.jsonl"
    assert first.journal.path.exists() and second.journal.path.exists()
    assert [second.write().name, first.write().name] == [f"{first.run_id}-2.csv",
                                                         f"{first.run_id}.csv"]
    assert read_frame(second.written).run_id.tolist() == [second.run_id]


def test_an_unusable_cache_folder_is_a_warning_and_floors_are_measured_uncached(
        tf_backend, tmp_path, probes, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    harness = _floors_session(tmp_path, "cache", probes, _Clock())
    assert harness.notes == [f"warning: the floors cache is not used: {tmp_path / 'file'} is not "
                             f"a directory (in the path of {tmp_path / 'file' / 'linfit'}); the "
                             "floors are measured for this run only"]
    assert harness.floors.rounds == 1
    assert harness.floors_note.startswith("floors: 1 round, ")
    assert "; not cached: " in harness.floors_note
    assert (tmp_path / "file").read_text() == ""


def test_sigterm_raises_keyboard_interrupt_inside_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
    assert signal.getsignal(signal.SIGTERM) is before


class _SignalInDel:
    """Sends SIGTERM to this process from its ``__del__``: Python runs the handler there,
    and what the handler raises is only reported as "Exception ignored"."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        len([])  # a call: the pending handler runs here, inside __del__


def test_sigterm_is_noted_even_where_its_keyboard_interrupt_is_lost(monkeypatch):
    """The flake of test_sigterm_writes_every_finished_cell...: a SIGTERM whose
    KeyboardInterrupt was raised inside a __del__ was lost, and the run ended with exit 0."""
    lost: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: lost.append(
        unraisable.exc_type))
    noted: list[str] = []
    with sigterm_as_interrupt(on_signal=noted.append):
        _SignalInDel()
    assert lost == [KeyboardInterrupt]  # the raise alone would have been lost
    assert noted == ["SIGTERM received"]


def test_results_readme_documents_every_column():
    readme = (ROOT / "results" / "README.md").read_text()
    missing = [column.name for column in COLUMNS if f"| `{column.name}` |" not in readme]
    assert missing == []


# whole runs of pytest bench/ on a tiny matrix


# pytest-benchmark's timing of the tiny runs: short, and at least 3 rounds a cell.
TINY_TIMING = ("--benchmark-max-time", "0.01", "--benchmark-min-rounds", "3")


def _bench_command(tmp_path: Path, *args: str, only: str = "--benchmark-only",
                   environ: dict[str, str] | None = None, timing: tuple[str, ...] = TINY_TIMING,
                   ) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a tiny ``pytest bench/`` run (TensorFlow only)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LINFIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    # One floors cache for the test session's runs (pytest's base temporary folder), never
    # the user's: each run in cache mode adds a round to the cache it uses.
    env["XDG_CACHE_HOME"] = str(tmp_path.parent / "floors-cache")
    env.update(environ or {})
    results = [] if "--linfit-results" in args else ["--linfit-results",
                                                     str(tmp_path / "results")]
    # Hypothesis's pytest plugin imports Hypothesis (most of a second) in a run that has
    # no property test.
    command = [sys.executable, "-m", "pytest", str(ROOT / "bench"), "-p", "no:cacheprovider",
               "-p", "no:hypothesispytest",
               only, "--linfit-backends", "tensorflow", "--linfit-sizes", "100", *results,
               *timing, *args]
    return command, env


def _run_bench(tmp_path: Path, *args: str, only: str = "--benchmark-only",
               environ: dict[str, str] | None = None, timing: tuple[str, ...] = TINY_TIMING,
               ) -> subprocess.CompletedProcess[str]:
    # The time limit: a session that hangs (issue 10's results-path loop) fails the test.
    command, env = _bench_command(tmp_path, *args, only=only, environ=environ, timing=timing)
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=env)


# The runs below that need nothing from the tests before them run beside the session
# (tests/background.py), each in a folder of its own: `tmp_path` is the test's, not theirs.


def _bench_beside(name: str, *args: str, only: str = "--benchmark-only",
                  environ: dict[str, str] | None = None, timing: tuple[str, ...] = TINY_TIMING,
                  ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """:func:`_run_bench` in a new folder, from a job beside the session: the run and the
    folder (where its results folder would be)."""
    tmp_path = background.folder(name)
    command, env = _bench_command(tmp_path, *args, only=only, environ=environ, timing=timing)
    return background.run(command, cwd=tmp_path, env=env, timeout=300), tmp_path


def _queue_beside_if_tensorflow(key: str, job: Callable[[], object]) -> None:
    # Without TensorFlow the tests skip (tf_backend): no run to queue.
    if "tensorflow" in available_backends():
        background.queue(key, job)


def _bench_run() -> tuple[subprocess.CompletedProcess[str], Path]:
    # LINFIT_NO_PLOTS=0 means: draw the figures (test_bench_run_draws_its_figures...). No
    # --benchmark-max-time: each cell gets the quick profile's (test_bench_run_keeps_...).
    run, tmp_path = _bench_beside("bench", "-p", "harness_faults", "--linfit-variants",
                                  "eager,xla-loop,retrace,slow-lr", "--linfit-steps-per-call",
                                  "10", "--benchmark-json", "bench.json",
                                  environ={"LINFIT_NO_PLOTS": "0"},
                                  timing=("--benchmark-min-rounds", "3"))
    written = list((tmp_path / "results").glob("*.csv"))
    assert len(written) == 1, run.stdout + run.stderr
    return run, written[0]


def start_bench_run() -> None:
    _queue_beside_if_tensorflow("bench run", _bench_run)


@pytest.fixture(scope="module")
def bench_run(tf_backend) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run of two real variants and two broken ones (tests/harness_faults.py), and its CSV."""
    return background.result("bench run", start_bench_run)


beside_bench_run = pytest.mark.background.with_args(start_bench_run)


@beside_bench_run
def test_bench_run_writes_a_csv_with_a_row_per_cell(bench_run):
    _, written = bench_run
    frame = read_frame(written)
    assert pd.read_csv(written).columns.tolist() == list(COLUMN_NAMES)
    assert frame.variant.tolist() == ["eager", "xla-loop", "retrace", "slow-lr"]
    assert frame.steps_per_call.tolist() == [1, 10, 1, 1]
    assert frame.status.tolist() == ["ok", "ok", "failed", "failed"]
    assert frame.traces.tolist()[:2] == [0, 1]
    assert all(len(samples) == rounds >= 3
               for samples, rounds in zip(frame.samples_seconds, frame.rounds, strict=True))


@beside_bench_run
def test_bench_run_fails_retraced_and_unconverged_cells_and_keeps_their_rows(bench_run):
    run, written = bench_run
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed, 2 passed" in run.stdout
    frame = read_frame(written).set_index("variant")
    assert frame.message["retrace"] == (
        "retrace retraced: 2 traces for one (device, n, dtype); something passed to the step "
        "changes its signature")
    assert frame.message["slow-lr"].startswith("W=")
    assert "differs from the reference" in frame.message["slow-lr"]
    assert "from the OLS" in frame.message["slow-lr"]
    assert frame.median_seconds.notna().all()  # failing after timing keeps the timings
    assert frame.message["eager"] == ""


@beside_bench_run
def test_bench_run_prints_the_path_and_the_speedups(bench_run):
    run, written = bench_run
    assert f"results: {written} (4 cells, 2 ok, 2 failed)" in run.stdout
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "eager/step" in line)
    assert lines[header].split() == ["backend", "device", "n", "dtype", "eager/step",
                                     "xla-loop", "retrace", "slow-lr"]
    values = lines[header + 1].split()
    assert values[:4] == ["tensorflow", "CPU:0", "100", "float32"]
    assert values[-3].endswith("x") and values[-2:] == ["failed", "failed"]
    assert "benchmark 'CPU:0 n=100 float32, time per call of k steps': 4 tests" in run.stdout


@beside_bench_run
def test_bench_run_keeps_pytest_benchmark_per_call_json(bench_run):
    _, written = bench_run
    benchmarks = json.loads((written.parent.parent / "bench.json").read_text())["benchmarks"]
    by_id = {b["param"]: b for b in benchmarks}
    loop = by_id[cell_id(Cell("tensorflow", "CPU:0", "xla-loop", 100, "float32", 10,
                              convention=DEFAULT_TENSORFLOW_CONVENTION))]
    assert loop["extra_info"]["steps_per_call"] == 10
    assert loop["extra_info"]["traces"] == 1
    # Each cell's mark reached pytest-benchmark: GC off, the quick profile's time per cell,
    # and the rounds --benchmark-min-rounds asks for at least.
    for benchmark in benchmarks:
        assert benchmark["options"]["disable_gc"] is True
        assert benchmark["options"]["max_time"] == QUICK_MAX_TIME_SECONDS
        assert benchmark["options"]["min_rounds"] == 3 <= benchmark["stats"]["rounds"]
    # pytest-benchmark's numbers are per call; the CSV's per step.
    frame = read_frame(written).set_index("variant")
    assert frame.median_seconds["xla-loop"] == pytest.approx(loop["stats"]["median"] / 10)


def start_disabled_run() -> None:
    _queue_beside_if_tensorflow("disabled run", functools.partial(
        _bench_beside, "disabled", "--linfit-variants", "tensorflow:xla",
        only="--benchmark-disable"))


@pytest.mark.background.with_args(start_disabled_run)
def test_bench_run_with_benchmarks_disabled_writes_nothing(tf_backend):
    run, tmp_path = background.result("disabled run", start_disabled_run)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no results CSV written" in run.stdout
    assert not (tmp_path / "results").exists()


@beside_bench_run
def test_bench_run_records_the_floors_and_efficiency(bench_run):
    run, written = bench_run
    ok = read_frame(written).query("status == 'ok'")
    assert (ok.bytes_min == 2 * 100 * 4).all()
    floors = [max(row.bytes_min / row.read_bandwidth_bytes_per_second,
                  row.dispatch_floor_seconds / row.steps_per_call)
              for row in ok.itertuples()]
    assert ok.floor_seconds.tolist() == pytest.approx(floors)
    assert ok.efficiency.tolist() == pytest.approx((ok.floor_seconds / ok.median_seconds).tolist())
    assert (ok.floor_rounds >= 1).all() and (ok.floor_spread >= 1).all()
    assert "floors: " in run.stdout and " rounds" in run.stdout


@beside_bench_run
def test_bench_run_draws_its_figures_beside_the_csv(bench_run):
    run, written = bench_run
    for name in ("step-time", "speedup", "first-call", "convergence"):
        figure = written.with_name(f"{written.stem}-{name}.png")
        assert figure.stat().st_size > 0, name
        assert f"figure: {figure}" in run.stdout


def _poisoned_cache(backend: Backend, cache_home: Path) -> Path:
    """This machine's floors cache for ``backend`` at the default probe settings, holding
    one round whose figures parse but are no times: NaN, inf, 0 and negative."""
    poison = itertools.cycle([float("nan"), float("inf"), 0.0, -1e-3])
    key = floors.floors_key([backend])
    kinds = [("read", backend.name, 4), ("copy", backend.name, 8), ("dispatch", backend.name, 0),
             ("read", "numpy", 4), ("copy", "numpy", 8)]
    devices = tuple(
        floors.DeviceFloors(device.id, device.kind, device.name, floors.DEFAULT_PROBE_ELEMENTS,
                            floors.DEFAULT_REPEATS, tuple(
            floors.ProbeMeasurement(kind, probe, per_element * floors.DEFAULT_PROBE_ELEMENTS,
                                    1, (next(poison),) * floors.DEFAULT_REPEATS, 0,
                                    "2026-11-27T00:00:00+00:00")
            for kind, probe, per_element in kinds
            if probe != "numpy" or device.kind == "CPU"))
        for device in backend.devices())
    path = cache_home / "linfit" / floors.cache_file_name(key)
    path.parent.mkdir(parents=True)
    return floors.write_floors(floors.Floors(tuple(key.items()), "2026-11-27T00:00:00+00:00",
                                             devices), path)


def _poisoned_bench(tmp_path: Path, cache: Path,
                    ) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    command, env = _bench_command(tmp_path, "-p", "harness_broken_plots", "--linfit-variants",
                                  "eager,function", environ={
                                      "LINFIT_NO_PLOTS": "0",
                                      "XDG_CACHE_HOME": str(tmp_path / "cache")})
    run = background.run(command, cwd=tmp_path, env=env, timeout=300)
    return run, cache, tmp_path / "results"


def start_poisoned_run() -> None:
    """Write the poisoned cache here (it asks TensorFlow for this machine's devices, which a
    job may not), then queue the run beside the session."""
    if background.queued("poisoned run") or "tensorflow" not in available_backends():
        return
    tmp_path = background.folder("poisoned")
    cache = _poisoned_cache(get_backend("tensorflow"), tmp_path / "cache")
    background.queue("poisoned run", functools.partial(_poisoned_bench, tmp_path, cache))


@pytest.fixture(scope="module")
def poisoned_run(tf_backend) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """A run whose floors cache holds figures that are no times and whose figures fail: the
    run, the cache, the results folder."""
    return background.result("poisoned run", start_poisoned_run)


beside_poisoned_run = pytest.mark.background.with_args(start_poisoned_run)


@beside_poisoned_run
def test_a_cache_of_figures_that_are_not_times_costs_no_cell_of_a_bench_run(poisoned_run):
    """Issue 20, class 1: the run wrote no CSV, no journal, not even the results folder."""
    run, cache, results = poisoned_run
    assert run.returncode == 0, run.stdout + run.stderr
    written = list(results.glob("*.csv"))
    assert len(written) == 1, run.stdout + run.stderr
    results = read_results(written[0])
    assert [(r.cell.variant, r.status) for r in results] == [("eager", "ok"), ("function", "ok")]
    # The cached round is unknown; the floors are the end round's alone.
    assert [r.floor_rounds for r in results] == [1, 1]
    assert all(r.floor_spread == 1.0 and 0 < r.efficiency < float("inf") for r in results)
    warnings = [line for line in run.stdout.splitlines() if "not a finite time > 0" in line]
    assert len(warnings) == 1 and f"of the floors cache {cache} are" in warnings[0]


@beside_poisoned_run
def test_figures_that_fail_cost_no_result_and_warn_once(poisoned_run):
    run, _, results = poisoned_run
    assert run.stdout.count("warning: figures not drawn (RuntimeError: the figure broke)") == 1
    assert len(list(results.glob("*.csv"))) == 1 and not list(results.glob("*.png"))


def _baseline_from(source: Path, target: Path, time_factor: float) -> Path:
    """The ok cells of ``source`` as a baseline whose times are ``time_factor`` times
    theirs."""
    return write_results([replace(result, per_call_seconds=tuple(
                              seconds * time_factor for seconds in result.per_call_seconds))
                          for result in read_results(source) if result.ok], target)


GATE_CASES = [(0.5, 1, "errors: the gate fails"), (3.0, 0, "no regression: the gate passes")]


def _gate_run(time_factor: float) -> tuple[subprocess.CompletedProcess[str], Path]:
    _, written = background.result("bench run", start_bench_run)
    tmp_path = background.folder(f"gate-{time_factor}")
    # Half the time in the baseline: this run is twice as slow, far beyond noise. The gate
    # reads times only: no floors (bench_run checks them), no figures.
    baseline = _baseline_from(written, tmp_path / "baseline.csv", time_factor)
    command, env = _bench_command(tmp_path, "--linfit-variants", "eager,xla-loop",
                                  "--linfit-steps-per-call", "10", "--benchmark-min-rounds",
                                  "10", "--linfit-no-plots", "--linfit-floors", "off",
                                  "--linfit-baseline", str(baseline))
    return background.run(command, cwd=tmp_path, env=env, timeout=300), baseline


def start_gate_run(time_factor: float) -> None:
    start_bench_run()
    _queue_beside_if_tensorflow(f"gate run {time_factor}",
                                functools.partial(_gate_run, time_factor))


@pytest.mark.parametrize(("time_factor", "status", "verdict"), [
    pytest.param(*case, marks=pytest.mark.background.with_args(
        functools.partial(start_gate_run, case[0]))) for case in GATE_CASES])
def test_baseline_gate_fails_the_session_on_a_regression_only(bench_run, time_factor, status,
                                                             verdict):
    run, baseline = background.result(f"gate run {time_factor}",
                                      functools.partial(start_gate_run, time_factor))
    assert run.returncode == status, run.stdout + run.stderr
    assert f"linfit check against {baseline}" in run.stdout
    assert verdict in run.stdout
    assert "not the drift between runs" in run.stdout
    if status:
        assert "error: performance: tensorflow CPU:0 " in run.stdout


def test_an_unusable_baseline_stops_the_run_before_timing(tf_backend, tmp_path):
    run = _run_bench(tmp_path, "--linfit-baseline", "missing.csv")
    assert run.returncode == 4
    assert f"--linfit-baseline: {tmp_path / 'missing.csv'}: no such file" in run.stderr
    assert not (tmp_path / "results").exists()


# nothing measured is lost: bad results paths, SIGTERM, SIGKILL; nothing timed is no success

# n=1000, the eager variant: the cheapest real cell; floors off, nothing drawn.
SMALL = ("--linfit-sizes", "1000", "--linfit-floors", "off", "--linfit-no-plots",
         "--benchmark-max-time", "0.02")


@pytest.mark.parametrize("kind", ["regular-file", "dangling-symlink", "/dev/full"])
def test_a_results_path_that_is_no_folder_stops_the_run_before_timing(tf_backend, tmp_path,
                                                                       kind):
    target = {"regular-file": tmp_path / "file", "dangling-symlink": tmp_path / "link",
              "/dev/full": Path("/dev/full")}[kind]
    if kind == "regular-file":
        target.write_text("not a folder\n")
    elif kind == "dangling-symlink":
        target.symlink_to(tmp_path / "nowhere")
    elif not target.exists():
        pytest.skip("no /dev/full here")
    run = _run_bench(tmp_path, *SMALL, "--linfit-variants", "eager",
                     "--linfit-results", str(target))
    assert run.returncode == 4, run.stdout + run.stderr
    assert f"--linfit-results/LINFIT_RESULTS: {target} is " in run.stderr
    assert "test_step_time" not in run.stdout  # nothing ran
    if kind == "regular-file":
        assert target.read_text() == "not a folder\n"


def _run_that_times_no_cell() -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    _, written = background.result("bench run", start_bench_run)
    # 1e13 examples need terabytes: every cell is skipped for memory.
    run, tmp_path = _bench_beside("no-cell", "--linfit-sizes", "1e13", "--linfit-floors", "off",
                                  "--linfit-variants", "eager", "--linfit-baseline",
                                  str(written))
    return run, tmp_path, written


def start_run_that_times_no_cell() -> None:
    start_bench_run()
    _queue_beside_if_tensorflow("run that times no cell", _run_that_times_no_cell)


@pytest.mark.background.with_args(start_run_that_times_no_cell)
def test_a_session_that_timed_no_cell_fails_and_so_does_its_gate(bench_run):
    run, tmp_path, written = background.result("run that times no cell",
                                               start_run_that_times_no_cell)
    assert run.returncode == 5, run.stdout + run.stderr
    assert "no cell was timed" in run.stdout
    assert f"nothing was compared with {written}" in run.stdout
    assert "the gate fails" in run.stdout
    assert not (tmp_path / "results").exists()


def test_a_boolean_variable_that_is_no_boolean_is_a_usage_error(tmp_path):
    run = _run_bench(tmp_path, environ={"LINFIT_NO_PLOTS": "maybe"})
    assert run.returncode == 4
    assert "LINFIT_NO_PLOTS='maybe' is not a boolean" in run.stderr


def _signal_after(name: str, signum: int, finished: int,
                  ) -> tuple[subprocess.CompletedProcess[str], Path, int]:
    """From a job beside the session: start a run of 10 cells (n=1000 and 2000) in a new
    folder, send ``signum`` once ``finished`` cells are in its journal; the run, its results
    folder, and the cells journaled by then."""
    folder = background.folder(name)
    command, env = _bench_command(folder, "--linfit-sizes", "1000,2000", "--linfit-floors",
                                  "off", "--linfit-no-plots", "--benchmark-max-time", "0.2")
    results = folder / "results"
    journaled = 0
    with background.child(command, cwd=folder, env=env) as process:
        deadline = time.monotonic() + 240
        while journaled < finished and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            journals = list(results.glob("*.journal.jsonl"))
            if journals:
                journaled = len(journals[0].read_text().splitlines()) - 1  # less the header
        os.kill(process.pid, signum)
        stdout, stderr = process.communicate(timeout=120)
    run = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    assert journaled >= finished, run.stdout + run.stderr
    return run, results, journaled


def start_sigterm_run() -> None:
    _queue_beside_if_tensorflow("sigterm run", functools.partial(
        _signal_after, "sigterm", signal.SIGTERM, finished=2))


@pytest.mark.background.with_args(start_sigterm_run)
def test_sigterm_writes_every_finished_cell_and_says_the_run_was_interrupted(tf_backend):
    run, results, journaled = background.result("sigterm run", start_sigterm_run)
    assert run.returncode == 2, run.stdout + run.stderr  # pytest's "interrupted"
    written = list(results.glob("*.csv"))
    assert len(written) == 1, run.stdout + run.stderr
    records = read_results(written[0])
    # Every cell journaled when the signal was sent, and at most the one in flight besides.
    assert journaled <= len(records) <= journaled + 1 < 10
    assert all(record.facts["run_interrupted"] for record in records)
    assert "the run was interrupted" in run.stdout
    assert not list(results.glob("*.journal.jsonl"))


# A plugin for a bench run (-p): SIGTERM inside a __del__ just before the second cell's call,
# so the handler's KeyboardInterrupt is lost, as it can be when the signal lands in a
# framework's finaliser.
SIGTERM_IN_DEL_PLUGIN = """\
import os
import signal

import pytest


class SignalInDel:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        len([])


calls = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    calls.append(item.nodeid)
    if len(calls) == 2:
        SignalInDel()
    return (yield)
"""


def _sigterm_in_del_run() -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = background.folder("sigterm-in-del")
    (folder / "sigterm_in_del.py").write_text(SIGTERM_IN_DEL_PLUGIN)
    command, env = _bench_command(folder, *SMALL, "--linfit-variants", "eager,function,xla",
                                  "-p", "sigterm_in_del")
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env["PYTHONPATH"]])
    return background.run(command, cwd=folder, env=env, timeout=300), folder / "results"


def start_sigterm_in_del_run() -> None:
    _queue_beside_if_tensorflow("sigterm in del run", _sigterm_in_del_run)


@pytest.mark.background.with_args(start_sigterm_in_del_run)
def test_a_sigterm_whose_interrupt_is_lost_still_ends_the_run_after_the_cell(tf_backend):
    run, results = background.result("sigterm in del run", start_sigterm_in_del_run)
    assert "KeyboardInterrupt" in run.stdout + run.stderr  # reported as lost in __del__
    assert run.returncode == 2, run.stdout + run.stderr  # interrupted, not a success
    records = read_results(next(results.glob("*.csv")))
    # The cell in flight when the signal came finishes; the third never starts.
    assert [record.cell.variant for record in records] == ["eager", "function"]
    assert all(record.facts["run_interrupted"] for record in records)
    assert "the run was interrupted" in run.stdout
    assert not list(results.glob("*.journal.jsonl"))


def start_killed_run() -> None:
    _queue_beside_if_tensorflow("killed run", functools.partial(
        _signal_after, "killed", signal.SIGKILL, finished=2))


@pytest.mark.background.with_args(start_killed_run)
def test_a_killed_run_is_recovered_from_its_journal(tf_backend, tmp_path, capsys):
    run, results, journaled = background.result("killed run", start_killed_run)
    assert run.returncode == -signal.SIGKILL
    assert not list(results.glob("*.csv"))
    journal = next(results.glob("*.journal.jsonl"))
    assert main(["recover", str(journal), "-o", str(tmp_path / "recovered")]) == 0
    out = capsys.readouterr().out
    written = next((tmp_path / "recovered").glob("*.csv"))
    assert f"into {written}" in out
    records = read_results(written)
    assert len(records) >= journaled  # the journal may have grown before the kill landed
    assert f"recovered {len(records)} finished cells" in out
    assert all(record.facts["run_interrupted"] for record in records)
    assert written.stem == journal.name.removesuffix(".journal.jsonl")
    # Never over a file: a second recovery gets another name; the journal is only read.
    text = journal.read_text()
    assert main(["recover", str(journal), "-o", str(tmp_path / "recovered")]) == 0
    assert len(list((tmp_path / "recovered").glob("*.csv"))) == 2
    assert journal.read_text() == text
