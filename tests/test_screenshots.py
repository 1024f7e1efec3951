"""The README's screenshots come from a real terminal: the script's capture is what a person
at a 100-column tmux pane sees (wrapped there, coloured), and its SVG holds no machine path."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_the_capture_is_a_100_column_terminal_with_colour() -> None:
    import screenshots

    ansi = screenshots.capture(["scan", "fixtures/demo", "--no-env"])
    plain = re.sub(r"\x1b\[[0-9;]*m", "", ansi)
    assert "\x1b[" in ansi                                    # the doctor saw a terminal
    assert max(len(line) for line in plain.splitlines()) <= screenshots.WIDTH
    assert "DATA-JSON-SINGLE-QUOTES" in plain and "Doctor found" in plain
    svg = screenshots.to_svg(ansi, "unsloth-doctor scan fixtures/demo --no-env")
    assert svg.startswith("<svg") and str(ROOT) not in svg


def test_the_readme_embeds_the_committed_screenshots() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    import screenshots

    for name, _title, _args in screenshots.SHOTS:
        assert f"(docs/{name})" in readme and (ROOT / "docs" / name).is_file()
