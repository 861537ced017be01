"""bench/peak_memory.py: each cell in a fresh process, the table, the Keras/hand-written
ratios, and bad arguments."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import background
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "peak_memory.py"
# Three children that each import JAX, on a loaded 2-core machine.
TIMEOUT_SECONDS = 300


def _script():
    spec = importlib.util.spec_from_file_location("peak_memory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_and_the_keras_ratios():
    script = _script()
    cell = {"host_bytes": 50_000_000, "device_bytes": None, "baseline_bytes": 1}
    results = {("tensorflow", "xla", 10**6): cell,
               ("tensorflow", "keras-xla", 10**6): {**cell, "host_bytes": 125_000_000},
               ("jax", "jit", 10**6): {"error": "exit status 1: MemoryError"}}
    text = script.render(results, [10**6], "CPU:0")
    assert "n=1e6" in text
    assert "tensorflow keras-xla" in text and "125.0 MB" in text
    assert "keras-xla            / xla                   2.50x" in text
    assert "keras-eager          / eager                     -" in text  # not measured
    assert "jax jit n=1e6: exit status 1: MemoryError" in text


def _jax_cells() -> subprocess.CompletedProcess[str]:
    return background.run([sys.executable, str(SCRIPT), "--backends", "jax", "--sizes", "1e3"],
                          timeout=TIMEOUT_SECONDS, env={**os.environ, "PYTHONPATH": str(ROOT)})


def start_jax_cells() -> None:
    """Queue the three children beside the session (tests/background.py)."""
    if importlib.util.find_spec("jax") is not None:
        background.queue("peak memory of the jax cells", _jax_cells)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
@pytest.mark.background.with_args(start_jax_cells)
def test_each_jax_cell_in_a_fresh_process():
    done = background.result("peak memory of the jax cells", start_jax_cells)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("jax ")]
    assert [row[1] for row in rows] == ["eager", "jit", "jit-loop"]
    if sys.platform.startswith("linux"):
        assert all(row[-1] == "MB" and float(row[-2]) >= 0 for row in rows)


@pytest.mark.parametrize(("args", "message"), [
    (["--sizes", "x"], "--sizes: 'x' is not a data set size"),
    (["--backends", "torch"], "--backends 'torch': valid are tensorflow, jax"),
])
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"peak_memory.py: error: {message}"), line
