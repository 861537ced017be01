"""linfit.check and ``linfit check``: each rule on fixtures with known faults, the baseline
gate's cases, exit statuses.

base.csv (tests/data/compare/) passes every rule; new.csv has one fault per rule (see
make_fixtures.py). After an intended change of the output, regenerate the golden in that
folder with ``linfit check new.csv --baseline base.csv > check.txt`` and review the diff.
The reference policy, shared with the harness, is tested in test_convergence.py.
"""

import dataclasses
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from linfit.check import Finding, check_frame, check_results, exit_status
from linfit.cli import main
from linfit.compare import DRIFT_NOTE
from linfit.results import Cell, read_frame, read_results, write_results
from linfit.results.record import CellResult

DATA = Path(__file__).parent / "data" / "compare"
BASE = DATA / "base.csv"
NEW = DATA / "new.csv"

# TensorFlow compiled cells of the schema-1 fixtures were called with arguments.
GPU_XLA_1000 = Cell("tensorflow", "GPU:0", "xla", 1000, "float32", 1, convention="args")
CPU_EAGER_1000 = Cell("tensorflow", "CPU:0", "eager", 1000, "float32", 1)


@pytest.fixture
def base() -> list[CellResult]:
    return list(read_results(BASE))


def record(records: list[CellResult], cell: Cell) -> CellResult:
    [found] = [r for r in records if r.cell == cell]
    return found


def replaced(records: list[CellResult], cell: Cell, **changes) -> list[CellResult]:
    """The records with ``cell``'s changed (field=value; facts are merged)."""
    facts = changes.pop("facts", None)
    out = []
    for r in records:
        if r.cell == cell:
            r = dataclasses.replace(r, **changes)
            if facts:
                r = dataclasses.replace(r, facts={**r.facts, **facts})
        out.append(r)
    return out


def scaled(r: CellResult, factor: float) -> CellResult:
    return dataclasses.replace(r, per_call_seconds=tuple(s * factor for s in r.per_call_seconds))


def rules(findings: list[Finding]) -> list[tuple[str, str, Cell | None]]:
    return [(f.rule, f.severity, f.cell) for f in findings]


def test_a_clean_run_passes_every_rule(base):
    assert check_results(base) == []
    assert check_results(base, read_results(BASE)) == []


def test_failed_cells_are_errors():
    findings = [f for f in check_results(read_results(NEW)) if f.rule == "failed"]
    assert rules(findings) == [("failed", "error", Cell("tensorflow", "GPU:0", "xla", 100_000,
                                                         "float32", 1, convention="args"))]
    assert "RESOURCE_EXHAUSTED: out of memory" in findings[0].message


def test_numerics_against_the_cpu_eager_reference(base):
    reference_w = record(base, CPU_EAGER_1000).final_w
    moved = replaced(base, GPU_XLA_1000, final_w=reference_w * (1 + 1e-4))
    [finding] = check_results(moved)
    assert (finding.rule, finding.severity, finding.cell) == ("numerics", "error", GPU_XLA_1000)
    assert finding.message == (f"W={reference_w * (1 + 1e-4):.9g} differs from the reference "
                               f"{reference_w:.9g} by more than rtol 1e-05 (reference: the "
                               f"{CPU_EAGER_1000} cell)")
    # --rtol overrides the dtype's tolerance.
    assert check_results(moved, rtol=1e-3) == []


def test_numerics_against_least_squares(base):
    w_ols = record(base, CPU_EAGER_1000).w_ols
    findings = check_results(replaced(base, CPU_EAGER_1000, final_w=w_ols + 0.01))
    # The reference itself is off OLS; every other n=1000 cell is now off the reference.
    assert all(f.rule == "numerics" and f.severity == "error" for f in findings)
    [own] = [f for f in findings if f.cell == CPU_EAGER_1000]
    assert own.message.startswith(f"W={w_ols + 0.01:.9g} is 0.01 from the OLS {w_ols:.9g} "
                                  "(tolerance 0.001)")
    assert len(findings) == 7


def test_without_a_reference_the_rule_says_so_and_checks_ols_only(base):
    w_ols = record(base, GPU_XLA_1000).w_ols
    edited = replaced(base, CPU_EAGER_1000, status="failed", message="boom")
    edited = replaced(edited, GPU_XLA_1000, final_w=w_ols + 0.01)
    findings = [f for f in check_results(edited) if f.rule == "numerics"]
    assert rules(findings) == [("numerics", "error", GPU_XLA_1000),
                               ("numerics", "warning", None)]
    assert "from the OLS" in findings[0].message and "(reference: itself)" in findings[0].message
    assert findings[1].message == (
        "no ok tensorflow eager CPU:0 cell for n=1000 float32, nor a recorded reference W and "
        "b: the rtol rule could not be applied; 6 cell(s) were checked against the "
        "least-squares W and b only")


