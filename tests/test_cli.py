"""The command line: fit, devices, and bad arguments that exit 2 with one line."""

import json
import subprocess
import sys

import pytest

from linfit.cli import main


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
