"""The command line: fit, devices, bad arguments and bad paths that exit 2 with one line,
a reader that goes away, and TensorFlow's start-up noise."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import background
import pytest

from linfit import data
from linfit.backends import VARIANTS_BY_BACKEND, Variant
from linfit.cli import EXIT_BROKEN_PIPE, build_parser, main
from linfit.commands import fit as fit_command


def test_fit_prints_the_tutorial_history(tf_backend, capsys):
    assert main(["fit", "--variant", "xla", "--device", "CPU:0", "--n", "1000", "--steps", "10",
                 "--lr", "0.1", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch  0: W=5.00 b=0.00, loss=")
    assert lines[9].startswith("Epoch  9: W=")
    assert lines[10].startswith("Final:") and "OLS: W=" in lines[10]


def test_fit_json(tf_backend, capsys):
    assert main(["fit", "--variant", "function", "--steps", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in result["history"]] == [0, 1, 2, 3, 4]
    assert result["history"][0]["w"] == 5.0
    assert result["variant"] == "function" and result["device"] == "CPU:0"
    assert {"final_w", "final_b", "w_ols", "b_ols"} <= set(result)


def test_fit_loop_variant_prints_one_line_per_call(tf_backend, capsys):
    assert main(["fit", "--variant", "xla-loop", "--steps", "100", "--steps-per-call", "25"]) == 0
    epochs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert [line.split(":")[0] for line in epochs] == ["Epoch  0", "Epoch 25", "Epoch 50",
                                                       "Epoch 75"]


def test_fit_plot_writes_a_png(tf_backend, tmp_path, capsys):
    target = tmp_path / "fit.png"
    assert main(["fit", "--steps", "5", "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(target) in capsys.readouterr().out


def test_devices_lists_cpu(tf_backend, capsys):
    assert main(["devices", "--backend", "tensorflow"]) == 0
    assert capsys.readouterr().out.startswith("tensorflow  CPU:0")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--variant", "fastest"], "unknown tensorflow variant 'fastest'; valid: eager"),
        (["--n", "1"], "argument --n: 1 must be an integer >= 2"),
        (["--lr", "0"], "argument --lr: 0 must be a finite number > 0"),
        (["--lr", "-1"], "argument --lr: -1 must be a finite number > 0"),
        (["--device", "GPU:9"], "no device 'GPU:9'; devices: CPU:0"),
        (["--steps", "10", "--steps-per-call", "3", "--variant", "xla-loop"],
         "steps must be a positive multiple of steps_per_call=3"),
        (["--lr", "5", "--steps", "100"], "diverged at step"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tf_backend, capsys, arguments, message):
    with pytest.raises(SystemExit) as raised:
        code = main(["fit", *arguments])
        raise SystemExit(code)
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    assert message in error[0]


def test_python_dash_m_linfit_exits_2_without_traceback():
    done = subprocess.run([sys.executable, "-m", "linfit", "fit", "--n", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--n: 0 must be an integer >= 2" in done.stderr


def _refusal(capsys: pytest.CaptureFixture[str], arguments: list[str]) -> str:
    """Run ``linfit ARGUMENTS``, which must exit 2 with one line on stderr, nothing on stdout;
    returns that line."""
    assert main(arguments) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert captured.out == ""
    assert lines[0].startswith(f"linfit {arguments[0]}: error: ")
    return lines[0]


@pytest.mark.parametrize("size", ["1e11", "1e20"])
def test_fit_refuses_a_size_that_cannot_fit_in_memory_before_allocating(size, monkeypatch,
                                                                        capsys):
    def allocate(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data were about to be allocated")

    monkeypatch.setattr(data.np.random, "default_rng", allocate)
    monkeypatch.setattr(data, "available_memory_bytes", lambda: 16 * 2**30)
    line = _refusal(capsys, ["fit", "--n", size])
    assert f"n={float(size):g} float32 needs about" in line
    assert line.endswith("; 16.0 GiB is available")


@pytest.mark.parametrize("seed", ["-1", "0.5", "x"])
def test_fit_refuses_a_bad_seed(seed, capsys):
    line = _refusal(capsys, ["fit", "--seed", seed])
    assert "argument --seed:" in line and ("integer >= 0" in line or "not an integer" in line)


@pytest.mark.parametrize(
    ("plot", "message"),
    [
        ("a-file/fit.png", "cannot write {tmp}/a-file/fit.png: {tmp}/a-file is not a directory"),
        ("fit.jpeg", "cannot tell the figure format of {tmp}/fit.jpeg: its name must end in "
                     "one of .png, .svg, .pdf"),
        ("fit", "cannot tell the figure format of {tmp}/fit"),
        ("a-folder", "{tmp}/a-folder is a directory; give a file name ending in one of"),
    ],
)
def test_fit_plot_path_problems_are_refused_before_training(plot, message, tmp_path,
                                                            monkeypatch, capsys):
    (tmp_path / "a-file").write_text("keep me")
    (tmp_path / "a-folder").mkdir()
    monkeypatch.setattr(fit_command, "get_backend", lambda name: pytest.fail("trained"))
    line = _refusal(capsys, ["fit", "--plot", str(tmp_path / plot)])
    assert message.format(tmp=tmp_path) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder"]
    assert (tmp_path / "a-file").read_text() == "keep me"
    assert list((tmp_path / "a-folder").iterdir()) == []


def test_the_variants_in_fit_help_come_from_the_registries(monkeypatch):
    def fit_help() -> str:
        parser = build_parser()
        subparsers = next(a for a in parser._actions if a.dest == "command")
        return " ".join(subparsers.choices["fit"].format_help().split())

    text = fit_help()
    for backend, variants in VARIANTS_BY_BACKEND.items():
        assert f"{backend}: {', '.join(variants)}" in text
    extra = {**VARIANTS_BY_BACKEND["jax"],
             "turbo": Variant("turbo", compiled=True, xla=True, loop=False, description="x")}
    monkeypatch.setitem(VARIANTS_BY_BACKEND, "jax", extra)
    assert "jax: eager, jit, jit-loop, turbo;" in fit_help()


RUN_LINFIT = [sys.executable, "-m", "linfit"]
COMPARE_DATA = Path(__file__).parent / "data" / "compare"


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # Like `linfit compare BASE NEW | head`, with a reader that closes before any output.
    process = subprocess.Popen([*RUN_LINFIT, "compare", str(COMPARE_DATA / "base.csv"),
                                str(COMPARE_DATA / "new.csv")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == EXIT_BROKEN_PIPE == 141
    assert stderr == ""


# TensorFlow's start-up lines, each shown twice before the fix (see linfit/_native_log.py).
TF_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
            "Could not find cuda drivers", "failed call to cuInit")


def start_devices(level: str | None) -> None:
    """Run `linfit devices --backend tensorflow` beside the session (tests/background.py),
    with TF_CPP_MIN_LOG_LEVEL at ``level`` (None: unset)."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    background.queue(f"linfit devices at level {level}", functools.partial(
        background.run, [*RUN_LINFIT, "devices", "--backend", "tensorflow"], timeout=300,
        env=env))


