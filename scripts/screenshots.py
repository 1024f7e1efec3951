"""Screenshots of the console for the README, taken in a real terminal so they stay current.

Each command runs in a detached tmux session 100 columns wide (a real pseudo-terminal: the
doctor sees a terminal, so it wraps and colours as it does for a person); the pane, with its
colours and scrollback, is captured and written as an SVG under docs/ with rich.

    python scripts/screenshots.py            # needs tmux; writes docs/screenshot-*.svg
    python scripts/screenshots.py --check    # fails when a committed SVG is out of date
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 100, 50
DONE = "__screenshot_done__"

# (file under docs/, the command as the README shows it, its arguments to `python -m doctor`)
# --no-env: the machine the shots are taken on is nobody's patient, and its paths stay out.
SHOTS = [
    ("screenshot-scan.svg", "unsloth-doctor scan fixtures/demo --no-env", ["scan", "fixtures/demo", "--no-env"]),
    ("screenshot-explain.svg", "unsloth-doctor explain --no-env fixtures/logs/plain_oom.log",
     ["explain", "--no-env", "fixtures/logs/plain_oom.log"]),
]


def capture(arguments: list[str], timeout: float = 120.0) -> str:
    """The pane of a 100-column tmux terminal after `python -m doctor ARGUMENTS`, with colours."""
    session = f"doctor-shot-{uuid.uuid4().hex[:8]}"
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "doctor", *arguments])
    shell = f"cd {shlex.quote(str(ROOT))} && PYTHONPATH=. {command}; echo {DONE}; sleep 600"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT),
                    "env", "-u", "NO_COLOR", "TERM=xterm-256color", "COLORTERM=truecolor", "sh", "-c", shell],
                   check=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = _pane(session)
            if DONE in text:
                return text.split(DONE)[0].rstrip() + "\n"
            time.sleep(0.3)
        raise TimeoutError(f"{' '.join(arguments)} did not finish in {timeout:g} s")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _pane(session: str) -> str:
    # -e keeps the colours, -J joins nothing the terminal wrapped (it is shown as wrapped), -S - takes the scrollback
    return subprocess.run(["tmux", "capture-pane", "-p", "-e", "-S", "-", "-t", session],
                          capture_output=True, text=True, check=True).stdout


def to_svg(ansi: str, title: str) -> str:
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor", file=_Null())
    console.print(Text(f"$ {title}", style="bold"))
    console.print(Text.from_ansi(ansi), soft_wrap=True)
    return console.export_svg(title=title)


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed SVGs instead of writing")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("screenshots: tmux is not installed", file=sys.stderr)
        return 2
    stale = []
    for name, title, arguments in SHOTS:
        svg = to_svg(capture(arguments), title)
        target = ROOT / "docs" / name
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != svg:
                stale.append(name)
            continue
        target.parent.mkdir(exist_ok=True)
        target.write_text(svg, encoding="utf-8")
        print(f"wrote docs/{name}")
    if stale:
        print(f"screenshots: out of date: {', '.join(stale)} (run python scripts/screenshots.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
