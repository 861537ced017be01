"""``linfit explain`` (linfit/commands/explain.py, issue 17): the CELL grammar, the account
of real cells at tiny n, --hlo, and bad input (one line, exit 2)."""

from __future__ import annotations

import pytest

from linfit._errors import LinfitError
from linfit.cli import main
from linfit.commands.explain import cell_values
from linfit.hlo import LOOP_COUNT_SIGN

WHILE = f"while{LOOP_COUNT_SIGN}"


def test_a_cell_names_the_harness_options():
    values = cell_values("tensorflow:xla-loop n=1e5 k=50 float64 device=CPU:0 "
                         "convention=args", {})
    assert values == {"linfit_variants": "tensorflow:xla-loop", "linfit_backends": "tensorflow",
                      "linfit_sizes": "1e5", "linfit_steps_per_call": "50",
                      "linfit_dtypes": "float64", "linfit_devices": "CPU:0",
                      "linfit_conventions": "args"}
    # A bare variant selects the backends that have it.
    assert cell_values("jit-loop", {})["linfit_backends"] == "jax"
    assert cell_values("eager", {})["linfit_backends"] == "tensorflow,jax,torch"
    # Flags alone, or beside words they do not repeat.
    assert cell_values(None, {"linfit_sizes": "1e3"}) == {"linfit_sizes": "1e3"}
    assert cell_values("jax:jit", {"linfit_sizes": "1e3", "linfit_backends": "jax"})[
        "linfit_sizes"] == "1e3"


@pytest.mark.parametrize(("cell", "flags", "message"), [
    ("", {}, "CELL is empty"),
    ("n=1e5", {}, "give the variant first"),
    ("jax:jit size=1e5", {}, "CELL word 'size=1e5' is not one of n=..., dtype=..., k=..."),
    ("jax:jit n=", {}, "CELL word 'n=' is not one of"),
    ("jax:jit n=1e3 n=1e4", {}, "CELL gives n twice"),
    ("jax:jit n=1e3", {"linfit_sizes": "1e4"}, "CELL sets sizes and --sizes does too"),
])
def test_a_bad_cell_is_one_clear_error(cell, flags, message):
    with pytest.raises(LinfitError, match=message):
        cell_values(cell, flags)


def test_explain_prints_the_account_of_a_jax_loop_cell_and_keeps_its_hlo(tmp_path, capsys):
    pytest.importorskip("jax")
    target = tmp_path / "cell.hlo.txt"
    assert main(["explain", "jax:jit-loop n=64 k=10", "--hlo", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("jax CPU:0 jit-loop n=64 float32 k=10\n")
    assert "  one execution runs 10 training steps\n" in out
    assert f"  loops: {WHILE}1(trip 9)  [" in out and "trip 9 (cell)]" in out
    assert "read floor (x and y once): 512 B; bytes over it: " in out
    assert "HloModule" in target.read_text() and f"HLO text written to {target}" in out
    # The file is never replaced unless asked.
    assert main(["explain", "jax:jit-loop n=64 k=10", "--hlo", str(target)]) == 2
    assert capsys.readouterr().err == (f"linfit explain: error: --hlo {target} exists; give "
                                       "--force to replace it\n")


def test_explain_takes_the_harness_options_and_leaves_out_what_xla_does_not_compile(capsys):
    pytest.importorskip("tensorflow")
    assert main(["explain", "--backends", "tensorflow", "--variants", "eager,xla",
                 "--sizes", "64"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tensorflow CPU:0 xla n=64 float32 k=1 closure\n")
    assert "  loops: none\n" in out and "fusion[kLoop]" in out
    assert out.endswith("(1 selected cells XLA does not compile were left out)\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["jax:eager n=64"], "the options select no cell that XLA compiles"),
    (["jax:jit", "--sizes", "64,128", "--hlo", "x.txt"],
     "--hlo FILE keeps the HLO of one cell; the options select 2"),
    (["jax:jit", "--sizes", "one"], "--sizes: 'one' is not a data set size"),
    (["jax:nope"], "--variants: no selected backend has variant 'jax:nope'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.chdir(tmp_path)
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("linfit explain: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "x.txt").exists()
