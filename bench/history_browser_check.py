"""Load a ``linfit history`` site in headless Chromium: no console message, every image
loaded, and a screenshot.

    python bench/history_browser_check.py SITE [--screenshot PNG] [--timeout SECONDS]

Chromium (Debian's ``chromium`` package) runs twice on ``SITE/index.html`` from disk:
once with ``--dump-dom`` and its logging on stderr, where every console message of the
page (a script's error, a resource that failed to load, ``net::ERR_FILE_NOT_FOUND``)
is a ``CONSOLE`` line; once with ``--screenshot``. The site has no script, so any console
message is an error; so is an image of the loaded page that is not in the site (headless
Chromium does not log those). Exit status: 0 clean (prints the screenshot's path), 1
console messages or missing images (printed), 2 no Chromium, no such site, a page without
graphs, or Chromium failed or timed out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote

# Chromium's logging of a page's console: "[...:INFO:CONSOLE:12] "message", source: ..."
# (older releases: "CONSOLE(12)").
CONSOLE_LINE = re.compile(r":CONSOLE(?:[:(]\d+\)?)?\]")
IMAGE_SOURCE = re.compile(r'<img[^>]*\ssrc="([^"]+)"')
# Window of the screenshot: the steps table and the first graphs of the index.
WINDOW = "1280,1800"
# Time the page may take to load and lay out, in Chromium's virtual time (ms).
VIRTUAL_TIME_BUDGET_MS = 10_000
DEFAULT_TIMEOUT_SECONDS = 180
EXIT_CLEAN, EXIT_CONSOLE, EXIT_UNUSABLE = 0, 1, 2


def find_chromium() -> str | None:
    """The Chromium binary on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(binary: str, arguments: list[str], timeout: float,
                 profile: Path) -> subprocess.CompletedProcess[str]:
    """Chromium headless with ``arguments``; its whole process group is ended on return
    (Chromium starts helper processes), also on a timeout or Ctrl-C."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", f"--window-size={WINDOW}",
               f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def check(site: Path, screenshot: Path, timeout: float) -> int:
    """Run the check; prints what it found and returns the exit status."""
    binary = find_chromium()
    if binary is None:
        print("no chromium on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return EXIT_UNUSABLE
    index = (site / "index.html").resolve()
    if not index.is_file():
        print(f"{site}: no index.html", file=sys.stderr)
        return EXIT_UNUSABLE
    url = index.as_uri()
    with tempfile.TemporaryDirectory(prefix="linfit-chromium-") as profile:
        try:
            loaded = run_chromium(binary, ["--dump-dom", url], timeout, Path(profile) / "a")
            shot = run_chromium(binary, [f"--screenshot={screenshot.resolve()}", url],
                                timeout, Path(profile) / "b")
        except subprocess.TimeoutExpired:
            print(f"chromium did not finish within {timeout:g} s", file=sys.stderr)
            return EXIT_UNUSABLE
    if loaded.returncode != 0 or "<img" not in loaded.stdout:
        print(f"chromium could not load {url} (exit {loaded.returncode}):\n"
              f"{loaded.stderr[-2000:]}", file=sys.stderr)
        return EXIT_UNUSABLE
    console = [line for line in (loaded.stderr + shot.stderr).splitlines()
               if CONSOLE_LINE.search(line)]
    images = IMAGE_SOURCE.findall(loaded.stdout)
    # Headless Chromium does not log an image that failed to load: check the sources of
    # the loaded page's images against the site's files.
    missing = [src for src in images if not (index.parent / unquote(src)).is_file()]
    console += [f"image not found: {src}" for src in missing]
    if console:
        print(f"{len(console)} console messages loading {url}:", file=sys.stderr)
        for line in console:
            print("  " + line, file=sys.stderr)
        return EXIT_CONSOLE
    if shot.returncode != 0 or not screenshot.is_file() or screenshot.stat().st_size == 0:
        print(f"no screenshot (exit {shot.returncode}):\n{shot.stderr[-2000:]}",
              file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"{url}: 0 console messages, {len(images)} graphs in the page; screenshot {screenshot}")
    return EXIT_CLEAN


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the folder linfit history wrote")
    parser.add_argument("--screenshot", type=Path, default=Path("history.png"),
                        help="where the PNG goes (default: history.png)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help="seconds each Chromium run may take")
    args = parser.parse_args()
    return check(args.site, args.screenshot, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
