"""The repository names no path of the machines it was built on: real reports and bench
outputs are kept, with their users' and build hosts' folders written neutrally."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.cli import ROOT

# spelled in pieces, so that this file does not match itself
FORBIDDEN = re.compile("|".join(["/" + "work/", "/home/" + "work" + r"\b", r"\." + "library" + r"\b"]))


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.decode().split("\0") if p]


def test_no_tracked_text_names_a_build_machines_path() -> None:
    hits = []
    for rel in _tracked():
        try:
            text = (ROOT / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue   # binary files (indexes, parquet) are generated, not written by hand
        hits += [f"{rel}:{n}" for n, line in enumerate(text.splitlines(), 1) if FORBIDDEN.search(line)]
    assert not hits, hits[:20]
