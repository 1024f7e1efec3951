"""Headless Chromium (Debian's `chromium` package): the DOM a page ends up with, and a
screenshot, with no network, no profile and no GPU. scripts/test.sh installs it and sets
UNSLOTH_DOCTOR_TEST_BROWSER=required, so there a missing browser fails instead of skipping."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         # any request the page makes would fail here: a self-contained page makes none
         "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("UNSLOTH_DOCTOR_TEST_BROWSER") == "required":
        pytest.fail("chromium is not installed, and scripts/test.sh said it must be (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120)


def dump_dom(page: Path) -> str:
    proc = _run(page, "--dump-dom")
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def screenshot(page: Path, png: Path, size: str = "1000,2600") -> Path:
    proc = _run(page, f"--screenshot={png}", f"--window-size={size}")
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-2000:]
    return png
