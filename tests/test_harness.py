"""The benchmark harness: options, matrix, statistics, the results file, and whole
``pytest bench/`` runs on a tiny matrix (n=100) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from linfit._errors import LinfitError
from linfit.harness import (
    DEFAULT_SIZES,
    FULL_PROFILE_EXTRA_SIZES,
    Harness,
    HarnessOptions,
    RawTiming,
    available_backends,
    build_matrix,
    cell_id,
    format_speedups,
    make_run_id,
    parse_sizes,
    per_step_samples,
    resolve_options,
    step_statistics,
    trace_problems,
)
from linfit.results import COLUMN_NAMES, COLUMNS, Cell, read_results, write_results

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
    assert options.reference_backend == "tensorflow"


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


def test_results_folder_given_relative_starts_where_pytest_was_started(tmp_path):
    assert _resolve({"linfit_results": "out"}).results_dir == Path("/elsewhere/out")
    assert _resolve({}, {"LINFIT_RESULTS": str(tmp_path)}).results_dir == tmp_path


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"linfit_profile": "huge"}, "--linfit-profile/LINFIT_PROFILE: unknown 'huge'; "
                                     "valid: default, full"),
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
        Cell("tensorflow", "CPU:0", variant, n, dtype, k)
        for n in (100, 1000) for dtype in ("float32", "float64")
        for variant, k in (("eager", 1), ("xla-loop", 10))
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
        "min_seconds": 1.0, "median_seconds": 2.5, "mean_seconds": 2.5,
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
         backend: str = "tensorflow") -> dict:
    return {"backend": backend, "device": device, "variant": variant, "n_examples": n,
            "dtype": "float32", "steps_per_call": 1, "device_name": "a CPU", "loop": False,
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


# one cell in this process, and the results file


def _options(tmp_path: Path) -> HarnessOptions:
    return _resolve({"linfit_backends": "tensorflow", "linfit_results": str(tmp_path)})


def _perf_counter_timer(rounds: int) -> Callable[[Callable[[], None]], RawTiming]:
    def time_calls(call: Callable[[], None]) -> RawTiming:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return RawTiming(tuple(times), iterations=1)

    return time_calls


def test_a_cell_row_and_the_file_never_overwrite(tf_backend, tmp_path):
    harness = Harness(_options(tmp_path), started=STARTED)
    row = harness.run_cell(Cell("tensorflow", "CPU:0", "xla-loop", 100, "float32", 10),
                           _perf_counter_timer(rounds=3))
    assert row["status"] == "ok", row["message"]
    assert row["traces"] == 1 and row["placement"] == "CPU:0" and row["rounds"] == 3
    assert row["final_w"] == pytest.approx(row["w_ols"], abs=1e-3)
    assert row["median_seconds"] == sorted(row["samples_seconds"])[1]

    taken = tmp_path / f"{harness.run_id}.csv"
    taken.write_text("someone else's results\n")
    first, second = harness.write(), harness.write()
    assert taken.read_text() == "someone else's results\n"
    assert (first.name, second.name) == (f"{harness.run_id}-2.csv", f"{harness.run_id}-3.csv")
    assert pd.read_csv(first).columns.tolist() == list(COLUMN_NAMES)
    frame = read_results(first)
    assert frame.run_id.tolist() == [first.stem]
    assert frame.samples_seconds[0] == pytest.approx(row["samples_seconds"])
    assert frame.status.tolist() == ["ok"]


def test_a_failing_cell_keeps_its_row_and_untimed_cells_write_nothing(tf_backend, tmp_path):
    harness = Harness(_options(tmp_path), started=STARTED)

    def broken_timer(call: Callable[[], None]) -> RawTiming:
        raise RuntimeError("the timer broke\nbadly")

    bad_k = Cell("tensorflow", "CPU:0", "eager", 100, "float32", 3)
    with pytest.raises(LinfitError, match="steps_per_call for tensorflow eager must be 1"):
        harness.run_cell(bad_k, _perf_counter_timer(rounds=1))
    with pytest.raises(RuntimeError):
        harness.run_cell(Cell("tensorflow", "CPU:0", "eager", 100, "float32", 1), broken_timer)
    harness.run_cell(Cell("tensorflow", "CPU:0", "function", 100, "float32", 1),
                     lambda call: call())  # pytest-benchmark disabled: called once, untimed
    statuses = [(row["variant"], row["status"], row["message"]) for row in harness.rows]
    assert statuses == [
        ("eager", "failed", "steps_per_call for tensorflow eager must be 1 (it is not a loop "
                            "variant), got 3"),
        ("eager", "failed", "RuntimeError: the timer broke badly"),
        ("function", "ok", ""),
    ]
    assert not harness.timed
    assert harness.write() is None and not list(tmp_path.iterdir())


def test_results_readme_documents_every_column():
    readme = (ROOT / "results" / "README.md").read_text()
    missing = [column.name for column in COLUMNS if f"| `{column.name}` |" not in readme]
    assert missing == []


# whole runs of pytest bench/ on a tiny matrix


def _run_bench(tmp_path: Path, *args: str, only: str = "--benchmark-only",
               ) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("LINFIT_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"),
                                                          environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", str(ROOT / "bench"), "-p", "no:cacheprovider",
               only, "--linfit-backends", "tensorflow", "--linfit-sizes", "100",
               "--linfit-results", str(tmp_path / "results"), "--benchmark-max-time", "0.01",
               "--benchmark-min-rounds", "3", *args]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=environ)


@pytest.fixture(scope="module")
def bench_run(tf_backend, tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run of two real variants and two broken ones (tests/harness_faults.py), and its CSV."""
    tmp_path = tmp_path_factory.mktemp("bench")
    run = _run_bench(tmp_path, "-p", "harness_faults", "--linfit-variants",
                     "eager,xla-loop,retrace,slow-lr", "--linfit-steps-per-call", "10",
                     "--benchmark-json", "bench.json")
    written = list((tmp_path / "results").glob("*.csv"))
    assert len(written) == 1, run.stdout + run.stderr
    return run, written[0]