def test_another_backend_is_held_to_its_own_cpu_eager_cell(base):
    """The policy: a jax cell is checked against jax's CPU eager, never TensorFlow's."""
    reference_w = record(base, CPU_EAGER_1000).final_w
    jax_cell = Cell("jax", "GPU:0", "jit", 1000, "float32", 1)
    jax = dataclasses.replace(record(base, GPU_XLA_1000), cell=jax_cell,
                              final_w=reference_w * (1 + 1e-4))
    jax_eager = dataclasses.replace(record(base, CPU_EAGER_1000),
                                    cell=dataclasses.replace(CPU_EAGER_1000, backend="jax"),
                                    final_w=reference_w * (1 + 1e-4))
    # Against TensorFlow's cell it would fail; against its own (missing) it is OLS only.
    findings = check_results([*base, jax])
    assert [f.severity for f in findings] == ["warning"]
    assert "no ok jax eager CPU:0 cell" in findings[0].message
    assert check_results([*base, jax, jax_eager]) == []
    [finding] = check_results([*base, dataclasses.replace(jax, final_w=reference_w),
                               jax_eager])
    assert finding.cell == jax_cell and "jax CPU:0 eager" in finding.message


def test_a_dtype_without_tolerances_is_an_error(base):
    odd = dataclasses.replace(record(base, GPU_XLA_1000),
                              cell=dataclasses.replace(GPU_XLA_1000, dtype="float8"))
    [finding] = [f for f in check_results([*base, odd]) if f.severity == "error"]
    assert finding.message == ("no tolerances for dtype 'float8' (known: float64, float32, "
                               "float16, bfloat16)")


def test_placement(base):
    [finding] = check_results(replaced(base, GPU_XLA_1000, placement="CPU:0"))
    assert (finding.rule, finding.severity, finding.cell) == ("placement", "error", GPU_XLA_1000)
    assert finding.message == "the result was on CPU:0, not on GPU:0"


def test_performance_uses_the_rule_of_compare():
    findings = [f for f in check_results(read_results(NEW), read_results(BASE))
                if f.rule == "performance"]
    errors = [f for f in findings if f.severity == "error"]
    assert [f.cell for f in errors] == [
        Cell("tensorflow", "CPU:0", "function", 1000, "float32", 1, convention="args"),
        Cell("tensorflow", "GPU:0", "xla", 100_000, "float32", 1, convention="args"), None]
    assert errors[0].message.startswith("1.25 [1.24, 1.27] x the baseline (59.7 µs -> 74.9 µs "
                                        "per step, p < 0.0005)")
    assert errors[1].message == "ok in the baseline, failed here"
    assert errors[2].message == ("1 baseline cell(s) are not in the results (the first: "
                                 "tensorflow CPU:0 xla-loop n=1000 float32 k=100); "
                                 "--allow-missing accepts that")
    warnings = [f.message for f in findings if f.severity == "warning"]
    assert "baseline host differs: 'build-7' (base) vs 'build-8' (new) in 9 cells" in warnings


def test_performance_needs_the_same_device_name(base):
    slow = [scaled(r, 2) if r.cell == GPU_XLA_1000 else r for r in base]
    assert rules(check_results(slow, base)) == [("performance", "error", GPU_XLA_1000)]
    renamed = [dataclasses.replace(r, facts={**r.facts, "device_name": "NVIDIA A100-SXM4-40GB"})
               if r.cell.device == "GPU:0" else r for r in slow]
    [finding] = check_results(renamed, base)
    assert (finding.rule, finding.severity) == ("performance", "warning")
    assert finding.message == ("GPU:0 is 'NVIDIA H100 80GB HBM3' in the baseline but "
                               "'NVIDIA A100-SXM4-40GB' here: 4 cell(s) not compared")


# --- the baseline gate cannot pass on nothing -----------------------------------------

def test_a_missing_baseline_cell_is_an_error_unless_allowed(base):
    fewer = [r for r in base if r.cell != GPU_XLA_1000]
    [finding] = check_results(fewer, base)
    assert (finding.rule, finding.severity) == ("performance", "error")
    assert "--allow-missing accepts that" in finding.message
    [finding] = check_results(fewer, base, allow_missing=True)
    assert finding.severity == "warning" and "allowed by --allow-missing" in finding.message


def test_a_cell_ok_in_the_baseline_that_failed_here_is_an_error(base):
    broken = replaced(base, GPU_XLA_1000, status="failed", message="boom")
    assert rules(check_results(broken, base)) == [
        ("failed", "error", GPU_XLA_1000), ("performance", "error", GPU_XLA_1000)]


def test_no_cell_in_common_with_the_baseline_is_an_error(base):
    elsewhere = [dataclasses.replace(r, cell=dataclasses.replace(
        r.cell, n_examples=r.cell.n_examples * 7)) for r in base]
    findings = check_results(base, elsewhere, allow_missing=True)
    errors = [f.message for f in findings if f.severity == "error"]
    assert errors == ["nothing was compared: no cell on a device of the same name is ok in "
                      "both the baseline and the results"]
    assert exit_status(findings) == 1


