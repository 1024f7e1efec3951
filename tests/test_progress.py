"""Progress for a person at a terminal (a real pseudo-terminal), never in a pipe or a machine format."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_dataset_progress import big_file

pty = pytest.importorskip("pty", reason="pseudo-terminals are a POSIX feature")

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "PYTHONPATH": str(ROOT)}


def on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run with stdout and stderr on one pseudo-terminal; everything it showed, and its exit code."""
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=ENV)
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:   # the terminal closed: the child is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    return proc.wait(timeout=120), seen


def dataset_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "project" / "data"
    folder.mkdir(parents=True)
    big_file(folder / "train.jsonl")
    return tmp_path / "project"


def test_scan_shows_the_step_and_the_bar_on_a_terminal(tmp_path: Path) -> None:
    project = dataset_folder(tmp_path)
    code, seen = on_a_terminal([sys.executable, "-m", "doctor", "scan", "--no-env", "."], project)
    assert code in (0, 1), seen.decode(errors="replace")
    assert b"checking data/train.jsonl" in seen   # the bar, labelled with the relative path
    assert b" rows" in seen and b"MB/s" in seen
    assert b"\x1b[?25l" in seen                   # rich hid the cursor: a live display ran


@pytest.mark.parametrize("fmt", ["console", "json", "concise", "sarif"])
def test_no_progress_in_a_pipe(tmp_path: Path, fmt: str) -> None:
    project = dataset_folder(tmp_path)
    done = subprocess.run([sys.executable, "-m", "doctor", "scan", "--no-env", "--format", fmt, "."],
                          cwd=project, capture_output=True, env=ENV, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert b"\x1b" not in done.stdout and b"\x1b" not in done.stderr
    assert b"MB/s" not in done.stdout + done.stderr


def test_no_progress_in_a_machine_format_on_a_terminal(tmp_path: Path) -> None:
    project = dataset_folder(tmp_path)
    code, seen = on_a_terminal([sys.executable, "-m", "doctor", "scan", "--no-env", "--format", "json", "."], project)
    assert code in (0, 1)
    assert b"MB/s" not in seen and b"\x1b[?25l" not in seen
    assert seen.lstrip().startswith(b"{")


SMOKE_STAGES = """
import subprocess, sys
from pathlib import Path
from doctor import progress
from doctor.smoketest.runner import _wait_showing_stages

log = Path(sys.argv[1])
child = ("import time, sys\\n"
         "for name in ('load', 'train'):\\n"
         "    open(sys.argv[1], 'a').write('[doctor-smoke] stage ' + name + ' starts\\\\n')\\n"
         "    time.sleep(1.2)\\n")
with progress.session(True):
    proc = subprocess.Popen([sys.executable, "-c", child, str(log)])
    print("exit", _wait_showing_stages(proc, log, 60), file=sys.stderr)
"""


def test_the_smoke_test_names_the_stage_its_child_is_in(tmp_path: Path) -> None:
    code, seen = on_a_terminal([sys.executable, "-c", SMOKE_STAGES, str(tmp_path / "child.log")], tmp_path)
    assert code == 0, seen.decode(errors="replace")
    assert b"smoke test: load" in seen and b"smoke test: train" in seen
    assert b"exit 0" in seen


def test_fix_shows_the_repair_and_the_load_check(tmp_path: Path) -> None:
    project = dataset_folder(tmp_path)
    with open(project / "data" / "train.jsonl", "a") as f:
        f.write("{'instruction': 'q', 'input': '', 'output': 'a'}\n")   # something to repair
    code, seen = on_a_terminal([sys.executable, "-m", "doctor", "scan", "--no-env", "--fix", "."], project)
    text = seen.decode(errors="replace")
    assert "repairing data/train.jsonl" in text
    assert "loading data/train.fixed.jsonl as training reads it" in text
    assert "--fix: " in text and " remaining" in text


DEEP = """
import sys
from doctor import progress
from doctor.api import load_knowledge
from doctor.probes.deep import run_deep_probe

with progress.session(True):
    result = run_deep_probe(load_knowledge(), timeout_s=30, python=sys.argv[1])
print("deep done", len(result.observations), file=sys.stderr)
"""


def test_the_deep_probe_shows_its_child_at_work(tmp_path: Path) -> None:
    """A stand-in interpreter that takes a while (a real process): the spinner names the step."""
    fake = tmp_path / "slow-python"
    fake.write_text("#!/bin/sh\nsleep 1.5\nexit 1\n")
    fake.chmod(0o755)
    code, seen = on_a_terminal([sys.executable, "-c", DEEP, str(fake)], tmp_path)
    assert code == 0, seen.decode(errors="replace")
    assert b"deep probe: importing torch and unsloth in a child process" in seen
    assert b"deep done" in seen
