"""The progress bar appears on a terminal's stderr for a big file, and nowhere else."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pty = pytest.importorskip("pty", reason="pseudo-terminals are a POSIX feature")

ROOT = Path(__file__).resolve().parent.parent


def big_file(path: Path, megabytes: int = 10) -> Path:
    row = json.dumps({"instruction": "q" * 60, "input": "", "output": "a" * 400}) + "\n"
    with open(path, "w") as f:
        for i in range((megabytes << 20) // len(row) + 1):
            f.write(row.replace('"input": ""', f'"input": "{i}"'))
    return path


CODE = ("from doctor.probes.dataset import scan_dataset, DatasetOptions\n"
        "r = scan_dataset({path!r}, DatasetOptions(progress=True))\n"
        "print('rows', r.facts['dataset.rows'])\n")


def test_progress_goes_to_a_terminal_stderr_only(tmp_path: Path) -> None:
    path = big_file(tmp_path / "big.jsonl")
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", CODE.format(path=str(path))], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=child,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"})
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 0
    assert b"checking big.jsonl" in seen
    assert out.decode().strip().startswith("rows ")   # stdout stays clean for machines


def test_no_progress_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    path = big_file(tmp_path / "big.jsonl")
    done = subprocess.run([sys.executable, "-c", CODE.format(path=str(path))], cwd=ROOT,
                          capture_output=True, timeout=120)
    assert done.returncode == 0 and done.stderr == b""