def test_check_baseline_with_no_cell_in_common_exits_1(tmp_path, capsys, base):
    elsewhere = write_results([dataclasses.replace(r, cell=dataclasses.replace(
        r.cell, n_examples=r.cell.n_examples * 7)) for r in base], tmp_path / "elsewhere.csv")
    assert main(["check", str(BASE), "--baseline", str(elsewhere), "--allow-missing"]) == 1
    out = capsys.readouterr().out
    assert "error: performance: nothing was compared" in out
    assert out.rstrip().endswith(f"note: {DRIFT_NOTE}")


def test_sanity_is_only_a_warning():
    findings = [f for f in check_results(read_results(NEW)) if f.rule == "sanity"]
    [finding] = findings
    assert finding.severity == "warning"
    assert finding.message == (
        "at the largest n the best GPU:0 variant (eager k=1, 322 µs per step) does not beat "
        "the best CPU variant (xla on CPU:0 k=1, 150 µs)")
    assert exit_status(findings) == 0


def test_sanity_needs_a_gpu_and_a_cpu_at_the_same_n(base):
    slow_gpu = [scaled(r, 100) if r.cell.device == "GPU:0" else r for r in base]
    assert [f.rule for f in check_results(slow_gpu)] == ["sanity"]
    assert check_results([r for r in slow_gpu if r.cell.device == "CPU:0"]) == []
    no_cpu_at_largest_n = [r for r in slow_gpu
                           if not (r.cell.n_examples == 100_000 and r.cell.device == "CPU:0")]
    assert [f for f in check_results(no_cpu_at_largest_n) if f.rule == "sanity"] == []


def test_check_frame_still_takes_a_frame():
    # A frame, as read_frame gives it (or the harness's rows as one), checks the same.
    frame = read_frame(NEW)
    assert check_frame(frame, read_frame(BASE)) == check_results(read_results(NEW),
                                                                 read_results(BASE))
    rows = frame.drop(columns=["run_id", "schema_version"]).to_dict("records")
    failed = next(row for row in rows if row["status"] == "failed")
    for column in ("samples_seconds", "median_seconds", "final_w", "placement", "device_name"):
        del failed[column]
    findings = check_frame(pd.DataFrame(rows), read_results(BASE))
    assert [f.rule for f in findings if f.severity == "error"] == [
        "failed", "numerics", "placement", "performance", "performance", "performance"]


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


def test_check_with_a_baseline_states_the_drift_limitation(capsys):
    assert main(["check", str(BASE), "--baseline", str(BASE)]) == 0
    out = capsys.readouterr().out
    assert f"note: {DRIFT_NOTE}" in out and "linfit ab" in out


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
    assert captured.err == (f"linfit check: error: {bad} line 2, column schema_version: '7' is "
                            "not a schema_version this linfit reads (it reads 1, 2, 3, 4 and 5); "
                            "it was written by a newer linfit\n")


@pytest.mark.parametrize("flags", [["--rtol", "0"], ["--threshold", "2"], ["--alpha", "1"]])
def test_check_bad_flags_exit_2(flags, capsys):
    try:
        status = main(["check", str(BASE), *flags])
    except SystemExit as exit_info:  # argparse rejects a flag by exiting
        status = exit_info.code
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1


# --- the machines (issue 18): warnings on stderr, never the exit status -------------------

SMALL_V5 = DATA / "small-v5.csv"  # a 2-CPU KVM guest, load 0.52 at the start, 1.73 at the end


def _on_machine(tmp_path: Path, name: str, **facts: object) -> Path:
    records = [dataclasses.replace(r, facts={**r.facts, **facts})
               for r in read_results(SMALL_V5)]
    return write_results(records, tmp_path / name)


def test_a_loaded_run_is_a_warning_on_stderr(tmp_path, capsys):
    loaded = _on_machine(tmp_path, "loaded.csv", load_average_start=2.75)
    quiet_status = main(["check", str(SMALL_V5)])
    assert "linfit check: warning" not in capsys.readouterr().err
    assert main(["check", str(loaded)]) == quiet_status  # a warning only
    assert capsys.readouterr().err == (
        f"linfit check: warning: {loaded}: the load average reached 2.75 with 2 CPU(s) "
        "available: threads waited for a CPU during the run (other work, or more framework "
        "threads than CPUs), so its times may be inflated\n")


def test_a_baseline_on_another_machine_is_a_warning_on_stderr(tmp_path, capsys):
    other = _on_machine(tmp_path, "other.csv", memory_bytes=64 * 2**30, virtual_machine="none",
                        container="none", cpu_model="Intel Xeon")
    main(["check", str(SMALL_V5), "--baseline", str(other)])
    assert capsys.readouterr().err == (
        f"linfit check: warning: the machines of {other} and {SMALL_V5} differ: memory 64.0 "
        "GiB vs 23.5 GiB; CPU 'Intel Xeon' vs 'Intel(R) Xeon(R) CPU @ 2.20GHz'; VM: none vs "
        "kvm; container: none vs "
        "docker; their times are not like for like\n")