def test_bench_run_writes_a_csv_with_a_row_per_cell(bench_run):
    _, written = bench_run
    frame = read_results(written)
    assert pd.read_csv(written).columns.tolist() == list(COLUMN_NAMES)
    assert frame.variant.tolist() == ["eager", "xla-loop", "retrace", "slow-lr"]
    assert frame.steps_per_call.tolist() == [1, 10, 1, 1]
    assert frame.status.tolist() == ["ok", "ok", "failed", "failed"]
    assert frame.traces.tolist()[:2] == [0, 1]
    assert all(len(samples) == rounds >= 3
               for samples, rounds in zip(frame.samples_seconds, frame.rounds, strict=True))


def test_bench_run_fails_retraced_and_unconverged_cells_and_keeps_their_rows(bench_run):
    run, written = bench_run
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed, 2 passed" in run.stdout
    frame = read_results(written).set_index("variant")
    assert frame.message["retrace"] == (
        "retrace retraced: 2 traces for one (device, n, dtype); something passed to the step "
        "changes its signature")
    assert frame.message["slow-lr"].startswith("W=")
    assert "differs from the reference" in frame.message["slow-lr"]
    assert "from the OLS" in frame.message["slow-lr"]
    assert frame.median_seconds.notna().all()  # failing after timing keeps the timings
    assert frame.message["eager"] == ""


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


def test_bench_run_keeps_pytest_benchmark_per_call_json(bench_run):
    _, written = bench_run
    benchmarks = json.loads((written.parent.parent / "bench.json").read_text())["benchmarks"]
    by_id = {b["param"]: b for b in benchmarks}
    loop = by_id[cell_id(Cell("tensorflow", "CPU:0", "xla-loop", 100, "float32", 10))]
    assert loop["extra_info"]["steps_per_call"] == 10
    assert loop["extra_info"]["traces"] == 1
    # pytest-benchmark's numbers are per call; the CSV's per step.
    frame = read_results(written).set_index("variant")
    assert frame.median_seconds["xla-loop"] == pytest.approx(loop["stats"]["median"] / 10)


def test_bench_run_with_benchmarks_disabled_writes_nothing(tf_backend, tmp_path):
    run = _run_bench(tmp_path, "--linfit-variants", "tensorflow:xla", only="--benchmark-disable")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no results CSV written" in run.stdout
    assert not (tmp_path / "results").exists()


def test_bench_run_records_the_floors_and_efficiency(bench_run):
    run, written = bench_run
    ok = read_results(written).query("status == 'ok'")
    assert (ok.bytes_min == 2 * 100 * 4).all()
    floors = [max(row.bytes_min / row.read_bandwidth_bytes_per_second,
                  row.dispatch_floor_seconds / row.steps_per_call)
              for row in ok.itertuples()]
    assert ok.floor_seconds.tolist() == pytest.approx(floors)
    assert ok.efficiency.tolist() == pytest.approx((ok.floor_seconds / ok.median_seconds).tolist())
    assert "floors measured" in run.stdout or "floors read from the cache" in run.stdout


def test_bench_run_draws_its_figures_beside_the_csv(bench_run):
    run, written = bench_run
    for name in ("step-time", "speedup", "first-call", "convergence"):
        figure = written.with_name(f"{written.stem}-{name}.png")
        assert figure.stat().st_size > 0, name
        assert f"figure: {figure}" in run.stdout


def _baseline_from(source: Path, target: Path, time_factor: float) -> Path:
    """The ok rows of ``source`` as a baseline whose step times are ``time_factor`` times
    theirs."""
    frame = read_results(source).query("status == 'ok'")
    rows = []
    for row in frame.to_dict("records"):
        for column in ("min_seconds", "median_seconds", "mean_seconds", "stddev_seconds",
                       "iqr_seconds", "max_seconds"):
            row[column] *= time_factor
        row["samples_seconds"] = [s * time_factor for s in row["samples_seconds"]]
        rows.append(row)
    return write_results(rows, target)


@pytest.mark.parametrize(("time_factor", "status", "verdict"),
                         [(0.5, 1, "regression: the session fails"), (3.0, 0, "no regression")])
def test_baseline_gate_fails_the_session_on_a_regression_only(bench_run, tmp_path, time_factor,
                                                             status, verdict):
    _, written = bench_run
    # Half the time in the baseline: this run is twice as slow, far beyond noise.
    baseline = _baseline_from(written, tmp_path / "baseline.csv", time_factor)
    run = _run_bench(tmp_path, "--linfit-variants", "eager,xla-loop", "--linfit-steps-per-call",
                     "10", "--benchmark-min-rounds", "10", "--linfit-no-plots",
                     "--linfit-baseline", str(baseline))
    assert run.returncode == status, run.stdout + run.stderr
    assert f"linfit check against {baseline}" in run.stdout
    assert verdict in run.stdout
    if status:
        assert "error: performance: tensorflow CPU:0 eager n=100" in run.stdout


def test_an_unusable_baseline_stops_the_run_before_timing(tf_backend, tmp_path):
    run = _run_bench(tmp_path, "--linfit-baseline", "missing.csv")
    assert run.returncode == 4
    assert f"--linfit-baseline: {tmp_path / 'missing.csv'}: no such file" in run.stderr
    assert not (tmp_path / "results").exists()
