"""linfit.check and ``linfit check``: each rule on fixtures with known faults, exit statuses.

base.csv (tests/data/compare/) passes every rule; new.csv has one fault per rule (see
make_fixtures.py). After an intended change of the output, regenerate the golden in that
folder with ``linfit check new.csv --baseline base.csv > check.txt`` and review the diff.
"""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linfit.check import Finding, check_frame, exit_status
from linfit.cli import main
from linfit.results import Cell, read_results

DATA = Path(__file__).parent / "data" / "compare"
BASE = DATA / "base.csv"
NEW = DATA / "new.csv"

GPU_XLA_1000 = Cell("tensorflow", "GPU:0", "xla", 1000, "float32", 1)
CPU_EAGER_1000 = Cell("tensorflow", "CPU:0", "eager", 1000, "float32", 1)


@pytest.fixture
def base() -> pd.DataFrame:
    return read_results(BASE)


def where(frame: pd.DataFrame, cell: Cell) -> pd.Series:
    return ((frame["backend"] == cell.backend) & (frame["device"] == cell.device)
            & (frame["variant"] == cell.variant) & (frame["n_examples"] == cell.n_examples)
            & (frame["dtype"] == cell.dtype) & (frame["steps_per_call"] == cell.steps_per_call))


def rules(findings: list[Finding]) -> list[tuple[str, str, Cell | None]]:
    return [(f.rule, f.severity, f.cell) for f in findings]


def test_a_clean_run_passes_every_rule(base):
    assert check_frame(base) == []
    assert check_frame(base, read_results(BASE)) == []


def test_failed_cells_are_errors():
    findings = [f for f in check_frame(read_results(NEW)) if f.rule == "failed"]
    assert rules(findings) == [("failed", "error", Cell("tensorflow", "GPU:0", "xla", 100_000,
                                                         "float32", 1))]
    assert "RESOURCE_EXHAUSTED: out of memory" in findings[0].message


def test_numerics_against_the_cpu_eager_reference(base):
    reference_w = base.loc[where(base, CPU_EAGER_1000), "final_w"].item()
    base.loc[where(base, GPU_XLA_1000), "final_w"] = reference_w * (1 + 1e-4)
    [finding] = check_frame(base)
    assert (finding.rule, finding.severity, finding.cell) == ("numerics", "error", GPU_XLA_1000)
    assert finding.message == (f"W={reference_w * (1 + 1e-4):.9g} differs from the reference "
                               f"{reference_w:.9g} by more than rtol 1e-05")
    # --rtol overrides the dtype's tolerance.
    assert check_frame(base, rtol=1e-3) == []


def test_numerics_against_least_squares(base):
    w_ols = base.loc[where(base, CPU_EAGER_1000), "w_ols"].item()
    base.loc[where(base, CPU_EAGER_1000), "final_w"] = w_ols + 0.01
    findings = check_frame(base)
    # The reference itself is off OLS; every other n=1000 cell is now off the reference.
    assert all(f.rule == "numerics" and f.severity == "error" for f in findings)
    [own] = [f for f in findings if f.cell == CPU_EAGER_1000]
    assert own.message == (f"W={w_ols + 0.01:.9g} is 0.01 from the OLS {w_ols:.9g} "
                           "(tolerance 0.001)")
    assert len(findings) == 7


def test_without_a_reference_cell_the_rule_says_so_and_checks_ols_only(base):
    base.loc[where(base, CPU_EAGER_1000), "status"] = "failed"
    w_ols = base.loc[where(base, GPU_XLA_1000), "w_ols"].item()
    base.loc[where(base, GPU_XLA_1000), "final_w"] = w_ols + 0.01
    findings = [f for f in check_frame(base) if f.rule == "numerics"]
    assert rules(findings) == [("numerics", "error", GPU_XLA_1000),
                               ("numerics", "warning", None)]
    assert "from the OLS" in findings[0].message
    assert findings[1].message == (
        "no ok CPU:0 eager cell for n=1000 float32: the rtol rule could not be applied; 6 "
        "cell(s) were checked against the least-squares W and b only")


def test_another_backend_falls_back_to_the_tensorflow_reference(base):
    jax_row = base[where(base, GPU_XLA_1000)].assign(backend="jax", variant="jit")
    reference_w = base.loc[where(base, CPU_EAGER_1000), "final_w"].item()
    jax_row["final_w"] = reference_w * (1 + 1e-4)
    jax_cell = Cell("jax", "GPU:0", "jit", 1000, "float32", 1)
    with_jax = pd.concat([base, jax_row], ignore_index=True)
    [finding] = check_frame(with_jax)
    assert (finding.rule, finding.cell) == ("numerics", jax_cell)
    assert f"the reference {reference_w:.9g}" in finding.message
    # With its own CPU eager cell, jax is held to that one.
    jax_reference = base[where(base, CPU_EAGER_1000)].assign(
        backend="jax", final_w=reference_w * (1 + 1e-4))
    assert check_frame(pd.concat([with_jax, jax_reference], ignore_index=True)) == []


def test_a_dtype_without_tolerances_is_an_error(base):
    base.loc[where(base, GPU_XLA_1000), "dtype"] = "float8"
    [finding] = [f for f in check_frame(base) if f.severity == "error"]
    assert finding.message == ("no tolerances for dtype 'float8' (known: float64, float32, "
                               "float16, bfloat16)")


def test_placement(base):
    base.loc[where(base, GPU_XLA_1000), "placement"] = "CPU:0"
    [finding] = check_frame(base)
    assert (finding.rule, finding.severity, finding.cell) == ("placement", "error", GPU_XLA_1000)
    assert finding.message == "the result was on CPU:0, not on GPU:0"