def _devices_stderr(level: str | None) -> str:
    done = background.result(f"linfit devices at level {level}",
                             functools.partial(start_devices, level))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tensorflow  CPU:0")
    return done.stderr


@pytest.mark.background.with_args(functools.partial(start_devices, None))
def test_tensorflow_starts_without_noise(tf_backend):
    stderr = _devices_stderr(None)
    assert [line for line in stderr.splitlines() if any(n in line for n in TF_NOISE)] == []


@pytest.mark.background.with_args(functools.partial(start_devices, "0"))
def test_tensorflow_noise_is_back_when_the_user_asks_for_it(tf_backend):
    # The user's own TF_CPP_MIN_LOG_LEVEL is kept: at 0 every line shows, as TensorFlow
    # prints it (the Abseil preamble at least: it comes with any line Abseil logs).
    stderr = _devices_stderr("0")
    assert TF_NOISE[0] in stderr


def test_commands_import_no_other_command():
    """Issue 19: what two commands share lives in commands/_args.py (argument types),
    linfit._format (tables) or the library, never in another command."""
    import ast

    import linfit.cli
    from linfit.cli import COMMANDS

    folder = Path(linfit.cli.__file__).with_name("commands")
    shared = {"_args"}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = ([node.module] if node.module != "linfit.commands"
                         else [f"linfit.commands.{alias.name}" for alias in node.names])
                imported.update(names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        commands = {name.removeprefix("linfit.commands.") for name in imported
                    if name.startswith("linfit.commands.")}
        assert commands <= shared, f"{path.name} imports the command(s) {commands - shared}"
    assert set(COMMANDS) <= {path.stem for path in folder.glob("*.py")}
