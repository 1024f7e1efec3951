"""The doctor as a user runs it: a real child process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, stdin: str | None = None, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "doctor", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd or ROOT, env=full_env, timeout=timeout)
    check_sarif(args, proc, cwd or ROOT)
    return proc


def check_sarif(args: tuple[str, ...], proc: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """Every SARIF document a test makes the doctor write is one code scanning accepts."""
    if proc.returncode not in (0, 1) or not any(a in ("sarif", "--format=sarif") for a in args):
        return
    from tests.helpers.sarif import validate_sarif_text

    output = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--output", "-o")), None)
    text = (Path(cwd) / output).read_text(encoding="utf-8") if output else proc.stdout
    validate_sarif_text(text, Path(cwd))