def test_performance_uses_the_rule_of_compare():
    findings = [f for f in check_frame(read_results(NEW), read_results(BASE))
                if f.rule == "performance"]
    [error] = [f for f in findings if f.severity == "error"]
    assert error.cell == Cell("tensorflow", "CPU:0", "function", 1000, "float32", 1)
    assert error.message.startswith("1.25 [1.24, 1.27] x the baseline (59.7 µs -> 74.9 µs per "
                                    "step, p < 0.0005)")
    warnings = [f.message for f in findings if f.severity == "warning"]
    assert warnings[0] == ("1 baseline cell(s) are not in the results (the first: tensorflow "
                           "CPU:0 xla-loop n=1000 float32 k=100)")
    assert "baseline host differs: 'build-7' (base) vs 'build-8' (new) in 9 cells" in warnings


def test_performance_needs_the_same_device_name(base):
    slow = base.copy()
    slow.loc[where(slow, GPU_XLA_1000), "samples_seconds"] = slow.loc[
        where(slow, GPU_XLA_1000), "samples_seconds"].map(lambda s: tuple(2 * np.array(s)))
    assert rules(check_frame(slow, base)) == [("performance", "error", GPU_XLA_1000)]
    slow.loc[slow["device"] == "GPU:0", "device_name"] = "NVIDIA A100-SXM4-40GB"
    [finding] = check_frame(slow, base)
    assert (finding.rule, finding.severity) == ("performance", "warning")
    assert finding.message == ("GPU:0 is 'NVIDIA H100 80GB HBM3' in the baseline but "
                               "'NVIDIA A100-SXM4-40GB' here: 4 cell(s) not compared")


def test_sanity_is_only_a_warning():
    findings = [f for f in check_frame(read_results(NEW)) if f.rule == "sanity"]
    [finding] = findings
    assert finding.severity == "warning"
    assert finding.message == (
        "at the largest n the best GPU:0 variant (eager k=1, 322 µs per step) does not beat "
        "the best CPU variant (xla on CPU:0 k=1, 150 µs)")
    assert exit_status(findings) == 0


def test_sanity_needs_a_gpu_and_a_cpu_at_the_same_n(base):
    slow_gpu = base.copy()
    slow_gpu["samples_seconds"] = [
        tuple(np.array(samples) * (100 if device == "GPU:0" else 1))
        for samples, device in zip(slow_gpu["samples_seconds"], slow_gpu["device"], strict=True)]
    assert [f.rule for f in check_frame(slow_gpu)] == ["sanity"]
    assert check_frame(slow_gpu[slow_gpu["device_kind"] == "CPU"]) == []
    no_cpu_at_largest_n = slow_gpu[~((slow_gpu["n_examples"] == 100_000)
                                     & (slow_gpu["device_kind"] == "CPU"))]
    assert [f for f in check_frame(no_cpu_at_largest_n) if f.rule == "sanity"] == []


def test_check_frame_takes_the_harness_rows_as_a_frame():
    # The session gate passes its rows as they are: no run_id or schema_version yet, and
    # a failed cell without the columns it never measured.
    rows = read_results(NEW).drop(columns=["run_id", "schema_version"]).to_dict("records")
    failed = next(row for row in rows if row["status"] == "failed")
    for column in ("samples_seconds", "median_seconds", "final_w", "placement", "device_name"):
        del failed[column]
    findings = check_frame(pd.DataFrame(rows), read_results(BASE))
    assert [f.rule for f in findings if f.severity == "error"] == [
        "failed", "numerics", "placement", "performance"]


@pytest.mark.parametrize(("severities", "status"), [
    ((), 0), (("warning",), 0), (("warning", "error"), 1), (("error",), 1)])
def test_exit_status(severities, status):
    assert exit_status(Finding("sanity", severity, "m") for severity in severities) == status


def test_finding_text():
    assert str(Finding("placement", "error", "moved", GPU_XLA_1000)) == (
        "error: placement: tensorflow GPU:0 xla n=1000 float32 k=1: moved")
    assert str(Finding("performance", "warning", "missing")) == "warning: performance: missing"


# --- the command ----------------------------------------------------------------------

def test_check_golden(monkeypatch, capsys):
    monkeypatch.chdir(DATA)
    assert main(["check", "new.csv", "--baseline", "base.csv"]) == 1
    assert capsys.readouterr().out == (DATA / "check.txt").read_text()


def test_check_exit_0_on_a_clean_run(capsys):
    assert main(["check", str(BASE)]) == 0
    assert capsys.readouterr().out == (
        f"check of {BASE}, 11 cells: every rule passed; rules: failed, numerics, placement, "
        "sanity (performance needs --baseline)\n")


def test_check_rtol_option(capsys):
    assert main(["check", str(NEW), "--rtol", "1e-3"]) == 1
    out = capsys.readouterr().out
    assert "error: numerics" not in out and "error: placement" in out


def test_check_never_modifies_its_inputs():
    before = [hashlib.sha256(p.read_bytes()).digest() for p in (BASE, NEW)]
    main(["check", str(NEW), "--baseline", str(BASE)])
    assert [hashlib.sha256(p.read_bytes()).digest() for p in (BASE, NEW)] == before


@pytest.mark.parametrize("which", ["results", "baseline"])
def test_check_bad_input_exits_2_with_one_line(which, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("schema_version,run_id\n7,x\n")
    argv = [str(bad)] if which == "results" else [str(BASE), "--baseline", str(bad)]
    assert main(["check", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"linfit check: error: {bad} line 2: schema_version '7' is not one "
                            "this linfit reads (it reads 1); it was written by a newer linfit\n")


@pytest.mark.parametrize("flags", [["--rtol", "0"], ["--threshold", "2"], ["--alpha", "1"]])
def test_check_bad_flags_exit_2(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(BASE), *flags])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
