"""bench/history_browser_check.py: a linfit history site in headless Chromium logs no console
message and gives a screenshot; a broken page fails the check. Skips where Chromium is
absent (CI has none; Debian: apt-get install chromium)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_history import BUILDS, synthetic_runs

from linfit.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "history_browser_check.py"
# Two Chromium runs on a loaded 2-core machine: start-up can take tens of seconds.
TIMEOUT_SECONDS = 600

pytestmark = pytest.mark.skipif(
    not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")),
    reason="no Chromium on PATH (Debian: apt-get install chromium); the check needs a "
           "real browser")


def run_check(site: Path, screenshot: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(site), "--screenshot",
                           str(screenshot), "--timeout", str(TIMEOUT_SECONDS / 2)],
                          capture_output=True, text=True, timeout=TIMEOUT_SECONDS)


def test_a_site_loads_without_console_messages(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    synthetic_runs(runs, BUILDS)
    site = tmp_path / "site"
    assert main(["history", str(runs), "-o", str(site)]) == 0
    screenshot = tmp_path / "history.png"
    done = run_check(site, screenshot)
    assert done.returncode == 0, done.stderr
    assert "0 console messages, 3 graphs" in done.stdout
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_broken_page_fails_the_check(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        '<!DOCTYPE html><html><body><img src="svg/missing.svg">'
        '<script>console.error("broken")</script></body></html>')
    done = run_check(site, tmp_path / "shot.png")
    assert done.returncode == 1
    assert "broken" in done.stderr and "image not found: svg/missing.svg" in done.stderr
